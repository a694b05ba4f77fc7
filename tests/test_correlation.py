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


# ---- per-space matrices (the paper's figures 6a/6b and 7) -----------------------------------------

from latentlab.studies.correlation import (  # noqa: E402
    compare_spaces,
    comparison_lines,
    parse_score_map,
    score_columns,
    space_correlations,
    transform_scores,
)
from latentlab.studies.reports import corr_study, write_corr_report  # noqa: E402

SEEDS = list(range(12))
ALPHAS = np.linspace(-3, 3, 7)
S2 = np.sqrt(0.5)
# IdentityG shows the code itself, so the scores are z + alpha n whichever space is edited; the two
# spaces' directions differ: Z moves a and b together (a ~ b), W moves them apart (a ~ -b).
DIRS = {
    ("z", "a"): np.array([S2, S2, 0.0]),
    ("z", "c"): np.array([0.0, 0.0, 1.0]),
    ("w", "a"): np.array([S2, -S2, 0.0]),
    ("w", "c"): np.array([0.0, S2, S2]),
}


class Identity:
    """Classifier scores = the three numbers of the 1x1 'image'; optional declared score kinds."""

    names = ["a", "b", "c"]

    def __init__(self, score_kinds=None):
        if score_kinds is not None:
            self.score_kinds = score_kinds

    def __call__(self, img):
        return img[:, :, 0, 0]


def planted_rows(space):
    """Every score row of `space`, computed here from the seeds' z (RandomState(seed).randn, as generate.py)."""
    z = np.stack([np.random.RandomState(s).randn(3) for s in SEEDS])
    return np.concatenate([z + a * n for (sp, _), n in DIRS.items() if sp == space for a in ALPHAS])


def corr(rows):
    return np.corrcoef(rows, rowvar=False)


def run_study(**kw):
    return corr_study(IdentityG(), kw.pop("classifier", Identity()), DIRS, SEEDS, "-3:3:7", {"a": "a", "c": "c"}, **kw)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_z_and_w_matrices_are_each_their_own_rows():
    res = run_study()
    m = res["matrices"]
    assert list(m) == ["z_generated", "w_generated", "z_minus_w", "pooled_generated"]
    z, w = corr(planted_rows("z")), corr(planted_rows("w"))
    np.testing.assert_allclose(m["z_generated"].to_numpy(), z, atol=1e-5)
    np.testing.assert_allclose(m["w_generated"].to_numpy(), w, atol=1e-5)
    assert z[0, 1] > 0.4 and w[0, 1] < -0.4  # the planted structure: the two spaces disagree on (a, b)
    np.testing.assert_allclose(m["z_minus_w"].to_numpy(), z - w, atol=1e-5)
    pooled = corr(np.concatenate([planted_rows("z"), planted_rows("w")]))
    np.testing.assert_allclose(m["pooled_generated"].to_numpy(), pooled, atol=1e-5)
    assert not np.allclose(pooled, z, atol=0.05) and not np.allclose(pooled, w, atol=0.05)
    assert list(m["z_generated"].columns) == ["a", "b", "c"]


