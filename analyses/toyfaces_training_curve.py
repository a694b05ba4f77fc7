"""The embedded model's targets along a training run: the toyfaces model report's measures (Frechet distance of
classifier features, eyeglasses rate gap, smile and yaw spreads, correlation difference) at every --every-th
snapshot, written to OUT/curve.csv and OUT/curve.png (latentlab.studies.training_curve). Rerun to add the
snapshots written since.

    python analyses/toyfaces_training_curve.py --run /work/toy/v2 --every 1000 --n 500 \
        --start checkpoints/toyfaces/generator.safetensors --out /work/toy/v2_curve
"""

import argparse
import sys

import numpy as np

from latentlab import defaults
from latentlab.attributes import load_classifier
from latentlab.errors import LatentlabError
from latentlab.studies.training_curve import toyfaces_training_curve


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a `latentlab train gan` output folder")
    ap.add_argument("--every", type=int, default=1000, help="evaluate snapshots whose step is a multiple of this")
    ap.add_argument("--n", type=int, default=500, help="generated faces and renders per snapshot")
    ap.add_argument("--start", default=None, help="the model the run started from, plotted at step 0")
    ap.add_argument(
        "--edit",
        action="append",
        default=[],
        metavar="ATTR",
        help="also measure this attribute's W edit at each snapshot (repeatable; ~50 s a snapshot on one CPU thread)",
    )
    ap.add_argument("--edit-samples", type=int, default=5000, help="samples the edit's boundary is fitted on")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    try:
        clf = load_classifier(defaults.classifier_spec()).to(args.device).eval()
        table = toyfaces_training_curve(
            args.run,
            clf,
            args.out,
            every=args.every,
            n=args.n,
            start=args.start,
            device=args.device,
            edits=args.edit,
            edit_samples=args.edit_samples,
        )
    except (LatentlabError, OSError) as e:
        sys.exit(f"toyfaces_training_curve: error: {e}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
