"""Training throughput (steps/s and images/s) of the StyleGAN2 loop, with and without HSR, and the cluster trainer.

Examples:
    python benchmarks/training_throughput.py --config toy64 --batch 16 --iters 10
    python benchmarks/training_throughput.py --config res64 --batch 16 --iters 3 --rows gan
    python benchmarks/training_throughput.py --config toy64 --device cuda --iters 50
    python benchmarks/training_throughput.py --config toy64 --rows gan,ada-bgc,ada-bgcfnc,augment \
        --official ~/stylegan2-ada-pytorch
    python benchmarks/training_throughput.py --config toy64 --rows side-by-side --iters 16 --rounds 3 \
        --official ~/stylegan2-ada-pytorch

Rows: 'gan' (one full step: G main, lazy path length, D main, lazy R1, EMA, averaged over a
multiple of the regularisation intervals), 'hsr-resnet18' / 'hsr-vit' (the same step plus HSR with
a random ResNet-18 or ViT-S/16 F, the latter at the paper's 224 px), 'clusters' (one mapping step of
the learned cluster trainer with 5 critic steps, per level), 'ada-PIPE' (the 'gan' step with D's images
augmented by pipeline PIPE at fixed p = 0.5; the cost hardly depends on p > 0), 'augment' (the pipeline alone,
bgc, forward and backward on one batch; with --official PATH also NVIDIA's AugmentPipe from that
stylegan2-ada-pytorch checkout, in the same process), 'side-by-side' (the 'gan' step and NVIDIA's training
iteration, `benchmarks/official_training.py`, on the same weights and settings, both fed by the same in-process
image loader, in alternating rounds of --iters steps; the official loop must be given with --official; each
row also reports the step's floating-point operations, counted once with torch's FlopCounterMode, and the
rate they run at). Synthetic images.
"""

import argparse
import os
import platform
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.generator_throughput import add_run_args, append_jsonl, apply_run_args, timed  # noqa: E402
from latentlab.train import ImageDataset, Trainer, TrainingOptions, scratch_networks  # noqa: E402

CONFIGS = {  # (resolution, scratch_networks kwargs)
    "toy64": (64, dict(z_dim=128, w_dim=128, map_layers=4, channel_base=2048, channel_max=64)),  # the toyfaces model
    "res32": (32, dict(z_dim=512, w_dim=512, map_layers=2, channel_base=16384, channel_max=512)),
    "res64": (64, dict(z_dim=512, w_dim=512, map_layers=2, channel_base=16384, channel_max=512)),
    "res256": (256, dict(z_dim=512, w_dim=512, map_layers=8, channel_base=16384, channel_max=512)),  # paper256
}


def image_folder(resolution, n=64):
    folder = tempfile.mkdtemp(prefix="bench-train-")
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)).save(f"{folder}/{i:03d}.png")
    return folder


def trainer(config, batch, device, regularizer=None, augpipe=None):
    res, kw = CONFIGS[config]
    G, D = scratch_networks(res, fp16=device.startswith("cuda"), **kw)
    ds = ImageDataset(image_folder(res), res)
    aug = dict(aug="fixed", aug_p=0.5, augpipe=augpipe) if augpipe else {}
    opts = TrainingOptions(batch_size=batch, snapshot_every=10**9, log_every=10**9, **aug)
    tr = Trainer(
        tempfile.mkdtemp(prefix="bench-run-"), G, D, ds, opts, regularizer=regularizer, device=device, progress=False
    )
    return tr


def matmul_rate(device, n=2048, iters=5):
    """GFLOP/s of a square float32 matmul: what this machine's cores sustain on the densest kernel there is."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2 * n**3 / timed(lambda: a @ b, iters, 1, device) / 1e9


def step_flops(step):
    """Floating-point operations of one call of `step`: every op torch's flop counter knows (convolutions and
    matmuls, forward, backward and the double-backward of the lazy regularisers), counted at dispatch (torch's
    FlopCounterMode itself tracks modules with hooks that autograd.grad on leaf inputs does not allow)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class Count(TorchDispatchMode):
        table = FlopCounterMode(display=False).flop_registry
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            count = self.table.get(func._overloadpacket)
            if count is not None:
                self.total += count(*args, **kwargs, out_val=out)
            return out

    with Count() as counter:
        step()
    return counter.total


def side_by_side(config, batch, device, official, iters, rounds, count_flops=True):
    """Rows 'gan' and 'gan-official': alternating rounds of `iters` steps, the best round of each."""
    from benchmarks.official_training import OfficialIteration
    from latentlab.train.dataset import load_batch

    tr = trainer(config, batch, device)
    off = OfficialIteration(
        official, tr.G.init_kwargs, tr.D.init_kwargs, tr.G.state_dict(), tr.D.state_dict(), tr.options, device
    )
    position = [0]

    def official_step():
        real, real_c = load_batch(tr.dataset, tr.sampler, position[0], batch, device=device)
        position[0] += batch
        off(real, real_c)

    steps = {"gan": tr.train_step, "gan-official": official_step}
    # One whole lazy cycle (16 steps: both regularisers run) per count, divided back to a mean step.
    flops = {name: float("nan") for name in steps}
    for name, fn in steps.items() if count_flops else ():
        flops[name] = sum(step_flops(fn) for _ in range(16)) / 16
    best = {name: float("inf") for name in steps}
    for _ in range(rounds):
        for name, fn in steps.items():
            best[name] = min(best[name], timed(fn, iters, 1, device))
    return [
        dict(row=name, sec_per_step=sec, steps_per_s=1 / sec, img_per_s=batch / sec, gflop_per_step=flops[name] / 1e9,
             gflop_per_s=flops[name] / 1e9 / sec)
        for name, sec in best.items()
    ]  # fmt: skip


