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
    p = subprocess.run([sys.executable, os.path.join(ROOT, "analyses", name), *map(str, args)], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


@pytest.fixture
def classifier(mean_colour_torchscript):
    return mean_colour_torchscript


def test_als_and_truncation_reports(tmp_path, classifier):
    run_script("als_report.py", "--model", ADA, "--classifier", f"torchscript:{classifier}", "--pairs", "3", "--steps", "2",
               "--out", tmp_path / "als")
    for protocol in ("paper", "hsr"):
        for f in ("als.csv", "als_ci.md", "als_curve.png", "als_curve.pdf", "summary.md", "logits.npy"):
            assert (tmp_path / "als" / protocol / f).exists(), f
    run_script("truncation_report.py", "--model", ADA, "--classifier", f"torchscript:{classifier}", "--seeds", "0-3",
               "--variants", "none;w:0", "--out", tmp_path / "t")
    stats = pd.read_csv(tmp_path / "t" / "attribute_stats.csv")
    # psi = 0 renders w_avg for every seed: no spread left
    assert (stats[stats.variant == "w psi=0"]["std"] < 1e-6).all() and (stats[stats.variant == "none"]["std"] > 0).all()


def test_ppl_report_offline(tmp_path):
    pytest.importorskip("lpips")
    out = run_script("ppl_report.py", "--model", ADA, "--samples", "4", "--random-backbone", "--out", tmp_path / "p")
    assert out.count("PPL") == 4
    for sub in ("z_full", "z_end", "w_full", "w_end"):
        assert (tmp_path / "p" / sub / "ppl_histogram.png").exists() and (tmp_path / "p" / sub / "ppl_lowest.png").exists()
