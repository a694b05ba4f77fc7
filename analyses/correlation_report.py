r"""Correlation report: Z and W edits, each space's correlation matrix against a reference label table, linearity.

    python analyses/correlation_report.py --model ffhq.pkl --classifier resnet:celeba40.pt --attrs smile,age \
        --score-map age=Young --z-boundaries bz/ --w-boundaries bw/ --reference list_attr_celeba.txt \
        --scores probabilities --out reports/corr

Same library calls and rules as `latentlab corr` (an alias opposite to its column, e.g. age for
Young, must be mapped explicitly with --score-map); the folder's files are listed in its summary.md.
"""
import argparse
import sys

import latentlab
from latentlab.attributes import load_classifier
from latentlab.attributes.celeba import read_attr_table
from latentlab.errors import CheckpointError
from latentlab.latents import parse_seeds
from latentlab.studies.correlation import (SCORE_TRANSFORMS, comparison_lines, load_directions, parse_score_map,
                                           score_columns)
from latentlab.studies.reports import corr_study, write_corr_report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--attrs", required=True)
    ap.add_argument("--score-map", default="")
    ap.add_argument("--z-boundaries")
    ap.add_argument("--w-boundaries")
    ap.add_argument("--reference")
    ap.add_argument("--seeds", default="0-99")
    ap.add_argument("--alphas", default="-3:3:13")
    ap.add_argument("--scores", choices=SCORE_TRANSFORMS, default="logits",
                    help="correlate and plot logits or their sigmoid (the paper's probabilities)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    folders = {s: f for s, f in (("z", args.z_boundaries), ("w", args.w_boundaries)) if f}
    if not folders:
        ap.error("give --z-boundaries and/or --w-boundaries")
    try:
        edited = [a.strip() for a in args.attrs.split(",") if a.strip()]
        directions = load_directions(folders, edited)
        mapping = parse_score_map(args.score_map)
        G = latentlab.load_generator(args.model, device=args.device)
        clf = load_classifier(args.classifier)
        clf = clf.to(args.device).eval() if hasattr(clf, "to") else clf
        columns = score_columns(edited, clf.names, mapping)
        reference = read_attr_table(args.reference) if args.reference else None
        result = corr_study(G, clf, directions, parse_seeds(args.seeds), args.alphas, columns, reference,
                            device=args.device, scores=args.scores)
    except (ValueError, FileNotFoundError, CheckpointError) as e:
        sys.exit(f"correlation_report.py: error: {e}")
    write_corr_report(result, args.out)
    print(result["fits"].to_string())
    print("\n".join(comparison_lines(result["comparison"], args.scores)))


if __name__ == "__main__":
    main()
