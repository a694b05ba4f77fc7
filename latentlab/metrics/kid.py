"""Kernel Inception Distance, as StyleGAN2-ADA's `kernel_inception_distance.py` computes it.

    value = kid(feats_gen, feats_real, num_subsets=100, max_subset_size=1000, seed=0)

The unbiased MMD^2 estimate with the cubic polynomial kernel k(x, y) = (x . y / d + 1)^3 (d: the feature
dimension), averaged over `num_subsets` pairs of random subsets of m = min(N_gen, N_real, max_subset_size)
generated and real feature vectors each, drawn without replacement (the generated subset first, as NVIDIA):

    t_s = (sum_{i != j} k(x_i, x_j) + k(y_i, y_j)) / (m - 1) - 2 sum_{i, j} k(x_i, y_j) / m
    KID = mean_s(t_s) / m

Deliberate differences, documented: the subsets come from `numpy.random.RandomState(seed)` instead of NumPy's
global generator (RandomState(s) draws what np.random.seed(s) then np.random.choice would, so a run is
reproducible and identical to NVIDIA's code seeded with s), and the kernel sums are taken in float64 (NVIDIA
keeps the float32 features' products in float32; the estimate subtracts sums ~ m times larger than the result,
so float64 loses less to cancellation; the two agree to float32 round-off).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..utils.validate import check_int

__all__ = ["kid", "kid_subset_size"]


def kid_subset_size(num_gen: int, num_real: int, max_subset_size: int = 1000) -> int:
    """m, the subset size KID uses: min(num_gen, num_real, max_subset_size)."""
    return min(int(num_gen), int(num_real), int(max_subset_size))


def _features(x, what):
    x = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float32)
    if x.ndim != 2:
        raise ConfigError(f"KID: {what} features must be [N, F], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ConfigError(f"KID: {what} features hold non-finite values")
    return x


def kid(feats_gen, feats_real, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0) -> float:
    """KID of generated vs real features ([N, F] each); see the module docstring. Needs m >= 2 items each."""
    gen = _features(feats_gen, "generated")
    real = _features(feats_real, "real")
    if gen.shape[1] != real.shape[1]:
        raise ConfigError(f"KID: generated features have {gen.shape[1]} dimensions, real ones {real.shape[1]}")
    num_subsets = check_int("num_subsets", num_subsets, lo=1)
    max_subset_size = check_int("max_subset_size", max_subset_size, lo=2)
    d = gen.shape[1]
    m = kid_subset_size(len(gen), len(real), max_subset_size)
    if m < 2:
        raise ConfigError(
            f"KID needs at least 2 generated and 2 real images for its subsets, got {len(gen)} and {len(real)}"
        )
    rng = np.random.RandomState(seed)
    t = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(len(gen), m, replace=False)].astype(np.float64)
        y = real[rng.choice(len(real), m, replace=False)].astype(np.float64)
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        t += (a.sum() - np.trace(a)) / (m - 1) - b.sum() * 2 / m
    return float(t / num_subsets / m)
