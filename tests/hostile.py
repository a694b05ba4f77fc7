"""Harness for the reliability tests: run the real CLI on a hostile or broken input in a subprocess with a
memory cap and a timeout, and check that it ends the way latentlab promises (one line naming the problem,
a non-zero exit, no traceback, nothing half-written).

The hostile files are built at run time by each test (never committed).

    proc = run_capped(["info", str(path)], tmp_path)
    assert_one_line_error(proc, str(path), "stride")
    assert_no_leftovers(tmp_path)
"""

import os
import resource
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Address-space cap of the child. importing torch maps ~3 GiB of address space (its CUDA-enabled libraries), so
# 4 GiB is the smallest cap under which `latentlab info toyfaces` runs; a file that makes latentlab allocate
# more than the cap leaves a MemoryError (or a crash), which the checks below reject.
MEMORY_CAP_MB = 4096
TIMEOUT_S = 120  # generous for 2 shared cores; the point is "not minutes of work for a 500-byte file"


def run_capped(args, cwd, mem_mb=MEMORY_CAP_MB, timeout=TIMEOUT_S, env=None, stdin=None):
    """`python -m latentlab ARGS` in `cwd` under an address-space cap; a CompletedProcess (text).

    A run that exceeds `timeout` fails the test (subprocess.TimeoutExpired propagates)."""

    def cap():
        limit = int(mem_mb) << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not leave a core file behind

    full_env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "latentlab", *map(str, args)],
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=cap,
        env=full_env,
        stdin=subprocess.DEVNULL if stdin is None else stdin,
    )


def assert_one_line_error(proc, *fragments, exit_codes=(1, 2)):
    """Exit code in `exit_codes` (1: latentlab's errors, 2: click's usage errors), stderr's last line a
    `latentlab: error:` / `Error:` line holding every fragment, no traceback, not killed by a signal."""
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.returncode in exit_codes, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("latentlab: error:", "Error:"))]
    assert len(errors) == 1, proc.stderr[-2000:]
    for f in fragments:
        assert str(f) in errors[0], (f, errors[0])
    return errors[0]


def assert_no_leftovers(folder, allowed=()):
    """No temporary or partial files (`.tmp-*`, `*.tmp`, `*.partial`) anywhere under `folder`, other than `allowed`."""
    bad = []
    for root, _, files in os.walk(folder):
        for name in files:
            if (name.startswith(".tmp") or name.endswith((".tmp", ".partial"))) and name not in allowed:
                bad.append(os.path.join(root, name))
    assert not bad, bad
