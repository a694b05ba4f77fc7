"""Attribute Linearity Score against hand computations on an identity 'generator'."""

import os

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


# ---- curves, bootstrap, figures, comparison, public API ---------------------------------------
def _independent_hsr(logits):
    """The HSR authors' procedure, written out: standardise, deviation from the chord, mean |.| over pairs."""
    p, frames, a = logits.shape
    curves = np.zeros((frames, a))
    for j in range(a):
        x = logits[:, :, j]
        z = (x - x.mean()) / x.std()
        for k in range(frames):
            tt = k / (frames - 1)
            curves[k, j] = np.mean([abs((1 - tt) * z[i, 0] + tt * z[i, -1] - z[i, k]) for i in range(p)])
    return curves


def test_hsr_curve_is_mean_abs_delta_by_hand():
    # one attribute, pairs [0, 2, 0] and [0, -1, 0]: std over all six frames is sqrt(29)/6, the mid-frame
    # deviations are 2/std and 1/std, so the curve is [0, 9/sqrt(29), 0] and the ALS 81/29
    logits = np.array([[0.0, 2.0, 0.0], [0.0, -1.0, 0.0]])[:, :, None]
    res = als_from_logits(logits, ["a"], protocol="hsr")
    np.testing.assert_allclose(res.attrs["curve"], [0, 9 / np.sqrt(29), 0], atol=1e-12)
    assert res["a"] == pytest.approx(81 / 29)
    assert "|" in res.attrs["curve_label"]


