"""Attribute Linearity Score against hand computations on an identity 'generator'."""
import numpy as np
import pytest
import torch

from latentlab.studies import als, als_from_logits, bootstrap_ci


class IdentityG:
    """synthesis(ws) returns ws[:, 0] as a 1x1 'image' with w_dim channels: the classifier sees the code."""

    num_ws = 3

    class _S:
        def __call__(self, ws, noise_mode="const"):
            return ws[:, 0, :, None, None]

    synthesis = _S()


def test_linear_classifier_gives_zero():
    torch.manual_seed(0)
    u = torch.randn(5, 3)
    w0, w1 = torch.randn(7, 5), torch.randn(7, 5)
    clf = lambda img: img[:, :, 0, 0] @ u + 0.3  # noqa: E731
    for protocol in ("paper", "hsr"):
        res = als(IdentityG(), clf, w0, w1, steps=10, protocol=protocol)
        assert list(res.index) == ["attr0", "attr1", "attr2", "mean"]
        assert np.allclose(res.values, 0, atol=1e-9)


def test_quadratic_classifier_known_value():
    # c(x) = (u.x)^2: deviation from the chord is -t(1-t) d^2 with d = u.(w1 - w0)
    u = torch.tensor([1.0, 2.0])
    w0, w1 = torch.tensor([[0.0, 0.0], [1.0, 0.0]]), torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    clf = lambda img: ((img[:, :, 0, 0] @ u) ** 2)[:, None]  # noqa: E731
    n = 10
    t = np.arange(1, n + 1) / n
    d = np.array([3.0, 2.0])
    expected = np.mean([np.sum((t * (1 - t)) ** 2 * di**4) / n for di in d])
    res = als(IdentityG(), clf, w0, w1, steps=n, names=["q"])
    assert res["q"] == pytest.approx(expected, rel=1e-5) and res["mean"] == pytest.approx(expected, rel=1e-5)
    assert res.attrs["per_pair"].shape == (2, 1) and res.attrs["logits"].shape == (2, 11, 1)


def test_hsr_protocol_by_hand():
    rng = np.random.RandomState(0)
    logits = rng.randn(4, 11, 2)
    res = als_from_logits(logits, ["a", "b"], protocol="hsr")
    for j, name in enumerate("ab"):
        x = logits[:, :, j]
        x = (x - x.mean()) / x.std()
        expected = 0.0
        for k in range(11):
            tt = k / 10
            expected += np.mean(np.abs((1 - tt) * x[:, 0] + tt * x[:, -1] - x[:, k])) ** 2
        assert res[name] == pytest.approx(expected)
    assert res["mean"] == pytest.approx((res["a"] + res["b"]) / 2)


def test_wplus_pairs_and_errors_and_bootstrap():
    w0, w1 = torch.randn(3, 3, 4), torch.randn(3, 3, 4)
    res = als(IdentityG(), lambda img: img[:, :2, 0, 0] ** 3, w0, w1, steps=4)
    assert res["mean"] > 0
    with pytest.raises(ValueError, match="w0 and w1"):
        als(IdentityG(), lambda img: img, torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="protocol"):
        als_from_logits(np.zeros((2, 3, 1)), protocol="other")
    lo, hi = bootstrap_ci(res.attrs["per_pair"], n_boot=200)
    assert np.all(lo <= res.values[:2] + 1e-12) and np.all(res.values[:2] <= hi + 1e-12)


def test_als_on_a_real_generator_is_deterministic(tiny_generator):
    G = tiny_generator
    with torch.no_grad():
        w = G.mapping(torch.randn(4, 16), None)[:, 0]
    clf = lambda img: img.mean(dim=[2, 3])  # noqa: E731
    a = als(G, clf, w[:2], w[2:], steps=5, names=["r", "g", "b"])
    b = als(G, clf, w[:2], w[2:], steps=5, names=["r", "g", "b"])
    assert a.equals(b) and (a >= 0).all() and np.isfinite(a.values).all()


def test_z_space_pairs_follow_the_slerp(tiny_generator):
    from latentlab.edits import slerp
    from latentlab.studies.reports import als_pairs, als_study

    G = tiny_generator
    clf = lambda img: img.mean(dim=[2, 3])  # noqa: E731
    res = als_study(G, clf, pairs=2, steps=4, space="z")
    z0, z1 = als_pairs(G, 2, space="z")
    with torch.no_grad():
        mid = slerp(z0, z1, torch.tensor([0.5]))[0]
        expected = clf(G.synthesis(G.mapping(mid, None)))
    np.testing.assert_allclose(res.attrs["logits"][:, 2], expected.numpy(), atol=1e-5)
