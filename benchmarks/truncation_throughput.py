"""Throughput of every truncation variant next to plain mapping, on a synthetic generator.

ws/s times z -> truncated ws (mapping + truncation); img/s adds synthesis.
Fitted variants are fitted once first (fit time reported, not counted in the rates).
Variants are timed in interleaved rounds and the best round is kept, so that load
from other processes on a shared machine skews every variant alike and little.

Examples:
    python benchmarks/truncation_throughput.py
    python benchmarks/truncation_throughput.py --config res256 --fit-samples 10000 --device cuda
"""

import argparse
import json
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.generator_throughput import (  # noqa: E402,E501
    CONFIGS,
    add_run_args,
    append_jsonl,
    apply_run_args,
    synthetic_generator,
    timed,
)
from latentlab.truncation import ClusterTruncation, LayerScheduleTruncation, RadiusClamp, WTruncation, ZTruncatedNormal  # noqa: E402


class Builtin:
    """Plain G.mapping with its own psi/cutoff arguments: the baseline."""

    def __init__(self, psi=1.0, cutoff=None):
        self.psi, self.cutoff = psi, cutoff
        self.name = "G.mapping" + (
            "" if psi == 1 else f" psi={psi:g}" + ("" if cutoff is None else f" cutoff={cutoff}")
        )

    def __call__(self, G, z, c=None):
        return G.mapping(z, c, truncation_psi=self.psi, truncation_cutoff=self.cutoff)


def variants(G):
    return [
        Builtin(),
        Builtin(0.7, 8),
        WTruncation(0.7, 8),
        LayerScheduleTruncation([0.7] * 8 + [1.0] * (G.num_ws - 8)),
        ZTruncatedNormal(2.0),
        RadiusClamp(95),
        # per-level clusters of the levels' styles (the default) and the single-W baseline
        ClusterTruncation(k=8, method="kmeans"),
        ClusterTruncation(k=8, covariance_type="diag"),
        ClusterTruncation(k=8, covariance_type="full"),
        ClusterTruncation(k=8, method="kmeans", representation="w"),
        ClusterTruncation(k=8, covariance_type="full", representation="w"),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="res64")
    ap.add_argument("--ws-batch", type=int, default=256, help="batch for the ws/s column")
    ap.add_argument("--img-batch", type=int, default=8, help="batch for the img/s column")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best is reported")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--fit-samples", type=int, default=5000)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_run_args(ap)
    args = ap.parse_args()
    apply_run_args(args)

    G = synthetic_generator(args.config, args.device)
    with torch.no_grad():  # a random network's w_avg is 0; give it a realistic running mean
        G.mapping.w_avg.copy_(G.mapping(torch.randn(4096, G.z_dim, device=args.device), None)[:, 0].mean(0))
    z_ws = torch.randn([args.ws_batch, G.z_dim], device=args.device)
    z_img = torch.randn([args.img_batch, G.z_dim], device=args.device)

    info = dict(
        config=args.config,
        device=args.device,
        threads=torch.get_num_threads(),
        num_ws=G.num_ws,
        ws_batch=args.ws_batch,
        img_batch=args.img_batch,
        fit_samples=args.fit_samples,
        cpu=platform.processor() or platform.machine(),
        torch=torch.__version__,
    )
    print(json.dumps(info))
    todo = variants(G)
    fit_s = {}
    with torch.no_grad():
        for t in todo:
            if getattr(t, "requires_fit", False):
                t0 = time.perf_counter()
                t.fit(G, n_samples=args.fit_samples, batch_size=1000)
                fit_s[t.name] = time.perf_counter() - t0
        best = {t.name: [float("inf"), float("inf")] for t in todo}
        for _ in range(args.rounds):
            for t in todo:
                ws_sec = timed(lambda: t(G, z_ws), args.iters, args.warmup, args.device)
                img_sec = timed(
                    lambda: G.synthesis(t(G, z_img), noise_mode="const"), args.iters, args.warmup, args.device
                )
                best[t.name] = [min(best[t.name][0], ws_sec), min(best[t.name][1], img_sec)]
    print(f"{'variant':<34} {'fit s':>7} {'ws/s':>10} {'img/s':>8}")
    results = []
    for t in todo:
        ws_sec, img_sec = best[t.name]
        r = dict(
            variant=t.name,
            fit_s=fit_s.get(t.name, 0.0),
            ws_per_s=args.ws_batch / ws_sec,
            img_per_s=args.img_batch / img_sec,
        )
        results.append(r)
        print(f"{r['variant']:<34} {r['fit_s']:7.1f} {r['ws_per_s']:10.0f} {r['img_per_s']:8.2f}")
    append_jsonl(args.json, info, results)


if __name__ == "__main__":
    main()
