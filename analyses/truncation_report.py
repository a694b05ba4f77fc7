"""Truncation report: every variant on the same seeds (one grid row each), with attribute statistics.

The same study as `latentlab truncate` (latentlab.studies.reports.truncation_report): grid.png,
variantN.png, truncate.json, summary.md, and with --classifier attribute_stats.csv/.md. With --tsne,
every cluster variant (fitted or a clusters:FILE) also gets a per-level t-SNE of its codes coloured by
cluster (Katzir et al. 2022, figure 9): tsne.png/pdf for one cluster row, tsne_<row>.png/pdf for several.

    python analyses/truncation_report.py --model ffhq.pkl --classifier resnet:celeba40.pt --seeds 0-7 \
        --variants "none;w:0.7;w:0.5@8;z:2;clamp:95;clusters:k=8,psi=0.5;clusters:k=8,psi=0.5,rep=w" \
        --tsne --out reports/truncation
"""

import argparse
import sys

import latentlab
from latentlab.attributes import load_classifier
from latentlab.errors import CheckpointError, LatentlabError
from latentlab.latents import parse_seeds
from latentlab.studies.reports import truncation_report, truncation_rows
from latentlab.utils.trust import TRUST_CODE_HELP


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--classifier", default=None)
    ap.add_argument("--trust-code", action="store_true", help=TRUST_CODE_HELP)
    ap.add_argument("--seeds", default="0-7")
    ap.add_argument("--variants", default="none;w:0.7;w:0.5;z:2.0;clamp:90", help="truncation specs separated by ';'")
    ap.add_argument("--fit-samples", type=int, default=10000)
    ap.add_argument("--tsne", action="store_true", help="per-level t-SNE of every cluster variant's codes")
    ap.add_argument("--tsne-samples", type=int, default=1000, help="codes per level in the t-SNE")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    try:
        rows = truncation_rows([s for s in args.variants.split(";") if s.strip()])
        seeds = parse_seeds(args.seeds)
        G = latentlab.load_generator(args.model, device=args.device)
        clf = (
            load_classifier(args.classifier, trust_code=args.trust_code).to(args.device).eval()
            if args.classifier
            else None
        )
        _, record = truncation_report(
            G,
            rows,
            seeds,
            args.out,
            classifier=clf,
            fit_samples=args.fit_samples,
            embeddings=("tsne",) if args.tsne else (),
            embed_samples=args.tsne_samples,
            device=args.device,
            settings=dict(model=args.model, classifier=args.classifier),
        )
    except (ValueError, OSError, CheckpointError, LatentlabError) as e:
        sys.exit(f"truncation_report.py: error: {e}")
    for i, e in enumerate(record["variants"]):
        print(f"row {i}: {e['name']}")
    print(
        f"wrote {args.out}/grid.png, truncate.json and summary.md"
        + (f" and {', '.join(record['figures'])}" if record["figures"] else "")
    )


if __name__ == "__main__":
    main()
