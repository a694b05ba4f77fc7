"""Levers for the CPU training step that were measured and not taken (BENCHMARKS.md, issue 21).

'compile': the two main phases of the StyleGAN2 step (D main: D on fakes and reals, softplus losses, backward
to D's weights; G main: G(z), D frozen, backward to G's weights) in eager mode and under `torch.compile`
(inductor, default mode), on the same weights and batch: time per phase (best of --iters after two warm-up calls),
the first calls' compile time, and how far the compiled gradients are from the eager ones (largest relative
difference over the parameters). The lazy regularisers are left out: they need double backward, which compiled
graphs do not support.
'loader': the training loop's `load_batch` (PNG decoding, the epoch permutation, stacking) for one batch, the only
data work on the step's critical path.
'convs': the rate (GFLOP/s) of the toy64 networks' 3x3 convolution shapes, forward and both gradients (input
and weight) as a training step runs them, through oneDNN (`F.conv2d`, contiguous and channels-last inputs) and
as im2col + one matmul (`F.unfold`), next to a dense 2048^2 matmul on the same threads: how far the kernels
the step spends most of its time in are from the machine's matmul rate.

Examples:
    python benchmarks/training_levers.py --rows compile --config toy64 --batch 16 --threads 2
    python benchmarks/training_levers.py --rows loader --data /work/toy/data/images --batch 16
    python benchmarks/training_levers.py --rows convs --batch 16 --threads 1
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


CONV_SHAPES = [  # (in channels, out channels, resolution): toy64's 3x3 convolutions (G and D)
    (64, 64, 8),
    (64, 64, 16),
    (64, 64, 32),
    (64, 32, 64),
    (32, 32, 64),
]


def _conv_step(x, w, im2col):
    x, w = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
    if im2col:
        n, _, h, wd = x.shape
        y = (w.reshape(w.shape[0], -1) @ F.unfold(x, w.shape[-1], padding=w.shape[-1] // 2)).reshape(n, -1, h, wd)
    else:
        y = F.conv2d(x, w, padding=w.shape[-1] // 2)
    y.backward(torch.ones_like(y))  # input and weight gradients, as the step's backward pass


def conv_rows(batch, iters):
    a = torch.randn(2048, 2048)
    t = best_of(lambda: a @ a, iters)
    print(f"dense matmul 2048^2: {2 * 2048**3 / t / 1e9:.0f} GFLOP/s ({torch.get_num_threads()} threads)")
    print("| shape (batch, in -> out, px, 3x3) | oneDNN | oneDNN channels-last | im2col + matmul |")
    print("| --- | --- | --- | --- |")
    for cin, cout, res in CONV_SHAPES:
        x, w = torch.randn(batch, cin, res, res), torch.randn(cout, cin, 3, 3)
        flops = 3 * 2 * batch * cout * cin * 9 * res * res  # forward + input gradient + weight gradient
        variants = [
            (x, False),
            (x.contiguous(memory_format=torch.channels_last), False),
            (x, True),
        ]
        rates = [flops / best_of(lambda v=v: _conv_step(v[0], w, v[1]), iters) / 1e9 for v in variants]
        print(f"| {batch}, {cin} -> {cout}, {res} px | " + " | ".join(f"{r:.0f} GFLOP/s" for r in rates) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="compile,loader", help="compile, loader, convs (comma-separated)")
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
    if "convs" in rows:
        conv_rows(args.batch, args.iters)


if __name__ == "__main__":
    main()
