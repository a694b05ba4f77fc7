"""ALS report: tables (CSV, Markdown), the mean-Delta curve (PNG, PDF) and a summary, for both protocols.

    python analyses/als_report.py --model ffhq.pkl --classifier resnet:celeba40.pt --pairs 1000 --out reports/als
"""
import argparse

import latentlab
from latentlab.attributes import load_classifier
from latentlab.studies.reports import als_study, write_als_report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--attrs", default=None, help="comma-separated subset of the classifier's attributes")
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--space", choices=["w", "w+"], default="w")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    G = latentlab.load_generator(args.model, device=args.device)
    clf = load_classifier(args.classifier)
    if args.attrs:
        clf = clf.select(args.attrs.split(","))
    clf = clf.to(args.device).eval() if hasattr(clf, "to") else clf
    for protocol in ("paper", "hsr"):
        res = als_study(G, clf, args.pairs, args.steps, args.space, protocol, device=args.device)
        write_als_report(res, f"{args.out}/{protocol}", title=f"ALS of {args.model}")
        print(f"{protocol}: mean ALS {res['mean']:.4f} -> {args.out}/{protocol}")


if __name__ == "__main__":
    main()
