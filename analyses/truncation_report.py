"""Truncation report: every variant on the same seeds (one grid row each), with attribute statistics.

    python analyses/truncation_report.py --model ffhq.pkl --classifier resnet:celeba40.pt --seeds 0-7 \
        --variants "none;w:0.7;w:0.5@8;z:2;clamp:95;clusters:k=8,psi=0.5" --out reports/truncation
"""
import argparse

import latentlab
from latentlab.attributes import load_classifier
from latentlab.latents import parse_seeds
from latentlab.studies.reports import truncation_study, write_truncation_report
from latentlab.truncation import parse_truncation


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--classifier", default=None)
    ap.add_argument("--seeds", default="0-7")
    ap.add_argument("--variants", default="none;w:0.7;w:0.5;z:2.0;clamp:90", help="truncation specs separated by ';'")
    ap.add_argument("--fit-samples", type=int, default=10000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    G = latentlab.load_generator(args.model, device=args.device)
    variants = {}
    for spec in args.variants.split(";"):
        t = parse_truncation(spec)
        if t.requires_fit and not t.is_fitted:
            t.fit(G, n_samples=args.fit_samples)
        variants[t.name] = t
    clf = load_classifier(args.classifier).to(args.device).eval() if args.classifier else None
    seeds = parse_seeds(args.seeds)
    result = truncation_study(G, variants, seeds, clf, device=args.device)
    write_truncation_report(result, args.out, columns=len(seeds))
    print(f"wrote {args.out}/grid.png and summary.md")


if __name__ == "__main__":
    main()
