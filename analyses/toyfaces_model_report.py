"""Model report of a toyfaces generator: does it make the faces the renderer makes?

Scores generated faces and fresh renders with the toyfaces classifier and compares them
(attribute means, stds, positive rates, correlation matrices, classifier-feature Frechet
distance), with a render-vs-render Frechet distance as the floor. Writes summary.md, CSVs and
sample grids into --out.

    python analyses/toyfaces_model_report.py --n 2000 --out checkpoints/toyfaces/report
    python analyses/toyfaces_model_report.py --model runs/toy/network-snapshot-010000.safetensors --n 2000 --out reports/toy
"""
import argparse
import json
import os

import numpy as np
import torch

import latentlab
from latentlab import defaults
from latentlab.attributes import load_classifier
from latentlab.attributes.toyfaces import LOGITS
from latentlab.datasets.toyfaces import render_batch, sample_attributes
from latentlab.studies.fidelity import fidelity_report, generated_images
from latentlab.utils.atomic import write_text
from latentlab.utils.images import make_grid, save_png, to_pil, to_uint8

RENDER_SEEDS = (1, 2)  # the training set is seed 0; the reference renders are fresh faces


def renders(n, seed, resolution):
    arr = render_batch(sample_attributes(n, seed), resolution)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=defaults.NAME)
    ap.add_argument("--classifier", default=None, help="default: the embedded toyfaces classifier")
    ap.add_argument("--n", type=int, default=2000, help="generated faces (seeds 0..n-1) and renders per set")
    ap.add_argument("--psi", type=float, default=1.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    G = latentlab.load_generator(args.model, device=args.device)
    clf = load_classifier(args.classifier or defaults.classifier_spec()).to(args.device).eval()
    fake = generated_images(G, range(args.n), psi=args.psi, device=args.device)
    real = renders(args.n, RENDER_SEEDS[0], G.img_resolution)
    rep = fidelity_report(clf, fake, real, logit_names=LOGITS)
    floor = fidelity_report(clf, renders(args.n, RENDER_SEEDS[1], G.img_resolution), real, logit_names=LOGITS)
    os.makedirs(args.out, exist_ok=True)
    rep["stats"].to_csv(os.path.join(args.out, "attribute_stats.csv"), float_format="%.4f")
    rep["corr_fake"].to_csv(os.path.join(args.out, "corr_generated.csv"), float_format="%.4f")
    rep["corr_real"].to_csv(os.path.join(args.out, "corr_renders.csv"), float_format="%.4f")
    save_png(to_pil(make_grid(to_uint8(fake[:64]), 8)), os.path.join(args.out, "generated.png"))
    save_png(to_pil(make_grid(to_uint8(real[:64]), 8)), os.path.join(args.out, "renders.png"))
    summary = {
        "model": args.model, "n": args.n, "psi": args.psi,
        "frechet_classifier_features": rep["frechet"], "frechet_floor_render_vs_render": floor["frechet"],
        "corr_max_abs_diff": rep["corr_max_abs_diff"], "corr_mean_abs_diff": rep["corr_mean_abs_diff"],
        "corr_max_abs_diff_floor": floor["corr_max_abs_diff"],
    }
    write_text(os.path.join(args.out, "summary.json"), json.dumps(summary, indent=2) + "\n")
    table = rep["stats"].to_markdown(floatfmt=".3f") if _has_tabulate() else rep["stats"].round(3).to_string()
    md = [
        f"# toyfaces model report ({args.n} generated faces vs {args.n} fresh renders, psi {args.psi})", "",
        f"- classifier-feature Frechet distance: **{rep['frechet']:.3f}** (two render sets: {floor['frechet']:.3f})",
        f"- attribute correlations: max |difference| {rep['corr_max_abs_diff']:.3f}, mean {rep['corr_mean_abs_diff']:.3f}"
        f" (two render sets: max {floor['corr_max_abs_diff']:.3f})", "",
        "Classifier scores per attribute (mean_diff_in_std: mean difference in units of the renders' std):", "",
        table, "", "![generated](generated.png) ![renders](renders.png)", "",
    ]
    write_text(os.path.join(args.out, "summary.md"), "\n".join(md))
    print("\n".join(md[:4]))


def _has_tabulate():
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
