"""Edit-sweep throughput next to plain generation: the sweep's cost should be synthesis alone.

python benchmarks/edit_sweep.py --config res64 --seeds 8 --alphas 5 --batch 8
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import latentlab  # noqa: E402
from benchmarks.generator_throughput import CONFIGS, synthetic_generator  # noqa: E402
from latentlab.edits.pipeline import run_edit  # noqa: E402
from latentlab.generate import generate_images  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="res64")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--alphas", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.model:
        G = latentlab.load_generator(args.model, device=args.device)
    else:
        G = synthetic_generator(args.config, args.device)
    n = np.random.RandomState(0).randn(G.w_dim)
    total = args.seeds * args.alphas
    list(generate_images(G, list(range(args.batch)), batch_size=args.batch, device=args.device))  # warm-up

    t0 = time.perf_counter()
    list(generate_images(G, list(range(total)), batch_size=args.batch, device=args.device))
    plain = total / (time.perf_counter() - t0)
    rows = {"plain generation": plain}
    for space, kw in (("w", {}), ("w+", dict(layers="0-3")), ("z", {}), ("s", {})):
        d = n if space != "s" else np.random.RandomState(1).randn(sum(G.synthesis.style_dims.values()))
        if space == "z":
            d = np.random.RandomState(2).randn(G.z_dim)
        t0 = time.perf_counter()
        run_edit(
            G,
            list(range(args.seeds)),
            d,
            f"-2:2:{args.alphas}",
            space=space,
            batch_size=args.batch,
            device=args.device,
            **kw,
        )
        rows[f"edit sweep ({space})"] = total / (time.perf_counter() - t0)
    print(
        json.dumps(
            dict(
                model=args.model or args.config,
                images=total,
                batch=args.batch,
                device=args.device,
                threads=torch.get_num_threads(),
            )
        )
    )
    for k, v in rows.items():
        print(f"{k:<22} {v:8.2f} img/s   {v / plain:6.2f}x plain")


if __name__ == "__main__":
    main()
