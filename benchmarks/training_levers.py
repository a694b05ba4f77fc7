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
'winograd': the same shapes' forward and both gradients through oneDNN (channels-last) and as Winograd
convolutions F(2x2, 3x3) and F(4x4, 3x3) written with torch ops (tiles by `unfold`, the transforms as matmuls
with Kronecker products of the transform matrices, one batched matmul per tile position; autograd supplies the
gradients): milliseconds per call and the forward's largest error relative to float64. The last column is the
floor of any F(4x4, 3x3) implementation, however well fused: its three batched matmuls alone (forward, input
gradient, weight gradient), with the tile transforms taken as free.
'profile': where the full StyleGAN2 step's time goes (--iters x 16 steps of `Trainer.train_step`, so the lazy
regularisers are in at their rates): the convolutions (forward, backward, double backward; each call timed alone)
split into the 3x3 stride-1 ones a Winograd convolution could take and the rest (strided, transposed, 1x1,
depthwise filters), and everything else (the plain step's time less the convolutions').

Examples:
    python benchmarks/training_levers.py --rows compile --config toy64 --batch 16 --threads 2
    python benchmarks/training_levers.py --rows loader --data /work/toy/data/images --batch 16
    python benchmarks/training_levers.py --rows convs --batch 16 --threads 1
    python benchmarks/training_levers.py --rows winograd --batch 16 --threads 2 --iters 10
    python benchmarks/training_levers.py --rows profile --config toy64 --batch 16 --threads 2 --iters 1