def test_hsr_curve_matches_an_independent_computation():
    logits = np.random.RandomState(1).randn(5, 7, 3) * [1.0, 3.0, 0.2] + [0.0, 5.0, -1.0]
    res = als_from_logits(logits, protocol="hsr")
    expected = _independent_hsr(logits)
    np.testing.assert_allclose(res.attrs["curves"], expected, rtol=1e-12)
    np.testing.assert_allclose(res.attrs["curve"], expected.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(res.values[:-1], (expected**2).sum(axis=0), rtol=1e-12)  # ALS_j = sum_t curve_tj^2


def test_paper_curves_are_the_mean_squared_deviation():
    # c(x) = (u.x)^2 deviates from the chord by -t(1-t) d^2 (d = 3 and 2 for the two pairs)
    u = torch.tensor([1.0, 2.0])
    w0, w1 = torch.tensor([[0.0, 0.0], [1.0, 0.0]]), torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    clf = lambda img: torch.stack([(img[:, :, 0, 0] @ u) ** 2, img[:, 0, 0, 0]], 1)  # noqa: E731  second is linear
    res = als(IdentityG(), clf, w0, w1, steps=4, names=["q", "lin"])
    t = np.linspace(0, 1, 5)
    q = (t * (1 - t)) ** 2 * (3.0**4 + 2.0**4) / 2
    np.testing.assert_allclose(res.attrs["curves"][:, 0], q, rtol=1e-5)
    np.testing.assert_allclose(res.attrs["curves"][:, 1], 0, atol=1e-10)
    np.testing.assert_allclose(res.attrs["curve"], q / 2, rtol=1e-5)
    assert "Delta" in res.attrs["curve_label"]


def test_hsr_bootstrap_interval_is_about_the_reported_als():
    # half the pairs follow the chord, half bulge by 4: mean |delta| is half the bulge, so the ALS
    # (squared mean |delta|) is half of the per-pair mean of delta^2 that an interval over per_pair brackets
    from latentlab.studies.als import als_bootstrap_ci
    from latentlab.studies.reports import als_table

    bump = 4 * np.sin(np.linspace(0, np.pi, 6))
    logits = (
        np.stack([np.zeros(6) if i % 2 else bump for i in range(40)])[:, :, None] + np.linspace(0, 1, 6)[None, :, None]
    )
    res = als_from_logits(logits, ["a"], protocol="hsr")
    lo, hi = als_bootstrap_ci(res, n_boot=300)
    assert lo[0] <= res["a"] <= hi[0]
    old_lo, _ = bootstrap_ci(res.attrs["per_pair"], n_boot=300)
    assert old_lo[0] > res["a"]  # what the table used to report for hsr: an interval that misses the ALS
    table = als_table(res, n_boot=300)
    assert table.loc["a", "ci_low"] <= table.loc["a", "ALS"] <= table.loc["a", "ci_high"]
    paper = als_from_logits(logits, ["a"])
    np.testing.assert_allclose(als_bootstrap_ci(paper, 200), bootstrap_ci(paper.attrs["per_pair"], 200))


def _result(seed, protocol="paper", names=("smile", "age", "glasses"), pairs=6, steps=5):
    logits = np.random.RandomState(seed).randn(pairs, steps + 1, len(names)) * (1 + seed)
    return als_from_logits(logits, list(names), protocol)


def test_pair_paths_draw_the_chord_from_a0_to_a1(tmp_path):
    from latentlab.studies.als_figures import pair_paths, plot_pair_paths

    res = _result(0)
    logits = res.attrs["logits"]
    frame = pair_paths(res, "age", pairs=[1, 3])
    assert frame.attrs["attribute"] == "age" and list(frame["pair"].unique()) == [1, 3]
    for p in (1, 3):
        part = frame[frame["pair"] == p]
        a = logits[p, :, 1]
        np.testing.assert_allclose(part["logit"], a)
        np.testing.assert_allclose(part["t"], [0, 0.2, 0.4, 0.6, 0.8, 1.0])
        slope = a[-1] - a[0]
        np.testing.assert_allclose(part["line"], [a[0] + slope * k / 5 for k in range(6)], rtol=1e-12)
    least_linear = ["smile", "age", "glasses"][int(np.argmax(res.values[:3]))]
    default = pair_paths(res, pairs=2)
    assert default.attrs["attribute"] == least_linear and sorted(default["pair"].unique()) == [0, 1]
    with pytest.raises(ValueError, match="no attribute 'beard'"):
        pair_paths(res, "beard")
    with pytest.raises(ValueError, match="pair indices"):
        pair_paths(res, "age", pairs=[6])
    paths = plot_pair_paths(frame, str(tmp_path / "pp"))
    assert all(os.path.getsize(p) > 0 for p in paths) and [os.path.basename(p) for p in paths] == ["pp.png", "pp.pdf"]


def test_comparison_table_has_the_mean_over_attributes(tmp_path):
    import pandas as pd

    from latentlab.studies.als_figures import compare_table
    from latentlab.studies.reports import write_als_comparison

    a, b = _result(0, "hsr"), _result(1, "hsr", names=("glasses", "smile", "age"), steps=3)
    table = compare_table({"SG2": a, "SG2+HSR": b})
    assert list(table.index) == ["SG2", "SG2+HSR"] and list(table.columns) == ["smile", "age", "glasses", "Mean"]
    for model, r in (("SG2", a), ("SG2+HSR", b)):
        for n in ("smile", "age", "glasses"):
            assert table.loc[model, n] == r[n]
        assert table.loc[model, "Mean"] == pytest.approx(np.mean([r["smile"], r["age"], r["glasses"]]))

    out = tmp_path / "cmp"
    write_als_comparison({"SG2": a, "SG2+HSR": b}, str(out))
    for f in (
        "als_compare.csv",
        "als_compare.md",
        "als_compare_curves.csv",
        "als_compare_curve.png",
        "als_compare_curve.pdf",
        "als_compare_attributes.png",
        "als_compare_attributes.pdf",
        "summary.md",
    ):
        assert (out / f).stat().st_size > 0, f
    saved = pd.read_csv(out / "als_compare.csv", index_col="model")
    np.testing.assert_allclose(saved["Mean"], saved[["smile", "age", "glasses"]].mean(axis=1))
    curves = pd.read_csv(out / "als_compare_curves.csv")
    np.testing.assert_allclose(curves[curves.model == "SG2+HSR"]["mean"], b.attrs["curve"])
    np.testing.assert_allclose(curves[curves.model == "SG2+HSR"]["t"], [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(curves[curves.model == "SG2"]["age"], a.attrs["curves"][:, 1])
    assert "| SG2+HSR |" in (out / "als_compare.md").read_text()

    with pytest.raises(ValueError, match="different protocols"):
        compare_table({"x": a, "y": _result(2, "paper")})
    with pytest.raises(ValueError, match="same attributes"):
        compare_table({"x": a, "y": _result(2, "hsr", names=("smile", "age"))})


def test_report_folder_files_and_read_back(tmp_path):
    import json

    import pandas as pd

    from latentlab.studies.reports import read_als_report, write_als_report

    res = _result(3, "hsr")
    out = tmp_path / "r"
    write_als_report(res, str(out), settings=dict(space="w"), pair_attribute="smile", pair_count=2)
    for f in (
        "als.csv",
        "als.json",
        "als_ci.csv",
        "als_ci.md",
        "per_pair.csv",
        "curve.csv",
        "logits.npy",
        "als_curve.png",
        "als_curve.pdf",
        "als_pairs.csv",
        "als_pairs.png",
        "als_pairs.pdf",
        "summary.md",
    ):
        assert (out / f).stat().st_size > 0, f
    curve = pd.read_csv(out / "curve.csv")
    assert list(curve.columns) == ["t", "mean", "smile", "age", "glasses"]
    np.testing.assert_allclose(curve["mean"], _independent_hsr(res.attrs["logits"]).mean(axis=1))
    pairs = pd.read_csv(out / "als_pairs.csv")
    assert sorted(pairs["pair"].unique()) == [0, 1]
    np.testing.assert_allclose(pairs[pairs.pair == 1]["logit"], res.attrs["logits"][1, :, 0])
    meta = json.loads((out / "als.json").read_text())
    assert (
        meta["protocol"] == "hsr"
        and meta["settings"] == {"space": "w"}
        and meta["als"]["mean"] == pytest.approx(res["mean"])
    )
    back = read_als_report(str(out))
    assert back.equals(res) and back.attrs["protocol"] == "hsr"
    (out / "als.json").unlink()  # a folder from before als.json: protocol from summary.md, names from als.csv
    assert read_als_report(str(out)).equals(res)
    with pytest.raises(ValueError, match="not an ALS report folder"):
        read_als_report(str(tmp_path))


def _fast_figures(monkeypatch):
    """Skip rendering in tests about data flow (figures are checked in the tests above): record the stems."""
    import latentlab.studies.als_figures as figs

    stems = []

    def fake(fig, stem):
        figs._plt().close(fig)
        stems.append(os.path.basename(stem))
        return [stem + ".png", stem + ".pdf"]

    monkeypatch.setattr(figs, "save_figure", fake)
    return stems


def test_compare_command(capsys, tmp_path, monkeypatch):
    import pandas as pd

    from conftest import run_cli
    from latentlab.studies.reports import write_als_report

    stems = _fast_figures(monkeypatch)
    a, b = _result(0, "paper"), _result(1, "paper")
    write_als_report(a, str(tmp_path / "base"))
    write_als_report(b, str(tmp_path / "hsr"))
    code, out, err = run_cli(
        capsys, "als", "--compare", f"SG2={tmp_path / 'base'}", "--compare", tmp_path / "hsr", "--out", tmp_path / "c"
    )
    assert code == 0, err
    assert "Mean" in out and "SG2" in out and "hsr" in out
    table = pd.read_csv(tmp_path / "c" / "als_compare.csv", index_col="model")
    assert list(table.index) == ["SG2", "hsr"]
    assert table.loc["hsr", "age"] == pytest.approx(b["age"]) and table.loc["SG2", "Mean"] == pytest.approx(a["mean"])
    assert stems[-2:] == ["als_compare_curve", "als_compare_attributes"]

    code, _, err = run_cli(
        capsys, "als", "--compare", tmp_path / "base", "--out", tmp_path / "d", "--compare", tmp_path / "nope"
    )
    assert code == 1 and err.strip() == f"latentlab: error: --compare {tmp_path / 'nope'}: no such ALS report folder"
    monkeypatch.chdir(tmp_path)  # without --out: the next free default folder
    code, out, err = run_cli(capsys, "als", "--compare", tmp_path / "base")
    default = os.path.join("latentlab-out", "als", "001")
    assert code == 0 and out.strip().endswith(f"to {default}") and (tmp_path / default / "als_compare.csv").exists(), (
        err
    )
    code, _, err = run_cli(capsys, "als", "--compare", tmp_path / "base", "--model", "x.pkl", "--out", tmp_path / "d")
    assert code == 2 and "drop --model" in err
    code, _, err = run_cli(
        capsys, "als", "--compare", tmp_path / "base", "--compare", tmp_path / "x" / "base", "--out", tmp_path / "d"
    )
    assert code == 1 and "labelled 'base'" in err


def test_als_report_script_compares_models_and_saved_reports(tmp_path, monkeypatch, mean_colour_torchscript):
    import importlib.util
    import sys

    import pandas as pd

    from conftest import fixture_path

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("als_report_script", os.path.join(root, "analyses", "als_report.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    ada = fixture_path("sg2ada_skip32.pkl")
    stems = _fast_figures(monkeypatch)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "als_report.py",
            "--model",
            ada,
            "--label",
            "A",
            "--model",
            ada,
            "--label",
            "B",
            "--classifier",
            f"torchscript:{mean_colour_torchscript}",
            "--trust-code",
            "--pairs",
            "2",
            "--steps",
            "2",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    script.main()
    assert stems.count("als_pairs") == 4 and stems.count("als_compare_curve") == 2
    for protocol in ("paper", "hsr"):
        assert (tmp_path / "r" / "A" / protocol / "als_pairs.csv").exists()
        table = pd.read_csv(tmp_path / "r" / "compare" / protocol / "als_compare.csv", index_col="model")
        assert list(table.index) == ["A", "B"]
        assert table.loc["A", "Mean"] == pytest.approx(table.loc["B", "Mean"])  # same model, same pairs
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "als_report.py",
            "--reports",
            str(tmp_path / "r" / "A" / "hsr"),
            "--reports",
            f"other={tmp_path / 'r' / 'B' / 'hsr'}",
            "--out",
            str(tmp_path / "s"),
        ],
    )
    script.main()
    saved = pd.read_csv(tmp_path / "s" / "als_compare.csv", index_col="model")
    assert list(saved.index) == ["hsr", "other"]
    monkeypatch.setattr(
        sys, "argv", ["als_report.py", "--reports", str(tmp_path / "nope"), "--out", str(tmp_path / "t")]
    )
    with pytest.raises(SystemExit, match="no such ALS report folder"):
        script.main()


def test_top_level_entry_points(tiny_generator):
    import subprocess
    import sys

    import latentlab
    from latentlab import als as top_als
    from latentlab import train_boundary

    assert {"als", "train_boundary"} <= set(latentlab.__all__) and "als" in dir(latentlab)
    assert top_als is als and train_boundary is latentlab.boundaries.train_boundary
    G = tiny_generator
    with torch.no_grad():
        w = G.mapping(torch.randn(4, 16), None)[:, 0]
    res = top_als(G, lambda img: img.mean(dim=[2, 3]), w[:2], w[2:], steps=3, protocol="hsr")
    assert list(res.index) == ["attr0", "attr1", "attr2", "mean"] and res.attrs["curve"].shape == (4,)
    np.testing.assert_allclose(res.attrs["curves"], _independent_hsr(res.attrs["logits"]), rtol=1e-10)
    rng = np.random.RandomState(0)
    codes = rng.randn(400, 8)
    n = np.zeros(8)
    n[2] = 1.0
    b = train_boundary(codes, codes @ n + 0.05 * rng.randn(400), ratio=0.25)
    assert abs(b.normal @ n) > 0.9 and b.normal.shape == (8,)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        latentlab.nonexistent
    # lazily imported: a bare `import latentlab` loads neither package
    code = "import sys, latentlab; print('latentlab.studies' in sys.modules, 'latentlab.boundaries' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
