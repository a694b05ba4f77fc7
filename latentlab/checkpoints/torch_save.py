"""Files written by `torch.save`, read without running code from them and with their sizes checked first.

`torch.save` writes a zip container (torch >= 1.6): `<name>/data.pkl`, the main pickle, and one record
`<name>/data/<key>` of raw bytes per storage, stored uncompressed. Older files use the legacy stream:
pickles of the magic number, the format version and the writer's system info, then the main pickle, then
the list of storage keys, then per storage an int64 element count and the raw little-endian data. In both,
the main pickle names each storage by a persistent id `('storage', torch.<Type>Storage, key, location,
numel[, view])`, and torch allocates what that id claims as soon as it meets it.

`read_torch_save(path)` therefore never hands torch a file it has not checked:

1. The main pickle is bounded by `safe_pickle.scan_pickle` (opcodes, nesting, reference bombs, no cycles)
   and then read by an inspecting unpickler that builds nothing: every global it names must be one of
   `ALLOWED_GLOBALS` (`os.system`, `builtins.eval` or any unknown class: CheckpointError naming it),
   every storage may hold at most `limits.MAX_TENSOR_ELEMENTS` elements and all of them together
   `limits.MAX_CHECKPOINT_ELEMENTS`, and every tensor must be a view inside its storage
   (`safe_pickle.check_view`).
2. The file must hold every storage's bytes: a zip record per storage, stored uncompressed, exactly
   numel x itemsize bytes long and lying inside the file; in the legacy stream, a section per listed key
   whose element-count header matches and whose data is all there. A file whose storages claim more
   bytes than it holds is refused here, before anything is allocated.
3. Only then `torch.load(path, map_location='cpu', weights_only=True, mmap=True for zip files)` reads it,
   with `argparse.Namespace` (train scripts save their `args`; the class only sets attributes) added to
   torch's weights-only allowlist: torch's own restricted unpickler is a second line of defence.
4. What comes back is plain data: dicts (OrderedDicts become dicts), lists, tuples, numbers, strings,
   None and CPU tensors; a Namespace becomes the dict of its attributes.

Every failure is one CheckpointError line naming the file.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import os
import pickle
import struct
import warnings
import zipfile
from typing import Any, Dict, Optional, Tuple, Union

import torch

from ..errors import CheckpointError
from ..utils import limits
from .safe_pickle import STORAGE_DTYPES, UnsafePickle, check_view, scan_pickle, short_repr

__all__ = ["ALLOWED_GLOBALS", "torch_save_kind", "read_torch_save"]

# torch.serialization.MAGIC_NUMBER and PROTOCOL_VERSION of the legacy stream.
_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_VERSION = 1001
# Bytes read to recognise a legacy stream: its first pickle (the magic number) is 16 bytes at protocol 2.
_SNIFF_BYTES = 64
_ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length

_STORAGE_DTYPES = STORAGE_DTYPES  # the storage classes a torch archive may name, and their dtypes

# The globals a torch.save file of weights, optimiser state and training arguments may name.
ALLOWED_GLOBALS = frozenset(
    {
        ("collections", "OrderedDict"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("argparse", "Namespace"),
    }
    | {("torch", name) for name in _STORAGE_DTYPES}
)


def torch_save_kind(path: Union[str, os.PathLike]) -> Optional[str]:
    """'zip' or 'legacy' for a file that starts like a torch.save file, else None (nothing is unpickled).

    'zip' is any file starting with a zip signature ('PK'); NVIDIA's and TF pickles never do. 'legacy' is a
    pickle whose first object is torch's magic number.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return None
    if head.startswith(b"PK"):
        return "zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        try:
            first = _NoGlobals(io.BytesIO(head)).load()
        except Exception:  # the first pickle of anything else does not end within the sniffed bytes
            return None
        return "legacy" if type(first) is int and first == _MAGIC else None
    return None


