"""Two levers for the CPU training step that were measured and not taken (BENCHMARKS.md, issue 21).

'compile': the two main phases of the StyleGAN2 step (D main: D on fakes and reals, softplus losses, backward
to D's weights; G main: G(z), D frozen, backward to G's weights) in eager mode and under `torch.compile`
(inductor, default mode), on the same weights and batch: time per phase (best of --iters after two warm-up calls),
the first calls' compile time, and how far the compiled gradients are from the eager ones (largest relative
difference over the parameters). The lazy regularisers are left out: they need double backward, which compiled
graphs do not support.
'loader': the training loop's `load_batch` (PNG decoding, the epoch permutation, stacking) for one batch, the only
data work on the step's critical path.

Examples:
    python benchmarks/training_levers.py --rows compile --config toy64 --batch 16 --threads 2
    python benchmarks/training_levers.py --rows loader --data /work/toy/data/images --batch 16
"""

import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.training_throughput import CONFIGS, image_folder  # noqa: E402
from latentlab.train import ImageDataset, scratch_networks  # noqa: E402
from latentlab.train.dataset import PositionSampler, load_batch  # noqa: E402


def best_of(f, iters):
    f(), f()  # warm-up (the compiled versions compile here)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def phases(G, D, batch, res, z_dim):
    """(D main, G main) closures over fixed inputs; each returns its loss and its networks' gradients."""
    g = torch.Generator().manual_seed(0)
    real, z = torch.randn(batch, 3, res, res, generator=g), torch.randn(batch, z_dim, generator=g)
    fake, c = torch.randn(batch, 3, res, res, generator=g), torch.zeros(batch, 0)

    def grads(net):
        return [p.grad.clone() for p in net.parameters() if p.grad is not None]

    def d_main(Dm):
        D.zero_grad(set_to_none=True)
        loss = F.softplus(Dm(fake, c)).mean() + F.softplus(-Dm(real, c)).mean()
        loss.backward()
        return loss.detach(), grads(D)

    def g_main(Gm, Dm):
        G.zero_grad(set_to_none=True)
        D.requires_grad_(False)
        loss = F.softplus(-Dm(Gm(z, c), c)).mean()
        loss.backward()
        D.requires_grad_(True)
        return loss.detach(), grads(G)

    return d_main, g_main


def largest_relative_difference(a, b):
    return max(((x - y).norm() / y.norm().clamp_min(1e-30)).item() for x, y in zip(a, b))


def compile_rows(config, batch, iters):
    res, kw = CONFIGS[config]
    G, D = scratch_networks(res, **kw)
    d_main, g_main = phases(G, D, batch, res, kw["z_dim"])
    eager = {"D main": lambda: d_main(D), "G main": lambda: g_main(G, D)}
    ref = {k: f() for k, f in eager.items()}
    t_eager = {k: best_of(f, iters) for k, f in eager.items()}
    Dc, Gc = torch.compile(D), torch.compile(G)
    compiled = {"D main": lambda: d_main(Dc), "G main": lambda: g_main(Gc, Dc)}
    start = time.perf_counter()
    got = {k: f() for k, f in compiled.items()}
    compile_s = time.perf_counter() - start
    t_compiled = {k: best_of(f, iters) for k, f in compiled.items()}
    print(f"{config}, batch {batch}, {torch.get_num_threads()} threads; compile (first calls): {compile_s:.0f} s")
    print("| phase | eager ms | compiled ms | eager / compiled | largest relative gradient difference |")
    print("| --- | --- | --- | --- | --- |")
    for k in eager:
        diff = largest_relative_difference(got[k][1], ref[k][1])
        print(
            f"| {k} | {t_eager[k] * 1e3:.0f} | {t_compiled[k] * 1e3:.0f} | {t_eager[k] / t_compiled[k]:.2f}x "
            f"| {diff:.1e} |"
        )


def loader_row(data, resolution, batch, iters):
    ds = ImageDataset(data or image_folder(resolution), resolution)
    sampler = PositionSampler(ds.num_images, seed=0)
    position = [0]

    def one():
        load_batch(ds, sampler, position[0], batch)
        position[0] += batch

    t = best_of(one, iters)
    print(f"load_batch: {t * 1e3:.1f} ms per batch of {batch} ({ds.num_images} images, {ds.resolution} px)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="compile,loader", help="compile, loader (comma-separated)")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="toy64")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--data", default=None, help="image folder for 'loader' (default: 64 synthetic PNGs)")
    ap.add_argument("--resolution", type=int, default=64, help="the images' resolution for 'loader'")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = args.rows.split(",")
    if "compile" in rows:
        compile_rows(args.config, args.batch, args.iters)
    if "loader" in rows:
        loader_row(args.data, args.resolution, args.batch, max(args.iters, 20))


if __name__ == "__main__":
    main()
