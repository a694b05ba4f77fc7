"""Frechet distance between two sets of images in the feature space of any extractor (FID-like).

    mu1, s1 = feature_stats(feats_a); mu2, s2 = feature_stats(feats_b)
    frechet_distance(mu1, s1, mu2, s2)        # |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))
    classifier_frechet_distance(clf, images_a, images_b)
    generator_frechet_distance(G, clf, real_images, n=5000)

With Inception features this is FID; here any network with `features(images) -> [N, F]` works
(e.g. the toyfaces classifier's 256-d penultimate features), so the numbers are comparable only
between runs that use the same extractor, the same preprocessing and similar sample sizes
(the estimate is biased upward for small N).

The matrix square root is taken without complex numbers: for PSD S1, S2,
tr (S1 S2)^(1/2) = tr (S1^(1/2) S2 S1^(1/2))^(1/2) = sum of sqrt of the eigenvalues of the
symmetric PSD matrix S1^(1/2) S2 S1^(1/2) (tiny negative eigenvalues from round-off are clipped to 0).
"""

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError

__all__ = [
    "feature_stats",
    "frechet_distance",
    "trace_sqrt_product",
    "extract_features",
    "classifier_frechet_distance",
    "generator_features",
    "generator_frechet_distance",
    "FrechetResult",
]


def feature_stats(features):
    """(mu [F], sigma [F, F]), float64: the mean and the unbiased (N - 1) covariance of features [N, F]."""
    f = (
        features.detach().double().cpu().numpy()
        if torch.is_tensor(features)
        else np.asarray(features, dtype=np.float64)
    )
    if f.ndim != 2:
        raise ConfigError(f"features must be [N, F], got shape {f.shape}")
    if f.shape[0] < 2:
        raise ConfigError(f"need at least 2 feature vectors for a covariance, got {f.shape[0]}")
    if not np.isfinite(f).all():
        raise ConfigError("features hold non-finite values")
    mu = f.mean(axis=0)
    centered = f - mu
    sigma = centered.T @ centered / (f.shape[0] - 1)
    return mu, (sigma + sigma.T) / 2


