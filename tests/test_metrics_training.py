"""Metrics during training (issue 17): the loop's evaluator hook (metrics-eval.csv rows at the right steps, the
G_ema they belong to, TensorBoard, resume without duplicates or gaps, exact resume with metrics on), the evaluators
of `latentlab.metrics.training` (FID/KID/PR equal to `compute_metrics` on the same networks, computed once per
state of G_ema; PPL equal to `perceptual_path_length` with NVIDIA's settings), `train gan --metrics` and
`metrics --run`.

Values are checked against the networks of the snapshot files each row names, re-evaluated here independently.
"""

import csv
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_tiny_generator, run_cli
from latentlab import Discriminator, Generator, load_checkpoint
from latentlab.errors import ConfigError
from latentlab.train import ImageDataset, Trainer, TrainingOptions
from latentlab.train.evaluation import EVAL_COLUMNS, EvalLog, read_eval_log

OPTS = dict(batch_size=4, snapshot_every=2, log_every=1, g_reg_interval=2, d_reg_interval=2)
NET = ["--z-dim", 16, "--w-dim", 16, "--channel-base", 256, "--channel-max", 16]


def tiny_pair(seed=0):
    torch.manual_seed(seed)
    G = Generator(
        z_dim=16,
        c_dim=0,
        w_dim=16,
        img_resolution=16,
        img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=256, channel_max=16),
    )
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)
    return G, D


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16]
    for i in range(20):
        cy, cx = rng.uniform(3, 13, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 10)[..., None] * rng.uniform(0, 255, 3)
        Image.fromarray(blob.astype(np.uint8)).save(folder / f"{i:02d}.png")
    return folder


class Stub:
    """An evaluator: two numbers of G's weights, drawing from the global RNG (which must not move training's)."""

    def __init__(self):
        self.calls = []

    def __call__(self, G):
        self.calls.append((G.training, torch.is_grad_enabled(), G))
        torch.rand(7)  # a careless evaluator: training's RNG stream must not notice
        return {"wsum_a": stub_value(G), "wsum_b": -2 * stub_value(G)}


@torch.no_grad()
def stub_value(G):
    return float(G.mapping.fc0.weight.double().sum() + G.synthesis.b16.conv1.weight.double().abs().sum())


def eval_rows(run):
    with open(os.path.join(run, "metrics-eval.csv"), newline="") as f:
        return list(csv.DictReader(f))


def snapshot_G_ema(run, step):
    return load_checkpoint(os.path.join(run, f"network-snapshot-{step:06d}.safetensors")).networks()["G_ema"]


# ---------------------------------------------------------------------------------------------- the loop's hook
def test_rows_at_step_0_every_nth_snapshot_and_the_end_hold_the_snapshot_values(tmp_path, image_dir):
    G, D = tiny_pair()
    start = stub_value(G)
    stub = Stub()
    opts = TrainingOptions(**dict(OPTS, snapshot_every=1), metrics_every=2)
    tr = Trainer(tmp_path, G, D, ImageDataset(image_dir, 16), opts, progress=False, evaluators={"stub": stub})
    tr.train(3)
    rows = eval_rows(tmp_path)
    assert list(rows[0]) == list(EVAL_COLUMNS)
    # step 0, every 2nd snapshot (snapshots at every step: steps 2, 4, ...) and the last step, 3
    assert [(r["step"], r["metric"]) for r in rows] == [(s, m) for s in ("0", "2", "3") for m in ("wsum_a", "wsum_b")]
    assert [r["snapshot"] for r in rows[::2]] == [
        "",
        "network-snapshot-000002.safetensors",
        "network-snapshot-000003.safetensors",
    ]
    assert [float(r["kimg"]) for r in rows[::2]] == [0.0, 0.008, 0.012]
    assert float(rows[0]["value"]) == start  # G_ema starts as a copy of G
    for r in rows[2:]:
        expected = stub_value(snapshot_G_ema(tmp_path, int(r["step"])))
        assert float(r["value"]) == (expected if r["metric"] == "wsum_a" else -2 * expected)
    assert all(not training and not grad and G_seen is tr.G_ema for training, grad, G_seen in stub.calls)
    assert len(stub.calls) == 3 and (tmp_path / "network-snapshot-000001.safetensors").exists()  # not evaluated
    import json

    record = json.loads((tmp_path / "options.json").read_text())["options"]
    assert record["metrics"] == ["stub"] and record["metrics_every"] == 2


