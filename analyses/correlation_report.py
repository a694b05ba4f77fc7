"""Correlation report: Z vs W edits, correlation matrices against a reference label table, linearity.

    python analyses/correlation_report.py --model ffhq.pkl --classifier resnet:celeba40.pt --attrs smile,age \
        --score-map age=Young --z-boundaries bz/ --w-boundaries bw/ --reference list_attr_celeba.txt --out reports/corr
"""
import argparse

import latentlab
from latentlab.attributes import load_classifier
from latentlab.attributes.celeba import read_attr_table, resolve_name
from latentlab.edits import load_direction
from latentlab.edits.registry import attributes_in
from latentlab.latents import parse_seeds
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
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    G = latentlab.load_generator(args.model, device=args.device)
    clf = load_classifier(args.classifier)
    clf = clf.to(args.device).eval() if hasattr(clf, "to") else clf
    edited = args.attrs.split(",")
    mapping = dict(kv.split("=", 1) for kv in args.score_map.split(",") if kv)
    columns = {a: clf.names[resolve_name(mapping.get(a, a), clf.names)[0]] for a in edited}
    directions = {}
    for space, folder in (("z", args.z_boundaries), ("w", args.w_boundaries)):
        if folder:
            found = attributes_in(folder)
            directions.update({(space, a): load_direction(found[a]["file"], name=a) for a in edited})
    reference = read_attr_table(args.reference) if args.reference else None
    result = corr_study(G, clf, directions, parse_seeds(args.seeds), args.alphas, columns, reference, device=args.device)
    write_corr_report(result, args.out)
    print(result["fits"].to_string())


if __name__ == "__main__":
    main()