def test_each_space_against_the_reference():
    rng = np.random.RandomState(1)
    x = np.sign(rng.randn(200))
    ref = pd.DataFrame(
        {
            "file": [f"{i}.jpg" for i in range(200)],
            "a": x,
            "b": x * np.sign(rng.randn(200) + 1.5),
            "c": np.sign(rng.randn(200)),
            "d": np.sign(rng.randn(200)),
        }
    )  # d: not a classifier attribute
    res = run_study(reference=ref)
    m = res["matrices"]
    r = corr(ref[["a", "b", "c"]].to_numpy(float))
    np.testing.assert_allclose(m["reference"].to_numpy(), r)
    for space in ("z", "w"):
        g = corr(planted_rows(space))
        np.testing.assert_allclose(m[f"{space}_difference"].to_numpy(), g - r, atol=1e-5)
        np.testing.assert_allclose(m[f"{space}_difference_cubed"].to_numpy(), (g - r) ** 3, atol=1e-5)
    pooled = corr(np.concatenate([planted_rows("z"), planted_rows("w")]))
    np.testing.assert_allclose(m["pooled_difference"].to_numpy(), pooled - r, atol=1e-5)
    np.testing.assert_allclose(m["z_minus_w"].to_numpy(), corr(planted_rows("z")) - corr(planted_rows("w")), atol=1e-5)
    # the comparison: mean and max |difference| over the 3 attribute pairs (upper triangle)
    cmp = res["comparison"]
    assert list(cmp.index) == ["z - reference", "w - reference", "pooled - reference", "z - w"]
    for space in ("z", "w"):
        d = np.abs((corr(planted_rows(space)) - r)[[0, 0, 1], [1, 2, 2]])
        assert cmp.loc[f"{space} - reference", "mean_abs"] == pytest.approx(d.mean(), abs=1e-5)
        assert cmp.loc[f"{space} - reference", "max_abs"] == pytest.approx(d.max(), abs=1e-5)
        assert cmp.loc[f"{space} - reference", "pairs"] == 3
    lines = comparison_lines(cmp, "logits")
    assert "logits" in lines[0] and any(l.split()[:3] == ["z", "-", "w"] for l in lines[1:])


def test_probabilities_correlate_the_sigmoid_of_the_logits():
    logits = run_study()
    probs = run_study(scores="probabilities")
    for space in ("z", "w"):
        p = corr(sigmoid(planted_rows(space)))
        np.testing.assert_allclose(probs["matrices"][f"{space}_generated"].to_numpy(), p, atol=1e-5)
        assert not np.allclose(p, logits["matrices"][f"{space}_generated"].to_numpy(), atol=1e-3)
    pooled = corr(sigmoid(np.concatenate([planted_rows("z"), planted_rows("w")])))
    np.testing.assert_allclose(probs["matrices"]["pooled_generated"].to_numpy(), pooled, atol=1e-5)
    # the table keeps the logits; the linearity curves are in probabilities
    pd.testing.assert_frame_equal(probs["frame"], logits["frame"])
    z_a = probs["frame"].query("space == 'z' and edited == 'a'")
    expected = z_a.groupby("alpha")["a"].apply(lambda v: sigmoid(v.to_numpy()).mean())
    got = probs["curves"].query("space == 'z' and edited == 'a'").set_index("alpha")["mean"]
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), atol=1e-9)
    assert probs["scores"] == "probabilities" and probs["transformed"] == ["a", "b", "c"]


def test_probabilities_leave_regressed_scores_alone():
    res = run_study(scores="probabilities", classifier=Identity({"a": "logit", "b": "logit", "c": "value"}))
    rows = planted_rows("w")
    rows = np.concatenate([sigmoid(rows[:, :2]), rows[:, 2:]], axis=1)
    np.testing.assert_allclose(res["matrices"]["w_generated"].to_numpy(), corr(rows), atol=1e-5)
    assert res["transformed"] == ["a", "b"]


def test_transform_and_score_map_rules():
    frame = pd.DataFrame({"space": ["z", "w"], "a": [800.0, -800.0]})
    out, cols = transform_scores(frame, ["a"], "probabilities")
    assert out["a"].tolist() == [1.0, 0.0] and cols == ["a"] and frame["a"].tolist() == [800.0, -800.0]
    with pytest.raises(ValueError, match="scores must be one of logits, probabilities"):
        transform_scores(frame, ["a"], "probs")
    with pytest.raises(ValueError, match="scores must be one of"):
        run_study(scores="sigmoid")
    assert parse_score_map("smile=Smiling, age = Young,") == {"smile": "Smiling", "age": "Young"}
    with pytest.raises(ValueError, match="--score-map: expected attr=ClassifierColumn, got 'smile'"):
        parse_score_map("smile")
    names = ["Smiling", "Young", "No_Beard"]
    assert score_columns(["smile", "young"], names) == {"smile": "Smiling", "young": "Young"}
    with pytest.raises(
        ValueError, match="'age' is the opposite of 'Young'; map it explicitly with --score-map age=Young"
    ):
        score_columns(["age"], names)
    assert score_columns(["age"], names, {"age": "Young"}) == {"age": "Young"}


