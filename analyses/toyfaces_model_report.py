"""Model report of a toyfaces generator: does it make the faces the renderer makes?

Scores generated faces and fresh renders with the toyfaces classifier and compares them
(attribute means, stds, positive rates, correlation matrices, classifier-feature Frechet
distance), with a render-vs-render Frechet distance as the floor. Writes summary.md, CSVs and
sample grids into --out (latentlab.studies.fidelity.write_toyfaces_model_report).

    python analyses/toyfaces_model_report.py --n 2000 --out checkpoints/toyfaces/report
    python analyses/toyfaces_model_report.py --model runs/toy/network-snapshot-010000.safetensors --n 2000 \
        --out reports/toy
"""

import argparse

import numpy as np

import latentlab
from latentlab import defaults
from latentlab.attributes import load_classifier
from latentlab.studies.fidelity import write_toyfaces_model_report
from latentlab.utils.trust import TRUST_CODE_HELP


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=defaults.NAME)
    ap.add_argument("--classifier", default=None, help="default: the embedded toyfaces classifier")
    ap.add_argument("--trust-code", action="store_true", help=TRUST_CODE_HELP)
    ap.add_argument("--n", type=int, default=2000, help="generated faces (seeds 0..n-1) and renders per set")
    ap.add_argument("--psi", type=float, default=1.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    G = latentlab.load_generator(args.model, device=args.device)
    clf = (
        load_classifier(args.classifier or defaults.classifier_spec(), trust_code=args.trust_code)
        .to(args.device)
        .eval()
    )
    md = write_toyfaces_model_report(G, clf, args.out, n=args.n, psi=args.psi, device=args.device, model=args.model)
    print("\n".join(md[:4]))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
