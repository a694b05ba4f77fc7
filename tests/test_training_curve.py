"""latentlab.studies.training_curve: the toyfaces target measures along a training run."""

import os

import pandas as pd
import pytest
import torch
from test_toyfaces_report import ChannelMeans
from test_training import tiny_pair

from conftest import blob_images


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny 16 px run with snapshots at steps 2 and 4."""
    from latentlab.train import ImageDataset, Trainer, TrainingOptions

    folder = tmp_path_factory.mktemp("curve")
    (folder / "imgs").mkdir()
    ds = ImageDataset(blob_images(folder / "imgs", 8, seed=0), 16)
    G, D = tiny_pair()
    opts = TrainingOptions(batch_size=4, snapshot_every=2, log_every=2, g_reg_interval=2, d_reg_interval=2)
    Trainer(folder / "run", G, D, ds, opts, progress=False).train(4)
    return folder / "run"


def _measures_by_hand(snapshot, n, clf):
    """The five measures recomputed with the fidelity module's pieces, independently of the curve code."""
    import latentlab
    from latentlab.attributes.toyfaces import LOGITS
    from latentlab.latents import z_from_seeds
    from latentlab.studies.fidelity import RENDER_SEEDS, fidelity_report, toyfaces_renders

    G = latentlab.load_generator(snapshot)
    with torch.no_grad():
        fake = G(z_from_seeds(range(n), G.z_dim), None, noise_mode="const").clamp(-1, 1)
    rep = fidelity_report(clf, fake, toyfaces_renders(n, RENDER_SEEDS[0], 16), logit_names=LOGITS)
    s = rep["stats"]
    return {
        "frechet_classifier_features": rep["frechet"],
        "eyeglasses_rate_gap": abs(s.loc["eyeglasses", "rate_fake"] - s.loc["eyeglasses", "rate_real"]),
        "smile_std_ratio": s.loc["smile", "std_ratio"],
        "yaw_std_ratio": s.loc["yaw", "std_ratio"],
        "corr_mean_abs_diff": rep["corr_mean_abs_diff"],
    }


def test_rows_values_resume_and_refusals(run, tmp_path):
    from latentlab.attributes.toyfaces import ATTRIBUTES
    from latentlab.errors import ConfigError
    from latentlab.studies.training_curve import run_snapshots, toyfaces_training_curve

    assert [s for s, _ in run_snapshots(run)] == [2, 4] and [s for s, _ in run_snapshots(run, 4)] == [4]
    clf, logs = ChannelMeans(ATTRIBUTES), []
    table = toyfaces_training_curve(run, clf, tmp_path, every=2, n=6, log=logs.append)
    assert list(table["step"]) == [2, 4] and list(table["kimg"]) == [0.008, 0.016]  # batch 4
    assert len(logs) == 2 and logs[1].startswith("step 4: Frechet")
    assert os.path.getsize(tmp_path / "curve.png") > 0
    for step in (2, 4):
        row = table[table.step == step].iloc[0]
        for k, v in _measures_by_hand(run / f"network-snapshot-{step:06d}.safetensors", 6, clf).items():
            assert row[k] == pytest.approx(v, rel=1e-6, abs=1e-9), (step, k)

    # a rerun evaluates only what is new: here the start model (step 0); every=4 leaves snapshot 2 out, but its row stays
    logs.clear()
    start = run / "network-snapshot-000004.safetensors"
    table = toyfaces_training_curve(run, clf, tmp_path, every=4, n=6, start=start, log=logs.append)
    assert list(table["step"]) == [0, 2, 4] and [m.split(":")[0] for m in logs] == ["step 0"]
    assert table.iloc[0]["model"] == str(start) and table.iloc[0]["kimg"] == 0
    assert table.iloc[0]["frechet_classifier_features"] == pytest.approx(table.iloc[2]["frechet_classifier_features"])
    assert list(pd.read_csv(tmp_path / "curve.csv")["step"]) == [0, 2, 4]

    with pytest.raises(ConfigError, match="evaluated with n=6"):
        toyfaces_training_curve(run, clf, tmp_path, every=2, n=8)
    for text in ("step,kimg\n1,2\n", "\x00\xff\xfe garbage"):
        bad = tmp_path / f"bad{len(text)}"
        bad.mkdir()
        (bad / "curve.csv").write_bytes(text.encode("latin-1"))
        with pytest.raises(ConfigError, match=r"curve.csv: not a curve.csv .*remove it or use another folder$"):
            toyfaces_training_curve(run, clf, bad, every=2, n=6)
    with pytest.raises(ConfigError, match="every must be >= 1"):
        toyfaces_training_curve(run, clf, tmp_path / "x", every=0)


def test_edit_columns_are_the_edit_study_on_each_snapshot(run, tmp_path):
    """edits=['smile'] adds smile_edit_raised / _max_flip / _max_move: edit_quality on that snapshot, recomputed
    here (moves over the regressed scores only); a curve measured without them is refused rather than mixed."""
    from latentlab import load_generator
    from latentlab.attributes.toyfaces import ATTRIBUTES, LOGITS
    from latentlab.errors import ConfigError
    from latentlab.studies.edit_quality import edit_quality
    from latentlab.studies.training_curve import toyfaces_training_curve

    clf = ChannelMeans(ATTRIBUTES)
    table = toyfaces_training_curve(run, clf, tmp_path, every=4, n=6, edits=["smile"], edit_samples=200, log=print)
    assert list(table.columns[-3:]) == ["smile_edit_raised", "smile_edit_max_flip", "smile_edit_max_move"]
    G = load_generator(run / "network-snapshot-000004.safetensors")
    e = edit_quality(G, clf, "smile", n_samples=200)
    assert table.iloc[0]["smile_edit_raised"] == e["raised"] and table.iloc[0]["smile_edit_max_flip"] == e["max_flip"]
    regressed = {a: m for a, m in e["moves"].items() if a not in LOGITS}
    assert table.iloc[0]["smile_edit_max_move"] == max(regressed.values())
    assert os.path.getsize(tmp_path / "curve.png") > 0
    toyfaces_training_curve(run, clf, tmp_path / "plain", every=4, n=6)
    with pytest.raises(ConfigError, match="measured without these edits .*smile_edit_raised"):
        toyfaces_training_curve(run, clf, tmp_path / "plain", every=4, n=6, edits=["smile"])


def test_the_analysis_script_ends_bad_input_in_one_line(tmp_path):
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "..", "analyses", "toyfaces_training_curve.py")
    for args in (["--run", str(tmp_path / "nowhere")], ["--run", str(tmp_path), "--every", "0"]):
        proc = subprocess.run(
            [sys.executable, script, *args, "--out", str(tmp_path / "out")], capture_output=True, text=True
        )
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("toyfaces_training_curve: error: ")