def test_tensorboard_gets_the_metrics(tmp_path, image_dir):
    pytest.importorskip("torch.utils.tensorboard")
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    G, D = tiny_pair()
    Trainer(
        tmp_path, G, D, ImageDataset(image_dir, 16), TrainingOptions(**OPTS), progress=False, evaluators={"s": Stub()}
    ).train(2)
    acc = accumulator.EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    rows = eval_rows(tmp_path)
    for tag in ("wsum_a", "wsum_b"):
        events = acc.Scalars(f"Metrics/{tag}")
        got = [(e.step, e.value) for e in events]
        want = [(int(r["step"]), np.float32(float(r["value"]))) for r in rows if r["metric"] == tag]
        assert got == want and [s for s, _ in got] == [0, 2]


@pytest.mark.slow
def test_resume_keeps_rows_through_its_step_and_training_stays_exact(tmp_path, image_dir):
    ds = ImageDataset(image_dir, 16)
    G, D = tiny_pair()
    straight = Trainer(tmp_path / "plain", G, D, ds, TrainingOptions(**OPTS), progress=False).train(6)  # no metrics
    G, D = tiny_pair()
    run = tmp_path / "run"
    Trainer(run, G, D, ds, TrainingOptions(**OPTS), progress=False, evaluators={"s": Stub()}).train(4)
    # A run killed after logging step 5 but before its next snapshot; and a stray line.
    with open(run / "metrics-eval.csv", "a") as f:
        f.write("5,0.02,,wsum_a,123.0,0.1\n6,0.0")
    stub = Stub()
    resumed = Trainer.resume(run, ds, progress=False, evaluators={"s": stub})
    resumed.train(6)
    assert len(stub.calls) == 1  # step 4 has its rows already: only step 6 is evaluated
    for name in ("G", "D", "G_ema"):  # metrics on or off, resumed or not: the same networks
        a, b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    rows = eval_rows(run)
    assert [int(r["step"]) for r in rows] == [0, 0, 2, 2, 4, 4, 6, 6]
    for r in rows[2::2]:  # the uninterrupted run's snapshots give the same values
        assert float(r["value"]) == stub_value(snapshot_G_ema(tmp_path / "plain", int(r["step"])))


def test_a_ctrl_c_at_a_due_snapshot_is_evaluated_when_the_run_resumes(
    tmp_path, image_dir, monkeypatch, sigint_deliverable
):
    from latentlab.train.interrupt import TrainingInterrupted

    step = Trainer.train_step

    def step_then_ctrl_c(self):
        out = step(self)
        if self.step == 4:
            signal.raise_signal(signal.SIGINT)  # StopOnInterrupt: stop after this step with a snapshot
        return out

    monkeypatch.setattr(Trainer, "train_step", step_then_ctrl_c)
    ds = ImageDataset(image_dir, 16)
    G, D = tiny_pair()
    with pytest.raises(TrainingInterrupted):
        Trainer(tmp_path, G, D, ds, TrainingOptions(**OPTS), progress=False, evaluators={"s": Stub()}).train(8)
    assert [int(r["step"]) for r in eval_rows(tmp_path)][::2] == [0, 2]  # the Ctrl-C snapshot was not evaluated
    monkeypatch.setattr(Trainer, "train_step", step)
    Trainer.resume(tmp_path, ds, progress=False, evaluators={"s": Stub()}).train(6)
    rows = eval_rows(tmp_path)
    assert [int(r["step"]) for r in rows][::2] == [0, 2, 4, 6]
    assert float(rows[4]["value"]) == stub_value(snapshot_G_ema(tmp_path, 4))


