"""Level-wise linear probes (GH-Feat's level analysis) on planted features."""

import numpy as np
import pytest

from latentlab.errors import ConfigError
from latentlab.studies.level_probe import probe_levels, score_matrix, target_kinds, write_level_probe_report


def planted(n=400, seed=0):
    """'coarse' carries yaw linearly, 'fine' carries a binary colour flag; each level is noise otherwise."""
    rng = np.random.RandomState(seed)
    yaw = rng.uniform(-1, 1, n)
    warm = (rng.rand(n) < 0.3).astype(float)  # unbalanced: chance 0.7
    coarse = rng.randn(n, 6)
    coarse[:, 2] += 3 * yaw
    fine = rng.randn(n, 5)
    fine[:, 0] += 4 * (warm - 0.5)
    return {"coarse": coarse, "fine": fine}, {"yaw": yaw, "warm": warm}


def test_probe_finds_the_planted_level():
    feats, targets = planted()
    table = probe_levels(feats, targets, seed=1)
    assert target_kinds(targets) == {"yaw": "continuous", "warm": "binary"}
    m = score_matrix(table)
    assert list(m.columns) == ["coarse", "fine"] and list(m.index) == ["yaw", "warm"]
    # yaw = (coarse[:, 2] - noise) / 3: R^2 of the best linear fit is var(3 yaw) / var(3 yaw + noise) = 3 / 4.
    assert m.loc["yaw", "coarse"] == pytest.approx(0.75, abs=0.08)
    assert abs(m.loc["yaw", "fine"]) < 0.08
    # warm shifts fine[:, 0] by +-2 against unit noise: the Bayes accuracy is Phi(2) ~ 0.977.
    assert m.loc["warm", "fine"] > 0.93
    row = table[(table.level == "coarse") & (table.target == "warm")].iloc[0]
    assert row.metric == "accuracy" and abs(row.score - row.chance) < 0.08  # no signal: about chance
    assert 0.6 < row.chance < 0.8 and row.n_test == 120 and row.n_train == 280 and row.dims == 6


def test_same_split_for_every_level():
    feats, targets = planted()
    feats["copy"] = feats["coarse"].copy()
    m = score_matrix(probe_levels(feats, targets, seed=3))
    assert m.loc["yaw", "copy"] == m.loc["yaw", "coarse"]


@pytest.mark.parametrize(
    "feats, targets, message",
    [
        ({"a": np.zeros((50, 2))}, {"t": np.ones(50)}, "constant"),
        ({"a": np.zeros((50, 2))}, {"t": np.arange(40.0)}, "one row per image"),
        ({"a": np.full((50, 2), np.nan)}, {"t": np.arange(50.0)}, "finite"),
        ({"a": np.zeros((8, 2))}, {"t": np.arange(8.0)}, "too few"),
    ],
)
def test_bad_inputs(feats, targets, message):
    with pytest.raises(ConfigError, match=message):
        probe_levels(feats, targets)


def test_report_files(tmp_path):
    feats, targets = planted(200)
    best = write_level_probe_report(probe_levels(feats, targets), str(tmp_path), settings={"encoder": "x"})
    assert best == {"yaw": "coarse", "warm": "fine"}
    for name in ("probe.csv", "probe.md", "scores.csv", "level_probe.png", "level_probe.pdf", "summary.json"):
        assert (tmp_path / name).exists(), name


@pytest.mark.slow
def test_analyses_script_reads_features_and_labels(tmp_path):
    """analyses/encoder_level_probe.py: features file + labels CSV (matched by image name, circular hue split)."""
    import os
    import subprocess
    import sys

    import pandas as pd

    feats, targets = planted(200)
    names = [f"{i:06d}" for i in range(200)]
    hue = (np.arctan2(feats["fine"][:, 1], feats["fine"][:, 2]) / (2 * np.pi)) % 1.0  # exactly circular in fine
    np.savez(tmp_path / "feats.npz", names=np.asarray(names), model_id=np.asarray("x"), **feats)
    labels = pd.DataFrame({"file": [f"images/{n}.png" for n in names[::-1]], "yaw": targets["yaw"][::-1]})
    labels["hue"] = hue[::-1]
    labels.to_csv(tmp_path / "labels.csv", index=False)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.run(
        [sys.executable, os.path.join(root, "analyses", "encoder_level_probe.py"), "--features", str(tmp_path / "feats.npz"),
         "--labels", str(tmp_path / "labels.csv"), "--circular", "hue", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=root),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    scores = pd.read_csv(tmp_path / "r" / "scores.csv", index_col=0)
    assert list(scores.index) == ["yaw", "hue_cos", "hue_sin"]
    assert scores.loc["yaw", "coarse"] > 0.6 and scores.loc["hue_cos", "fine"] > 0.3 > scores.loc["hue_cos", "coarse"]
