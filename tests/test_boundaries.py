"""InterFaceGAN boundaries and linear separability against planted directions and hand computations."""

import json

import numpy as np
import pytest

from latentlab.boundaries import (
    conditional_entropy,
    linear_separability,
    split_samples,
    train_boundaries,
    train_boundary,
    write_boundary,
)


def planted(n=4000, d=32, noise=0.1, seed=0):
    rng = np.random.RandomState(seed)
    true = rng.randn(d)
    true /= np.linalg.norm(true)
    codes = rng.randn(n, d)
    return codes, codes @ true + noise * rng.randn(n), true


@pytest.mark.parametrize("solver", ["linear", "svc"])
def test_planted_direction_is_recovered(solver):
    codes, scores, true = planted()
    b = train_boundary(codes, scores, ratio=0.1, solver=solver)
    assert b.normal.shape == (32,) and abs(np.linalg.norm(b.normal) - 1) < 1e-12
    assert b.normal @ true > 0.99
    assert b.val_accuracy > 0.97 and b.remaining_accuracy > 0.9
    assert (b.n_train, b.n_val, b.n_remaining) == (560, 240, 3200)


def test_matches_interfacegan_procedure_written_out():
    """The same procedure spelled out with scikit-learn's SVC (seeded RNG in place of InterFaceGAN's global one)."""
    from sklearn import svm

    codes, scores, _ = planted(n=600, d=8, noise=1.0, seed=3)
    ours = train_boundary(codes, scores, ratio=0.1, split=0.7, solver="svc", seed=5)
    order = np.argsort(scores)[::-1]
    c, s = codes[order], scores[order]
    chosen = 60
    train = 42
    rng = np.random.RandomState(5)
    pi, ni = rng.permutation(chosen), rng.permutation(chosen)
    x = np.concatenate([c[:chosen][pi[:train]], c[-chosen:][ni[:train]]])
    y = np.concatenate([np.ones(train), np.zeros(train)])
    clf = svm.SVC(kernel="linear").fit(x, y)
    a = clf.coef_.reshape(-1)
    np.testing.assert_allclose(ours.normal, a / np.linalg.norm(a), atol=1e-8)
    vx = np.concatenate([c[:chosen][pi[train:]], c[-chosen:][ni[train:]]])
    vy = np.concatenate([np.ones(chosen - train), np.zeros(chosen - train)])
    assert ours.val_accuracy == pytest.approx(np.mean(clf.predict(vx) == vy))
    mid = (s[0] + s[-1]) / 2
    rem = c[chosen:-chosen]
    assert ours.remaining_accuracy == pytest.approx(np.mean(clf.predict(rem) == (s[chosen:-chosen] >= mid)))


def test_split_counts_and_midpoint_labels():
    codes = np.arange(20.0)[:, None] * np.ones((1, 2))
    scores = np.arange(20.0)  # midpoint (19 + 0) / 2 = 9.5
    (tx, ty), (vx, vy), (rx, ry) = split_samples(codes, scores, ratio=0.2, split=0.5)
    assert len(tx) == 4 and len(vx) == 4 and len(rx) == 12
    assert set(tx[ty == 1][:, 0]) | set(vx[vy == 1][:, 0]) == {16.0, 17.0, 18.0, 19.0}
    assert list(rx[:, 0]) == list(range(15, 3, -1)) and list(ry) == [1] * 6 + [0] * 6
    with pytest.raises(ValueError, match="too few samples"):
        split_samples(codes[:4], scores[:4], ratio=0.02)
    with pytest.raises(ValueError, match="NaN"):
        split_samples(codes, np.full(20, np.nan))


def test_multi_attribute_and_conditional_boundaries(tmp_path):
    rng = np.random.RandomState(1)
    codes = rng.randn(3000, 16)
    dirs = np.linalg.qr(rng.randn(16, 2))[0].T
    scores = np.stack([codes @ dirs[0] + codes @ dirs[1] * 0.8, codes @ dirs[1]], axis=1)
    out = train_boundaries(codes, scores, ["smile", "age"], conditions={"smile": ["age"]}, ratio=0.1)
    assert set(out) == {"smile", "age"}
    assert abs(out["smile"].normal @ out["age"].normal) < 1e-10  # conditioned: orthogonal to age
    assert out["smile"].normal @ dirs[0] > 0.95 and out["smile"].meta["conditions"] == ["age"]
    report = write_boundary(out["smile"], str(tmp_path / "b" / "smile.npy"), space="w", extra={"model_id": "abc"})
    arr = np.load(tmp_path / "b" / "smile.npy")
    assert arr.shape == (1, 16) and arr.dtype == np.float64
    assert report["model_id"] == "abc" and json.loads((tmp_path / "b" / "smile.json").read_text())["space"] == "w"
    index = json.loads((tmp_path / "b" / "index.json").read_text())
    assert index["attributes"]["smile"]["file"] == "smile.npy"
    with pytest.raises(ValueError, match="unknown attribute 'gender'"):
        train_boundaries(codes, scores, ["smile", "age"], attrs=["gender"])


def test_conditional_entropy_by_hand():
    x = np.array([0, 0, 1, 1])
    y = np.array([0, 1, 1, 1])
    # joint (0,0)=.25 (0,1)=.25 (1,1)=.5; H(X,Y) - H(X) = 1.5 - 1 bits
    assert conditional_entropy(x, y) == pytest.approx(0.5, abs=1e-7)
    assert conditional_entropy(y, y) == 0.0


def test_separability_extremes():
    rng = np.random.RandomState(0)
    codes = rng.randn(4000, 8)
    sep = linear_separability(codes, np.stack([codes[:, 0], codes[:, 1] - codes[:, 2]], 1) * 5, names=["a", "b"])
    # perfectly separable; the official float32 arithmetic leaves H(Y) - I(X;Y) a few 1e-8 bits above 0
    assert sep.score == pytest.approx(1.0, abs=1e-6) and list(sep.entropies.index) == ["a", "b"] and sep.kept == 2000
    noise = rng.randn(4000, 3) * 5  # labels unrelated to the codes
    res = linear_separability(codes, noise)
    assert 2**3 * 0.85 < res.score <= 2**3 + 1e-9
    with pytest.raises(ValueError, match="keep"):
        linear_separability(codes, noise, keep=0)