def test_resume_needs_the_same_metrics(tmp_path, image_dir):
    from latentlab.train.runs import train_gan

    ds = ImageDataset(image_dir, 16)
    G, D = tiny_pair()

    class WithSettings(dict):
        pass

    ev = WithSettings(s=Stub())
    ev.settings, ev.data = {"extractor": {"fid": "inception"}, "seed": 0}, str(image_dir)
    Trainer(tmp_path, G, D, ds, TrainingOptions(**OPTS), progress=False, evaluators=ev).train(1)
    with pytest.raises(ConfigError, match="evaluates the metrics s: resume it with evaluators"):
        Trainer.resume(tmp_path, ds, progress=False)
    with pytest.raises(ConfigError, match=r"do not match the evaluators given \(\['t'\]\)"):
        Trainer.resume(tmp_path, ds, progress=False, evaluators={"t": Stub()})
    other = WithSettings(s=Stub())
    other.settings, other.data = {"extractor": {"fid": "vgg16"}, "seed": 0}, None
    with pytest.raises(ConfigError, match=r"metrics use extractor=\{'fid': 'inception'\}, not \{'fid': 'vgg16'\}"):
        Trainer.resume(tmp_path, ds, progress=False, evaluators=other)
    with pytest.raises(ConfigError, match=r"metrics=\['s'\], not \['u'\]"):
        train_gan(image_dir, tmp_path, 2, options=TrainingOptions(**OPTS, metrics=["u"]), progress=False)
    with pytest.raises(ConfigError, match="must return a non-empty dict"):
        Trainer(
            tmp_path / "b", *tiny_pair(), ds, TrainingOptions(**OPTS), progress=False, evaluators={"x": lambda G: 3.0}
        ).train(1)


def test_eval_log_drops_rows_after_the_resume_point_and_damaged_lines(tmp_path):
    path = tmp_path / "metrics-eval.csv"
    log = EvalLog(path)
    log.append(0, 0.0, "", {"fid": 9.5}, {"fid": 1.0})
    log.append(2, 0.008, "network-snapshot-000002.safetensors", {"fid": 7.25, "kid": 0.5}, {"fid": 1.0, "kid": 1.0})
    log.append(4, 0.016, "network-snapshot-000004.safetensors", {"fid": 6.0}, {"fid": 2.0})
    with open(path, "a") as f:
        f.write("garbage,line\n3,x,,fid,1,1\n")
    assert [(r["step"], r["metric"], r["value"]) for r in read_eval_log(path)] == [
        (0, "fid", 9.5),
        (2, "fid", 7.25),
        (2, "kid", 0.5),
        (4, "fid", 6.0),
    ]
    kept = EvalLog(path, keep_through=2)
    assert kept.steps() == {0, 2} and [r["step"] for r in read_eval_log(path)] == [0, 2, 2]
    assert EvalLog(path).rows == [] and path.read_text() == ",".join(EVAL_COLUMNS) + "\n"  # a new run starts empty
    path.write_text("step,kimg\n1,2\n")
    with pytest.raises(ConfigError, match="not an evaluation log"):
        read_eval_log(path)


# ---------------------------------------------------------------------------------------------- the evaluators
class StubExtractor:
    """The extractor contract: uint8 [N, 3, H, W] -> float32 [N, 8] (a fixed random map of 4x4-pooled pixels)."""

    name = "stub"
    cache_id = "stub-training-seed0"
    feature_dim = 8

    def __init__(self):
        self.W = torch.randn(48, 8, generator=torch.Generator().manual_seed(0))
        self.device = torch.device("cpu")
        self.images = 0

    def __call__(self, images):
        self.images += len(images)
        return torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1) @ self.W


def test_distribution_metrics_equal_compute_metrics_and_are_computed_once_per_weights(tmp_path, image_dir):
    from latentlab.metrics.compute import compute_metrics, metric_values
    from latentlab.metrics.training import training_evaluators

    G = make_tiny_generator()
    ext = StubExtractor()
    ev = training_evaluators("fid12,kid12,pr1k3", image_dir, extractor=ext, cache_dir=str(tmp_path / "c"))
    assert list(ev) == ["fid12", "kid12", "pr1k3"] and ev.data == str(image_dir)
    recorded = dict.fromkeys(("fid", "kid", "pr"), "stub-training-seed0")  # an object: its cache_id
    assert ev.settings == {"extractor": recorded, "seed": 0, "noise_mode": "random"}
    for e in ev.values():
        e.prepare(G)
    got = {}
    for e in ev.values():
        got.update(e(G))
    assert ext.images == 1000 + 20  # one pass over generated and real images for all three metrics
    want = metric_values(compute_metrics(G, image_dir, "fid12,kid12,pr1k3", extractor=StubExtractor(), cache=False))
    assert got == want and set(got) == {"fid12", "kid12", "pr1k3_precision", "pr1k3_recall"}
    with torch.no_grad():
        G.mapping.fc0.weight.mul_(1.5)  # new weights (as after a training step): computed again
    again = ev["fid12"](G)
    assert ext.images == 2 * 1000 + 20  # the real statistics came from the cache
    assert (
        again["fid12"]
        == metric_values(compute_metrics(G, image_dir, "fid12", extractor=StubExtractor(), cache=False))["fid12"]
    )
    assert again["fid12"] != got["fid12"]