def hsr_term(G, kind):
    from latentlab.train.extractors import make_extractor
    from latentlab.train.hsr import HSRTerm

    if kind == "resnet18":
        F = make_extractor("torchvision:resnet18", weights="none", layers=["layer1", "layer2", "layer3", "layer4"])
    else:
        F = make_extractor("vit_small_patch16_224.dino", weights="none")
    return HSRTerm.for_generator(G, weight=1.0, warmup_kimg=0, extractor=F, gen_resolutions="auto")


def augment_pipes(official, device):
    """('latentlab', our bgc pipe) and, with a checkout path, ('official', NVIDIA's), both at p = 0.5."""
    from latentlab.train.augment import PRESETS, AugmentPipe

    pipes = [("latentlab", AugmentPipe.from_preset("bgc"))]
    if official:
        sys.path.insert(0, official)
        from training.augment import AugmentPipe as OfficialPipe

        pipes.append(("official", OfficialPipe(**PRESETS["bgc"])))
    for _, pipe in pipes:
        pipe.to(device).p.fill_(0.5)
    return pipes


def augment_step(pipe, batch, res, device):
    """One batch through the pipeline and back (the generator's gradient path)."""
    x = torch.randn([batch, 3, res, res], device=device, requires_grad=True)
    pipe(x).square().sum().backward()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="toy64")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=16, help="timed steps (use multiples of 16: the lazy R1 interval)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rows", default="gan,hsr-resnet18,hsr-vit,clusters")
    ap.add_argument("--official", default=None, help="stylegan2-ada-pytorch checkout (rows 'augment', 'side-by-side')")
    ap.add_argument("--rounds", type=int, default=3, help="side-by-side: alternating rounds (the best of each)")
    ap.add_argument("--no-flops", dest="flops", action="store_false", help="side-by-side: skip the FLOP count")
    add_run_args(ap)
    args = ap.parse_args()
    apply_run_args(args)
    iters = args.iters
    rows = []
    info = dict(
        config=args.config,
        batch=args.batch,
        device=args.device,
        threads=torch.get_num_threads(),
        machine=platform.processor() or platform.machine(),
        torch=torch.__version__,
    )
    for row in args.rows.split(","):
        if row == "gan" or row.startswith("hsr-"):
            tr = trainer(args.config, args.batch, args.device)
            if row.startswith("hsr-"):
                term = hsr_term(tr.G, row[4:])
                tr = trainer(args.config, args.batch, args.device, regularizer=term)
            sec = timed(tr.train_step, iters, 2, args.device)
            rows.append(dict(row=row, sec_per_step=sec, steps_per_s=1 / sec, img_per_s=args.batch / sec))
        elif row.startswith("ada-"):
            tr = trainer(args.config, args.batch, args.device, augpipe=row[4:])
            sec = timed(tr.train_step, iters, 2, args.device)
            rows.append(dict(row=row, sec_per_step=sec, steps_per_s=1 / sec, img_per_s=args.batch / sec))
        elif row == "side-by-side":
            if not args.official:
                raise SystemExit("the side-by-side row needs --official PATH (a stylegan2-ada-pytorch checkout)")
            pair = side_by_side(args.config, args.batch, args.device, args.official, iters, args.rounds, args.flops)
            for r in pair:
                print(
                    f"{args.config:6s} {r['row']:14s} {r['sec_per_step']:8.3f} s/step {r['img_per_s']:7.1f} img/s "
                    f"{r['gflop_per_step']:7.2f} GFLOP/step {r['gflop_per_s']:6.1f} GFLOP/s",
                    flush=True,
                )
            ratio = pair[1]["sec_per_step"] / pair[0]["sec_per_step"]
            info["matmul_gflop_per_s"] = matmul_rate(args.device)
            print(f"{args.config:6s} official / latentlab step time: {ratio:.2f}x; a 2048^2 float32 matmul runs at "
                  f"{info['matmul_gflop_per_s']:.1f} GFLOP/s here", flush=True)  # fmt: skip
            rows += pair
            continue
        elif row == "augment":
            res = CONFIGS[args.config][0]
            for name, pipe in augment_pipes(args.official, args.device):
                sec = timed(lambda pipe=pipe: augment_step(pipe, args.batch, res, args.device), iters, 2, args.device)
                rows.append(
                    dict(row=f"augment-{name}", sec_per_step=sec, steps_per_s=1 / sec, img_per_s=args.batch / sec)
                )
                r = rows[-1]
                print(f"{args.config:6s} {r['row']:16s} {sec:8.4f} s/batch {r['img_per_s']:7.1f} img/s", flush=True)
            continue
        elif row == "clusters":
            from latentlab.train.clusters import ClusterMappingTrainer

            res, kw = CONFIGS[args.config]
            G, _ = scratch_networks(res, **kw)
            ct = ClusterMappingTrainer(G.to(args.device), k=8, batch_size=64, device=args.device)
            sec = timed(ct.step, max(iters // 4, 4), 1, args.device)
            rows.append(dict(row=row, sec_per_step=sec, steps_per_s=1 / sec, img_per_s=float("nan")))
        else:
            raise SystemExit(f"unknown row {row!r}")
        r = rows[-1]
        print(
            f"{args.config:6s} {r['row']:14s} {r['sec_per_step']:8.3f} s/step {r['steps_per_s']:7.2f} steps/s "
            f"{r['img_per_s']:7.1f} img/s",
            flush=True,
        )
    append_jsonl(args.json, info, rows)


if __name__ == "__main__":
    main()
