"""Truncation report: every variant on the same seeds (one grid row each), with attribute statistics.

With --tsne, every cluster variant (fitted or a clusters:FILE) also gets tsne_<row>.png/pdf: a
per-level t-SNE of its codes coloured by cluster (Katzir et al. 2022, figure 9).

    python analyses/truncation_report.py --model ffhq.pkl --classifier resnet:celeba40.pt --seeds 0-7 \
        --variants "none;w:0.7;w:0.5@8;z:2;clamp:95;clusters:k=8,psi=0.5;clusters:k=8,psi=0.5,rep=w" \
        --tsne --out reports/truncation
"""
import argparse
import os

import latentlab
from latentlab.attributes import load_classifier
from latentlab.latents import parse_seeds
from latentlab.studies.reports import truncation_study, write_truncation_report
from latentlab.truncation import ClusterTruncation, parse_truncation
from latentlab.truncation.figures import cluster_embedding_figure


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--classifier", default=None)
    ap.add_argument("--seeds", default="0-7")
    ap.add_argument("--variants", default="none;w:0.7;w:0.5;z:2.0;clamp:90", help="truncation specs separated by ';'")
    ap.add_argument("--fit-samples", type=int, default=10000)
    ap.add_argument("--tsne", action="store_true", help="per-level t-SNE of every cluster variant's codes")
    ap.add_argument("--tsne-samples", type=int, default=1000, help="codes per level in the t-SNE")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    G = latentlab.load_generator(args.model, device=args.device)
    variants = {}
    for spec in args.variants.split(";"):
        t = parse_truncation(spec)
        if t.requires_fit and not t.is_fitted:
            t.fit(G, n_samples=args.fit_samples)
        name, n = t.name, 2
        while name in variants:  # two specs with one name would otherwise share a row
            name, n = f"{t.name} #{n}", n + 1
        variants[name] = t
    clf = load_classifier(args.classifier).to(args.device).eval() if args.classifier else None
    seeds = parse_seeds(args.seeds)
    result = truncation_study(G, variants, seeds, clf, device=args.device)
    write_truncation_report(result, args.out, columns=len(seeds))
    print(f"wrote {args.out}/grid.png and summary.md")
    if args.tsne:
        for row, (name, t) in enumerate(variants.items()):
            if isinstance(t, ClusterTruncation):
                paths = cluster_embedding_figure(t, G, os.path.join(args.out, f"tsne_{row}"), n=args.tsne_samples)["paths"]
                print(f"row {row} ({name}): wrote {', '.join(paths)}")


if __name__ == "__main__":
    main()
