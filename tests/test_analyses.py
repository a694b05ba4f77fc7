"""The analyses/ report scripts run end to end on the official fixture and write their folders."""

import os
import subprocess
import sys

import pandas as pd
import pytest

from conftest import fixture_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADA = fixture_path("sg2ada_skip32.pkl")


def run_script(name, *args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, "analyses", name), *map(str, args)], capture_output=True, text=True, env=env
    )
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


@pytest.fixture
def classifier(mean_colour_torchscript):
    return mean_colour_torchscript


@pytest.mark.slow
def test_als_and_truncation_reports(tmp_path, classifier):
    run_script(
        "als_report.py",
        "--model",
        ADA,
        "--classifier",
        f"torchscript:{classifier}",
        "--trust-code",
        "--pairs",
        "3",
        "--steps",
        "2",
        "--out",
        tmp_path / "als",
    )
    for protocol in ("paper", "hsr"):
        for f in ("als.csv", "als_ci.md", "als_curve.png", "als_curve.pdf", "summary.md", "logits.npy"):
            assert (tmp_path / "als" / protocol / f).exists(), f
    run_script(
        "truncation_report.py",
        "--model",
        ADA,
        "--classifier",
        f"torchscript:{classifier}",
        "--trust-code",
        "--seeds",
        "0-3",
        "--variants",
        "none;w:0",
        "--out",
        tmp_path / "t",
    )
    stats = pd.read_csv(tmp_path / "t" / "attribute_stats.csv")
    # psi = 0 renders w_avg for every seed: no spread left
    assert (stats[stats.variant == "w psi=0"]["std"] < 1e-6).all() and (stats[stats.variant == "none"]["std"] > 0).all()


@pytest.mark.slow
def test_ppl_report_offline(tmp_path):
    pytest.importorskip("lpips")
    out = run_script("ppl_report.py", "--model", ADA, "--samples", "4", "--random-backbone", "--out", tmp_path / "p")
    assert out.count("PPL") == 4
    for sub in ("z_full", "z_end", "w_full", "w_end"):
        assert (tmp_path / "p" / sub / "ppl_histogram.png").exists() and (
            tmp_path / "p" / sub / "ppl_lowest.png"
        ).exists()


@pytest.mark.slow
def test_correlation_report_per_space(tmp_path, classifier):
    import numpy as np

    for space in ("z", "w"):
        (tmp_path / f"b{space}").mkdir()
        v = np.random.RandomState(len(space) + ord(space)).randn(1, 64)
        np.save(tmp_path / f"b{space}" / "red.npy", v / np.linalg.norm(v))
    args = [
        "--model",
        ADA,
        "--classifier",
        f"torchscript:{classifier}",
        "--trust-code",
        "--attrs",
        "red",
        "--z-boundaries",
        tmp_path / "bz",
        "--w-boundaries",
        tmp_path / "bw",
        "--seeds",
        "0-2",
        "--alphas=-1:1:2",
    ]
    out = run_script(
        "correlation_report.py", *args, "--score-map", "red=attr0", "--scores", "probabilities", "--out", tmp_path / "c"
    )
    assert "correlations of probabilities" in out and "z - w" in out
    scores = pd.read_csv(tmp_path / "c" / "scores.csv")
    cols = ["attr0", "attr1", "attr2"]
    for space in ("z", "w"):
        p = 1 / (1 + np.exp(-scores[scores.space == space][cols].to_numpy()))
        got = pd.read_csv(tmp_path / "c" / f"corr_{space}_generated.csv", index_col=0).to_numpy()
        np.testing.assert_allclose(got, np.corrcoef(p, rowvar=False), atol=1e-6)
    assert (tmp_path / "c" / "corr_z_minus_w.png").exists() and (tmp_path / "c" / "corr_pooled_generated.csv").exists()
    # bad input: one line and exit 1, as `latentlab corr` words it (no traceback)
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "analyses", "correlation_report.py"),
            *map(str, args),
            "--score-map",
            "red",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 1 and p.stderr.strip() == (
        "correlation_report.py: error: --score-map: expected attr=ClassifierColumn, got 'red'"
    )
