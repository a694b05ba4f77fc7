"""Throughput (samples/s) of `latentlab.sampling.sample` against plain generation, on a synthetic generator.

Three figures over the same seeds and batch size:
  generate        z from seeds -> G(z), images discarded (the floor)
  generate+score  the same plus a small CNN classifier at 64 px (no storage)
  sample()        the whole pipeline: scoring, codes, chunk files written atomically

Examples:
    python benchmarks/sampling_throughput.py --config res64 --n 128 --batch 32 --repeats 3
    python benchmarks/sampling_throughput.py --config res64 --n 4096 --batch 64 --device cuda --styles
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.generator_throughput import CONFIGS, add_run_args, append_jsonl, apply_run_args, synthetic_generator  # noqa: E402,E501
from latentlab.latents import z_from_seeds  # noqa: E402
from latentlab.sampling import sample  # noqa: E402


class SmallCNN(nn.Module):
    """A CelebA-sized head (40 logits) on a 4-layer CNN, fed 64x64 images (roughly a cheap attribute model)."""

    names = [f"attr{i}" for i in range(40)]

    def __init__(self):
        super().__init__()
        chans = [3, 32, 64, 128, 256]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(chans, chans[1:]))
        self.fc = nn.Linear(chans[-1], len(self.names))

    def forward(self, img):
        x = img if img.shape[-1] == 64 else F.interpolate(img, size=(64, 64), mode="area")
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return self.fc(x.mean(dim=(2, 3)))


def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


@torch.no_grad()
def plain(G, clf, n, batch, device):
    for lo in range(0, n, batch):
        z = z_from_seeds(range(lo, min(n, lo + batch)), G.z_dim, device)
        img = G(z, None, noise_mode="const")
        if clf is not None:
            clf(img)
    sync(device)


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="res64")
    ap.add_argument("--n", type=int, default=128, help="samples per measurement")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="report the best of this many interleaved runs")
    ap.add_argument("--styles", action="store_true", help="also store S-space styles in the sample() run")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_run_args(ap)
    args = ap.parse_args()
    apply_run_args(args)

    G = synthetic_generator(args.config, args.device)
    clf = SmallCNN().eval().requires_grad_(False).to(args.device)
    plain(G, clf, args.batch, args.batch, args.device)  # warm-up: allocator, oneDNN/cuDNN kernel choice

    tmp = tempfile.TemporaryDirectory()
    runs = iter(range(10**6))
    cases = [
        ("generate", lambda: plain(G, None, args.n, args.batch, args.device)),
        ("generate+score", lambda: plain(G, clf, args.n, args.batch, args.device)),
        (
            "sample()" + (" +styles" if args.styles else ""),
            lambda: sample(
                G,
                clf,
                os.path.join(tmp.name, str(next(runs))),
                args.n,
                chunk_size=args.chunk,
                batch_size=args.batch,
                save_styles=args.styles,
                device=args.device,
                progress=False,
            ),
        ),
    ]
    best = {label: float("inf") for label, _ in cases}
    for _ in range(args.repeats):  # interleaved, best of: robust to other load on a shared machine
        for label, fn in cases:
            best[label] = min(best[label], timed(fn))
    folder = os.path.join(tmp.name, "0")
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    tmp.cleanup()
    results = list(best.items())

    info = dict(
        config=args.config,
        n=args.n,
        batch=args.batch,
        chunk=args.chunk,
        repeats=args.repeats,
        device=args.device,
        threads=torch.get_num_threads(),
        cpu=platform.processor() or platform.machine(),
        torch=torch.__version__,
    )
    print(json.dumps(info))
    base = results[0][1]
    for label, sec in results:
        print(f"{label:<18} {args.n / sec:8.2f} samples/s   {sec:7.2f} s   {sec / base:5.2f}x generate time")
    print(f"folder size {size / 2**20:.2f} MiB ({size / args.n / 1024:.2f} KiB per sample)")
    append_jsonl(args.json, info, [{"what": label, "samples_per_s": args.n / sec} for label, sec in results])


if __name__ == "__main__":
    main()
