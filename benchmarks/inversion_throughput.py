"""Projector steps/s (W, W+, S; batches 1 and 4) and encoder images/s next to plain generation.

Generators: `toyfaces` (the embedded model, 64 px, w 128) and the synthetic configs of
generator_throughput.py (res64, res256, res1024; random weights, sized like real ones).

  generate   G(z) without grad, `--gen-batch` images per call (the floor every row is compared with)
  project    `latentlab.inversion.project` with LPIPS-VGG (an untrained backbone: the trained one costs
             the same, without a download); one step = synthesis, LPIPS, backward through both, Adam,
             the noise regulariser and renormalisation, for every image of the batch. Steps are timed
             between progress updates: the w_avg statistics (`--w-avg-samples` z) and the first
             `--warmup` steps are not counted. images/s = steps/s x batch.
  encoder    `HierarchicalEncoder.for_generator(G, depth=--encoder-depth)` forward on images in
             [-1, 1] without grad (`--encoder`; skipped with a note while latentlab.inversion.encoder
             is missing)

Examples:
    python benchmarks/inversion_throughput.py --config toyfaces res256 --steps 4 --encoder
    python benchmarks/inversion_throughput.py --config res1024 --batches 1 --device cuda
"""

import argparse
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.generator_throughput import (
    CONFIGS,
    add_run_args,
    append_jsonl,
    apply_run_args,
    synthetic_generator,
    timed,
)  # noqa: E402,E501
from latentlab.inversion import project  # noqa: E402


class StepClock:
    """A progress bar stand-in that records when each step ended."""

    def __init__(self):
        self.times = []

    def update(self, n=1):
        self.times.append(time.perf_counter())

    def rate(self, warmup):
        t = self.times[warmup:]
        if len(t) < 2:
            raise SystemExit(f"need --steps >= --warmup + 2 to time a step, got {len(self.times)} steps")
        return (len(t) - 1) / (t[-1] - t[0])


def load(config, device):
    if config == "toyfaces":
        import latentlab

        return latentlab.load_generator("toyfaces", device=device).eval().requires_grad_(False)
    return synthetic_generator(config, device)


def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def projector_rate(G, space, batch, args):
    with torch.no_grad():
        target = G(torch.randn(batch, G.z_dim, device=args.device), None, noise_mode="const")
    clock = StepClock()
    project(
        G,
        target,
        args.steps,
        space=space,
        pretrained_backbone=False,
        w_avg_samples=args.w_avg_samples,
        device=args.device,
        progress=clock,
    )
    sync(args.device)
    return clock.rate(args.warmup)


def encoder_available():
    try:
        from latentlab.inversion.encoder import HierarchicalEncoder  # noqa: F401
    except ImportError as e:
        print(f"encoder: skipped ({e})")
        return False
    return True


def encoder_rate(G, args):
    from latentlab.inversion.encoder import HierarchicalEncoder

    torch.manual_seed(0)
    enc = HierarchicalEncoder.for_generator(G, depth=args.encoder_depth, w_avg_samples=args.w_avg_samples)
    enc = enc.eval().requires_grad_(False).to(args.device)
    x = torch.rand(args.gen_batch, G.img_channels, G.img_resolution, G.img_resolution, device=args.device) * 2 - 1
    with torch.no_grad():
        sec = timed(lambda: enc(x), args.iters, 1, args.device)
    return args.gen_batch / sec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", nargs="+", choices=["toyfaces", *sorted(CONFIGS)], default=["toyfaces", "res256"])
    ap.add_argument("--spaces", default="w,w+,s", help="comma-separated projection spaces")
    ap.add_argument("--batches", default="1,4", help="comma-separated projection batch sizes")
    ap.add_argument("--steps", type=int, default=6, help="projector steps per run (the first --warmup not counted)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--w-avg-samples", type=int, default=1000, help="z for w_avg/w_std (setup, not timed)")
    ap.add_argument("--gen-batch", type=int, default=4, help="batch of plain generation and of the encoder")
    ap.add_argument("--iters", type=int, default=5, help="timed calls of plain generation and of the encoder")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of every row; the best is reported")
    ap.add_argument(
        "--encoder", action="store_true", help="also time the GH-Feat encoder (latentlab.inversion.encoder)"
    )
    ap.add_argument("--encoder-depth", type=int, default=50, help="ResNet depth of the encoder")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_run_args(ap)
    args = ap.parse_args()
    apply_run_args(args)
    spaces = args.spaces.split(",")
    batches = [int(b) for b in args.batches.split(",")]

    info = dict(
        device=args.device,
        threads=torch.get_num_threads(),
        cpu=platform.processor() or platform.machine(),
        torch=torch.__version__,
        steps=args.steps,
        warmup=args.warmup,
        rounds=args.rounds,
    )
    print(info)
    for config in args.config:
        G = load(config, args.device)
        z = torch.randn(args.gen_batch, G.z_dim, device=args.device)

        def generate():
            with torch.no_grad():
                return args.gen_batch / timed(lambda: G(z, None, noise_mode="const"), args.iters, 1, args.device)

        cases = [("generate", args.gen_batch, generate, False)]
        for space in spaces:
            for batch in batches:
                fn = lambda space=space, batch=batch: projector_rate(G, space, batch, args)  # noqa: E731
                cases.append((f"project {space}", batch, fn, True))
        if args.encoder and encoder_available():
            cases.append(
                (f"encoder (depth {args.encoder_depth})", args.gen_batch, lambda: encoder_rate(G, args), False)
            )
        best = [0.0] * len(cases)
        for _ in range(args.rounds):  # interleaved rounds, best kept: other load skews every row alike and little
            for k, (_, _, fn, _) in enumerate(cases):
                best[k] = max(best[k], fn())
        plain = best[0]
        rows = []
        for (run, batch, _, stepwise), rate in zip(cases, best):
            steps_per_s = rate if stepwise else None
            img = rate * batch if stepwise else rate
            rows.append(dict(config=config, run=run, batch=batch, steps_per_s=steps_per_s, img_per_s=img))
        print(f"\n{config} ({G.img_resolution} px, w {G.w_dim}, {G.num_ws} ws)")
        print(f"{'run':<22} {'batch':>5} {'steps/s':>9} {'images/s':>9} {'vs generate':>12} {'1000 steps':>11}")
        for r in rows:
            steps = "" if r["steps_per_s"] is None else f"{r['steps_per_s']:9.3f}"
            full = "" if r["steps_per_s"] is None else f"{1000 / r['steps_per_s']:9.0f} s"
            print(
                f"{r['run']:<22} {r['batch']:>5} {steps:>9} {r['img_per_s']:9.2f} {r['img_per_s'] / plain:11.4f}x {full:>11}"
            )
        append_jsonl(args.json, info, rows)


if __name__ == "__main__":
    main()
