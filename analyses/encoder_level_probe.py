"""GH-Feat's level-wise probing: how well does each level of an encoder's codes predict each attribute?

    latentlab features --encoder enc.safetensors renders/images/*.png --out feats/
    python analyses/encoder_level_probe.py --features feats/features.npz --labels renders/labels.csv --out reports/probe

The features file holds one array per level (coarse, middle, fine: the encoder's predicted style
codes of that level's layers) and the image names; the labels CSV has a `file` column (image file
names; matched to the features by name without folder and suffix) and one column per target.
Targets (default: every numeric column but `file`) with two distinct values are probed by logistic
regression (accuracy), the others by ridge regression (R^2); see `latentlab.studies.level_probe`.
Circular targets (`--circular background`, a hue in [0, 1)) are probed as cos and sin of 2 pi value.

On toyfaces renders (labels.csv of `latentlab toyfaces`) the expected hierarchy is: coarse levels
predict pose (yaw) and shape (male: hair length, face size) best, finer levels colour (skin,
background) best; for the embedded encoder it shows with few labels (--curve), not with all of them.

--curve 25,50,100,200,400 adds label-efficiency curves (`latentlab.studies.level_probe.probe_curve`): the same
probes fitted on only that many training images (--repeats random subsets each, the held-out images fixed),
written as probe_curve.png, curve_summary.csv/.md and curve_best.csv/.md (the best level per target and size,
with its lead over the runner-up in standard errors of the paired difference). With every label, the levels of an
in-domain encoder tie (each holds the same information); with few, the level that carries an attribute most
directly leads.

--transfer adds what each level *controls* (`latentlab.studies.level_transfer`): the features are the
encoder's packed style codes split by level, so pairs of images (the first and second half) are
re-rendered by --model with one level's codes swapped, and the classifier (--classifier, default the
embedded one) measures the share of each attribute's change the level carries (transfer.csv/.md/.png).
The same on the generator's own samples (seeded z pairs, no encoder: transfer_generator.csv/.md/.png) tells
the generator's hierarchy apart from the encoder's.
"""

import argparse
import os
import sys

import numpy as np

from latentlab.errors import LatentlabError
from latentlab.studies.level_probe import (
    probe_curve,
    probe_levels,
    score_matrix,
    write_level_probe_report,
    write_probe_curve_report,
)

TOYFACES_TARGETS = "yaw,nuisance_face_scale,male,smile,age,eyeglasses,skin,background,nuisance_hair_shade"


def load_features(path):
    with np.load(path, allow_pickle=False) as f:
        if "names" not in f:
            raise ValueError(f"{path}: not a features file of `latentlab features` (no 'names')")
        names = [str(n) for n in f["names"]]
        levels = [k for k in ("coarse", "middle", "fine") if k in f] or [
            k for k in f.files if k not in ("names", "model_id", "levels")
        ]
        return names, {k: f[k].astype(np.float64) for k in levels}


def load_targets(path, names, columns, circular):
    import pandas as pd

    table = pd.read_csv(path)
    if "file" not in table:
        raise ValueError(f"{path}: needs a 'file' column naming the images")
    table.index = [os.path.splitext(os.path.basename(str(f)))[0] for f in table["file"]]
    missing = [n for n in names if n not in table.index]
    if missing:
        raise ValueError(f"{path}: no labels for {len(missing)} image(s), e.g. {missing[0]}")
    table = table.loc[names]
    columns = columns or [c for c in table.columns if c != "file" and np.issubdtype(table[c].dtype, np.number)]
    targets = {}
    for c in columns:
        if c not in table:
            raise ValueError(f"{path}: no column {c!r}")
        v = table[c].to_numpy(dtype=np.float64)
        if c in circular:
            targets[f"{c}_cos"], targets[f"{c}_sin"] = np.cos(2 * np.pi * v), np.sin(2 * np.pi * v)
        else:
            targets[c] = v
    return targets


