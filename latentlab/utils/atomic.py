"""Atomic file writes: write to a temporary file in the target folder, then rename over the target."""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed.

    Readers never see a half-written file and an existing file survives a failed write.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
