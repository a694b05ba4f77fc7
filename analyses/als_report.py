"""ALS report for both protocols: tables (CSV, Markdown), the curve over t and per-pair figures (PNG, PDF),
a summary; with several models, their comparison (the HSR paper's figure 8 and its table).

    python analyses/als_report.py --model ffhq.pkl --classifier resnet:celeba40.pt --pairs 1000 --out reports/als
    python analyses/als_report.py --model sg2.pkl --label SG2 --model sg2_hsr.pkl --label SG2+HSR \\
        --classifier resnet:celeba40.pt --attrs Smiling,Male,Young,Eyeglasses,No_Beard --out reports/als
    python analyses/als_report.py --reports SG2=reports/a/paper --reports SG2+HSR=reports/b/paper --out reports/cmp

One model: OUT/paper and OUT/hsr. Several: OUT/<label>/paper, OUT/<label>/hsr and the comparisons
OUT/compare/paper, OUT/compare/hsr (als_compare.csv/.md: models x attributes + Mean;
als_compare_curve.png/.pdf: ALS vs t, one line per model). --reports compares saved report
folders (one protocol) into OUT without running any model. The same library calls as `latentlab als`
(classifier selection, NAME=PATH labels, the study and its report folders: latentlab.studies.reports).
"""

import argparse
import os
import sys

import latentlab
from latentlab.attributes import load_classifier
from latentlab.errors import CheckpointError, LatentlabError
from latentlab.studies.reports import (
    als_classifier,
    als_study,
    labelled,
    read_als_reports,
    write_als_comparison,
    write_als_report,
)
from latentlab.utils.trust import TRUST_CODE_HELP


def run(args):
    if args.reports:
        table = write_als_comparison(read_als_reports(args.reports, args.label, "--reports"), args.out)
        print(table.to_string(float_format=lambda v: f"{v:.4f}"), f"\n-> {args.out}")
        return
    if not args.model or not args.classifier:
        raise ValueError("give --model (one or more) and --classifier, or --reports")
    models = labelled(args.model, args.label, "--model")
    clf = als_classifier(
        load_classifier(args.classifier, trust_code=args.trust_code), args.attrs, args.pair_attr, args.device
    )
    results = {p: {} for p in ("paper", "hsr")}
    for name, path in models.items():
        G = latentlab.load_generator(path, device=args.device)
        for protocol in ("paper", "hsr"):
            res = als_study(G, clf, args.pairs, args.steps, args.space, protocol, seed=args.seed, device=args.device)
            folder = os.path.join(args.out, protocol) if len(models) == 1 else os.path.join(args.out, name, protocol)
            settings = dict(model=path, classifier=args.classifier, space=args.space, seed=args.seed)
            write_als_report(res, folder, title=f"ALS of {name}", settings=settings, pair_attribute=args.pair_attr)
            results[protocol][name] = res
            print(f"{name} {protocol}: mean ALS {res['mean']:.4f} -> {folder}")
    if len(models) > 1:
        for protocol, by_model in results.items():
            write_als_comparison(by_model, os.path.join(args.out, "compare", protocol))
            print(f"comparison ({protocol}) -> {os.path.join(args.out, 'compare', protocol)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=[], help="checkpoint; repeat to compare models")
    ap.add_argument("--label", action="append", default=[], help="name of each --model / --reports in the comparison")
    ap.add_argument("--reports", action="append", default=[], help="saved ALS report folder ([NAME=]DIR); repeat")
    ap.add_argument("--classifier", default=None)
    ap.add_argument("--trust-code", action="store_true", help=TRUST_CODE_HELP)
    ap.add_argument("--attrs", default=None, help="comma-separated subset of the classifier's attributes")
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--space", choices=["w", "w+"], default="w")
    ap.add_argument("--seed", type=int, default=0, help="pair p uses seeds 2p + seed and 2p + 1 + seed")
    ap.add_argument("--pair-attr", default=None, help="attribute of the per-pair figure (default: the least linear)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.model and args.reports:
        ap.error("give --model or --reports, not both")
    if args.pairs < 1 or args.steps < 1:
        ap.error("--pairs and --steps must be >= 1")
    try:
        run(args)
    except (ValueError, OSError, CheckpointError, LatentlabError) as e:
        sys.exit(f"als_report.py: error: {e}")


if __name__ == "__main__":
    main()