def transfer(args, feats):
    import torch

    import latentlab
    from latentlab import defaults
    from latentlab.attributes import load_classifier
    from latentlab.studies.level_transfer import generator_level_transfer, level_transfer, plot_level_transfer
    from latentlab.studies.reports import write_table

    G = latentlab.load_generator(args.model)
    clf = load_classifier(args.classifier or defaults.classifier_spec()).eval()
    levels = list(feats)
    codes = torch.from_numpy(np.concatenate([feats[k] for k in levels], axis=1)).float()  # levels follow S order
    slices, start = {}, 0
    for k in levels:
        slices[k] = slice(start, start + feats[k].shape[1])
        start += feats[k].shape[1]
    half = min(len(codes) // 2, args.pairs)
    table = level_transfer(G, clf, codes[:half], codes[half : 2 * half], slices)
    write_table(table, os.path.join(args.out, "transfer"))
    plot_level_transfer(
        table, os.path.join(args.out, "transfer"), f"Share of each attribute's change per level ({half} pairs)"
    )
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    table = generator_level_transfer(G, clf, slices, pairs=half, seed=args.seed)
    write_table(table, os.path.join(args.out, "transfer_generator"))
    plot_level_transfer(
        table,
        os.path.join(args.out, "transfer_generator"),
        f"The generator's own samples: share of each attribute's change per level ({half} pairs)",
    )
    print("the generator's own samples:")
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))


def run(args):
    try:  # checked before any work
        sizes = [int(k) for k in args.curve.split(",") if k.strip()] if args.curve else []
    except ValueError:
        raise ValueError(f"--curve {args.curve!r}: give training sizes as comma-separated integers") from None
    names, feats = load_features(args.features)
    columns = [c for c in args.targets.split(",") if c] if args.targets else None
    circular = {c for c in args.circular.split(",") if c}
    targets = load_targets(args.labels, names, columns, circular)
    table = probe_levels(feats, targets, test_fraction=args.test_fraction, seed=args.seed)
    settings = dict(features=args.features, labels=args.labels, test_fraction=args.test_fraction, seed=args.seed)
    best = write_level_probe_report(table, args.out, title=args.title, settings=settings)
    print(score_matrix(table).to_string(float_format=lambda v: f"{v:.3f}"))
    print("best level: " + ", ".join(f"{t}: {lvl}" for t, lvl in best.items()))
    if sizes:
        curve = probe_curve(feats, targets, sizes, repeats=args.repeats, test_fraction=args.test_fraction,
                            seed=args.seed)  # fmt: skip
        title = f"{args.title or 'Linear probes per level'}: against the number of training labels"
        lead = write_probe_curve_report(curve, args.out, title, dict(settings, repeats=args.repeats))
        print(lead.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.transfer:
        transfer(args, feats)
    print(f"-> {args.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", required=True, help="features .npz of `latentlab features`")
    ap.add_argument("--labels", required=True, help="CSV with a 'file' column and one column per target")
    ap.add_argument("--targets", default=None, help=f"comma-separated columns (toyfaces: {TOYFACES_TARGETS})")
    ap.add_argument("--circular", default="background", help="columns holding a hue in [0, 1)")
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--title", default=None)
    ap.add_argument("--curve", default=None, help="comma-separated training sizes for label-efficiency curves")
    ap.add_argument("--repeats", type=int, default=20, help="--curve: random training subsets per size")
    ap.add_argument("--transfer", action="store_true", help="also measure what each level controls (needs --model)")
    ap.add_argument("--model", default="toyfaces", help="the encoder's generator (for --transfer)")
    ap.add_argument("--classifier", default=None, help="for --transfer (default: the embedded toyfaces classifier)")
    ap.add_argument("--pairs", type=int, default=500, help="--transfer: at most this many pairs")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    try:
        run(args)
    except (LatentlabError, ValueError, OSError) as e:
        sys.exit(f"encoder_level_probe: error: {e}")


if __name__ == "__main__":
    main()
