r"""Correlation report: Z and W edits, each space's correlation matrix against a reference label table, linearity.

    python analyses/correlation_report.py --model ffhq.pkl --classifier resnet:celeba40.pt --attrs smile,age \
        --score-map age=Young --z-boundaries bz/ --w-boundaries bw/ --reference list_attr_celeba.txt \
        --scores probabilities --out reports/corr

The same study as `latentlab corr`, through the same library calls (latentlab.studies.correlation.study_inputs,
corr_study, write_corr_report), so the two accept the same inputs: an alias opposite to its column, e.g. age
for Young, must be mapped explicitly with --score-map. The folder's files are listed in its summary.md.
"""

import argparse
import sys

import latentlab
from latentlab.attributes import load_classifier
from latentlab.edits import parse_alphas
from latentlab.errors import CheckpointError, LatentlabError
from latentlab.latents import parse_seeds
from latentlab.studies.correlation import SCORE_TRANSFORMS, MissingInput, comparison_lines, study_inputs
from latentlab.studies.reports import corr_study, write_corr_report
from latentlab.utils.trust import TRUST_CODE_HELP


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--trust-code", action="store_true", help=TRUST_CODE_HELP)
    ap.add_argument("--attrs", required=True)
    ap.add_argument("--score-map", default="")
    ap.add_argument("--z-boundaries")
    ap.add_argument("--w-boundaries")
    ap.add_argument("--reference")
    ap.add_argument("--seeds", default="0-99")
    ap.add_argument("--alphas", default="-3:3:13")
    ap.add_argument(
        "--scores",
        choices=SCORE_TRANSFORMS,
        default="logits",
        help="correlate and plot logits or their sigmoid (the paper's probabilities)",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    try:
        inputs = study_inputs(
            args.model, args.attrs, args.z_boundaries, args.w_boundaries, args.score_map, args.reference
        )
        seeds, alphas = parse_seeds(args.seeds), parse_alphas(args.alphas)
        G = latentlab.load_generator(args.model, device=args.device)
        clf = load_classifier(args.classifier, trust_code=args.trust_code)
        clf = clf.to(args.device).eval() if hasattr(clf, "to") else clf
        result = corr_study(
            G,
            clf,
            inputs.directions,
            seeds,
            alphas,
            inputs.columns(clf.names),
            inputs.reference,
            device=args.device,
            scores=args.scores,
        )
    except MissingInput as e:
        ap.error(str(e))
    except (ValueError, OSError, CheckpointError, LatentlabError) as e:
        sys.exit(f"correlation_report.py: error: {e}")
    write_corr_report(result, args.out)
    print(result["fits"].to_string())
    print("\n".join(comparison_lines(result["comparison"], args.scores)))


if __name__ == "__main__":
    main()