def read_torch_save(path: Union[str, os.PathLike]) -> Any:
    """The object a torch.save file holds, as plain data, read under the checks of this module's docstring.

    Raises CheckpointError (one line, naming the file) for anything unsafe, damaged or too large.
    """
    path = os.fspath(path)
    kind = torch_save_kind(path)
    try:
        size = os.path.getsize(path)
        plan = _Plan()
        if kind == "zip":
            _check_zip(path, size, plan)
        elif kind == "legacy":
            _check_legacy(path, size, plan)
        else:
            raise CheckpointError(f"{path}: not a torch.save file")
    except UnsafePickle as e:
        raise CheckpointError(f"{path}: {e}") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read file ({e.strerror or e})") from None
    obj = _torch_load(path, mmap=kind == "zip", namespace=plan.namespace)
    return _plain(path, obj, "the file's top level", 0)


# --------------------------------------------------------------------------------------------
# Step 1: the main pickle, read by an unpickler that builds nothing but records what torch would allocate.


class _NoGlobals(pickle._Unpickler):
    """For the small header pickles of the legacy stream: plain values only. The pure-Python unpickler
    reads a length field's bytes before allocating them, so a forged length costs a short read."""

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickle(f"refuses global '{module}.{name}' in a torch.save header")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickle("refuses persistent ids in a torch.save header")


class _StorageType(str):
    """What 'torch.FloatStorage' & co. resolve to while planning: the name only."""

    __slots__ = ()


class _Storage:
    """A storage the main pickle refers to: its element count and dtype (nothing allocated)."""

    __slots__ = ("numel", "dtype")

    def __init__(self, numel: int, dtype: torch.dtype) -> None:
        self.numel, self.dtype = numel, dtype


class _Tensor:
    """Stands for a tensor while planning."""

    __slots__ = ()


