"""One writer per output folder: a lock file naming the process that writes into the folder.

A run that writes into a folder (training, sampling, rendering a dataset, projecting) first takes the
folder's lock (`out_dir_lock`): it creates `.latentlab-lock` in the folder atomically (O_CREAT|O_EXCL)
holding the pid, host, the process's start time and the command line. A second run into the same folder
finds the file and is refused with one line naming the running one (`FolderLocked`). The lock is removed
when the run ends, also on errors and Ctrl-C.

A run killed with kill -9 (or a crash, a power cut) leaves its lock behind. A lock whose process is gone
is stale and taken over: the pid is not alive on this host (a killed process that its parent has not yet
reaped, a zombie, counts as gone), or it is alive but started at another time (the pid was reused). A
lock written on another host cannot be checked and is refused, naming the host and the file to delete
once that run is known to be over. Taking over is itself guarded by a short-lived
`.latentlab-lock.break` file, so that two runs meeting one stale lock cannot both take it.

The lock file is not an output: `latentlab.utils.outdir` does not count it when judging whether a
folder is empty, and `remove_stale_temps` (`latentlab.utils.atomic`) never touches it.
"""

import contextlib
import json
import os
import socket
import sys
import time

from ..errors import ConfigError

LOCK_NAME = ".latentlab-lock"
BREAK_NAME = LOCK_NAME + ".break"
BREAK_STALE_S = 30  # a takeover takes milliseconds; a .break file older than this was left by a killed process


class FolderLocked(ConfigError):
    """Another live process holds the output folder's lock."""


def _start_time(pid):
    """The start time of process `pid` in clock ticks since boot (Linux /proc), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return int(stat[stat.rindex(")") + 2 :].split()[19])  # field 22; the name (field 2) may hold spaces
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return not _zombie(pid)
    except (OSError, OverflowError, ValueError):
        return False
    return not _zombie(pid)


def _zombie(pid):
    """True for a process that has ended but was not yet reaped by its parent (Linux /proc; False where unknown).

    A process killed with kill -9 stays one until its parent waits for it (never, where the parent does not,
    or in a container whose init does not reap): signal 0 still reaches it, but it writes nothing."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2 :].split()[0] in ("Z", "X")  # field 3, the state
    except (OSError, ValueError, IndexError):
        return False


def _command_line():
    return " ".join(["latentlab", *sys.argv[1:]]) if sys.argv else "python"


def read_lock(folder):
    """The record of `folder`'s lock (a dict), None when there is none; an unreadable record is {}."""
    try:
        with open(os.path.join(os.fspath(folder), LOCK_NAME)) as f:
            text = f.read(65536)
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def is_stale(record):
    """True when the process of lock `record` is known to be gone (dead pid on this host, or a reused pid).

    An empty or damaged record (a writer killed between creating and filling the file) is stale too."""
    pid = record.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return True
    if record.get("host") != socket.gethostname():
        return False
    if not _alive(pid):
        return True
    started = record.get("started")
    return started is not None and _start_time(pid) not in (None, started)


def held_by_other(folder):
    """The lock record of a live process other than this one holding `folder`, else None."""
    record = read_lock(folder)
    if record is None or is_stale(record):
        return None
    if record.get("pid") == os.getpid() and record.get("host") == socket.gethostname():
        return None
    return record


def _describe(record, path, name):
    pid, host, command = record.get("pid"), record.get("host"), record.get("command") or "?"
    where = "" if host == socket.gethostname() else f" on host {host}"
    text = f"{name}: another latentlab run is writing into this folder (pid {pid}{where}: {command})"
    if host != socket.gethostname():
        text += f"; delete {os.path.join(path, LOCK_NAME)} if that run is over"
    return text


def _create(lock_path, record):
    """Create the lock file atomically; False when it exists."""
    try:
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        raise
    os.close(fd)
    return True


def _break_stale(folder, seen):
    """Remove the stale lock whose record was `seen`, unless another process is already taking it over."""
    guard = os.path.join(folder, BREAK_NAME)
    try:
        fd = os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        with contextlib.suppress(OSError):
            if time.time() - os.path.getmtime(guard) > BREAK_STALE_S:
                os.unlink(guard)
        time.sleep(0.05)
        return
    os.close(fd)
    try:
        if read_lock(folder) == seen:  # still the same stale lock: nobody took it over meanwhile
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, LOCK_NAME))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(guard)


def acquire(folder, name=None, attempts=50):
    """Take `folder`'s lock (the folder must exist); FolderLocked naming the holder when a live run has it.

    Returns the record written. Stale locks are taken over. `name`: how messages call the folder
    (e.g. '--out runs/a') [default: its path]."""
    folder = os.fspath(folder)
    name = name or folder
    lock_path = os.path.join(folder, LOCK_NAME)
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _start_time(os.getpid()),
        "command": _command_line(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for _ in range(attempts):
        if _create(lock_path, record):
            return record
        seen = read_lock(folder)
        if seen is None:  # released meanwhile
            continue
        if not is_stale(seen):
            if seen.get("pid") == os.getpid() and seen.get("host") == socket.gethostname():
                raise FolderLocked(f"{name}: this process already writes into this folder")
            raise FolderLocked(_describe(seen, folder, name))
        _break_stale(folder, seen)
    raise FolderLocked(f"{name}: could not take the folder's lock {lock_path} (other runs keep taking it)")


def release(folder, record):
    """Remove `folder`'s lock if it is still the one `record` describes (never another run's)."""
    lock_path = os.path.join(os.fspath(folder), LOCK_NAME)
    held = read_lock(folder) or {}
    if all(held.get(k) == record.get(k) for k in ("pid", "host", "started", "time")):
        with contextlib.suppress(OSError):
            os.unlink(lock_path)


@contextlib.contextmanager
def out_dir_lock(folder, enabled=True, name=None):
    """Hold `folder`'s lock for the body (creating the folder if needed; see the module docstring).

    A folder created here and left empty by a failed body is removed again, so a refused or failed run
    leaves nothing behind. `name`: how messages call the folder (e.g. '--out runs/a'). With enabled=False (torchrun ranks other than 0) the body runs without a lock."""
    if not enabled:
        yield None
        return
    folder = os.fspath(folder)
    created = []
    parent = os.path.abspath(folder)
    while not os.path.isdir(parent):  # the folders makedirs will create, deepest first
        created.append(parent)
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    try:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{name or folder}: exists and is not a folder") from None
    ok = False
    try:
        record = acquire(folder, name)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield record
        ok = True
    finally:
        release(folder, record)
        if not ok:
            _remove_empty(created)


def _remove_empty(folders):
    for path in folders:  # deepest first; stop at the first that is not empty
        try:
            os.rmdir(path)
        except OSError:
            break
