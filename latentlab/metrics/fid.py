"""Frechet Inception Distance from feature statistics, as StyleGAN2-ADA's `frechet_inception_distance.py`.

    fid = fid_from_stats(mu_gen, sigma_gen, mu_real, sigma_real)
    fid = fid_from_features(feats_gen, feats_real)       # NVIDIA's statistics of two feature sets first

FID = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)). NVIDIA takes the square root with
scipy.linalg.sqrtm(S1 S2) (a Schur decomposition of the non-symmetric product, complex in general) and keeps
the real part. latentlab has one Frechet implementation, `latentlab.studies.frechet.frechet_distance`, which
takes tr (S1 S2)^(1/2) as the sum of square roots of the eigenvalues of the symmetric PSD matrix
S1^(1/2) S2 S1^(1/2): the same number for covariance matrices (PSD), with no complex round-off
(tests/test_metrics_compute.py checks it against scipy's sqrtm to 1e-6 relative). The statistics are NVIDIA's
(`FeatureStats.get_mean_cov`: the covariance divides by n).
"""

from __future__ import annotations

import numpy as np

from ..studies.frechet import frechet_distance

__all__ = ["fid_from_stats", "fid_from_features"]


def fid_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """FID of two Gaussians (mean [F], covariance [F, F]); float >= 0. The order does not matter."""
    s1 = np.asarray(sigma1, dtype=np.float64)
    s2 = np.asarray(sigma2, dtype=np.float64)
    # float64 sums of x x^T are symmetric only to round-off; frechet_distance checks symmetry and symmetrises
    return frechet_distance(mu1, (s1 + s1.T) / 2, mu2, (s2 + s2.T) / 2)


def fid_from_features(feats1, feats2) -> float:
    """FID of two feature sets [N, F] with NVIDIA's statistics (float64 sums, covariance divided by n)."""
    from .stats import FeatureStats

    stats = []
    for f in (feats1, feats2):
        s = FeatureStats(capture_mean_cov=True)
        s.append(f)
        stats.append(s.get_mean_cov())
    return fid_from_stats(*stats[0], *stats[1])
