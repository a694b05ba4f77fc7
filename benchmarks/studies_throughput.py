"""Images/s of the studies (ALS, PPL) next to plain generation on a synthetic generator.

    python benchmarks/studies_throughput.py --config res64 --pairs 16 --batch 8
PPL uses LPIPS with an untrained VGG here (same cost as the trained one, no download).
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.generator_throughput import CONFIGS, add_run_args, append_jsonl, apply_run_args, synthetic_generator  # noqa: E402,E501
from latentlab.generate import generate_images  # noqa: E402
from latentlab.studies import LPIPSDistance, als, perceptual_path_length  # noqa: E402
from latentlab.studies.reports import corr_study  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="res64")
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_run_args(ap)
    args = ap.parse_args()
    apply_run_args(args)
    G = synthetic_generator(args.config, args.device)
    list(generate_images(G, list(range(args.batch)), batch_size=args.batch, device=args.device))  # warm-up
    n_img = args.pairs * (args.steps + 1)
    t0 = time.perf_counter()
    list(generate_images(G, list(range(n_img)), batch_size=args.batch, device=args.device))
    plain = n_img / (time.perf_counter() - t0)
    with torch.no_grad():
        w = G.mapping(torch.randn(2 * args.pairs, G.z_dim, device=args.device), None)[:, 0]
    clf = lambda img: img.mean(dim=[2, 3])  # noqa: E731  (cheap: isolates the study's own overhead)
    t0 = time.perf_counter()
    als(G, clf, w[: args.pairs], w[args.pairs :], steps=args.steps, batch_size=args.batch)
    als_rate = n_img / (time.perf_counter() - t0)
    dist = LPIPSDistance(pretrained_backbone=False).to(args.device)
    t0 = time.perf_counter()
    perceptual_path_length(G, n_img // 2, distance=dist, batch_size=args.batch, device=args.device)
    ppl_rate = n_img / (time.perf_counter() - t0)  # two images per pair

    class Clf:
        names = ["r", "g", "b"]

        def __call__(self, img):
            return img.mean(dim=[2, 3])

    n_seeds = max(1, n_img // (2 * 2 * 11))  # 2 spaces x 2 attributes x 11 alphas
    import numpy as np

    dirs = {
        (s, a): np.random.RandomState(k).randn(G.z_dim if s == "z" else G.w_dim)
        for k, (s, a) in enumerate([("z", "r"), ("z", "g"), ("w", "r"), ("w", "g")])
    }
    t0 = time.perf_counter()
    corr_study(
        G,
        Clf(),
        dirs,
        list(range(n_seeds)),
        "-2.5:2.5:11",
        {"r": "r", "g": "g"},
        batch_size=args.batch,
        device=args.device,
    )
    corr_rate = n_seeds * 44 / (time.perf_counter() - t0)
    info = dict(config=args.config, images=n_img, batch=args.batch, device=args.device, threads=torch.get_num_threads())
    rows = [
        dict(study="plain generation", img_per_s=plain),
        dict(study="ALS (render + score)", img_per_s=als_rate),
        dict(study="PPL (map, render pairs, LPIPS-VGG)", img_per_s=ppl_rate),
        dict(study="correlation study (edit, render, score)", img_per_s=corr_rate),
    ]
    print(json.dumps(info))
    for r in rows:
        print(f"{r['study']:<36} {r['img_per_s']:8.2f} img/s   {r['img_per_s'] / plain:5.2f}x plain")
    append_jsonl(args.json, info, rows)


if __name__ == "__main__":
    main()
