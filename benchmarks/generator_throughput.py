"""Generator throughput (images/s) for a checkpoint or a synthetic config, per ops path.

Examples:
    python benchmarks/generator_throughput.py --model ffhq.pkl --batch 8
    python benchmarks/generator_throughput.py --config res256 --batch 4 --iters 5
    python benchmarks/generator_throughput.py --config res256 --official ~/stylegan2-ada-pytorch
    python benchmarks/generator_throughput.py --config sg3t-256 --official ~/stylegan3

--official PATH times NVIDIA's own networks (from your checkout of
stylegan2-ada-pytorch or stylegan3) on the very same weights, side by side.
"""

import argparse
import json
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import latentlab  # noqa: E402

CONFIGS = {  # synthetic generators with random weights, sized like real ones
    "res64": dict(
        z_dim=512,
        c_dim=0,
        w_dim=512,
        img_resolution=64,
        img_channels=3,
        synthesis_kwargs=dict(channel_base=16384, channel_max=512),
    ),
    "res256": dict(
        z_dim=512,
        c_dim=0,
        w_dim=512,
        img_resolution=256,
        img_channels=3,
        synthesis_kwargs=dict(channel_base=16384, channel_max=512),
    ),
    "res1024": dict(
        z_dim=512,
        c_dim=0,
        w_dim=512,
        img_resolution=1024,
        img_channels=3,
        synthesis_kwargs=dict(channel_base=32768, channel_max=512),
    ),
    # StyleGAN3 at 256 px as NVIDIA trained FFHQ-U 256 (train.py --cbase=16384; R doubles cbase and cmax)
    "sg3t-256": dict(
        z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3, channel_base=16384, channel_max=512
    ),
    "sg3r-256": dict(
        z_dim=512,
        c_dim=0,
        w_dim=512,
        img_resolution=256,
        img_channels=3,
        channel_base=32768,
        channel_max=1024,
        conv_kernel=1,
        use_radial_filters=True,
    ),  # fmt: skip
}


def add_run_args(ap):
    """--threads and --json, shared by every benchmark script."""
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--json", help="append results as JSON lines to this file")


def apply_run_args(args):
    if args.threads:
        torch.set_num_threads(args.threads)


def synthetic_generator(config, device="cpu"):
    """A random generator of one of CONFIGS, seeded so every script times the same weights."""
    torch.manual_seed(0)
    if config.startswith("sg3"):
        from latentlab.models.stylegan3 import StyleGAN3Generator

        return StyleGAN3Generator(**CONFIGS[config]).eval().requires_grad_(False).to(device)
    return latentlab.Generator(**CONFIGS[config]).eval().requires_grad_(False).to(device)


def append_jsonl(path, info, rows):
    """Append one JSON line per result row (merged with the run info) to `path`, if given."""
    if path:
        with open(path, "a") as f:
            for r in rows:
                f.write(json.dumps({**info, **r}) + "\n")


def timed(fn, iters, warmup, device):
    for _ in range(warmup):
        fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters


def official_generator(repo, G):
    """NVIDIA's Generator built from their source tree, loaded with our weights."""
    from benchmarks.official_training import import_official

    import_official(repo)
    if getattr(G, "generation", 2) == 3:
        from training.networks_stylegan3 import Generator as Official3

        net3 = Official3(**G.init_kwargs)
        net3.load_state_dict(G.state_dict())
        return net3.eval().requires_grad_(False)
    try:
        from training.networks import Generator as Official  # stylegan2-ada-pytorch
    except ImportError:
        from training.networks_stylegan2 import Generator as Official  # stylegan3
    kw = dict(G.init_kwargs)
    net = (
        Official(**{k: v for k, v in kw.items() if k != "synthesis_kwargs"}, synthesis_kwargs=kw["synthesis_kwargs"])
        if "synthesis_kwargs" in Official.__init__.__code__.co_varnames
        else Official(**kw)
    )
    net.load_state_dict(G.state_dict())
    return net.eval().requires_grad_(False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="checkpoint to load")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="res256")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--official", help="path to a stylegan2-ada-pytorch / stylegan3 checkout to time side by side")
    add_run_args(ap)
    args = ap.parse_args()
    apply_run_args(args)

    if args.model:
        G = latentlab.load_generator(args.model)
        name = os.path.basename(args.model)
    else:
        G = synthetic_generator(args.config)
        name = args.config
    G = G.to(args.device)
    z = torch.randn([args.batch, G.z_dim], device=args.device)
    c = torch.zeros([args.batch, G.c_dim], device=args.device)

    runs = [("ref", dict(), "ref fused=auto")]
    runs += [("ref", dict(fused_modconv=True), "ref fused"), ("ref", dict(fused_modconv=False), "ref non-fused")]
    if args.device.startswith("cuda"):
        runs.append(("cuda", dict(), "cuda kernels"))
    results = []
    with torch.no_grad():
        for impl, kw, label in runs:
            os.environ["LATENTLAB_OPS"] = "ref" if impl == "ref" else ""
            sec = timed(lambda: G(z, c, noise_mode="const", **kw), args.iters, args.warmup, args.device)
            results.append(dict(impl=label, sec_per_batch=sec, img_per_s=args.batch / sec))
        if args.official:
            O = official_generator(args.official, G.cpu()).to(args.device)
            G.to(args.device)
            sec = timed(lambda: O(z, c, noise_mode="const"), args.iters, args.warmup, args.device)
            # Compared without TF32 (cuDNN uses it for float32 convolutions by default), as NVIDIA's loops run.
            tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
            diff = float((O(z, c, noise_mode="const") - G(z, c, noise_mode="const")).abs().max())
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
            results.append(dict(impl="official", sec_per_batch=sec, img_per_s=args.batch / sec, max_abs_diff=diff))

    info = dict(
        model=name,
        batch=args.batch,
        device=args.device,
        threads=torch.get_num_threads(),
        cpu=platform.processor() or platform.machine(),
        torch=torch.__version__,
    )
    print(json.dumps(info))
    for r in results:
        diff = f"   max |official - ours| {r['max_abs_diff']:.2g}" if "max_abs_diff" in r else ""
        print(f"{r['impl']:<16} {r['img_per_s']:8.2f} img/s   {r['sec_per_batch'] * 1000:9.1f} ms/batch{diff}")
    append_jsonl(args.json, info, results)


if __name__ == "__main__":
    main()
