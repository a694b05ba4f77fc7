"""Atomic file writes: write to a temporary file in the target folder, then rename over the target.

Temporary files are named ``.tmp-*`` (`TMP_PREFIX`). A failed write removes its temporary file and
raises; an `OSError` (read-only folder, no permission, full disk) names the target file, so the CLI's
one line says which file could not be written. Only a process killed outright (kill -9, a power cut)
leaves a temporary behind: resumable runs remove those with `remove_stale_temps` when they start.
"""

import contextlib
import errno
import os
import tempfile

TMP_PREFIX = ".tmp-"
_NEARLY_FULL = 1 << 20  # bytes: a folder with less free space than this counts as a full disk


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed.

    Readers never see a half-written file and an existing file survives a failed write. OSError names
    `path` (not the temporary); an error other than OSError raised while the disk is full (torch.save and
    safetensors report ENOSPC as RuntimeError) becomes OSError(ENOSPC) naming `path`.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)  # its own OSError names the folder
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=directory)
        os.close(fd)
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(e, OSError) and _ours(e.filename, directory):
            raise OSError(e.errno, e.strerror or str(e), path) from e
        if isinstance(e, Exception) and not isinstance(e, OSError) and _disk_full(directory):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path) from e
        raise


def _ours(filename, directory):
    """Whether an OSError's file is the write's own business (none, or a temporary in the folder)."""
    if filename is None:
        return True
    name = os.fspath(filename) if isinstance(filename, (str, bytes, os.PathLike)) else None
    return (
        isinstance(name, str)
        and os.path.basename(name).startswith(TMP_PREFIX)
        and os.path.dirname(os.path.abspath(name)) == directory
    )


def _disk_full(directory):
    try:
        st = os.statvfs(directory)
    except (OSError, AttributeError):
        return False
    return st.f_bavail * st.f_frsize < _NEARLY_FULL


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path, text):
    with atomic_path(path, ".txt") as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def save_npz(path, arrays):
    """np.savez, atomically (a file object keeps numpy from appending '.npz' to the name)."""
    import numpy as np

    with atomic_path(path, ".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def save_torch(path, obj):
    """torch.save, atomically, through a Python file object (so that a full disk raises OSError, not
    torch's RuntimeError)."""
    import torch

    with atomic_path(path, ".pt") as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)


def remove_stale_temps(folder):
    """Delete the `.tmp-*` files directly in `folder` (left by a writer killed mid-write); returns how many.

    Call it when a run starts, before it writes. Nothing is deleted while another live process holds the
    folder's lock (`latentlab.utils.lock`): its temporaries may be writes under way. Other files, subfolders
    and the lock itself are never touched."""
    from .lock import held_by_other

    folder = os.fspath(folder)
    if not os.path.isdir(folder) or held_by_other(folder) is not None:
        return 0
    removed = 0
    for name in os.listdir(folder):
        p = os.path.join(folder, name)
        if name.startswith(TMP_PREFIX) and os.path.isfile(p) and not os.path.islink(p):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
                removed += 1
    return removed
