"""Outputs and faults (issue 16): one writer per output folder (the lock), stale temporaries removed on resume,
OSError (read-only folder, full disk) as one line with no partial file, --grid parents, consistent rules, and
kill -9 / resume of the resumable writers."""

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from hostile import ROOT, assert_no_leftovers, assert_one_line_error, run_capped
from PIL import Image

from latentlab.errors import ConfigError
from latentlab.utils import atomic, lock, outdir

LOCK = lock.LOCK_NAME
MEM_MB = 8192  # these runs render, train and sample (torch + pandas + PIL): more than `info` needs


def _dead_pid():
    """The pid of a process that has ended (reaped), for planting stale locks."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def live_process():
    """A sleeping child process: a live pid that is not this one."""
    p = subprocess.Popen(["sleep", "300"])
    yield p
    p.kill()
    p.wait()


def _plant_lock(folder, pid, command="latentlab train gan --out elsewhere", host=None, started="auto"):
    os.makedirs(folder, exist_ok=True)
    record = {
        "pid": pid,
        "host": host or socket.gethostname(),
        "started": lock._start_time(pid) if started == "auto" else started,
        "command": command,
    }
    with open(os.path.join(folder, LOCK), "w") as f:
        json.dump(record, f)
    return record


# ------------------------------------------------------------------------------------------- the lock (in-process)


def test_lock_holds_names_the_holder_and_is_released(tmp_path, live_process):
    folder = tmp_path / "run"
    with lock.out_dir_lock(folder) as record:
        on_disk = json.loads((folder / LOCK).read_text())
        assert on_disk["pid"] == os.getpid() and on_disk["host"] == socket.gethostname()
        assert on_disk["command"].startswith("latentlab") and record["pid"] == os.getpid()
        with pytest.raises(lock.FolderLocked, match="this process already writes"):
            lock.acquire(folder)
        # the lock is bookkeeping, not output: the folder still counts as empty
        assert outdir.is_empty_dir(folder) and outdir.visible_entries(folder) == []
        outdir.check_out_dir(folder)
        outdir.check_resume_dir(folder, ("state.pt",), "run")
    assert not (folder / LOCK).exists()

    _plant_lock(folder, live_process.pid, command="latentlab sample --n 9 --out x")
    with pytest.raises(lock.FolderLocked) as e:
        with lock.out_dir_lock(folder, name="--out run"):
            raise AssertionError("must not run")
    assert str(e.value).startswith("--out run: another latentlab run")
    assert f"pid {live_process.pid}" in str(e.value) and "latentlab sample --n 9 --out x" in str(e.value)
    assert (folder / LOCK).exists()  # the holder's lock is left alone
    assert json.loads((folder / LOCK).read_text())["pid"] == live_process.pid


def test_lock_released_on_error_and_ctrl_c_and_never_removes_anothers(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    for exc in (ValueError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with lock.out_dir_lock(folder):
                raise exc
        assert not (folder / LOCK).exists()
    assert (folder / "keep.txt").exists()  # an existing folder stays, contents untouched
    # a new folder created for the lock and left empty by a failed run is removed again (parents too)
    new = tmp_path / "b" / "c"
    with pytest.raises(ValueError):
        with lock.out_dir_lock(new):
            raise ValueError("refused")
    assert not (tmp_path / "b").exists()
    # release never removes a lock that is not ours (e.g. taken over after ours was judged stale)
    with lock.out_dir_lock(folder) as record:
        _plant_lock(folder, os.getppid(), command="other")
    assert json.loads((folder / LOCK).read_text())["command"] == "other"
    assert record["pid"] == os.getpid()


def test_stale_locks_are_taken_over(tmp_path, live_process):
    folder = tmp_path / "run"
    cases = {
        "dead pid": dict(pid=_dead_pid()),
        "reused pid": dict(pid=live_process.pid, started=12345),  # alive, but started at another time
        "damaged": None,
    }
    for what, kw in cases.items():
        if kw is None:
            folder.mkdir(exist_ok=True)
            (folder / LOCK).write_text("")  # killed between creating and filling the file
        else:
            _plant_lock(folder, **kw)
        assert lock.is_stale(lock.read_lock(folder) or {}), what
        with lock.out_dir_lock(folder):
            assert json.loads((folder / LOCK).read_text())["pid"] == os.getpid(), what
        assert not (folder / LOCK).exists(), what
    assert not (folder / lock.BREAK_NAME).exists()


def test_lock_of_another_host_is_refused_with_a_hint(tmp_path):
    folder = tmp_path / "run"
    _plant_lock(folder, 1, host="far-away-host", started=None)
    with pytest.raises(lock.FolderLocked) as e:
        lock.acquire(folder)
    assert "host far-away-host" in str(e.value) and str(folder / LOCK) in str(e.value)


# ------------------------------------------------------------------------------- stale temporaries, atomic writes


def test_remove_stale_temps_only_touches_temporaries(tmp_path, live_process):
    (tmp_path / ".tmp-abc.pt").write_bytes(b"half a state")
    (tmp_path / ".tmp-x.png").write_bytes(b"")
    (tmp_path / "state.pt").write_bytes(b"real")
    (tmp_path / "x.tmp-notours").write_bytes(b"real")
    (tmp_path / ".tmp-folder").mkdir()  # not a file of the atomic writer: left alone
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / ".tmp-deeper.png").write_bytes(b"")  # only the run folder itself is cleaned
    _plant_lock(tmp_path, live_process.pid)
    assert atomic.remove_stale_temps(tmp_path) == 0  # another live run holds the folder: its writes may be under way
    assert (tmp_path / ".tmp-abc.pt").exists()
    os.unlink(tmp_path / LOCK)
    assert atomic.remove_stale_temps(tmp_path) == 2
    assert sorted(os.listdir(tmp_path)) == [".tmp-folder", "images", "state.pt", "x.tmp-notours"]
    assert (tmp_path / "images" / ".tmp-deeper.png").exists()
    with lock.out_dir_lock(tmp_path):  # our own lock does not stop the cleaning, and survives it
        (tmp_path / ".tmp-new.pt").write_bytes(b"")
        assert atomic.remove_stale_temps(tmp_path) == 1 and (tmp_path / LOCK).exists()


def test_atomic_write_failures_leave_no_partial_file_and_name_the_target(tmp_path, monkeypatch):
    target = tmp_path / "state.pt"
    atomic.save_torch(target, {"step": 1})
    before = target.read_bytes()

    def full_disk(obj, f):  # half the file written, then the disk is full
        f.write(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError) as e:
        atomic.save_torch(target, {"step": 2})
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(target)
    assert target.read_bytes() == before
    assert_no_leftovers(tmp_path)

    # torch/safetensors report a full disk as RuntimeError: it becomes OSError(ENOSPC) naming the file
    def torch_full(obj, f):
        f.write(b"x")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    class Full:
        f_bavail, f_frsize = 0, 4096

    monkeypatch.setattr(torch, "save", torch_full)
    monkeypatch.setattr(os, "statvfs", lambda p: Full())
    with pytest.raises(OSError) as e:
        atomic.save_torch(target, {"step": 3})
    assert e.value.errno == errno.ENOSPC and str(target) in str(e.value)
    assert target.read_bytes() == before
    assert_no_leftovers(tmp_path)
    monkeypatch.undo()

    # a bug (not a full disk) stays what it is
    def broken(obj, f):
        raise RuntimeError("a bug")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        atomic.save_torch(target, {"step": 4})
    assert_no_leftovers(tmp_path)


def test_unwritable_folder_names_the_target(tmp_path):
    if os.geteuid() == 0:  # chmod does not stop root: /proc refuses new files from everyone
        target = "/proc/latentlab-test.txt"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = str(ro / "out.txt")
    with pytest.raises(OSError) as e:
        atomic.write_text(target, "x")
    assert e.value.filename == target  # not the temporary's name
    assert not os.path.exists(target)


# ---------------------------------------------------------------------------------------- consistency rules


def test_cluster_count_rule_is_shared():
    from latentlab.truncation import parse_truncation
    from latentlab.truncation.cluster_base import check_cluster_count

    with pytest.raises(ConfigError, match="clusters:k=1: cluster truncation needs at least 2"):
        parse_truncation("clusters:k=1")
    with pytest.raises(ConfigError, match="--k=1: cluster truncation needs at least 2"):
        check_cluster_count(1, "--k")
    assert parse_truncation("clusters:k=2").k == 2


def test_boundary_count_larger_than_the_samples_is_refused():
    from latentlab.boundaries.svm import split_samples

    rng = np.random.default_rng(0)
    codes, scores = rng.normal(size=(20, 3)), rng.normal(size=20)
    with pytest.raises(ConfigError, match="count 11: 20 samples give at most 10 from each end"):
        split_samples(codes, scores, count=11)
    with pytest.raises(ConfigError, match="count must be >= 1"):
        split_samples(codes, scores, count=0)
    train, val, _ = split_samples(codes, scores, count=10, split=0.5)[:3]
    assert len(train[0]) + len(val[0]) == 20  # all of them: 10 from each end


# ------------------------------------------------------------------------------------ the real CLI (subprocess)


@pytest.mark.slow
def test_cli_folder_lock_foreign_folders_grid_and_unwritable_out(tmp_path, live_process):
    args = ["toyfaces", "--n", 4, "--resolution", 8, "--workers", 1]
    # a live run holds the folder: refused in one line naming it; nothing written, its lock kept
    _plant_lock(tmp_path / "d", live_process.pid, command="latentlab toyfaces --n 99 --out d")
    proc = run_capped([*args, "--out", "d"], tmp_path, mem_mb=MEM_MB)
    assert_one_line_error(proc, "--out d", f"pid {live_process.pid}", "latentlab toyfaces --n 99 --out d")
    assert os.listdir(tmp_path / "d") == [LOCK]
    # the holder dies (kill -9 leaves its lock): the next run takes the folder over, and leaves no lock
    _plant_lock(tmp_path / "d", _dead_pid())
    (tmp_path / "d" / ".tmp-killed.csv").write_text("half")
    proc = run_capped([*args, "--out", "d", "--grid", "d/previews/grid.png"], tmp_path, mem_mb=MEM_MB)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path / "d")) == ["dataset.json", "images", "labels.csv", "previews"]
    assert_no_leftovers(tmp_path)
    # --grid outside the output must not create folders (checked before any work)
    proc = run_capped([*args, "--out", "e", "--grid", "nowhere/deeper/grid.png"], tmp_path, mem_mb=MEM_MB)
    assert_one_line_error(proc, "--grid nowhere/deeper/grid.png", "does not exist")
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "e").exists()
    # a foreign non-empty folder is refused, as `sample` refuses one
    for name, setup in (("f1", lambda p: (p / "notes.txt").write_text("mine")), ("f2", None)):
        folder = tmp_path / name
        folder.mkdir()
        if setup:
            setup(folder)
        else:
            (folder / "images").mkdir()
            Image.new("RGB", (8, 8)).save(folder / "images" / "0.png")
        proc = run_capped([*args, "--out", name], tmp_path, mem_mb=MEM_MB)
        assert_one_line_error(proc, name)
        assert not (folder / "dataset.json").exists() and not (folder / LOCK).exists()
    # an output folder that cannot be created: one line, nothing left
    (tmp_path / "plain").write_text("a file")
    for bad in ("plain/sub", "/proc/latentlab-out"):
        proc = run_capped([*args, "--out", bad], tmp_path, mem_mb=MEM_MB)
        assert_one_line_error(proc, bad)


def _wait_for(path, proc, timeout=150):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError(f"ended early: {proc.communicate()[1][-2000:]}")
        assert time.monotonic() < deadline, f"no {path}"
        time.sleep(0.05)


def _start(args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "latentlab", *map(str, args)],
        cwd=str(cwd),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _pause(proc):
    """Stop `proc` (SIGSTOP) mid-run: it stays alive and holds its lock, however fast the machine."""
    proc.send_signal(signal.SIGSTOP)


def _kill9(proc):
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.mark.slow
def test_train_gan_kill9_resumes_and_two_trainers_cannot_share_a_folder(tmp_path, tiny_images):
    run = tmp_path / "run"
    args = ["train", "gan", "--data", tiny_images, "--resolution", 8, "--batch", 2, "--z-dim", 8, "--w-dim", 8]
    args += ["--map-layers", 1, "--channel-base", 32, "--channel-max", 8, "--snapshot-every", 2, "--log-every", 1]
    args += ["--device", "cpu", "--out", run]
    first = _start([*args, "--steps", 100000], tmp_path)
    try:
        _wait_for(run / "training_state.pt", first)
        _pause(first)
        second = run_capped([*args, "--steps", 100000], tmp_path, mem_mb=MEM_MB)  # while the first one trains
        assert_one_line_error(second, f"--out {run}", f"pid {first.pid}", "train gan")
        assert first.poll() is None  # the refused run did not disturb the running one
    finally:
        _kill9(first)
    assert json.loads((run / LOCK).read_text())["pid"] == first.pid  # kill -9 leaves its lock ...
    (run / ".tmp-abcd1234.pt").write_bytes(b"\0" * 4096)  # ... and (had it died mid-write) a temporary
    step = int(torch.load(run / "training_state.pt", weights_only=True)["step"])
    assert step >= 2
    proc = run_capped([*args, "--steps", step + 2], tmp_path, mem_mb=MEM_MB)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"trained to step {step + 2}" in proc.stdout
    assert int(torch.load(run / "training_state.pt", weights_only=True)["step"]) == step + 2
    assert (run / f"network-snapshot-{step + 2:06d}.safetensors").exists()
    assert_no_leftovers(run)
    assert not (run / LOCK).exists()


@pytest.mark.slow
def test_sample_kill9_resumes_without_temporaries(tmp_path):
    out = tmp_path / "s"
    args = ["sample", "--n", 240, "--chunk", 8, "--batch", 8, "--device", "cpu", "--out", out]
    first = _start(args, tmp_path)
    try:
        _wait_for(out / "chunk_000000.npz", first)
        _pause(first)
        second = run_capped(args, tmp_path, mem_mb=MEM_MB)
        assert_one_line_error(second, f"--out {out}", f"pid {first.pid}", "sample")
    finally:
        _kill9(first)
    (out / ".tmp-killed.npz").write_bytes(b"PK")
    proc = run_capped(args, tmp_path, mem_mb=MEM_MB)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "kept" in proc.stdout and "already done" in proc.stdout
    assert len([e for e in os.listdir(out) if e.startswith("chunk_")]) == 30
    assert_no_leftovers(out)
    assert not (out / LOCK).exists()
