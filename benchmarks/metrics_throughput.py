"""Distribution metrics: images/s of each feature network next to plain generation, and the seconds of the
precision/recall step for N x N feature sets.

Generators: `toyfaces` (the embedded model, 64 px) and the synthetic configs of generator_throughput.py
(random weights, sized like real ones).

  generate    `latentlab.metrics.sources.generator_images` (G(z) with random noise, to uint8 as NVIDIA's metric
              feeds its detector): the floor every other row is compared with
  features    generation + one feature network (`--extractors`; the `-untrained` networks cost what the trained
              ones cost, without a download) on the same uint8 batches: what one image of fid/kid/pr costs
  pr          `latentlab.metrics.precision_recall.precision_recall` on random non-negative features of
              `--pr-dim` dimensions, `--pr-n` real and generated each (two manifolds, two coverages: the whole
              50k x 50k step of pr50k3 when --pr-n 50000); seconds, and the extrapolation to 50 000 by N^2

Examples:
    python benchmarks/metrics_throughput.py --config toyfaces --extractors toyfaces,inception-untrained
    python benchmarks/metrics_throughput.py --config res256 --pr-n 10000 --device cuda
"""

import argparse
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.generator_throughput import (  # noqa: E402
    CONFIGS,
    add_run_args,
    append_jsonl,
    apply_run_args,
    synthetic_generator,
)
from latentlab.metrics.extractors import get_extractor  # noqa: E402
from latentlab.metrics.precision_recall import precision_recall  # noqa: E402
from latentlab.metrics.sources import generator_images  # noqa: E402


def load(config, device):
    if config == "toyfaces":
        import latentlab

        return latentlab.load_generator("toyfaces", device=device).eval().requires_grad_(False)
    return synthetic_generator(config, device)


def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


@torch.no_grad()
def images_per_s(G, n, batch, device, extractor=None, warmup=1):
    """Images/s of generating n images (after `warmup` batches not counted), each batch fed to `extractor`."""
    total = n + warmup * batch
    t0, done = None, 0
    for i, x in enumerate(generator_images(G, total, seed=0, batch_size=batch, device=device)):
        if extractor is not None:
            extractor(x)
        if i + 1 == warmup:
            sync(device)
            t0 = time.perf_counter()
        elif i + 1 > warmup:
            done += len(x)
    sync(device)
    return done / (time.perf_counter() - t0)


def pr_seconds(n, dim, device, row_batch, col_batch):
    g = torch.Generator().manual_seed(0)
    real = torch.rand(n, dim, generator=g) * 4  # ReLU-like features of a few units, as VGG16's fc2
    gen = torch.rand(n, dim, generator=g) * 4
    real, gen = real.to(device), gen.to(device)
    sync(device)
    t0 = time.perf_counter()
    precision_recall(real, gen, k=3, row_batch=row_batch, col_batch=col_batch, device=device)
    sync(device)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", nargs="+", choices=["toyfaces", *sorted(CONFIGS)], default=["toyfaces"])
    ap.add_argument(
        "--extractors",
        default="toyfaces,inception-untrained,vgg16-untrained",
        help="comma-separated feature networks (latentlab.metrics.extractors specs)",
    )
    ap.add_argument("--n", type=int, default=256, help="images timed per row")
    ap.add_argument("--batch", type=int, default=64, help="images per batch")
    ap.add_argument("--pr-n", type=int, default=10000, help="features per set for the precision/recall step (0: skip)")
    ap.add_argument("--pr-dim", type=int, default=4096, help="feature dimensions (VGG16 fc2: 4096)")
    ap.add_argument("--pr-row-batch", type=int, default=10000)
    ap.add_argument("--pr-col-batch", type=int, default=10000)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_run_args(ap)
    args = ap.parse_args()
    apply_run_args(args)
    info = dict(
        device=args.device,
        threads=torch.get_num_threads(),
        cpu=platform.processor() or platform.machine(),
        torch=torch.__version__,
        n=args.n,
        batch=args.batch,
    )
    print(info)
    rows = []
    for config in args.config:
        G = load(config, args.device)
        base = images_per_s(G, args.n, args.batch, args.device)
        rows.append(dict(config=config, row="generate", images_per_s=base, relative=1.0))
        print(f"{config:9s} generate                  {base:9.1f} img/s   1.00x")
        for spec in args.extractors.split(","):
            if spec == "toyfaces" and config != "toyfaces":
                continue  # the toyfaces classifier reads 64 px faces of the embedded model
            ext = get_extractor(spec, args.device)
            rate = images_per_s(G, args.n, args.batch, args.device, ext)
            rows.append(dict(config=config, row=f"features:{spec}", images_per_s=rate, relative=rate / base))
            print(f"{config:9s} generate + {spec:20s} {rate:9.1f} img/s   {rate / base:.2f}x")
    if args.pr_n:
        sec = pr_seconds(args.pr_n, args.pr_dim, args.device, args.pr_row_batch, args.pr_col_batch)
        at_50k = sec * (50000 / args.pr_n) ** 2
        rows.append(dict(row="precision_recall", n=args.pr_n, dim=args.pr_dim, seconds=sec, seconds_at_50k=at_50k))
        print(f"precision/recall {args.pr_n} x {args.pr_n} x {args.pr_dim}: {sec:.1f} s (50k x 50k: ~{at_50k:.0f} s)")
    append_jsonl(args.json, info, rows)


if __name__ == "__main__":
    main()