def test_ppl_metrics_are_nvidias_settings_of_perceptual_path_length():
    from latentlab.metrics.training import PPL_METRICS, training_evaluators
    from latentlab.studies.ppl import perceptual_path_length

    G = make_tiny_generator()
    mse = lambda a, b: ((a - b) ** 2).mean(dim=[1, 2, 3])  # noqa: E731  (a stand-in for LPIPS)
    names = ["ppl_zfull", "ppl_wfull", "ppl_zend", "ppl_wend", "ppl2_wend"]
    ev = training_evaluators(",".join(names), ppl_samples=6, ppl_distance=mse)
    assert set(PPL_METRICS) == set(names) and ev.settings["ppl_samples"] == 6
    # metric_main.py: ppl_<space><sampling> with crop=True; ppl2_wend without the crop; epsilon 1e-4
    nvidia = {"ppl_zfull": ("z", "full", True), "ppl_wfull": ("w", "full", True), "ppl_zend": ("z", "end", True),
              "ppl_wend": ("w", "end", True), "ppl2_wend": ("w", "end", False)}  # fmt: skip
    for name, (space, sampling, crop) in nvidia.items():
        want = perceptual_path_length(G, 6, space, sampling, crop, epsilon=1e-4, distance=mse, seed=0).mean
        assert ev[name](G) == {name: want}
    assert ev["ppl_wend"](G) != ev["ppl2_wend"](G)  # the crop matters


def test_unknown_names_and_missing_data_are_refused():
    from latentlab.metrics.training import parse_training_metrics, training_evaluators

    assert parse_training_metrics(" FID50k_full, ppl_wend,fid50k_full ") == ["fid50k_full", "ppl_wend"]
    with pytest.raises(ConfigError, match=r"^unknown metric 'fid50k_ful'; use fid<N>.*ppl_zfull, ppl_wfull"):
        parse_training_metrics("fid50k,fid50k_ful")
    with pytest.raises(ConfigError, match="unknown metric 'ppl_xend'"):
        parse_training_metrics("ppl_xend")
    with pytest.raises(ConfigError, match="fid50k compares with real images: give the data"):
        training_evaluators("fid50k")
    with pytest.raises(ConfigError, match="no such folder or zip"):
        training_evaluators("fid50k", "/nonexistent/data")


def test_real_fid_during_a_training_run(tmp_path, image_dir):
    from latentlab.metrics.compute import compute_metrics
    from latentlab.metrics.training import training_evaluators

    ev = training_evaluators("fid12,kid12", image_dir, extractor=StubExtractor(), cache_dir=str(tmp_path / "c"))
    G, D = tiny_pair()
    ds = ImageDataset(image_dir, 16)
    Trainer(tmp_path / "run", G, D, ds, TrainingOptions(**OPTS), progress=False, evaluators=ev).train(2)
    rows = eval_rows(tmp_path / "run")
    assert [(r["step"], r["metric"]) for r in rows] == [(s, m) for s in ("0", "2") for m in ("fid12", "kid12")]
    res = compute_metrics(
        snapshot_G_ema(tmp_path / "run", 2), image_dir, "fid12", extractor=StubExtractor(), cache=False
    )
    assert float(rows[2]["value"]) == res["fid12"]["fid12"]


# ---------------------------------------------------------------------------------------------- the commands
def test_cli_refuses_unknown_metrics_before_training(tmp_path, image_dir, capsys):
    base = ["train", "gan", "--data", image_dir, "--resolution", 16, "--steps", 2, *NET]
    code, _, err = run_cli(capsys, *base, "--out", tmp_path / "a", "--metrics", "fid50k,fid5ok")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith("latentlab: error: unknown metric 'fid5ok'; use fid<N>")
    assert not (tmp_path / "a" / "training_state.pt").exists()
    code, _, err = run_cli(capsys, *base, "--out", tmp_path / "b", "--metrics-extractor", "inception")
    assert code == 2 and "--metrics-extractor needs --metrics NAMES" in err
    code, _, err = run_cli(capsys, *base, "--out", tmp_path / "c", "--metrics", "fid8", "--metrics-extractor", "bogus")
    assert code == 1 and "bogus" in err and not (tmp_path / "c" / "training_state.pt").exists()


