"""How close a generator's images are to a reference set, judged by an attribute classifier.

Three views, all from the classifier's point of view: per-attribute score statistics (mean,
std, and for logits the rate of positives), the attribute correlation matrices and their largest
difference, and a Frechet distance between the classifier's penultimate features of the two
sets (an FID with a task-specific network instead of Inception; only comparable across models
scored by the same classifier).
"""

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError
from ..latents import z_from_seeds
from .frechet import feature_stats, frechet_distance


@torch.no_grad()
def generated_images(G, seeds, psi=1.0, batch_size=64, device="cpu"):
    """Images [N, C, R, R] float32 in about [-1, 1] (on the CPU) for the given seeds, constant noise."""
    out = []
    seeds = list(seeds)
    for i in range(0, len(seeds), batch_size):
        z = z_from_seeds(seeds[i : i + batch_size], G.z_dim).to(device)
        c = G.empty_c(z.shape[0], device) if G.c_dim == 0 else None
        if c is None:
            raise ConfigError("fidelity reports need an unconditional generator")
        out.append(G(z, c, truncation_psi=psi, noise_mode="const").clamp(-1, 1).cpu())
    return torch.cat(out)


@torch.no_grad()
def _scores_and_features(classifier, images, batch_size):
    scores, feats = [], []
    for part in images.split(batch_size):
        scores.append(classifier(part).float().cpu())
        feats.append(classifier.features(part).float().cpu())
    return torch.cat(scores).numpy(), torch.cat(feats).numpy()


def fidelity_report(classifier, fake_images, real_images, batch_size=128, logit_names=()):
    """Compare two image sets [N, C, H, W] in [-1, 1] through `classifier` (needs `names`, `features`).

    Returns a dict: 'stats' (DataFrame per attribute: mean/std of both sets and their
    differences in units of the real std; for `logit_names` also the positive rates),
    'corr_fake', 'corr_real' (score correlation matrices), 'corr_max_abs_diff',
    'corr_mean_abs_diff' (off-diagonal), 'frechet' (classifier-feature Frechet distance),
    'n_fake', 'n_real'.
    """
    names = list(classifier.names)
    fs, ff = _scores_and_features(classifier, fake_images, batch_size)
    rs, rf = _scores_and_features(classifier, real_images, batch_size)
    fake, real = pd.DataFrame(fs, columns=names), pd.DataFrame(rs, columns=names)
    stats = pd.DataFrame(
        {
            "mean_fake": fake.mean(),
            "mean_real": real.mean(),
            "std_fake": fake.std(),
            "std_real": real.std(),
        }
    )
    stats["mean_diff_in_std"] = (stats.mean_fake - stats.mean_real) / stats.std_real
    stats["std_ratio"] = stats.std_fake / stats.std_real
    for n in logit_names:
        stats.loc[n, "rate_fake"] = float((fake[n] > 0).mean())
        stats.loc[n, "rate_real"] = float((real[n] > 0).mean())
    cf, cr = fake.corr(), real.corr()
    off = ~np.eye(len(names), dtype=bool)
    diff = (cf - cr).abs().values[off]
    return {
        "stats": stats,
        "corr_fake": cf,
        "corr_real": cr,
        "corr_max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "corr_mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "frechet": frechet_distance(*feature_stats(ff), *feature_stats(rf)),
        "n_fake": len(fake),
        "n_real": len(real),
    }


# ---- the toyfaces model report: generated faces vs fresh renders of the procedural dataset -------------------------
RENDER_SEEDS = (1, 2)  # the training set is toyfaces seed 0; the reference renders are fresh faces

# The bar the embedded model is trained to (issue 21), on the report's own measures: measure -> (sense, bound).
TOYFACES_TARGETS = {
    "frechet_classifier_features": ("<=", 5.0),
    "eyeglasses_rate_gap": ("<=", 0.05),  # |generated - renders| share of faces with eyeglasses
    "smile_std_ratio": (">=", 0.7),  # the spread of the smile score, generated / renders
    "yaw_std_ratio": (">=", 0.7),
    "corr_mean_abs_diff": ("<=", 0.08),  # mean |difference| of the off-diagonal attribute correlations
}


def toyfaces_measures(report):
    """The TOYFACES_TARGETS measures of a `fidelity_report` of toyfaces faces (a dict, plus 'meets_targets': the
    names of the measures within their bound, and 'all_met')."""
    stats = report["stats"]
    m = {
        "frechet_classifier_features": float(report["frechet"]),
        "eyeglasses_rate_gap": abs(float(stats.loc["eyeglasses", "rate_fake"] - stats.loc["eyeglasses", "rate_real"])),
        "smile_std_ratio": float(stats.loc["smile", "std_ratio"]),
        "yaw_std_ratio": float(stats.loc["yaw", "std_ratio"]),
        "corr_mean_abs_diff": float(report["corr_mean_abs_diff"]),
    }
    met = [k for k, (sense, bound) in TOYFACES_TARGETS.items() if (m[k] <= bound if sense == "<=" else m[k] >= bound)]
    return {**m, "meets_targets": met, "all_met": len(met) == len(TOYFACES_TARGETS)}


