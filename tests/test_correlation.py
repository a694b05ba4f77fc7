"""Correlation study pieces against hand computations."""
import numpy as np
import pandas as pd
import pytest
import torch

from latentlab.studies.correlation import compare_correlations, correlation_matrix, edit_scores, linearity


class IdentityG(torch.nn.Module):
    """mapping(z) = z broadcast; synthesis shows the first w as a 1x1 image: the classifier sees the code."""

    z_dim = w_dim = 3
    c_dim = 0
    num_ws = 2

    def mapping(self, z, c, truncation_psi=1, truncation_cutoff=None):
        return z[:, None].repeat(1, 2, 1)

    class _S:
        def __call__(self, ws, noise_mode="const"):
            return ws[:, 0, :, None, None]

        style_dims = {}

    synthesis = _S()


def test_edit_scores_are_linear_for_a_linear_classifier():
    G = IdentityG()
    clf = lambda img: img[:, :, 0, 0] * torch.tensor([2.0, -1.0, 0.5])  # noqa: E731
    clf_names = ["a", "b", "c"]

    class C:
        names = clf_names

        def __call__(self, img):
            return clf(img)

    n = np.array([1.0, 0.0, 0.0])
    frame = edit_scores(G, C(), {("w", "a"): n, ("z", "a"): n}, seeds=[0, 1, 2], alphas="-2:2:5")
    assert len(frame) == 2 * 5 * 3 and list(frame.columns[:4]) == ["space", "edited", "alpha", "seed"]
    curves, fits = linearity(frame, {"a": "a"})
    assert np.allclose(fits["slope"], 2.0) and np.allclose(fits["r2"], 1.0)
    w = curves[curves.space == "w"]
    base = frame[(frame.space == "w") & (frame.alpha == 0)]["a"].mean()
    assert np.allclose(w["mean"].to_numpy(), base + 2.0 * np.linspace(-2, 2, 5))
    assert np.allclose(w["std"], w["std"].iloc[0])  # a pure shift keeps the spread


def test_correlations_and_their_difference():
    rng = np.random.RandomState(0)
    x = rng.randn(500)
    gen = pd.DataFrame({"p": x, "q": x + 0.1 * rng.randn(500), "r": rng.randn(500)})
    ref = pd.DataFrame({"p": np.sign(x), "q": np.sign(rng.randn(500)), "r": np.sign(rng.randn(500))})
    g, r = correlation_matrix(gen, ["p", "q", "r"]), correlation_matrix(ref, ["p", "q", "r"])
    assert g.loc["p", "q"] == pytest.approx(np.corrcoef(gen.p, gen.q)[0, 1])
    out = compare_correlations(g, r)
    assert np.allclose(out["difference"], g - r) and np.allclose(out["difference_cubed"], (g - r) ** 3)
    assert out["difference"].loc["p", "q"] > 0.8  # generated p, q correlate; the reference's do not