def _sqrtm_psd(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(sigma1, sigma2):
    """tr (S1 S2)^(1/2) for symmetric PSD S1, S2 (real, via the symmetric form; see the module doc)."""
    r1 = _sqrtm_psd(sigma1)
    m = r1 @ sigma2 @ r1
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def _check_stats(mu, sigma, which):
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ConfigError(f"mu{which} must be [F] and sigma{which} [F, F]; got {mu.shape} and {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ConfigError(f"mu{which} / sigma{which} hold non-finite values")
    scale = max(1.0, float(np.abs(sigma).max()))
    if np.abs(sigma - sigma.T).max() > 1e-6 * scale:
        raise ConfigError(f"sigma{which} is not symmetric")
    return mu, (sigma + sigma.T) / 2


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), the Frechet distance of two Gaussians (float, >= 0).

    Scalars are accepted for one-dimensional features (sigma is then the variance).
    """
    mu1, sigma1 = _check_stats(mu1, sigma1, 1)
    mu2, sigma2 = _check_stats(mu2, sigma2, 2)
    if mu1.shape != mu2.shape:
        raise ConfigError(f"the two sets have different feature sizes: {mu1.shape[0]} and {mu2.shape[0]}")
    diff = mu1 - mu2
    value = float(diff @ diff) + float(np.trace(sigma1) + np.trace(sigma2)) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return max(value, 0.0)  # round-off can leave -1e-12 for identical statistics


def _as_generator_range(images):
    """Float images [N, C, H, W] in [-1, 1]: floats pass through; uint8 (NHWC or NCHW) are converted."""
    x = images if torch.is_tensor(images) else torch.from_numpy(np.ascontiguousarray(images))
    if x.ndim != 4:
        raise ConfigError(f"images must be [N, C, H, W] (or uint8 [N, H, W, C]), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.permute(0, 3, 1, 2)
        return x.float() / 127.5 - 1.0
    if not x.is_floating_point():
        raise ConfigError(f"images must be float (generator range) or uint8, got {x.dtype}")
    return x


@torch.no_grad()
def extract_features(extractor, images, batch_size=64):
    """Features [N, F] float64 (numpy) of images (a tensor/array, or an iterable of batches).

    extractor: an object with `features(images)` (e.g. a ToyFacesClassifier) or a callable.
    """
    fn = extractor.features if hasattr(extractor, "features") else extractor
    if torch.is_tensor(images) or isinstance(images, np.ndarray):
        x = _as_generator_range(images)
        batches = (x[i : i + batch_size] for i in range(0, x.shape[0], batch_size))
    else:
        batches = (_as_generator_range(b) for b in images)
    parts = [fn(b).detach().double().cpu().numpy() for b in batches]
    if not parts:
        raise ConfigError("no images")
    return np.concatenate(parts, axis=0)


def classifier_frechet_distance(extractor, images_a, images_b, batch_size=64):
    """Frechet distance between two image sets in `extractor`'s feature space (see `extract_features`)."""
    fa = extract_features(extractor, images_a, batch_size)
    fb = extract_features(extractor, images_b, batch_size)
    return frechet_distance(*feature_stats(fa), *feature_stats(fb))


@torch.no_grad()
def generator_features(
    G,
    extractor,
    n,
    seed_start=0,
    batch_size=64,
    truncation_psi=1.0,
    truncation_cutoff=None,
    noise_mode="const",
    device="cpu",
    class_idx=None,
):
    """Features [n, F] of G's images for seeds seed_start .. seed_start + n - 1 (z as in the official generate.py)."""
    from ..latents.seeds import z_from_seeds

    n = int(n)
    if n < 2:
        raise ConfigError(f"n must be >= 2, got {n}")
    fn = extractor.features if hasattr(extractor, "features") else extractor
    parts = []
    for start in range(seed_start, seed_start + n, batch_size):
        seeds = list(range(start, min(start + batch_size, seed_start + n)))
        z = z_from_seeds(seeds, G.z_dim, device=device)
        c = None
        if getattr(G, "c_dim", 0):
            if class_idx is None:
                raise ConfigError("a conditional generator needs class_idx")
            c = torch.zeros((len(seeds), G.c_dim), device=device)
            c[:, class_idx] = 1
        ws = G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        img = G.synthesis(ws, noise_mode=noise_mode)
        parts.append(fn(img.float()).detach().double().cpu().numpy())
    return np.concatenate(parts, axis=0)


@dataclass
class FrechetResult:
    distance: float
    n_generated: int
    n_real: int

    def to_dict(self):
        return {"distance": self.distance, "n_generated": self.n_generated, "n_real": self.n_real}


def generator_frechet_distance(
    G,
    extractor,
    real_images,
    n=5000,
    seed_start=0,
    batch_size=64,
    truncation_psi=1.0,
    noise_mode="const",
    device="cpu",
    real_stats=None,
):
    """Frechet distance between n images of G and `real_images` (uint8 or [-1, 1] floats), or their
    precomputed `real_stats=(mu, sigma, count)`. Returns a FrechetResult."""
    fg = generator_features(
        G,
        extractor,
        n,
        seed_start=seed_start,
        batch_size=batch_size,
        truncation_psi=truncation_psi,
        noise_mode=noise_mode,
        device=device,
    )
    if real_stats is None:
        fr = extract_features(extractor, real_images, batch_size)
        mu_r, sigma_r, n_real = *feature_stats(fr), len(fr)
    else:
        mu_r, sigma_r, n_real = real_stats
    return FrechetResult(
        distance=frechet_distance(*feature_stats(fg), mu_r, sigma_r), n_generated=len(fg), n_real=int(n_real)
    )
