"""PPL report: Z and W, 'full' and 'end' sampling, for one or more models; histograms (overlaid across
models), extreme pairs, interpolation strips of the lowest / highest 10 %, summary.

    python analyses/ppl_report.py --model ffhq.pkl --samples 100000 --crop --out reports/ppl
    python analyses/ppl_report.py --model base.pkl --model hsr.pkl --samples 10000 --out reports/ppl_hsr
"""

import argparse
import os

import latentlab
from latentlab.studies import LPIPSDistance, perceptual_path_length
from latentlab.studies.ppl_figures import ppl_histograms
from latentlab.studies.reports import labelled, ppl_report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="checkpoint (repeat to compare models)")
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--crop", action="store_true")
    ap.add_argument("--trunc", type=float, default=1.0, help="truncation psi (1 = none, as the official metric)")
    ap.add_argument("--spaces", default="z,w")
    ap.add_argument("--samplings", default="full,end")
    ap.add_argument(
        "--random-backbone", action="store_true", help="offline smoke run (not comparable to published values)"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    dist = LPIPSDistance(pretrained_backbone=not args.random_backbone).to(args.device)
    models = {
        name: latentlab.load_generator(spec, device=args.device)
        for name, spec in labelled(args.model, option="--model").items()
    }
    for space in args.spaces.split(","):
        for sampling in args.samplings.split(","):
            results = {}
            for name, G in models.items():
                res = perceptual_path_length(
                    G,
                    args.samples,
                    space,
                    sampling,
                    args.crop,
                    distance=dist,
                    truncation_psi=args.trunc,
                    device=args.device,
                )
                out = os.path.join(args.out, name if len(models) > 1 else "", f"{space}_{sampling}")
                ppl_report(G, res, out, band=0.1, label=name, device=args.device)  # as `latentlab ppl --out`
                results[name] = res
                print(f"PPL {name} {space} {sampling}: {res.mean:.3f} -> {out}")
            if len(results) > 1:
                ppl_histograms(
                    results,
                    os.path.join(args.out, f"histograms_{space}_{sampling}"),
                    title=f"PPL ({space}, {sampling})",
                )


if __name__ == "__main__":
    main()
