"""Inversion report of the embedded model: projector vs encoder vs encoder + refinement on held-out renders.

Toyfaces renders are real images from the generator's point of view whose true attributes are known,
so inversion quality is measured, not eyeballed. Inverts the first --n renders of a toyfaces folder
(`latentlab toyfaces --seed 1 ...`: not the training renders) three ways and writes the side-by-side
report (latentlab.inversion.report): reconstruction metrics and timings, agreement of the classifier's
attribute decisions on the reconstructions with the true labels, and a figure with a smile edit of
every reconstruction.

    latentlab toyfaces --n 1000 --seed 1 --resolution 64 --out heldout
    python analyses/toyfaces_inversion_report.py --renders heldout --n 64 --out checkpoints/toyfaces/report/inversion
"""

import argparse
import os
import sys

import numpy as np
import torch

import latentlab
from latentlab import defaults
from latentlab.attributes import load_classifier
from latentlab.datasets.toyfaces import binarize, load_labels
from latentlab.edits.pipeline import edit_direction
from latentlab.errors import LatentlabError
from latentlab.inversion import load_targets
from latentlab.inversion.distances import distance_by_name
from latentlab.inversion.encoder import load_encoder
from latentlab.inversion.report import compare_inversions, write_inversion_report
from latentlab.utils.trust import TRUST_CODE_HELP


def run(args):
    torch.set_num_threads(args.threads) if args.threads else None
    G = latentlab.load_generator(args.model, device=args.device)
    clf = (
        load_classifier(args.classifier or defaults.classifier_spec(), trust_code=args.trust_code)
        .to(args.device)
        .eval()
    )
    table = load_labels(args.renders).iloc[: args.n]
    paths = [os.path.join(args.renders, f) for f in table["file"]]
    targets, names = load_targets(paths, G.img_resolution, G.img_channels)
    truth = binarize(table)[list(clf.names)].to_numpy()
    enc = load_encoder(args.encoder or defaults.encoder_path(), device=args.device) if args.encoder != "none" else None
    direction = edit_direction(G, args.model, attr=args.edit_attr, space="w")
    comparison = compare_inversions(
        G,
        targets,
        truth,
        clf,
        encoder=enc,
        steps=args.steps,
        refine=args.refine,
        distance=distance_by_name(args.distance, G, args.device),
        edit_direction=direction,
        edit_alpha=args.edit_alpha,
        space=args.space,
        seed=args.seed,
        device=args.device,
    )
    settings = {k: v for k, v in vars(args).items() if k not in ("out",)}
    lines = write_inversion_report(
        comparison, targets, args.out, names, settings, edit_label=f"{args.edit_attr} {args.edit_alpha:+g}"
    )
    print("\n".join(lines[4:5]) + f"\n-> {args.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--renders", required=True, help="a toyfaces folder (images/, labels.csv) not used in training")
    ap.add_argument("--n", type=int, default=64, help="how many of its renders (the first n)")
    ap.add_argument("--model", default=defaults.NAME)
    ap.add_argument("--classifier", default=None, help="default: the embedded toyfaces classifier")
    ap.add_argument("--trust-code", action="store_true", help=TRUST_CODE_HELP)
    ap.add_argument("--encoder", default=None, help="encoder file (default: the shipped one; 'none' skips it)")
    ap.add_argument("--steps", type=int, default=1000, help="projector steps (0 skips the projector)")
    ap.add_argument("--space", default="w", choices=["w", "w+", "s"], help="the projector's space")
    ap.add_argument("--refine", type=int, default=100, help="projector steps after the encoder (0 skips)")
    ap.add_argument("--distance", default="auto", help="auto, lpips, lpips-random or toyfaces")
    ap.add_argument("--edit-attr", default="smile")
    ap.add_argument("--edit-alpha", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    try:
        run(args)
    except (LatentlabError, OSError) as e:
        sys.exit(f"toyfaces_inversion_report: error: {e}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
