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
         "--labels", str(tmp_path / "labels.csv"), "--circular", "hue", "--curve", "20,140", "--repeats", "2",
         "--out", str(tmp_path / "r")],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=root),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    scores = pd.read_csv(tmp_path / "r" / "scores.csv", index_col=0)
    assert list(scores.index) == ["yaw", "hue_cos", "hue_sin"]
    assert scores.loc["yaw", "coarse"] > 0.6 and scores.loc["hue_cos", "fine"] > 0.3 > scores.loc["hue_cos", "coarse"]
    best = pd.read_csv(tmp_path / "r" / "curve_best.csv")
    assert set(best["n_train"]) == {20, 140} and (best[best.target == "yaw"]["best"] == "coarse").all()
    assert (tmp_path / "r" / "probe_curve.png").exists()


def concentrated_and_diffuse(n=1000, seed=0):
    """'direct' carries yaw in one of 5 dims (ceiling R^2 1/2); 'spread' carries it along a random direction of 200
    noise dims (ceiling 3/4): with all the labels 'spread' predicts yaw better, with few only 'direct' can."""
    rng = np.random.RandomState(seed)
    yaw = rng.uniform(-1, 1, n)  # variance 1/3
    direct = rng.randn(n, 5)
    direct[:, 0] += np.sqrt(3) * yaw  # signal variance 1 against unit noise: R^2 = 1/2
    u = rng.randn(200)
    spread = rng.randn(n, 200) + 3 * np.outer(yaw, u / np.linalg.norm(u))  # signal variance 3 along u: R^2 = 3/4
    return {"direct": direct, "spread": spread}, {"yaw": yaw}


def test_curve_tells_direct_from_diffuse_levels():
    from latentlab.studies.level_probe import curve_best, curve_summary, probe_curve

    feats, targets = concentrated_and_diffuse()
    curve = probe_curve(feats, targets, [20, 700], repeats=8, seed=2)
    assert len(curve) == 2 * (8 + 1)  # one fit per level, target and repeat; the full pool only once
    mean = curve_summary(curve).set_index(["n_train", "level"])["mean"]
    assert mean[(20, "direct")] > 0.3 and mean[(20, "spread")] < 0.2  # few labels: only the direct level
    assert mean[(700, "direct")] == pytest.approx(0.5, abs=0.08)
    assert mean[(700, "spread")] > mean[(700, "direct")] + 0.1  # all labels: the diffuse level's higher ceiling
    best = curve_best(curve).set_index("n_train")
    assert best.loc[20, "best"] == "direct" and best.loc[20, "lead_over_se"] > 3
    assert best.loc[700, "best"] == "spread" and best.loc[700, "repeats"] == 1
    # the full training part gives probe_levels' own fit
    full = score_matrix(probe_levels(feats, targets, seed=2))
    assert mean[(700, "spread")] == pytest.approx(full.loc["yaw", "spread"])


def test_curve_subsets_are_shared_and_seeded():
    from latentlab.studies.level_probe import probe_curve

    feats, targets = planted(300)
    feats["copy"] = feats["coarse"].copy()
    a = probe_curve(feats, targets, [30], repeats=3, seed=5)
    b = probe_curve(feats, targets, [30], repeats=3, seed=5)
    assert a.equals(b)
    wide = a[a.target == "yaw"].pivot(index="repeat", columns="level", values="score")
    assert (wide["copy"] == wide["coarse"]).all()  # the same images for every level
    assert wide["coarse"].nunique() == 3  # each repeat its own subset


def test_curve_single_class_subsets_score_nan():
    from latentlab.studies.level_probe import curve_summary, probe_curve

    feats, targets = planted(400)
    rare = np.zeros(400)
    rare[:3] = 1  # three positives: most 10-image subsets hold none
    curve = probe_curve(feats, {"rare": rare}, [10], repeats=10, seed=0)
    assert curve["score"].isna().any()
    row = curve_summary(curve).iloc[0]
    assert row["repeats"] == curve[curve.level == row["level"]]["score"].notna().sum() < 10


@pytest.mark.parametrize("sizes, repeats, message", [([5], 2, r"\[10, 280\]"), ([300], 2, "280"), ([20], 0, "repeats")])
def test_curve_bad_sizes(sizes, repeats, message):
    from latentlab.studies.level_probe import probe_curve

    feats, targets = planted()
    with pytest.raises(ConfigError, match=message):
        probe_curve(feats, targets, sizes, repeats=repeats)


def test_curve_report_files(tmp_path):
    import json

    from latentlab.studies.level_probe import probe_curve, write_probe_curve_report

    feats, targets = planted(200)
    best = write_probe_curve_report(probe_curve(feats, targets, [20, 140], repeats=3), str(tmp_path), settings={"x": 1})
    assert list(best["best"]) == ["coarse", "fine", "coarse", "fine"]
    for name in ("curve.csv", "curve_summary.csv", "curve_summary.md", "curve_best.csv", "curve_best.md",
                 "probe_curve.png", "probe_curve.pdf", "curve_summary.json"):  # fmt: skip
        assert (tmp_path / name).exists(), name
    summary = json.loads((tmp_path / "curve_summary.json").read_text())
    assert summary["sizes"] == [20, 140] and summary["best"]["yaw@20"] == "coarse" and summary["x"] == 1
