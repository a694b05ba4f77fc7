"""Output folders: numbered default run folders and the rules for writing into an existing folder.

A command that writes files and is given no folder writes into the next free numbered folder
``latentlab-out/<command>/001``, ``002``, ... (`new_run_dir`), so that no run ever overwrites an
earlier one. A folder the user names must be new or empty unless overwriting was asked for
(`check_out_dir`); resumable runs instead check that the folder holds a run of their own kind
(`check_resume_dir`), whose settings their library code then compares.
"""

import os
import re

from ..errors import ConfigError

DEFAULT_ROOT = "latentlab-out"
TMP_PREFIX = ".tmp-"  # temporaries of latentlab.utils.atomic: never real content
LOCK_PREFIX = ".latentlab-lock"  # the folder's lock (latentlab.utils.lock): bookkeeping, never an output


def is_bookkeeping(name):
    """True for entries that are never outputs: atomic-write temporaries and the folder's lock files."""
    return name.startswith((TMP_PREFIX, LOCK_PREFIX))


def visible_entries(path):
    """Entries of folder `path` other than leftover atomic-write temporaries and the lock (sorted)."""
    return sorted(e for e in os.listdir(path) if not is_bookkeeping(e))


def is_empty_dir(path):
    """True when `path` is a folder with nothing in it but atomic-write temporaries (and the lock)."""
    return os.path.isdir(path) and not visible_entries(path)


def _shown(entries):
    return ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")


def new_run_dir(command, root=DEFAULT_ROOT, width=3):
    """Create and return ``root/command/NNN``, NNN one past the highest number already there (001 first).

    Race-safe: the folder is created with os.mkdir, which fails when another process took the
    same number first; the next number is then tried. Numbers grow past 999 as needed.
    """
    if not command or os.sep in command or command in (".", ".."):
        raise ConfigError(f"bad command name for an output folder: {command!r}")
    parent = os.path.join(root, command)
    if os.path.exists(root) and not os.path.isdir(root):
        raise ConfigError(f"{root} exists and is not a folder: cannot put default output folders there (use --out DIR)")
    os.makedirs(parent, exist_ok=True)
    taken = [int(e) for e in os.listdir(parent) if re.fullmatch(r"\d+", e)]
    k = max(taken, default=0) + 1
    while True:
        path = os.path.join(parent, f"{k:0{width}d}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            k += 1


def remove_if_empty(path, root=DEFAULT_ROOT):
    """Remove run folder `path` if nothing was written to it, and then its empty parents up to and including `root`.

    Used when a run fails before writing, so that failed runs leave no empty numbered folders.
    """
    try:
        if not is_empty_dir(path):
            return False
        for e in os.listdir(path):  # only temporaries left (a lock is removed by its holder)
            if e.startswith(TMP_PREFIX):
                os.unlink(os.path.join(path, e))
        os.rmdir(path)
    except OSError:
        return False
    stop = os.path.abspath(root)
    parent = os.path.dirname(os.path.abspath(path))
    while parent == stop or parent.startswith(stop + os.sep):
        try:
            os.rmdir(parent)
        except OSError:
            break
        if parent == stop:
            break
        parent = os.path.dirname(parent)
    return True


def check_out_dir(path, force=False, option="--out"):
    """Refuse (ValueError, one line) a folder that exists and is not empty, unless `force`; refuse a file.

    With `force` the command's files (fixed names) overwrite those already there; other files stay.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{option} {path}: exists and is not a folder")
    if os.path.isdir(path) and not force:
        entries = visible_entries(path)
        if entries:
            raise ConfigError(
                f"{option} {path}: the folder is not empty ({_shown(entries)}); choose a new folder, "
                "or pass --force to overwrite the files this command writes"
            )
    return path


def check_resume_dir(path, markers, kind, option="--out"):
    """Refuse a non-empty folder that holds none of `markers` (the files a run of this `kind` writes).

    A folder that holds one of them is handed to the run, which resumes it or refuses other settings.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{option} {path}: exists and is not a folder")
    if os.path.isdir(path):
        entries = visible_entries(path)
        if entries and not any(os.path.exists(os.path.join(path, m)) for m in markers):
            raise ConfigError(
                f"{option} {path}: the folder is not empty ({_shown(entries)}) and holds no {kind} "
                f"(no {' or '.join(markers)}) to resume; choose a new or empty folder"
            )
    return path
