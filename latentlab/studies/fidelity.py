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
            raise ValueError("fidelity reports need an unconditional generator")
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
    stats = pd.DataFrame({
        "mean_fake": fake.mean(), "mean_real": real.mean(), "std_fake": fake.std(), "std_real": real.std(),
    })
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
