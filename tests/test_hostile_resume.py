"""kill -9 / resume of the resumable writers other than `train gan` and `sample` (those are in
test_hostile_outputs.py): `toyfaces`, `train hsr`, `train clusters` and `train encoder` (issue 16).

Each test starts the real CLI in a subprocess on a tiny configuration, waits for its first resume point,
stops it (SIGSTOP: it stays alive and holds the folder's lock), checks that a second run into the same
folder is refused in one line naming the first one's pid, kills the first with SIGKILL (its lock stays
behind, as a temporary would had it died mid-write: one is planted), then reruns the same command and
checks that it resumed from the saved step (not from scratch), ended complete, removed the stale
temporaries and its lock, and (the trainers promise exact resume) that its result equals an
uninterrupted run of the same steps, computed in-process with one torch thread as the subprocesses use.
Also: a killed run that its parent has not reaped yet (a zombie) does not keep its folder locked, and a
killed `toyfaces` does not leave its rendering processes writing into the folder.
"""

import contextlib
import csv
import json
import os
import re
import signal
import socket
import subprocess
import time

import numpy as np
import pytest
import torch
from hostile import TIMEOUT_S, assert_no_leftovers, assert_one_line_error, run_capped
from PIL import Image
from safetensors.torch import load_file
from test_hostile_outputs import MEM_MB, _kill9, _pause, _start, _wait_for

from conftest import make_tiny_generator, run_cli
from latentlab.utils import lock

LOCK = lock.LOCK_NAME
STALE = ".tmp-killed0.pt"  # what a kill -9 during an atomic write leaves behind


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """A 16 px G (with D, for `train hsr`) in latentlab's format."""
    from latentlab import Discriminator
    from latentlab.checkpoints import save_native

    G = make_tiny_generator()
    torch.manual_seed(1)
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)
    path = tmp_path_factory.mktemp("ck") / "tiny.safetensors"
    save_native(path, {"G": G, "D": D, "G_ema": G}, "test")
    return path


@pytest.fixture(scope="module")
def images16(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs16")
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _interrupt(args, cwd, out, marker, command, reap=True):
    """Run `args` until `out/marker` exists, pause it, check that a second run into `out` is refused naming
    it, kill -9 it; check that its lock is left and plant a stale temporary. reap=False: the killed process
    is left a zombie (its parent, this test, has not waited for it yet) and returned, to be reaped later."""
    first = _start(args, cwd)
    try:
        _wait_for(out / marker, first)
        _pause(first)
        # while the first one holds the folder. (Without --device: its check imports torch, seconds of a
        # refused run, which is refused just the same without it.)
        second = run_capped(_without(args, "--device"), cwd, mem_mb=MEM_MB)
        assert_one_line_error(second, f"--out {out}", f"pid {first.pid}", command)
        assert first.poll() is None  # the refused run did not disturb the running one
    finally:
        if reap:
            _kill9(first)
        else:
            os.kill(first.pid, signal.SIGKILL)
    if not reap:
        deadline = time.monotonic() + 30
        while _running(first.pid):
            assert time.monotonic() < deadline, "SIGKILL did not end the run"
            time.sleep(0.01)
    assert json.loads((out / LOCK).read_text())["pid"] == first.pid  # kill -9 leaves its lock ...
    (out / STALE).write_bytes(b"\0" * 4096)  # ... and, had it died mid-write, a temporary
    return first


def _running(pid):
    """Whether `pid` is a live process (a zombie, dead but not yet reaped, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def _children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _without(args, option):
    """args without `option VALUE`."""
    if option not in args:
        return args
    i = args.index(option)
    return args[:i] + args[i + 2 :]


def _resume(capsys, args, cwd, out, straight):
    """Rerun `args --out out` (the resumed run, a subprocess) while, in-process, `args --out straight` runs
    uninterrupted (the two at once: a shorter test)."""
    proc = _start([*args, "--out", out], cwd)
    try:
        _reference(capsys, *args, "--out", straight)
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _finished_cleanly(proc, out):
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert_no_leftovers(out)
    assert not (out / LOCK).exists()


def _reference(capsys, *args):
    """An uninterrupted run of the same command, in-process, with one torch thread (as the subprocesses)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code, stdout, err = run_cli(capsys, *args)
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err
    return stdout


def _step(path):
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


def _metrics(folder):
    """metrics.csv's rows without the timings (which differ from run to run)."""
    with open(folder / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "sec_per_step"} for row in csv.DictReader(f)]


def _assert_same_tensors(a, b, what):
    assert a.keys() == b.keys(), what
    for k in a:
        if isinstance(a[k], dict):
            _assert_same_tensors(a[k], b[k], f"{what}/{k}")
        elif torch.is_tensor(a[k]):
            assert torch.equal(a[k], b[k]), f"{what}/{k}"


# ------------------------------------------------------------------------------------------- the lock


