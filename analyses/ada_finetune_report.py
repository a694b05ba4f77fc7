"""Fine-tuning on a small folder: does the generator move to the folder's faces, and does ADA keep D honest?

Scores the generator before fine-tuning and the last snapshot of each run with the toyfaces classifier
(the same seeds for every model) against the folder's own images: attribute means and positive rates, and the
classifier-feature Frechet distance to the folder. Draws each run's r_t = E[sign D(real)] and augmentation p
against kimg from its metrics.csv. Writes report.md, stats.csv, curves.csv and curves.png into --out.

    python analyses/ada_finetune_report.py --subset data/smile_glasses --before toyfaces \
        --run ADA=runs/ft_ada --run noaug=runs/ft_noaug --n 1000 --out docs/figures/ada_finetune
"""

import argparse
import glob
import os

import numpy as np
import pandas as pd
import torch

import latentlab
from latentlab import defaults
from latentlab.attributes import load_classifier
from latentlab.datasets.images import open_image
from latentlab.studies.fidelity import fidelity_report, generated_images

LOGITS = ("eyeglasses", "male", "beard", "bangs")
SHOWN = ("smile", "eyeglasses", "male", "age", "yaw")


def folder_images(folder, limit=None):
    files = sorted(glob.glob(os.path.join(folder, "images", "*.png")))[:limit]
    arr = np.stack([np.asarray(open_image(f, f).convert("RGB")) for f in files])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1


def last_snapshot(run):
    snaps = sorted(glob.glob(os.path.join(run, "network-snapshot-*.safetensors")))
    if not snaps:
        raise SystemExit(f"{run}: no snapshots")
    return snaps[-1]


def row(name, model, clf, subset, n):
    G = latentlab.load_generator(model)
    rep = fidelity_report(clf, generated_images(G, range(n)), subset, logit_names=LOGITS)
    st = rep["stats"]
    out = {"model": name, "file": model, "frechet_to_folder": rep["frechet"]}
    for a in SHOWN:
        if a in LOGITS:
            out[f"{a}_rate"] = st.loc[a, "rate_fake"]
        else:
            out[f"{a}_mean"] = st.loc[a, "mean_fake"]
    return out, st


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subset", required=True, help="the fine-tuning folder (toyfaces layout: images/*.png)")
    ap.add_argument("--before", default=defaults.NAME, help="the model before fine-tuning")
    ap.add_argument("--run", action="append", default=[], metavar="LABEL=DIR", help="a fine-tuning run folder")
    ap.add_argument("--n", type=int, default=1000, help="generated faces per model (seeds 0..n-1)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    clf = load_classifier(defaults.classifier_spec()).eval()
    subset = folder_images(args.subset)
    rows, folder_stats = [], None
    r, st = row("before", args.before, clf, subset, args.n)
    rows.append(r)
    folder_stats = st
    runs = [spec.split("=", 1) for spec in args.run]
    for label, run in runs:
        rows.append(row(label, last_snapshot(run), clf, subset, args.n)[0])
    target = {"model": "folder (target)", "file": args.subset, "frechet_to_folder": 0.0}
    for a in SHOWN:
        key = f"{a}_rate" if a in LOGITS else f"{a}_mean"
        target[key] = folder_stats.loc[a, "rate_real" if a in LOGITS else "mean_real"]
    rows.append(target)
    table = pd.DataFrame(rows)
    table.to_csv(os.path.join(args.out, "stats.csv"), index=False)

    curves = []
    for label, run in runs:
        m = pd.read_csv(os.path.join(run, "metrics.csv"))
        last = int(os.path.basename(last_snapshot(run)).split("-")[-1].split(".")[0])
        m = m[m.step <= last]  # up to the snapshot the table scores (a run stopped later logged a little more)
        curves.append(m[["step", "kimg", "r_t", "augment_p"]].assign(run=label))
    curves = pd.concat(curves) if curves else pd.DataFrame()
    curves.to_csv(os.path.join(args.out, "curves.csv"), index=False)
    if len(curves):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        for label, part in curves.groupby("run", sort=False):
            axes[0].plot(part.kimg, part.r_t, label=label)
            axes[1].plot(part.kimg, part.augment_p, label=label)
        axes[0].axhline(0.6, color="grey", lw=0.8, ls="--")
        axes[0].set(xlabel="kimg", ylabel="r_t = E[sign D(real)]", ylim=(-0.05, 1.05))
        axes[1].set(xlabel="kimg", ylabel="augmentation p")
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "curves.png"), dpi=120)
    cols = [c for c in table.columns if c != "file"]
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for _, r in table.iterrows():
        lines.append("| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
