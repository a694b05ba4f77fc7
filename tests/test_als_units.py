"""ALS tables say each attribute's unit (logit^2, bounded^2, sd^2) and offer standardised scores."""

import json

import numpy as np
import pytest
import torch

from conftest import run_cli
from latentlab.studies.als import als_from_logits, mixed_units_note, score_units
from latentlab.studies.reports import als_table, read_als_report, write_als_comparison, write_als_report


def _logits(seed=0, pairs=6, frames=5):
    """Two attributes on very different scales: a logit-like one (x 20) and a bounded one (x 0.3)."""
    rng = np.random.RandomState(seed)
    return rng.randn(pairs, frames, 2) * np.array([20.0, 0.3])


def _paper_by_hand(logits, standardize):
    p, frames, a = logits.shape
    out = []
    for j in range(a):
        x = logits[:, :, j]
        if standardize:
            x = x / x.reshape(-1).std()
        total = 0.0
        for k in range(1, frames):
            t = k / (frames - 1)
            total += np.mean((x[:, k] - ((1 - t) * x[:, 0] + t * x[:, -1])) ** 2)
        out.append(total / (frames - 1))
    return np.array(out)


def test_standardised_paper_als_is_computed_on_scores_divided_by_their_std():
    logits = _logits()
    raw = als_from_logits(logits, ["male", "smile"], units=["logit", "bounded"])
    std = als_from_logits(logits, ["male", "smile"], standardize=True, units=["logit", "bounded"])
    np.testing.assert_allclose(raw.values[:-1], _paper_by_hand(logits, False), rtol=1e-12)
    np.testing.assert_allclose(std.values[:-1], _paper_by_hand(logits, True), rtol=1e-12)
    sd = logits.reshape(-1, 2).std(axis=0)
    np.testing.assert_allclose(std.values[:-1], raw.values[:-1] / sd**2, rtol=1e-12)  # a change of unit only
    assert std["mean"] == pytest.approx(std.values[:-1].mean())
    assert raw["male"] / raw["smile"] > 100 and std["male"] / std["smile"] < 100  # the raw mean is all 'male'
    assert raw.attrs["als_units"] == ["logit^2", "bounded^2"] and std.attrs["als_units"] == ["sd^2", "sd^2"]
    assert raw.attrs["units"] == std.attrs["units"] == ["logit", "bounded"]
    assert mixed_units_note(raw).startswith("the mean over attributes mixes ALS units (logit^2, bounded^2)")
    assert mixed_units_note(std) is None
    # the hsr protocol standardises already: the flag changes nothing there, and its unit is sd^2
    h1, h2 = als_from_logits(logits, protocol="hsr"), als_from_logits(logits, protocol="hsr", standardize=True)
    np.testing.assert_array_equal(h1.values, h2.values)
    assert h1.attrs["als_units"] == ["sd^2", "sd^2"]


def test_tables_carry_the_unit_and_reports_round_trip(tmp_path):
    logits = _logits(seed=1)
    raw = als_from_logits(logits, ["male", "smile"], units=["logit", "bounded"])
    std = als_from_logits(logits, ["male", "smile"], standardize=True, units=["logit", "bounded"])
    assert list(als_table(raw, n_boot=20)["unit"]) == ["logit^2", "bounded^2"]
    table = als_table(std, n_boot=20)
    assert list(table["unit"]) == ["sd^2", "sd^2"] and (table["ci_low"] <= table["ALS"] + 1e-12).all()
    write_als_report(std, tmp_path / "s", table=table)
    write_als_report(raw, tmp_path / "r", table=als_table(raw, n_boot=20))
    meta = json.loads((tmp_path / "s" / "als.json").read_text())
    assert meta["standardize"] is True and meta["units"] == {"male": "logit", "smile": "bounded"}
    assert meta["als_units"] == {"male": "sd^2", "smile": "sd^2"}
    assert "unit: each attribute's ALS is in its score's unit squared" in (tmp_path / "s" / "summary.md").read_text()
    assert "Note: the mean over attributes mixes" in (tmp_path / "r" / "summary.md").read_text()
    back = read_als_report(tmp_path / "s")
    np.testing.assert_allclose(back.values, std.values)
    assert back.attrs["standardize"] and back.attrs["units"] == ["logit", "bounded"]
    with pytest.raises(ValueError, match="mix standardised and raw scores"):
        write_als_comparison({"a": back, "b": read_als_report(tmp_path / "r")}, tmp_path / "cmp")
    write_als_comparison({"a": back, "b": back}, tmp_path / "cmp")
    assert "units: male sd^2, smile sd^2" in (tmp_path / "cmp" / "summary.md").read_text()


class Declared(torch.nn.Module):
    names = ["a", "b"]
    score_units = {"a": "bounded", "b": "logit"}

    def forward(self, x):
        return x.mean(dim=[2, 3])[:, :2]


def test_classifiers_declare_their_units():
    from latentlab.attributes import ResNetAttributeClassifier
    from latentlab.attributes.toyfaces import ToyFacesClassifier

    toy = ToyFacesClassifier()
    units = dict(zip(toy.names, score_units(toy)))
    assert units == {
        "smile": "bounded",
        "age": "bounded",
        "eyeglasses": "logit",
        "male": "logit",
        "beard": "logit",
        "yaw": "bounded",
        "bangs": "logit",
        "skin": "bounded",
        "background": "bounded",
    }
    assert score_units(toy.select(["male", "smile"])) == ["logit", "bounded"]
    assert score_units(ResNetAttributeClassifier(names=["x", "y"])) == ["logit", "logit"]
    assert score_units(Declared()) == ["bounded", "logit"]

    class Plain(torch.nn.Module):
        names = ["c"]

    assert score_units(Plain()) == ["score"]  # nothing says what it returns


def test_cli_als_standardize_and_units(tmp_path, capsys):
    code, out, err = run_cli(
        capsys, "als", "--n", 3, "--frames", 3, "--attrs", "smile,male", "--standardize", "--out", tmp_path / "s"
    )
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["smile"], ["male"])}
    assert rows["smile"][-1] == rows["male"][-1] == "sd^2"
    logits = np.load(tmp_path / "s" / "logits.npy")
    expected = _paper_by_hand(logits, True)
    assert f"mean ALS (paper, standardised, 3 pairs, 2 steps, w): {expected.mean():.4f}" in out
    assert float(rows["smile"][1]) == pytest.approx(expected[0], abs=6e-5)
    assert "note:" not in out
    code, out, err = run_cli(capsys, "als", "--n", 3, "--frames", 3, "--attrs", "smile,male")
    assert code == 0, err
    assert "bounded^2" in out and "logit^2" in out and "note: the mean over attributes mixes ALS units" in out
    code, _, err = run_cli(capsys, "als", "--compare", tmp_path / "s", "--standardize", "--out", tmp_path / "c")
    assert code == 2 and "drop --standardize" in err
