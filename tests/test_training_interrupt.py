"""Ctrl-C during training: a snapshot and the resume state are written, exit code 130, one line naming the
resume point, and the state resumes to the same networks as an uninterrupted run."""

import csv
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_tiny_generator, run_cli, sigint_default_in_child
from latentlab import load_checkpoint
from latentlab.train import TrainingOptions
from latentlab.train.interrupt import EXIT_CODE, StopOnInterrupt, TrainingInterrupted

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NET = dict(z_dim=16, w_dim=16, map_layers=2, channel_base=256, channel_max=16)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:16, 0:16]
    for i in range(12):
        cy, cx = rng.uniform(3, 13, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 10)[..., None] * rng.uniform(0, 255, 3)
        Image.fromarray(blob.astype(np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def _rows(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def interrupt_cli(args, metrics, min_rows=3, timeout=180, sig=signal.SIGINT, preexec=sigint_default_in_child):
    """Run `latentlab ARGS` in a child process, send `sig` once `metrics` has `min_rows` rows; (rc, stderr).

    The child uses this process's thread count, so its float round-off matches runs made here.
    """
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS=str(torch.get_num_threads()))
    proc = subprocess.Popen(
        [sys.executable, "-m", "latentlab.cli.main", *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,
    )
    deadline = time.monotonic() + timeout
    try:
        while len(_rows(metrics)) < min_rows:
            assert proc.poll() is None, f"training ended early: {proc.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "no training progress"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def _same_state_dict(a, b):
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_ctrl_c_in_train_gan_writes_a_resume_point_that_resumes_exactly(tmp_path, image_dir, capsys):
    from latentlab.train.runs import train_gan

    out = tmp_path / "run"
    args = [
        "train",
        "gan",
        "--data",
        image_dir,
        "--resolution",
        16,
        "--batch",
        4,
        "--z-dim",
        16,
        "--w-dim",
        16,
        "--channel-base",
        256,
        "--channel-max",
        16,
        "--log-every",
        1,
        "--snapshot-every",
        1000,
        "--out",
        out,
    ]
    rc, err = interrupt_cli(args + ["--steps", 100000], out / "metrics.csv")
    assert rc == EXIT_CODE == 130, err[-2000:]
    state = torch.load(out / "training_state.pt", weights_only=True)
    k = int(state["step"])
    assert k >= 3  # stopped after the step under way, not at a periodic snapshot (every 1000)
    last = err.strip().splitlines()[-1]
    assert last == (
        f"latentlab: interrupted after step {k}; resume point {out / 'training_state.pt'} "
        "(rerun the same command to resume)"
    )
    assert "Traceback" not in err
    assert (out / f"network-snapshot-{k:06d}.safetensors").exists()
    assert [int(r["step"]) for r in _rows(out / "metrics.csv")] == list(range(1, k + 1))

    # Rerunning the command resumes; the result equals a run that was never interrupted.
    code, stdout, err = run_cli(capsys, *args, "--steps", k + 2)
    assert code == 0, err
    assert f"resuming {out} at step {k}" in stdout
    straight = train_gan(
        image_dir,
        tmp_path / "straight",
        k + 2,
        resolution=16,
        network_kwargs=NET,
        progress=False,
        # the command line's defaults for a new run: --cfg auto, --aug ada
        options=TrainingOptions(cfg="auto", aug="ada", batch_size=4, log_every=1, snapshot_every=1000),
    )
    resumed = load_checkpoint(out / f"network-snapshot-{k + 2:06d}.safetensors").networks()
    for name in ("G", "D", "G_ema"):
        assert _same_state_dict(getattr(straight, name).state_dict(), resumed[name].state_dict()), name
    assert [int(r["step"]) for r in _rows(out / "metrics.csv")] == list(range(1, k + 3))


@pytest.mark.slow
def test_ctrl_c_in_train_clusters_writes_the_state_that_resumes_exactly(tmp_path, capsys):
    from latentlab.checkpoints import save_native
    from latentlab.train.clusters import train_cluster_mappings

    G = make_tiny_generator()
    ckpt = tmp_path / "tiny.safetensors"
    save_native(ckpt, {"G_ema": G}, "latentlab")
    out = tmp_path / "run"
    args = [
        "train",
        "clusters",
        "--model",
        ckpt,
        "--levels",
        "coarse,medium",
        "--k",
        2,
        "--batch",
        8,
        "--n-critic",
        1,
        "--log-every",
        1,
        "--center-samples",
        100,
        "--device",
        "cpu",
        "--out",
        out,
    ]
    rc, err = interrupt_cli(args + ["--steps", 1000000], out / "metrics.csv")
    assert rc == 130, err[-2000:]
    k = int(torch.load(out / "state.pt", weights_only=True)["step"])
    assert k >= 3
    assert err.strip().splitlines()[-1] == (
        f"latentlab: interrupted after step {k}; resume point {out / 'state.pt'} (rerun the same command to resume)"
    )
    assert not (out / "clusters.npz").exists()  # the result is written only when the run completes

    code, stdout, err = run_cli(capsys, *args, "--steps", k + 2)
    assert code == 0, err
    straight = tmp_path / "straight"
    train_cluster_mappings(
        G,
        str(straight),
        k + 2,
        levels=("coarse", "medium"),
        k=2,
        batch_size=8,
        n_critic=1,
        log_every=1,
        center_samples=100,
        progress=False,
    )
    sa = torch.load(straight / "state.pt", weights_only=True)
    sb = torch.load(out / "state.pt", weights_only=True)
    assert sa["step"] == sb["step"] == k + 2
    assert _same_state_dict(sa["nets"], sb["nets"]) and torch.equal(sa["rng"], sb["rng"])
    with np.load(straight / "clusters.npz") as fa, np.load(out / "clusters.npz") as fb:
        assert fa.files == fb.files and all(np.array_equal(fa[key], fb[key]) for key in fa.files)


# ---------------------------------------------------------------------------------------- the handler


def test_first_ctrl_c_asks_to_stop_the_second_interrupts_and_the_handler_is_restored(sigint_deliverable):
    before = signal.getsignal(signal.SIGINT)
    with StopOnInterrupt(message="test: stopping") as stop:
        assert stop.active and signal.getsignal(signal.SIGINT) is not before
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler runs between bytecodes of the main thread
        assert stop.requested  # no exception: the loop decides when to stop
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        assert signal.getsignal(signal.SIGINT) is before  # restored at the second Ctrl-C
    assert signal.getsignal(signal.SIGINT) is before
    with StopOnInterrupt():
        pass
    assert signal.getsignal(signal.SIGINT) is before


def test_first_sigterm_asks_to_stop_the_second_goes_to_the_previous_handler():
    seen = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        previous = signal.getsignal(signal.SIGTERM)
        with StopOnInterrupt(message="test: {signal}") as stop:
            assert signal.SIGTERM in stop.active_signals
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
            assert stop.requested and stop.signum == signal.SIGTERM and seen == []
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
            assert seen == [signal.SIGTERM]  # the second one acted at once, through the handler that was there
            assert signal.getsignal(signal.SIGTERM) is previous
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, before)


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job of a non-interactive shell (`nohup cmd &`)


def test_sigterm_stops_a_background_train_gan_with_a_resume_point(tmp_path, image_dir):
    out = tmp_path / "run"
    args = ["train", "gan", "--data", image_dir, "--resolution", 16, "--batch", 4, "--z-dim", 16, "--w-dim", 16]
    args += ["--channel-base", 256, "--channel-max", 16, "--log-every", 1, "--snapshot-every", 1000, "--out", out]
    rc, err = interrupt_cli(args + ["--steps", 100000], out / "metrics.csv", sig=signal.SIGTERM, preexec=_ignore_sigint)
    assert rc == 128 + signal.SIGTERM == 143, err[-2000:]
    k = int(torch.load(out / "training_state.pt", weights_only=True)["step"])
    assert k >= 3 and (out / f"network-snapshot-{k:06d}.safetensors").exists()
    lines = err.strip().splitlines()
    assert "latentlab: SIGTERM: stopping after this step to write a snapshot" in err
    assert lines[-1] == (
        f"latentlab: interrupted after step {k}; resume point {out / 'training_state.pt'} "
        "(rerun the same command to resume)"
    )
    assert "Traceback" not in err


def test_handler_is_left_alone_outside_the_main_thread_and_where_sigint_is_ignored():
    seen = {}

    def worker():
        with StopOnInterrupt() as stop:
            seen["active"] = stop.active
            seen["handler"] = signal.getsignal(signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == {"active": False, "handler": before}
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopOnInterrupt() as stop:
            assert signal.SIGINT not in stop.active_signals and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert stop.active_signals == (signal.SIGTERM,)  # SIGTERM still stops a background run cleanly
    finally:
        signal.signal(signal.SIGINT, previous)


def test_training_interrupted_is_a_keyboard_interrupt_naming_the_resume_point():
    e = TrainingInterrupted(12, "runs/a/training_state.pt")
    assert isinstance(e, KeyboardInterrupt) and not isinstance(e, Exception)
    assert (
        str(e) == "interrupted after step 12; resume point runs/a/training_state.pt (rerun the same command to resume)"
    )
    assert (e.step, e.resume_path) == (12, "runs/a/training_state.pt")
