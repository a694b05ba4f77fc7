"""PPL report: Z and W, 'full' and 'end' sampling; histograms, extreme pairs, summary.

    python analyses/ppl_report.py --model ffhq.pkl --samples 100000 --crop --out reports/ppl
"""
import argparse

import latentlab
from latentlab.studies import LPIPSDistance, perceptual_path_length
from latentlab.studies.ppl import extreme_pairs
from latentlab.studies.reports import write_ppl_report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--crop", action="store_true")
    ap.add_argument("--random-backbone", action="store_true", help="offline smoke run (not comparable to published values)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    G = latentlab.load_generator(args.model, device=args.device)
    dist = LPIPSDistance(pretrained_backbone=not args.random_backbone).to(args.device)
    for space in ("z", "w"):
        for sampling in ("full", "end"):
            res = perceptual_path_length(G, args.samples, space, sampling, args.crop, distance=dist, device=args.device)
            out = f"{args.out}/{space}_{sampling}"
            write_ppl_report(res, out, extreme_pairs(G, res, 8, space, sampling, device=args.device),
                             dict(space=space, sampling=sampling, crop=args.crop))
            print(f"PPL {space} {sampling}: {res.mean:.3f} -> {out}")


if __name__ == "__main__":
    main()