def test_metrics_run_plots_a_runs_log(tmp_path, capsys):
    run = tmp_path / "run"
    log = EvalLog(run / "metrics-eval.csv")
    fids = [(0, 0.0, 300.0), (500, 8.0, 90.0), (1000, 16.0, 40.0), (1500, 24.0, 45.0)]
    for step, kimg, fid in fids:
        snap = f"network-snapshot-{step:06d}.safetensors" if step else ""
        values = {"fid50k": fid, "pr50k3_precision": 0.1 + step / 5000, "pr50k3_recall": 0.05}
        log.append(step, kimg, snap, values, dict.fromkeys(values, 1.0))
    code, out, err = run_cli(capsys, "metrics", "--run", run, "--out", tmp_path / "o")
    assert code == 0, err
    for name in ("training-metrics.png", "training-metrics.pdf", "training-metrics.csv"):
        assert (tmp_path / "o" / name).stat().st_size > 0
    with open(tmp_path / "o" / "training-metrics.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["step", "kimg", "snapshot", "fid50k", "pr50k3_precision", "pr50k3_recall"]
    assert [(int(r["step"]), float(r["kimg"]), float(r["fid50k"])) for r in table] == fids
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:4]}
    assert lines["fid50k"][1:] == ["4", "300", "45", "40", "16"]  # evaluations, first, last, best, at kimg
    assert lines["pr50k3_precision"][4:] == ["0.4", "24"]  # precision: higher is better
    code, out, err = run_cli(capsys, "metrics", "--run", run, "--metrics", "pr50k3", "--out", tmp_path / "p")
    assert code == 0, err
    with open(tmp_path / "p" / "training-metrics.csv", newline="") as f:
        assert next(csv.reader(f)) == ["step", "kimg", "snapshot", "pr50k3_precision", "pr50k3_recall"]
    code, _, err = run_cli(capsys, "metrics", "--run", run, "--model", "x.pkl", "--out", tmp_path / "q")
    assert code == 2 and "--model does not apply" in err
    code, _, err = run_cli(capsys, "metrics", "--run", tmp_path, "--out", tmp_path / "r")
    assert code == 1 and err.strip() == (
        f"latentlab: error: --run {tmp_path}: no metrics-eval.csv (train with --metrics NAMES to evaluate "
        "metrics during training)"
    )
    code, _, err = run_cli(capsys, "metrics", "--run", run, "--metrics", "kid50k", "--out", tmp_path / "s")
    assert code == 1 and "no values of kid50k (it has fid50k, pr50k3_precision, pr50k3_recall)" in err


@pytest.mark.slow
def test_cli_train_gan_with_metrics_resumes_them_and_refuses_others(tmp_path, image_dir, capsys, monkeypatch):
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    base = ["train", "gan", "--data", image_dir, "--resolution", 16, "--batch", 4, *NET, "--out", out]
    base += ["--snapshot-every", 2]
    metrics = ["--metrics", "fid12,kid12", "--metrics-extractor", "toyfaces"]
    code, stdout, err = run_cli(capsys, *base, "--steps", 2, *metrics)
    assert code == 0, err
    assert [(r["step"], r["metric"]) for r in eval_rows(out)] == [(s, m) for s in "02" for m in ("fid12", "kid12")]
    code, stdout, err = run_cli(capsys, *base, "--steps", 4)  # resumed: the run's metrics and settings
    assert code == 0 and "resuming" in stdout, err
    rows = eval_rows(out)
    assert [r["step"] for r in rows] == ["0", "0", "2", "2", "4", "4"]
    from latentlab.metrics.compute import compute_metrics

    res = compute_metrics(snapshot_G_ema(out, 4), image_dir, "fid12", extractor="toyfaces", cache=False)
    assert float(rows[4]["value"]) == pytest.approx(res["fid12"]["fid12"], rel=1e-9)
    code, _, err = run_cli(capsys, *base, "--steps", 6, "--metrics", "kid12")
    assert code == 1 and "holds a run with metrics=['fid12', 'kid12'], not ['kid12']" in err
    code, _, err = run_cli(capsys, *base, "--steps", 6, "--metrics", "fid12,kid12", "--metrics-extractor", "vgg16")
    assert code == 1 and "metrics use extractor={'fid': 'toyfaces', 'kid': 'toyfaces'}, not" in err
    code, stdout, err = run_cli(capsys, "metrics", "--run", out, "--out", tmp_path / "plots")
    assert code == 0 and (tmp_path / "plots" / "training-metrics.png").exists(), err
