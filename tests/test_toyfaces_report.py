"""The toyfaces model report (analyses/toyfaces_model_report.py's library call) on a tiny generator."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch


class ChannelMeans:
    """A stand-in classifier with the toyfaces names: scores = mean colour of the image, features = the same."""

    def __init__(self, names):
        self.names = list(names)

    def __call__(self, x):
        m = x.mean(dim=[2, 3])
        return m[:, torch.arange(len(self.names)) % 3]

    def features(self, x):
        return x.mean(dim=[2, 3])


def test_report_files_and_values(tmp_path):
    from latentlab import Generator
    from latentlab.attributes.toyfaces import ATTRIBUTES
    from latentlab.datasets.toyfaces import render_batch, sample_attributes
    from latentlab.studies.fidelity import RENDER_SEEDS, write_toyfaces_model_report

    torch.manual_seed(0)
    G = Generator(
        z_dim=8,
        c_dim=0,
        w_dim=8,
        img_resolution=16,
        img_channels=3,
        mapping_kwargs=dict(num_layers=1),
        synthesis_kwargs=dict(channel_base=128, channel_max=8),
    ).eval()
    clf = ChannelMeans(ATTRIBUTES)
    md = write_toyfaces_model_report(G, clf, tmp_path, n=12, psi=0.7, model="tiny")
    assert {
        "attribute_stats.csv",
        "corr_generated.csv",
        "corr_renders.csv",
        "generated.png",
        "renders.png",
        "summary.json",
        "summary.md",
    } <= set(os.listdir(tmp_path))
    assert md[0] == "# toyfaces model report (12 generated faces vs 12 fresh renders, psi 0.7)"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"] == "tiny" and summary["n"] == 12 and summary["psi"] == 0.7
    # independent: seeds 0..11 rendered by hand, fresh renders of toyfaces seed RENDER_SEEDS[0]
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(8) for s in range(12)])).float()
    with torch.no_grad():
        fake = G(z, None, truncation_psi=0.7, noise_mode="const").clamp(-1, 1)
    real = (
        torch.from_numpy(render_batch(sample_attributes(12, RENDER_SEEDS[0]), 16)).permute(0, 3, 1, 2).float() / 127.5
        - 1
    )
    stats = pd.read_csv(tmp_path / "attribute_stats.csv", index_col=0)
    first = ATTRIBUTES[0]
    assert stats.loc[first, "mean_fake"] == pytest.approx(float(clf(fake)[:, 0].mean()), abs=1e-4)
    assert stats.loc[first, "mean_real"] == pytest.approx(float(clf(real)[:, 0].mean()), abs=1e-4)
    # the target measures, recomputed from the CSV the report wrote
    t = summary["targets"]
    gap = abs(stats.loc["eyeglasses", "rate_fake"] - stats.loc["eyeglasses", "rate_real"])
    assert t["eyeglasses_rate_gap"] == pytest.approx(gap, abs=1e-4)
    assert t["smile_std_ratio"] == pytest.approx(stats.loc["smile", "std_ratio"], abs=1e-4)
    assert t["frechet_classifier_features"] == summary["frechet_classifier_features"]
    assert "the targets (issue 21): Frechet" in "\n".join(md)


def test_target_measures_and_bounds_by_hand():
    from latentlab.studies.fidelity import TOYFACES_TARGETS, target_line, toyfaces_measures

    stats = pd.DataFrame(
        {"std_ratio": [0.7, 0.69, 1.0], "rate_fake": [np.nan, np.nan, 0.28], "rate_real": [np.nan, np.nan, 0.33]},
        index=["smile", "yaw", "eyeglasses"],
    )
    m = toyfaces_measures({"stats": stats, "frechet": 5.0, "corr_mean_abs_diff": 0.081})
    assert m["eyeglasses_rate_gap"] == pytest.approx(0.05)
    # 0.05 gap, Frechet 5 and smile 0.7 sit on their bounds (met); yaw 0.69 and correlations 0.081 do not
    assert m["meets_targets"] == ["frechet_classifier_features", "eyeglasses_rate_gap", "smile_std_ratio"]
    assert m["all_met"] is False and len(TOYFACES_TARGETS) == 5
    line = target_line(m)
    assert line.startswith("Frechet 5 (<= 5: yes), eyeglasses gap 0.05 (<= 0.05: yes), smile std ratio 0.7 (>= 0.7")
    assert line.endswith("corr mean abs diff 0.081 (<= 0.08: no)")
    stats.loc["yaw", "std_ratio"] = 2.0
    assert toyfaces_measures({"stats": stats, "frechet": 0.1, "corr_mean_abs_diff": 0.0})["all_met"] is True
