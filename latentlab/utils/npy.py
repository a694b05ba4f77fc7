"""Reading .npy and .npz files from users with bounded cost: the header is checked before any data is read.

    arr = load_npy("smile.npy", what="direction")          # ConfigError naming the file on any problem
    arrays = load_npz("latents.npz")                        # {name: array}, every member checked first

NumPy allocates what an array's header claims before it reads the data (`numpy.lib.format.read_array` makes
an empty array of the claimed shape, then fills it), so a 200-byte file claiming a (10^6, 10^6) float64 array
would cost 8 TB, or a MemoryError. Here each header is read with `numpy.lib.format` and refused when:

- the file is empty, or is an .npz archive named .npy (or an .npy named .npz), or is neither;
- the dtype is structured, an object or anything but plain numbers (and, where the caller allows them,
  strings: the 0-d text fields of latentlab's own .npz files);
- the claimed size is more than the file (or the zip member) holds, or more than the caller's `max_bytes`;
- an .npz member's uncompressed size is more than `MAX_NPZ_RATIO` times its compressed size (deflate cannot
  do better than ~1030:1; a larger ratio is a forged header), or the archive has more than `MAX_NPZ_MEMBERS`.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from typing import IO, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import ConfigError
from .limits import MAX_NPZ_MEMBERS, MAX_NPZ_RATIO

NUMBERS = "biuf"  # bool, signed and unsigned integers, floats
NUMBERS_AND_TEXT = "biufUS"  # plus the 0-d strings latentlab's .npz files hold (space, meta, model id)


def _header(fp: IO[bytes], source: str) -> Tuple[Tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the .npy stream `fp`, ConfigError naming `source`."""
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as e:
        raise ConfigError(f"{source}: not a valid .npy array ({_short(str(e))})") from None
    return shape, fortran, dtype


def _check_header(
    shape: Sequence[int], dtype: np.dtype, available: int, source: str, kinds: str, max_bytes: Optional[int]
) -> int:
    """The bytes the header claims, after refusing dtypes outside `kinds` and claims beyond `available`."""
    if dtype.names is not None or dtype.hasobject or dtype.subdtype is not None:
        raise ConfigError(f"{source}: structured or object dtype {dtype} (only plain numeric arrays are read)")
    if dtype.kind not in kinds:
        raise ConfigError(f"{source}: dtype {dtype} is not a numeric array")
    count = 1
    for d in shape:
        count *= int(d)
    claimed = count * dtype.itemsize
    if claimed > available:
        raise ConfigError(
            f"{source}: header claims a {'x'.join(map(str, shape)) or 'scalar'} {dtype} array ({claimed} bytes) "
            f"but the file holds {max(available, 0)} bytes of data"
        )
    if max_bytes is not None and claimed > max_bytes:
        raise ConfigError(f"{source}: a {claimed}-byte array, more than the {max_bytes} bytes such a file may hold")
    return claimed


def _is_zip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def load_npy(
    path: Union[str, os.PathLike], *, kinds: str = NUMBERS, max_bytes: Optional[int] = None, what: str = ".npy array"
) -> np.ndarray:
    """The array of an .npy file, its header checked first (see the module's docstring); ConfigError naming the
    file otherwise. `kinds`: the dtype kinds accepted (numbers by default). OSError propagates."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size == 0:
        raise ConfigError(f"{path}: empty file, not a {what}")
    if _is_zip(path):
        raise ConfigError(f"{path}: an .npz archive, not a single {what}")
    with open(path, "rb") as f:
        shape, fortran, dtype = _header(f, path)
        _check_header(shape, dtype, size - f.tell(), path, kinds, max_bytes)
        f.seek(0)
        try:
            return np.lib.format.read_array(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ConfigError(f"{path}: unreadable {what} ({_short(str(e))})") from None


def load_npz(
    path: Union[str, os.PathLike],
    *,
    kinds: str = NUMBERS_AND_TEXT,
    max_bytes: Optional[int] = None,
    keys: Union[Sequence[str], Callable[[str], bool], None] = None,
    what: str = ".npz file",
) -> Dict[str, np.ndarray]:
    """{name: array} of an .npz archive (only `keys` when given, a list or a predicate of the name; those present),
    every member's header and
    sizes checked before its data is read (see the module's docstring); ConfigError naming the file (and the
    member) otherwise. `max_bytes` bounds the total of the arrays read. OSError propagates."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size == 0:
        raise ConfigError(f"{path}: empty file, not a {what}")
    if not _is_zip(path):
        with open(path, "rb") as f:
            is_npy = f.read(6) == b"\x93NUMPY"
        raise ConfigError(f"{path}: {'a single .npy array' if is_npy else 'not an .npz archive'}, not a {what}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ConfigError(f"{path}: damaged .npz archive ({_short(str(e))})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_NPZ_MEMBERS:
            raise ConfigError(f"{path}: {len(infos)} arrays in one .npz (at most {MAX_NPZ_MEMBERS})")
        chosen = []
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if keys is None or (keys(name) if callable(keys) else name in keys):
                chosen.append((name, info))
        total = 0
        for name, info in chosen:  # every header first: nothing is read when any member lies
            source = f"{path}: array {name!r}"
            if not info.filename.endswith(".npy") or info.is_dir():
                raise ConfigError(f"{source}: not an .npy member")
            ratio_ok = info.file_size <= max(info.compress_size, 1) * MAX_NPZ_RATIO
            if info.compress_type == zipfile.ZIP_STORED:
                ratio_ok = info.file_size <= info.compress_size
            if not ratio_ok:
                raise ConfigError(
                    f"{source}: claims {info.file_size} bytes from {info.compress_size} compressed "
                    f"(a ratio above {MAX_NPZ_RATIO}: a forged or bomb archive)"
                )
            try:
                with zf.open(info) as member:
                    shape, _, dtype = _header(member, source)
                    header_len = member.tell() if member.seekable() else 0
            except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError) as e:
                raise ConfigError(f"{source}: damaged archive member ({_short(str(e))})") from None
            total += _check_header(shape, dtype, info.file_size - header_len, source, kinds, None)
            if max_bytes is not None and total > max_bytes:
                raise ConfigError(f"{path}: arrays of {total}+ bytes, more than the {max_bytes} such a file may hold")
        out = {}
        for name, info in chosen:
            try:
                with zf.open(info) as member:
                    out[name] = np.lib.format.read_array(member, allow_pickle=False)
            except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as e:  # zlib: corrupt deflate data
                raise ConfigError(f"{path}: array {name!r} is unreadable ({_short(str(e))})") from None
    return out


def check_kind(arrays: Dict[str, np.ndarray], name: str, kinds: str, source: str, what: str = "numbers") -> None:
    """Refuse `arrays[name]` (when present) unless its dtype kind is one of `kinds`, naming the file and array."""
    if name in arrays and arrays[name].dtype.kind not in kinds:
        raise ConfigError(f"{source}: array {name!r} has dtype {arrays[name].dtype}, expected {what}")


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