def test_lock_of_a_killed_but_unreaped_process_is_stale(tmp_path):
    """A process killed with kill -9 stays a zombie until its parent waits for it (forever, when the parent
    never does, or in a container whose init does not reap): it writes nothing, so its lock is stale."""
    p = subprocess.Popen(["sleep", "300"])
    try:
        record = {"pid": p.pid, "host": socket.gethostname(), "started": lock._start_time(p.pid), "command": "x"}
        assert not lock.is_stale(record)  # alive
        os.kill(p.pid, signal.SIGKILL)  # not reaped: a zombie
        deadline = time.monotonic() + 10
        while _running(p.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.path.exists(f"/proc/{p.pid}") and not _running(p.pid)  # still there, as a zombie
        assert lock.is_stale(record)
        (tmp_path / LOCK).write_text(json.dumps(record))
        with lock.out_dir_lock(tmp_path):  # taken over
            assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    finally:
        p.kill()
        p.wait()


# ---------------------------------------------------------------------------------------------- toyfaces


@pytest.mark.slow
def test_toyfaces_kill9_keeps_the_drawn_images_and_draws_only_the_rest(tmp_path):
    from latentlab.datasets.toyfaces import image_name, load_labels, render_face, sample_attributes

    n, out = 2000, tmp_path / "toy"
    args = ["toyfaces", "--n", n, "--resolution", 8, "--workers", 1, "--out", out]
    # the killed run stays a zombie until the rerun is over: dead, its lock must not keep the rerun out
    first = _interrupt(args, tmp_path, out, f"images/{image_name(0, n)}", "toyfaces", reap=False)
    (out / "images" / ".tmp-killed1.png").write_bytes(b"\x89PNG")  # a killed image write
    kept = {p.name: p.read_bytes() for p in (out / "images").iterdir() if not p.name.startswith(".")}
    assert 0 < len(kept) < n and sorted(kept) == [image_name(i, n) for i in range(len(kept))]  # drawn in order
    try:
        proc = run_capped(args, tmp_path, mem_mb=MEM_MB)
        assert os.path.exists(f"/proc/{first.pid}")  # still unreaped while it ran
    finally:
        first.communicate(timeout=60)
    _finished_cleanly(proc, out)
    assert f"kept {len(kept)} images already there" in proc.stdout
    assert re.search(rf"rendered {n - len(kept)} faces\b", proc.stdout), proc.stdout
    names = sorted(os.listdir(out / "images"))
    assert names == [image_name(i, n) for i in range(n)]
    assert all((out / "images" / k).read_bytes() == v for k, v in kept.items())  # not drawn again
    # the dataset is the one an uninterrupted run writes: labels, and the faces on both sides of the kill
    table = sample_attributes(n, 0)
    labels = load_labels(out)
    assert len(labels) == n and list(labels["file"][:2]) == [f"images/{image_name(i, n)}" for i in range(2)]
    assert np.array_equal(labels[list(table.columns)].to_numpy(), table.to_numpy())
    first_new = len(kept)
    for i in sorted({0, first_new - 1, first_new, n - 1, *range(0, n, 199)}):
        got = np.asarray(Image.open(out / "images" / image_name(i, n)).convert("RGB"))
        assert np.array_equal(got, render_face(table.iloc[i], 8)), i
    assert json.loads((out / "dataset.json").read_text())["n"] == n


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"), reason="needs /proc")
def test_toyfaces_workers_stop_drawing_when_their_run_is_killed(tmp_path):
    """kill -9 of `toyfaces` must not leave its rendering processes writing into the folder (their chunks
    hold up to 256 faces) while the lock, whose pid is dead, lets the next run take the folder over."""
    from latentlab.datasets.toyfaces import image_name

    n, out = 20000, tmp_path / "toy"  # 64 px faces in chunks of 256: seconds of work per chunk
    first = _start(["toyfaces", "--n", n, "--resolution", 64, "--workers", 2, "--out", out], tmp_path)
    workers = []
    try:
        _wait_for(out / "images" / image_name(0, n), first)
        workers = _children(first.pid)
        assert len(workers) == 2
        first.send_signal(signal.SIGKILL)
        first.wait()  # not communicate(): the workers hold its stdout and stderr, it would wait for them
        deadline = time.monotonic() + 2.0  # a face takes milliseconds; the rest of a chunk takes seconds
        while any(map(_running, workers)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(map(_running, workers)), "the killed run's workers still draw"
        drawn = len(os.listdir(out / "images"))
        time.sleep(0.5)
        assert len(os.listdir(out / "images")) == drawn
    finally:
        for pid in workers:  # ours: do not leave them behind, whatever happened
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if first.poll() is None:
            first.kill()
        first.communicate(timeout=60)


# ---------------------------------------------------------------------------------------------- trainers


@pytest.mark.slow
def test_train_clusters_kill9_resumes_exactly(tmp_path, tiny_ckpt, capsys):
    out = tmp_path / "run"
    args = ["train", "clusters", "--model", tiny_ckpt, "--levels", "coarse,medium", "--k", 2, "--batch", 8]
    args += ["--n-critic", 1, "--snapshot-every", 2, "--log-every", 1, "--center-samples", 50, "--device", "cpu"]
    _interrupt([*args, "--steps", 100000, "--out", out], tmp_path, out, "state.pt", "train clusters")
    step = _step(out / "state.pt")
    assert step >= 2 and step % 2 == 0

    straight = tmp_path / "straight"
    proc = _resume(capsys, [*args, "--steps", step + 2], tmp_path, out, straight)
    _finished_cleanly(proc, out)
    assert f"| {step}/{step + 2} [" in proc.stderr  # the progress bar starts at the saved step
    assert f"({step + 2} steps, levels coarse, middle)" in proc.stdout
    assert sorted(os.listdir(out)) == ["clusters.npz", "metrics.csv", "state.pt"]
    rows = [r.split(",")[0] for r in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert rows == [str(i) for i in range(1, step + 3)]  # the killed run's rows after its snapshot are gone

    a = torch.load(out / "state.pt", weights_only=True)
    b = torch.load(straight / "state.pt", weights_only=True)
    assert a["step"] == b["step"] == step + 2
    _assert_same_tensors(a["nets"], b["nets"], "nets")
    assert torch.equal(a["rng"], b["rng"])
    with np.load(out / "clusters.npz") as fa, np.load(straight / "clusters.npz") as fb:
        assert fa.files == fb.files and all(np.array_equal(fa[k], fb[k]) for k in fa.files)
    assert _metrics(out) == _metrics(straight)


@pytest.mark.slow
def test_train_encoder_kill9_resumes_exactly(tmp_path, tiny_ckpt, images16, capsys):
    out = tmp_path / "run"
    args = ["train", "encoder", "--model", tiny_ckpt, "--data", images16, "--gen-fraction", 0.5, "--batch", 4]
    args += ["--depth", 10, "--width", 4, "--fpn-channels", 8, "--feature-size", 16, "--random-backbone"]
    args += ["--snapshot-every", 2, "--log-every", 1, "--seed", 1, "--device", "cpu"]
    _interrupt([*args, "--steps", 100000, "--out", out], tmp_path, out, "state.pt", "train encoder")
    step = _step(out / "state.pt")
    assert step >= 2 and step % 2 == 0

    straight = tmp_path / "straight"
    proc = _resume(capsys, [*args, "--steps", step + 2], tmp_path, out, straight)
    _finished_cleanly(proc, out)
    assert f"resuming {out} at step {step}" in proc.stdout
    assert f"trained the encoder to step {step + 2}" in proc.stdout
    assert sorted(os.listdir(out)) == ["encoder.safetensors", "metrics.csv", "state.pt"]

    a = torch.load(out / "state.pt", weights_only=True)
    b = torch.load(straight / "state.pt", weights_only=True)
    assert a["step"] == b["step"] == step + 2 and a["data_pos"] == b["data_pos"]
    for key in ("E", "D"):
        _assert_same_tensors(a[key], b[key], key)
    assert torch.equal(a["rng"], b["rng"])
    ea, eb = load_file(out / "encoder.safetensors"), load_file(straight / "encoder.safetensors")
    _assert_same_tensors(ea, eb, "encoder.safetensors")
    assert _metrics(out) == _metrics(straight)


@pytest.mark.slow
def test_train_hsr_kill9_resumes_exactly(tmp_path, tiny_ckpt, images16, capsys):
    out = tmp_path / "run"
    # an extractor that works offline: torchvision's ResNet-18 with random weights (the explicit baseline)
    args = ["train", "hsr", "--model", tiny_ckpt, "--data", images16, "--batch", 2, "--snapshot-every", 2]
    args += ["--log-every", 1, "--extractor", "torchvision:resnet18", "--extractor-weights", "none"]
    args += ["--extractor-layers", "layer1,layer2", "--hsr-hidden", 8, "--device", "cpu"]
    _interrupt([*args, "--steps", 100000, "--out", out], tmp_path, out, "training_state.pt", "train hsr")
    step = _step(out / "training_state.pt")
    assert step >= 2 and step % 2 == 0

    straight = tmp_path / "straight"
    proc = _resume(capsys, [*args, "--steps", step + 2], tmp_path, out, straight)
    _finished_cleanly(proc, out)
    assert f"resuming {out} at step {step}" in proc.stdout
    assert f"trained to step {step + 2}" in proc.stdout
    snapshot = f"network-snapshot-{step + 2:06d}.safetensors"
    assert _step(out / "training_state.pt") == step + 2 and (out / snapshot).exists()

    _assert_same_tensors(load_file(out / snapshot), load_file(straight / snapshot), snapshot)
    a = torch.load(out / "training_state.pt", weights_only=True)
    b = torch.load(straight / "training_state.pt", weights_only=True)
    _assert_same_tensors(a["regularizer"], b["regularizer"], "HSR predictors")