"""

import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.training_throughput import CONFIGS, image_folder, trainer  # noqa: E402
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


def _conv3x3(x, w):
    return F.conv2d(x, w, padding=1)


def _im2col_conv3x3(x, w):
    n, _, h, wd = x.shape
    return (w.reshape(w.shape[0], -1) @ F.unfold(x, 3, padding=1)).reshape(n, -1, h, wd)


def _fwd_bwd(conv, x, w, gy):
    """conv(x, w) and its input and weight gradients for the output gradient gy, as a training step runs them."""
    x, w = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
    torch.autograd.grad(conv(x, w), [x, w], gy)


def conv_rows(batch, iters):
    a = torch.randn(2048, 2048)
    t = best_of(lambda: a @ a, iters)
    print(f"dense matmul 2048^2: {2 * 2048**3 / t / 1e9:.0f} GFLOP/s ({torch.get_num_threads()} threads)")
    print("| shape (batch, in -> out, px, 3x3) | oneDNN | oneDNN channels-last | im2col + matmul |")
    print("| --- | --- | --- | --- |")
    for cin, cout, res in CONV_SHAPES:
        x, w, gy = torch.randn(batch, cin, res, res), torch.randn(cout, cin, 3, 3), torch.ones(batch, cout, res, res)
        flops = 3 * 2 * batch * cout * cin * 9 * res * res  # forward + input gradient + weight gradient
        variants = [
            (_conv3x3, x),
            (_conv3x3, x.contiguous(memory_format=torch.channels_last)),
            (_im2col_conv3x3, x),
        ]
        rates = [flops / best_of(lambda v=v: _fwd_bwd(v[0], v[1], w, gy), iters) / 1e9 for v in variants]
        print(f"| {batch}, {cin} -> {cout}, {res} px | " + " | ".join(f"{r:.0f} GFLOP/s" for r in rates) + " |")


# Winograd F(m x m, 3 x 3) transforms (Lavin & Gray 2016): output tile = A^T [(G g G^T) * (B^T d B)] A for an
# (m + 2)^2 input tile d; F(2, 3) interpolates at 0, +-1, F(4, 3) at 0, +-1, +-2 (both with the point at infinity).
_WINOGRAD = {
    2: (
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    4: (
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
}


def winograd_conv3x3(m):
    """A 3x3, padding-1 convolution as Winograd F(m x m, 3 x 3) in torch ops (differentiable by autograd)."""
    bt, g, at = (torch.tensor(v, dtype=torch.float64) for v in _WINOGRAD[m])
    # Flattened 2-D transforms: (row-major tile) @ kron(M, M)^T applies M on both axes at once.
    kb, kg, ka = (torch.kron(v, v).T.float().contiguous() for v in (bt, g, at))
    a = m + 2

    def conv(x, w):
        n, c, h, wd = x.shape
        th, tw = -(-h // m), -(-wd // m)
        d = F.pad(x, (1, tw * m + 1 - wd, 1, th * m + 1 - h)).unfold(2, a, m).unfold(3, a, m)  # N C th tw a a
        v = (d.permute(0, 2, 3, 1, 4, 5).reshape(n * th * tw, c, a * a) @ kb).permute(2, 0, 1)  # a^2, tiles, C
        u = (w.reshape(w.shape[0], c, 9) @ kg).permute(2, 1, 0)  # a^2, C, O
        y = torch.bmm(v, u).permute(1, 2, 0) @ ka  # tiles, O, m^2
        y = y.reshape(n, th, tw, -1, m, m).permute(0, 3, 1, 4, 2, 5).reshape(n, -1, th * m, tw * m)
        return y[:, :, :h, :wd]

    return conv


def winograd_rows(batch, iters):
    print(f"ms per forward + input and weight gradients ({torch.get_num_threads()} threads); error: forward vs float64")
    print(
        "| shape (batch, in -> out, px) | oneDNN channels-last | F(2x2,3x3) | error | F(4x4,3x3) | error "
        "| F(4x4,3x3) batched matmuls only |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    torch.manual_seed(0)
    for cin, cout, res in CONV_SHAPES:
        x, w, gy = torch.randn(batch, cin, res, res), torch.randn(cout, cin, 3, 3), torch.randn(batch, cout, res, res)
        ref = _conv3x3(x.double(), w.double())
        xl, gyl = (t.contiguous(memory_format=torch.channels_last) for t in (x, gy))
        cells = [f"{best_of(lambda: _fwd_bwd(_conv3x3, xl, w, gyl), iters) * 1e3:.1f}"]
        for m in (2, 4):
            conv = winograd_conv3x3(m)
            err = ((conv(x, w).double() - ref).abs().max() / ref.abs().max()).item()
            cells += [f"{best_of(lambda c=conv: _fwd_bwd(c, x, w, gy), iters) * 1e3:.1f}", f"{err:.1e}"]
        tiles = batch * (-(-res // 4)) ** 2
        v, u, dm = torch.randn(36, tiles, cin), torch.randn(36, cin, cout), torch.randn(36, tiles, cout)

        def gemms(v=v, u=u, dm=dm):  # forward, input gradient, weight gradient
            torch.bmm(v, u), torch.bmm(dm, u.transpose(1, 2)), torch.bmm(v.transpose(1, 2), dm)

        cells.append(f"{best_of(gemms, iters) * 1e3:.1f}")
        print(f"| {batch}, {cin} -> {cout}, {res} px | " + " | ".join(cells) + " |")


class _ConvTimer(torch.utils._python_dispatch.TorchDispatchMode):
    """Wall time of every convolution the dispatcher runs (forward, backward, and those inside double backward),
    split into 3x3 stride-1 convolutions and the rest. Only the convolution calls themselves are timed, so the
    mode's own per-op overhead does not enter the sums (the profiler's did: it doubled the small ops' share)."""

    def __init__(self):
        super().__init__()
        self.seconds = {"3x3 stride 1": 0.0, "other": 0.0}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func not in (torch.ops.aten.convolution.default, torch.ops.aten.convolution_backward.default):
            return func(*args, **(kwargs or {}))
        # convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups);
        # convolution_backward(grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed, ...).
        backward = func is torch.ops.aten.convolution_backward.default
        w, stride, transposed, groups = (
            (args[2], args[4], args[7], args[9]) if backward else (args[1], args[3], args[6], args[8])
        )
        kind = (
            "3x3 stride 1"
            if tuple(w.shape[2:]) == (3, 3) and list(stride) == [1, 1] and not transposed and groups == 1
            else "other"
        )
        t = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        self.seconds[kind] += time.perf_counter() - t
        return out


def profile_rows(config, batch, iters):
    tr = trainer(config, batch, "cpu")
    steps = 16 * iters  # whole cycles of the lazy regularisers
    for _ in range(2):
        tr.train_step()
    t = time.perf_counter()
    for _ in range(steps):
        tr.train_step()
    total = (time.perf_counter() - t) / steps
    timer = _ConvTimer()
    with timer:
        for _ in range(steps):
            tr.train_step()
    w3, other = (timer.seconds[k] / steps for k in ("3x3 stride 1", "other"))
    print(f"{config}, batch {batch}, {torch.get_num_threads()} threads: {total:.3f} s per step")
    print(
        f"  3x3 stride-1 convolutions {w3:.3f} s, other convolutions {other:.3f} s, "
        f"everything else {total - w3 - other:.3f} s"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--rows", default="compile,loader", help="compile, loader, convs, winograd, profile (comma-separated)"
    )
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
    if "winograd" in rows:
        winograd_rows(args.batch, args.iters)
    if "profile" in rows:
        profile_rows(args.config, args.batch, args.iters)


if __name__ == "__main__":
    main()
