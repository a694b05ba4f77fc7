"""Classifier-based fidelity report: statistics, correlations and Frechet distance against hand values."""

import numpy as np
import torch

from latentlab.studies.fidelity import fidelity_report, generated_images


class ChannelMeans:
    """Scores = mean of each colour channel; features = the same plus their squares."""

    names = ["r", "g", "b"]

    def __call__(self, x):
        return x.mean(dim=[2, 3])

    def features(self, x):
        m = x.mean(dim=[2, 3])
        return torch.cat([m, m.square()], dim=1)


def colour_images(values):
    v = torch.as_tensor(values, dtype=torch.float32)
    return v[:, :, None, None].expand(-1, -1, 4, 4).contiguous()


def test_identical_sets_agree_exactly():
    rng = np.random.default_rng(0)
    imgs = colour_images(rng.uniform(-1, 1, (50, 3)))
    rep = fidelity_report(ChannelMeans(), imgs, imgs.clone(), batch_size=7)
    assert rep["frechet"] < 1e-9
    assert np.allclose(rep["stats"].mean_diff_in_std, 0) and np.allclose(rep["stats"].std_ratio, 1)
    assert rep["corr_max_abs_diff"] < 1e-12


def test_shifted_set_matches_hand_values():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 0.2, (400, 3))
    real = colour_images(base)
    fake = colour_images(base + np.array([0.1, 0.0, 0.0]))  # red shifted by 0.1, same spread
    rep = fidelity_report(ChannelMeans(), fake, real, logit_names=["r"])
    stats = rep["stats"]
    std_r = base[:, 0].std(ddof=1)
    assert abs(stats.loc["r", "mean_diff_in_std"] - 0.1 / std_r) < 1e-4
    assert abs(stats.loc["g", "mean_diff_in_std"]) < 1e-6
    assert abs(stats.loc["r", "rate_fake"] - (base[:, 0] + 0.1 > 0).mean()) < 1e-9
    assert rep["corr_max_abs_diff"] < 1e-5  # a shift leaves correlations alone
    # Frechet distance on features (m, m^2): the m part contributes 0.1^2 exactly; the m^2 part is positive.
    assert rep["frechet"] > 0.01 - 1e-6


def test_generated_images_are_seed_deterministic(tiny_generator):
    a = generated_images(tiny_generator, [3, 4, 5], batch_size=2)
    b = generated_images(tiny_generator, [5], batch_size=2)
    assert a.shape == (3, 3, 16, 16) and torch.equal(a[2], b[0]) and a.abs().max() <= 1