class _Namespace:
    """Stands for argparse.Namespace while planning: accepts a dict of attributes and nothing else."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise UnsafePickle("argparse.Namespace with a state that is not a dict of attributes")


class _Plan:
    """What the main pickle claims: storages by key, element totals, whether a Namespace occurs."""

    def __init__(self) -> None:
        self.storages: Dict[str, Tuple[int, torch.dtype]] = {}  # root key -> (elements, dtype)
        self.storage_elements = 0
        self.tensor_elements = 0
        self.namespace = False

    def storage(self, pid: Any, legacy: bool) -> _Storage:
        if not isinstance(pid, tuple) or len(pid) != (6 if legacy else 5) or pid[0] not in ("storage", b"storage"):
            if isinstance(pid, tuple) and pid and pid[0] in ("module", b"module"):
                raise UnsafePickle("refuses a pickled module object (torch.save(model)); only weights are read")
            raise UnsafePickle(f"malformed storage reference {short_repr(pid)}")
        storage_type, key, location, numel = pid[1:5]
        if (
            not isinstance(storage_type, _StorageType)
            or not isinstance(key, str)
            or not isinstance(location, (str, bytes))
        ):
            raise UnsafePickle(f"malformed storage reference {short_repr(pid)}")
        if type(numel) is not int or not 0 <= numel <= limits.MAX_TENSOR_ELEMENTS:
            raise UnsafePickle(
                f"storage {key!r} claims {short_repr(numel)} elements (expected 0 to {limits.MAX_TENSOR_ELEMENTS})"
            )
        dtype = _STORAGE_DTYPES[storage_type]
        known = self.storages.get(key)
        if known is None:
            self.storages[key] = (numel, dtype)
            self.storage_elements += numel
            if self.storage_elements > limits.MAX_CHECKPOINT_ELEMENTS:
                raise UnsafePickle(f"storages claim more than {limits.MAX_CHECKPOINT_ELEMENTS} elements in all")
        elif known != (numel, dtype):
            raise UnsafePickle(f"storage {key!r} is described twice with different sizes or dtypes")
        view = pid[5] if legacy else None
        if view is None:
            return _Storage(numel, dtype)
        if not (
            isinstance(view, tuple)
            and len(view) == 3
            and isinstance(view[0], str)
            and type(view[1]) is int
            and type(view[2]) is int
            and 0 <= view[1] <= numel
            and 0 <= view[2] <= numel - view[1]
        ):
            raise UnsafePickle(f"storage view {short_repr(view)} does not lie inside its storage of {numel} elements")
        return _Storage(view[2], dtype)

    def tensor(self, storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> _Tensor:
        if not isinstance(storage, _Storage):
            raise UnsafePickle("tensor rebuilt from something that is not a storage")
        ints = (
            isinstance(size, tuple)
            and isinstance(stride, tuple)
            and all(type(v) is int for v in size + stride)
            and type(offset) is int
        )
        if not ints or len(size) != len(stride) or len(rest) > 3:
            raise UnsafePickle("tensor with an invalid offset, size or stride")
        hooks = rest[1] if len(rest) > 1 else None
        metadata = rest[2] if len(rest) > 2 else None
        if hooks or metadata:
            raise UnsafePickle("refuses tensor hooks or metadata (not used by checkpoints)")
        self.tensor_elements += check_view(size, stride, offset, storage.numel)
        if self.tensor_elements > limits.MAX_CHECKPOINT_ELEMENTS:
            raise UnsafePickle(f"tensors claim more than {limits.MAX_CHECKPOINT_ELEMENTS} elements in all")
        return _Tensor()


def _parameter(data: Any, requires_grad: Any = False, hooks: Any = None, *rest: Any) -> Any:
    if not isinstance(data, _Tensor) or hooks or rest:
        raise UnsafePickle("malformed parameter (hooks, extra state, or not a tensor)")
    return data


class _Planner(pickle.Unpickler):
    def __init__(self, f: Any, plan: _Plan, legacy: bool) -> None:
        super().__init__(f)
        self.plan, self.legacy = plan, legacy

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickle(f"refuses global '{module}.{name}' (not an allowed checkpoint object)")
        if module == "torch":
            return _StorageType(name)
        if name == "Namespace":
            self.plan.namespace = True
            return _Namespace
        if name == "_rebuild_tensor_v2":
            return self.plan.tensor
        if name == "_rebuild_parameter":
            return _parameter
        return collections.OrderedDict

    def persistent_load(self, pid: Any) -> Any:
        return self.plan.storage(pid, self.legacy)


def _plan_pickle(data: bytes, plan: _Plan, legacy: bool) -> None:
    scan_pickle(io.BytesIO(data), len(data))
    try:
        _Planner(io.BytesIO(data), plan, legacy).load()
    except UnsafePickle:
        raise
    except RecursionError:
        raise UnsafePickle("malformed pickle (nested too deeply)") from None
    except Exception as e:  # damaged opcodes, wrong argument counts, ...
        msg = str(e).splitlines()[0][:200] if str(e) else ""
        raise UnsafePickle(f"malformed pickle ({type(e).__name__}{': ' + msg if msg else ''})") from None


# --------------------------------------------------------------------------------------------
# Step 2: the storages' bytes.


def _check_zip(path: str, size: int, plan: _Plan) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, ValueError, EOFError) as e:
        # the wording of the pickle reader's refusal, which `.pkl` files starting with 'PK' have always met
        raise UnsafePickle(
            f"truncated or not a pickle (an unreadable zip file, e.g. a truncated torch.save archive: {e})"
        ) from None
    with archive, open(path, "rb") as f:
        members = archive.infolist()
        root = members[0].filename.split("/", 1)[0] if members else ""
        data_pkl = _member(archive, f"{root}/data.pkl")
        if data_pkl is None:
            raise UnsafePickle("a zip file without the data.pkl of a torch.save archive")
        _check_extent(f, size, data_pkl)
        plan_bytes = archive.read(data_pkl)
        _plan_pickle(plan_bytes, plan, legacy=False)
        for key, (numel, dtype) in plan.storages.items():
            record = _member(archive, f"{root}/data/{key}")
            if record is None:
                raise UnsafePickle(f"storage {key!r} has no data record (truncated archive)")
            nbytes = numel * dtype.itemsize
            if record.file_size != nbytes:
                raise UnsafePickle(
                    f"storage {key!r} of {numel} {str(dtype).replace('torch.', '')} elements needs {nbytes} bytes, "
                    f"its record holds {record.file_size} (truncated or forged)"
                )
            _check_extent(f, size, record)


def _member(archive: zipfile.ZipFile, name: str) -> Optional[zipfile.ZipInfo]:
    try:
        return archive.getinfo(name)
    except KeyError:
        return None


def _check_extent(f: Any, size: int, info: zipfile.ZipInfo) -> None:
    """A record must be stored (torch never compresses) and its bytes must lie inside the file."""
    if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
        raise UnsafePickle(f"record {short_repr(info.filename)} is compressed (torch.save stores records as they are)")
    f.seek(info.header_offset)
    header = f.read(_ZIP_LOCAL_HEADER.size)
    if len(header) != _ZIP_LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise UnsafePickle(f"record {short_repr(info.filename)} has no local header (damaged zip file)")
    _, name_len, extra_len = _ZIP_LOCAL_HEADER.unpack(header)
    end = info.header_offset + _ZIP_LOCAL_HEADER.size + name_len + extra_len + info.file_size
    if end > size:
        raise UnsafePickle(
            f"record {short_repr(info.filename)} claims {info.file_size} bytes, past the end of the "
            f"{size}-byte file (truncated or forged)"
        )


def _small_pickle(f: Any, size: int) -> Any:
    start = f.tell()
    scan_pickle(f, size)
    f.seek(start)
    try:
        return _NoGlobals(f).load()
    except UnsafePickle:
        raise
    except Exception as e:
        raise UnsafePickle(f"truncated or not a pickle (damaged torch.save header: {type(e).__name__})") from None


def _check_legacy(path: str, size: int, plan: _Plan) -> None:
    with open(path, "rb") as f:
        if _small_pickle(f, size) != _MAGIC:
            raise UnsafePickle("not a torch.save file (wrong magic number)")
        if _small_pickle(f, size) != _LEGACY_VERSION:
            raise UnsafePickle("torch.save file of an unknown format version")
        info = _small_pickle(f, size)
        if not isinstance(info, dict) or info.get("little_endian") is not True:
            raise UnsafePickle("torch.save file written on a big-endian machine (not supported)")
        start = f.tell()
        scan_pickle(f, size)
        end = f.tell()
        f.seek(start)
        _plan_pickle(f.read(end - start), plan, legacy=True)
        keys = _small_pickle(f, size)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise UnsafePickle("torch.save file with a malformed list of storage keys")
        listed = set(keys)
        missing = [k for k in plan.storages if k not in listed]
        if missing:
            raise UnsafePickle(f"storage {missing[0]!r} has no data (truncated or forged file)")
        pos = f.tell()
        for key in keys:
            if key not in plan.storages:
                raise UnsafePickle(f"data for an unknown storage {short_repr(key)}")
            numel, dtype = plan.storages[key]
            f.seek(pos)
            header = f.read(8)
            if len(header) < 8:
                raise UnsafePickle(f"storage {key!r} of {numel} elements without its data (truncated file)")
            if int.from_bytes(header, "little") != numel:
                raise UnsafePickle(
                    f"storage {key!r}: its data header says {int.from_bytes(header, 'little')} elements, "
                    f"its description {numel}"
                )
            nbytes = numel * dtype.itemsize
            if pos + 8 + nbytes > size:
                raise UnsafePickle(
                    f"storage {key!r} of {numel} {str(dtype).replace('torch.', '')} elements needs {nbytes} bytes, "
                    f"the file holds {max(size - pos - 8, 0)} more (truncated or forged)"
                )
            pos += 8 + nbytes


# --------------------------------------------------------------------------------------------
# Steps 3 and 4: torch's weights-only reader, then plain data.


def _torch_load(path: str, mmap: bool, namespace: bool) -> Any:
    extra = [argparse.Namespace] if namespace else []
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if extra and safe_globals is None:
        raise CheckpointError(
            f"{path}: holds an argparse.Namespace, which torch {torch.__version__} cannot read safely "
            "(needs torch >= 2.5)"
        )
    allowed = safe_globals(extra) if extra and safe_globals is not None else contextlib.nullcontext()
    try:
        with warnings.catch_warnings(), allowed:
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # anything torch's reader refuses or trips over
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise CheckpointError(
            f"{path}: unreadable torch.save file ({type(e).__name__}{': ' + msg if msg else ''})"
        ) from None


def _plain(path: str, value: Any, where: str, depth: int) -> Any:
    if depth > limits.MAX_PICKLE_DEPTH:
        raise CheckpointError(f"{path}: {where} is nested too deeply")
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach() if isinstance(value, torch.nn.Parameter) else value
    if isinstance(value, argparse.Namespace):
        value = vars(value)
    if isinstance(value, dict):
        return {k: _plain(path, v, f"{where}[{short_repr(k)}]", depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain(path, v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise CheckpointError(f"{path}: {where} holds an unexpected {type(value).__name__} object")