def test_compare_spaces_skips_nan_pairs():
    m = pd.DataFrame([[0.0, np.nan, 0.5], [np.nan, 0.0, -0.25], [0.5, -0.25, 0.0]])
    cmp = compare_spaces({"z_difference": m})
    assert cmp.loc["z - reference"].tolist() == [0.375, 0.5, 2]


def test_report_files_and_titles(tmp_path, monkeypatch):
    from latentlab.studies import plots

    rng = np.random.RandomState(2)
    ref = pd.DataFrame({n: np.sign(rng.randn(50)) for n in "abc"})
    res = run_study(reference=ref, scores="probabilities")
    titles, seen = {}, {}
    real_heatmap, real_linearity = plots.heatmap, plots.linearity_plot

    def spy_heatmap(matrix, title, path_stem, **kw):
        titles[path_stem.rsplit("/", 1)[-1]] = title
        return real_heatmap(matrix, title, path_stem, **kw)

    def spy_linearity(curves, fits, path_stem, ylabels=None, title=None):
        seen.update(ylabels=ylabels, title=title)
        return real_linearity(curves, fits, path_stem, ylabels=ylabels, title=title)

    monkeypatch.setattr(plots, "heatmap", spy_heatmap)
    monkeypatch.setattr(plots, "linearity_plot", spy_linearity)
    out = tmp_path / "r"
    write_corr_report(res, str(out))
    stems = [
        "corr_reference",
        "corr_z_generated",
        "corr_z_difference",
        "corr_z_difference_cubed",
        "corr_w_generated",
        "corr_w_difference",
        "corr_w_difference_cubed",
        "corr_z_minus_w",
        "corr_pooled_generated",
        "corr_pooled_difference",
        "corr_pooled_difference_cubed",
    ]
    for stem in stems:
        for ext in ("csv", "md", "png", "pdf"):
            assert (out / f"{stem}.{ext}").exists(), f"{stem}.{ext}"
    for f in (
        "scores.csv",
        "corr_comparison.csv",
        "corr_comparison.md",
        "linearity.csv",
        "linearity_fits.csv",
        "linearity.png",
        "linearity.pdf",
        "summary.md",
    ):
        assert (out / f).exists(), f
    assert sorted(titles) == sorted(stems)
    assert all("probabilities" in t for k, t in titles.items() if k != "corr_reference")
    assert titles["corr_z_generated"].startswith("Z edits") and titles["corr_w_difference"].startswith("W edits")
    assert seen["ylabels"] == {"a": "probability (a)", "c": "probability (c)"} and "probabilities" in seen["title"]
    z = pd.read_csv(out / "corr_z_generated.csv", index_col=0)
    np.testing.assert_allclose(z.to_numpy(), corr(sigmoid(planted_rows("z"))), atol=1e-5)
    summary = (out / "summary.md").read_text()
    assert "**probabilities**" in summary and "z - reference" in summary and "corr_pooled_*" in summary
    scores = pd.read_csv(out / "scores.csv")
    np.testing.assert_allclose(scores[["a", "b", "c"]].to_numpy(), res["frame"][["a", "b", "c"]].to_numpy())


def test_one_space_has_no_z_minus_w():
    rows = planted_rows("w")
    frame = pd.DataFrame(rows, columns=["a", "b", "c"]).assign(space="w")
    m = space_correlations(frame, ["a", "b", "c"])
    assert list(m) == ["w_generated", "pooled_generated"]
    np.testing.assert_allclose(m["w_generated"].to_numpy(), corr(rows))
    assert compare_spaces(m).empty and comparison_lines(compare_spaces(m), "logits") == []
