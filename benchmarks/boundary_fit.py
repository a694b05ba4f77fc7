"""Boundary fit time for InterFaceGAN's procedure on N x d codes (default 500k x 512).

python benchmarks/boundary_fit.py --n 500000 --dim 512 --ratio 0.02
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from latentlab.boundaries import linear_separability, train_boundary  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--ratio", type=float, default=0.02)
    ap.add_argument("--solvers", default="linear,svc")
    ap.add_argument(
        "--separability-n", type=int, default=200_000, help="samples for the separability timing (0 = skip)"
    )
    args = ap.parse_args()
    rng = np.random.RandomState(0)
    true = rng.randn(args.dim)
    true /= np.linalg.norm(true)
    codes = rng.randn(args.n, args.dim).astype(np.float32)
    scores = codes @ true + 0.5 * rng.randn(args.n)
    print(json.dumps(dict(n=args.n, dim=args.dim, ratio=args.ratio, cpus=os.cpu_count())))
    for solver in args.solvers.split(","):
        t0 = time.perf_counter()
        b = train_boundary(codes, scores, ratio=args.ratio, solver=solver)
        total = time.perf_counter() - t0
        print(
            f"{solver:<7} total {total:7.2f} s  (svm fit {b.fit_seconds:6.2f} s)  cos(planted) {b.normal @ true:.4f}  "
            f"val acc {b.val_accuracy:.4f}  train pairs {b.n_train // 2}"
        )
    if args.separability_n:
        m = min(args.separability_n, args.n)
        for svm in ("official", "primal"):  # the published metric's dual solver, and the converged primal one
            t0 = time.perf_counter()
            res = linear_separability(codes[:m], scores[:m, None], svm=svm)
            print(
                f"separability ({svm} svm) on {m} x {args.dim}, 1 attribute: {time.perf_counter() - t0:.2f} s "
                f"(score {res.score:.4f})"
            )


if __name__ == "__main__":
    main()