def toyfaces_renders(n, seed, resolution):
    """n fresh toyfaces renders (labels from `sample_attributes(n, seed)`) as float [n, 3, R, R] in [-1, 1]."""
    from ..datasets.toyfaces import render_batch, sample_attributes

    arr = render_batch(sample_attributes(n, seed), resolution)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1


def write_toyfaces_model_report(G, classifier, out_dir, n=2000, psi=1.0, device="cpu", model=None):
    """Does a toyfaces generator make the faces the renderer makes? Scores n generated faces (seeds 0..n-1)
    and n fresh renders with the toyfaces `classifier`, compares them (`fidelity_report`), with two render
    sets' distance as the floor. Writes attribute_stats.csv, corr_generated.csv, corr_renders.csv,
    generated.png, renders.png (64 of each), summary.json and summary.md into out_dir; returns summary.md's
    lines."""
    import json
    import os

    from ..attributes.toyfaces import LOGITS
    from ..utils.atomic import write_text
    from ..utils.images import make_grid, save_png, to_pil, to_uint8
    from ..utils.optional import available

    fake = generated_images(G, range(n), psi=psi, device=device)
    real = toyfaces_renders(n, RENDER_SEEDS[0], G.img_resolution)
    rep = fidelity_report(classifier, fake, real, logit_names=LOGITS)
    other = toyfaces_renders(n, RENDER_SEEDS[1], G.img_resolution)
    floor = fidelity_report(classifier, other, real, logit_names=LOGITS)
    os.makedirs(out_dir, exist_ok=True)
    from .reports import write_csv

    write_csv(rep["stats"], os.path.join(out_dir, "attribute_stats.csv"), float_format="%.4f")
    write_csv(rep["corr_fake"], os.path.join(out_dir, "corr_generated.csv"), float_format="%.4f")
    write_csv(rep["corr_real"], os.path.join(out_dir, "corr_renders.csv"), float_format="%.4f")
    save_png(to_pil(make_grid(to_uint8(fake[:64]), 8)), os.path.join(out_dir, "generated.png"))
    save_png(to_pil(make_grid(to_uint8(real[:64]), 8)), os.path.join(out_dir, "renders.png"))
    summary = {
        "model": model,
        "n": n,
        "psi": psi,
        "frechet_classifier_features": rep["frechet"],
        "frechet_floor_render_vs_render": floor["frechet"],
        "corr_max_abs_diff": rep["corr_max_abs_diff"],
        "corr_mean_abs_diff": rep["corr_mean_abs_diff"],
        "corr_max_abs_diff_floor": floor["corr_max_abs_diff"],
        "targets": toyfaces_measures(rep),
    }
    write_text(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2) + "\n")
    table = rep["stats"].to_markdown(floatfmt=".3f") if available("tabulate") else rep["stats"].round(3).to_string()
    md = [
        f"# toyfaces model report ({n} generated faces vs {n} fresh renders, psi {psi})",
        "",
        f"- classifier-feature Frechet distance: **{rep['frechet']:.3f}** (two render sets: {floor['frechet']:.3f})",
        f"- attribute correlations: max |difference| {rep['corr_max_abs_diff']:.3f}, "
        f"mean {rep['corr_mean_abs_diff']:.3f}"
        f" (two render sets: max {floor['corr_max_abs_diff']:.3f})",
        "- the targets (issue 21): " + target_line(summary["targets"]),
        "",
        "Classifier scores per attribute (mean_diff_in_std: mean difference in units of the renders' std):",
        "",
        table,
        "",
        "![generated](generated.png) ![renders](renders.png)",
        "",
    ]
    write_text(os.path.join(out_dir, "summary.md"), "\n".join(md))
    return md


def target_line(measures):
    """'Frechet 10.1 (<= 5: no), eyeglasses gap 0.184 (<= 0.05: no), ...' for summary.md and logs."""
    short = {"frechet_classifier_features": "Frechet", "eyeglasses_rate_gap": "eyeglasses gap"}
    parts = []
    for k, (sense, bound) in TOYFACES_TARGETS.items():
        name = short.get(k, k.replace("_", " "))
        parts.append(
            f"{name} {measures[k]:.3g} ({sense} {bound:g}: {'yes' if k in measures['meets_targets'] else 'no'})"
        )
    return ", ".join(parts)
