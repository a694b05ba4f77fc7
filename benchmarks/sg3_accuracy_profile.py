"""StyleGAN3 synthesis on one device: each path's distance from a float64 evaluation, and where the time goes.

    python benchmarks/sg3_accuracy_profile.py --config sg3t-256 --batch 8 --device cuda

Paths: latentlab's reference ops and (on a GPU) its CUDA kernels, in float32 (force_fp32: the float16 layers of the
default num_fp16_res=4 would swamp the comparison), TF32 off; the truth is the same generator in float64 through the
reference ops. Then one float32 batch through the default path under
torch.profiler, printing the ten kernels (or CPU ops) that take the most time.
"""

import argparse
import copy
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.generator_throughput import CONFIGS, synthetic_generator  # noqa: E402


def run(G, z, c, ops, force_fp32=False):
    os.environ["LATENTLAB_OPS"] = ops  # read at every op call: "ref" forces the reference path
    with torch.no_grad():
        return G(z, c, noise_mode="const", force_fp32=force_fp32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(c for c in CONFIGS if c.startswith("sg3")), default="sg3t-256")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    G = synthetic_generator(args.config, args.device)
    z = torch.randn([args.batch, G.z_dim], generator=torch.Generator().manual_seed(1)).to(args.device)
    c = torch.zeros([args.batch, G.c_dim], device=args.device)
    truth = run(copy.deepcopy(G).double(), z.double(), c.double(), "ref", force_fp32=True)
    scale = float(truth.abs().max())
    paths = ["ref"] + (["cuda"] if args.device.startswith("cuda") else [])
    for ops in paths:
        y = run(G, z, c, "" if ops == "cuda" else "ref", force_fp32=True).double()
        err = (y - truth).abs()
        print(f"{args.config} {ops:5s} float32: max |y - y64| {float(err.max()):.2e}, mean {float(err.mean()):.2e} "
              f"(max |y64| {scale:.3g})", flush=True)  # fmt: skip
    run(G, z, c, "")  # warm-up of the default path (float16 layers on a GPU)
    acts = [torch.profiler.ProfilerActivity.CPU] + (
        [torch.profiler.ProfilerActivity.CUDA] if args.device.startswith("cuda") else []
    )
    with torch.profiler.profile(activities=acts) as prof:
        run(G, z, c, "")
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
    key = "cuda_time_total" if args.device.startswith("cuda") else "cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=10, max_name_column_width=60), flush=True)


if __name__ == "__main__":
    main()
