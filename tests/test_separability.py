"""Linear separability against an independent float32 rendering of the official procedure and hand-made tables."""

import math

import numpy as np
import pytest

from latentlab.boundaries import conditional_entropy, conditional_entropy_from_table, linear_separability

# --- an independent reference, step by step as NVlabs/stylegan metrics/linear_separability.py does it ---


def ref_normalize(p):
    p = np.asarray(p).astype(np.float32)
    return p / np.sum(p)


def ref_entropy(p):
    p = ref_normalize(p)
    out = 0.0
    for row in p:
        for v in row:
            if v > 0.0:
                out -= v * np.log2(v)
    return out


def ref_mutual_information(p):
    p = ref_normalize(p)
    px, py = np.sum(p, axis=1), np.sum(p, axis=0)
    out = 0.0
    for x in range(2):
        for y in range(2):
            if p[x][y] > 0.0:
                out += p[x][y] * np.log2(p[x][y] / (px[x] * py[y]))
    return out


def ref_conditional_entropy(p):
    p = ref_normalize(p)
    return max(0.0, ref_entropy(np.sum(p, axis=0, keepdims=True)) - ref_mutual_information(p))


def ref_separability(codes, logits, num_keep):
    from sklearn.svm import LinearSVC

    entropies = []
    for a in range(logits.shape[1]):
        col = logits[:, a : a + 1].astype(np.float32)
        x = np.concatenate([col, -col], axis=1)  # TF softmax: exp(x - max) / sum, in float32
        e = np.exp(x - np.max(x, axis=1, keepdims=True))
        probs = e / np.sum(e, axis=1, keepdims=True)
        assert probs.dtype == np.float32
        kept = sorted(range(len(codes)), key=lambda i: -np.max(probs[i]))[:num_keep]  # Python's sort is stable
        targets = np.argmax(probs[kept], axis=1)
        try:
            svm = LinearSVC(max_iter=1000, random_state=0)
            svm.fit(codes[kept], targets)
            outputs = svm.predict(codes[kept])
        except ValueError:
            outputs = targets
        p = [[np.mean([(o, t) == (row, col) for o, t in zip(outputs, targets)]) for col in (0, 1)] for row in (0, 1)]
        entropies.append(ref_conditional_entropy(p))
    return 2 ** np.sum(entropies), entropies


def saturated_case(seed=0):
    """400 samples: 300 with |logit| > 9 (float32 confidence exactly 1.0), 100 unsure ones scattered among them.
    The first 200 saturated samples (in sampling order) are separable in code 0 except 12 flipped ones;
    the last 100 saturated ones have the LARGEST logits and codes unrelated to their label."""
    rng = np.random.RandomState(seed)
    n, d = 400, 4
    sign = rng.choice([-1.0, 1.0], n)
    slots = np.sort(rng.choice(n, 100, replace=False))
    saturated = np.setdiff1d(np.arange(n), slots)  # in sampling order
    early, late = saturated[:200], saturated[200:]
    mag = np.empty(n)
    mag[early], mag[late], mag[slots] = rng.uniform(9, 14, 200), rng.uniform(15, 25, 100), rng.uniform(0, 3, 100)
    codes = rng.randn(n, d)
    codes[early, 0] = sign[early] * (1 + rng.rand(200))
    flipped = rng.choice(early, 12, replace=False)
    codes[flipped, 0] *= -1
    logits = np.stack([sign * mag, rng.randn(n) * 12], axis=1).astype(
        np.float32
    )  # 2nd attribute: noise, mostly saturated
    return codes, logits, early, late


def test_official_ranking_matches_the_reference_on_saturated_logits():
    codes, logits, early, late = saturated_case()
    p = np.stack([logits[:, 0], -logits[:, 0]], 1)
    assert (np.exp(p - p.max(1, keepdims=True)).astype(np.float32).max(1) == 1).sum() >= 300  # ties at exactly 1.0
    expected, ref_h = ref_separability(codes, logits, num_keep=200)
    got = linear_separability(codes, logits, names=["sat", "noise"], keep=0.5)
    assert got.ranking == "official" and got.kept == 200
    np.testing.assert_allclose(got.entropies.values, ref_h, rtol=1e-6, atol=1e-7)
    assert got.score == pytest.approx(expected, rel=1e-6)
    assert got.entropies["sat"] < 0.45  # the kept set is the first 200 saturated samples: mostly separable

    exact = linear_separability(codes, logits, names=["sat", "noise"], keep=0.5, ranking="exact")
    assert exact.entropies["sat"] > got.entropies["sat"] + 0.3  # |logit| ranking keeps the 100 unrelated ones
    assert abs(exact.score / got.score - 1) > 0.2


def test_exact_ranking_is_float64_abs_logit():
    from sklearn.svm import LinearSVC

    codes, logits, _, _ = saturated_case(seed=1)
    z = logits[:, 0].astype(np.float64)
    kept = np.argsort(-np.abs(z), kind="stable")[:200]
    targets = (z[kept] < 0).astype(int)  # class 0 = the logit's side, as the official argmax
    out = LinearSVC(max_iter=1000, random_state=0).fit(codes[kept], targets).predict(codes[kept])
    counts = np.array([[np.sum((out == r) & (targets == c)) for c in (0, 1)] for r in (0, 1)])
    res = linear_separability(codes, logits[:, :1], keep=0.5, ranking="exact")
    assert res.entropies.iloc[0] == pytest.approx(ref_conditional_entropy(counts), rel=1e-6)


def test_ties_keep_sampling_order():
    """Reversing the sampling order changes which saturated samples are kept (official) but not the |logit| ranking."""
    codes, logits, _, _ = saturated_case(seed=2)
    fwd = linear_separability(codes, logits[:, :1], keep=0.5)
    rev = linear_separability(codes[::-1], logits[::-1, :1], keep=0.5)
    assert fwd.entropies.iloc[0] + 0.3 < rev.entropies.iloc[0]
    ex_f = linear_separability(codes, logits[:, :1], keep=0.5, ranking="exact")
    ex_r = linear_separability(codes[::-1], logits[::-1, :1], keep=0.5, ranking="exact")
    assert ex_f.entropies.iloc[0] == pytest.approx(ex_r.entropies.iloc[0], abs=0.02)


@pytest.mark.parametrize(
    "table,bits",
    [
        ([[5, 0], [0, 7]], 0.0),  # perfect separation
        ([[0, 3], [4, 0]], 0.0),  # perfect, with the SVM's sides swapped
        ([[1, 1], [1, 1]], 1.0),  # independent, balanced labels
        ([[2, 0], [1, 1]], 0.5),  # X=0 decides Y; X=1 (half the samples) is a coin flip
        ([[3, 7], [0, 0]], -(0.3 * math.log2(0.3) + 0.7 * math.log2(0.7))),  # X constant: H(Y|X) = H(Y) = 0.8813
        (
            [[1, 3], [2, 6]],
            -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75)),
        ),  # independent, unbalanced: H(Y) = 0.8113
    ],
)
def test_conditional_entropy_tables_by_hand(table, bits):
    assert conditional_entropy_from_table(table) == pytest.approx(bits, abs=2e-7)


def test_rounding_below_zero_is_clamped():
    p = np.array([[1, 0], [0, 3]], dtype=np.float32)
    p /= p.sum()
    py = p.sum(0, keepdims=True)
    assert ref_entropy(py) - ref_mutual_information(p) < 0  # float32 rounding dips below zero here
    assert conditional_entropy_from_table([[1, 0], [0, 3]]) == 0.0


def test_score_is_two_to_the_sum_of_bits_and_json_fields():
    x = np.array([0, 0, 1, 1])
    assert conditional_entropy(x, np.array([0, 1, 1, 1])) == pytest.approx(0.5, abs=1e-7)
    rng = np.random.RandomState(0)
    codes = rng.randn(600, 3)
    res = linear_separability(codes, rng.randn(600, 2) * 3, names=["u", "v"])
    assert res.score == pytest.approx(2 ** res.entropies.sum(), rel=1e-12)
    d = res.to_dict()
    assert d["unit"] == "bits" and d["ranking"] == "official" and set(d["entropies"]) == {"u", "v"}
    assert d["entropies_nats"]["u"] == pytest.approx(d["entropies"]["u"] * math.log(2))


def test_bad_input():
    codes = np.zeros((10, 2))
    with pytest.raises(ValueError, match="ranking must be one of official, exact"):
        linear_separability(codes, np.ones(10), ranking="float64")
    with pytest.raises(ValueError, match="NaN or infinity"):
        linear_separability(codes, np.full(10, np.nan))
    with pytest.raises(ValueError, match="distinct"):
        linear_separability(codes, np.ones((10, 2)), names=["a", "a"])


def test_svm_solver_official_is_the_dual_one(monkeypatch):
    """svm='official' fits LinearSVC with the dual solver (the scikit-learn default of the official code);
    'primal' with dual=False; both give a perfect score on separable codes."""
    import sklearn.svm

    seen = []
    real = sklearn.svm.LinearSVC

    def spy(**kw):
        seen.append(kw.get("dual"))
        return real(**kw)

    monkeypatch.setattr(sklearn.svm, "LinearSVC", spy)
    rng = np.random.RandomState(0)
    codes = rng.randn(200, 4)
    logits = 3 * codes[:, :1]
    official = linear_separability(codes, logits, keep=0.5)
    primal = linear_separability(codes, logits, keep=0.5, svm="primal")
    assert seen == [True, False]
    assert official.svm == "official" and primal.svm == "primal"
    assert official.score == pytest.approx(1, abs=1e-6) and primal.score == pytest.approx(1, abs=1e-6)
    with pytest.raises(ValueError, match="svm must be"):
        linear_separability(codes, logits, svm="fast")
