"""A restricted unpickler for official StyleGAN checkpoint files.

Pickle runs whatever callable a file names, so the official loaders can be made
to execute arbitrary code. Here `find_class` resolves only an allowlist of
globals, each to `collections.OrderedDict` or to a replacement written below
that validates its arguments: no module named in a file is ever imported, and
the Python source embedded in official pickles is dropped unread.

Before that, `scan_pickle` bounds the structure the opcodes would build (size,
depth, and objects counted once per shared reference), and refuses cyclic
structures, self-references included. That is deliberate, not a gap: the cost
of walking a cyclic structure is unbounded (a 69-byte dict holding itself under
six keys costs 6**20 steps in any depth-limited walk, and the converters,
`records.summarise`/`to_plain` and the kwargs checks are such walks), so the
per-reference count cannot bound it, and letting cycles through would need
cycle-aware walkers everywhere downstream. No StyleGAN checkpoint holds one:
pickle writes an object's contents before anything else refers to it, so a
container is only modified after being referenced when it (indirectly) holds
itself. Shared, acyclic structures of any protocol (2-5) pass: the official
fixtures and `pickle.dumps` of a value referenced from many places.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import pickletools
import reprlib
import threading
import warnings
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch

from ..errors import CheckpointError
from ..utils import limits

__all__ = [
    "load_pickle",
    "scan_pickle",
    "check_view",
    "check_storage_archive",
    "short_repr",
    "PersistentObject",
    "TFNetwork",
    "EasyDict",
    "UnsafePickle",
]

_PICKLE_PROTOCOLS = (2, 3, 4, 5)
_LOADING = threading.local()  # per-thread running totals of tensor and storage elements during one load_pickle

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 3, 60, 60, 40


def short_repr(value: object) -> str:
    """repr() of a value from a file for an error message: bounded in length and depth (reprlib), never
    recursing through a hostile structure."""
    try:
        return _SHORT.repr(value)
    except Exception:  # a hostile object's own repr is never called by reprlib, but stay safe
        return f"<{type(value).__name__}>"


class UnsafePickle(Exception):
    """Raised inside unpickling; `load_pickle` turns it into a CheckpointError naming the file."""


# --------------------------------------------------------------------------------------------
# Stand-ins for the objects official checkpoints contain.


class EasyDict(dict):
    """dnnlib.util.EasyDict, as plain data (attribute access for convenience only)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setstate__(self, state):
        # The real class keeps everything in the dict itself; a non-empty __dict__ is suspicious.
        if state:
            raise UnsafePickle("EasyDict with unexpected instance state")


class PersistentObject:
    """What `torch_utils.persistence._reconstruct_persistent_obj(meta)` would have rebuilt.

    Holds the class name, version and the pickled `__dict__` (`state`); the
    embedded `module_src` is discarded without being looked at.
    """

    __slots__ = ("class_name", "version", "state")

    def __init__(self, class_name: str, version: Optional[int], state: Dict[str, Any]) -> None:
        self.class_name = class_name
        self.version = version
        self.state = state

    @property
    def init_args(self) -> Tuple[Any, ...]:
        return self.state.get("_init_args", ())

    @property
    def init_kwargs(self) -> Dict[str, Any]:
        return self.state.get("_init_kwargs", {})

    def __repr__(self):
        return f"PersistentObject({short_repr(self.class_name)}, version={short_repr(self.version)})"


class TFNetwork:
    """Stand-in for dnnlib.tflib.network.Network: keeps the pickled state dict, builds nothing."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise UnsafePickle("dnnlib.tflib.network.Network state is not a dict")
        self.state = state

    def __repr__(self):
        name = getattr(self, "state", {}).get("name")
        return f"TFNetwork({short_repr(name)})"


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict):
        raise UnsafePickle("persistent object metadata is not a dict")
    if meta.get("type") != "class":
        raise UnsafePickle(f"persistent object of type {short_repr(meta.get('type'))} (only 'class' is supported)")
    class_name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise UnsafePickle("persistent object without class_name/state")
    return PersistentObject(class_name, meta.get("version"), state)


# --------------------------------------------------------------------------------------------
# torch tensors: storages arrive as nested torch.save archives, read with torch's own
# weights-only unpickler; tensors and parameters are then views on those storages.


# A storage pickles as `torch.storage._load_from_bytes(b)`, `b` a legacy (non-zip) torch.save archive:
# four small pickles (magic number, format version, system info, then one persistent id describing the
# storage: dtype, key, location, element count), a fifth listing the storage keys, then per storage an
# int64 element count and the raw little-endian data. torch's reader allocates the element count the
# persistent id claims before it looks at the data, so `check_storage_archive` reads and checks all of it
# (against the limits and against the bytes actually present) before torch is called.

_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_TORCH_VERSION = 1001  # torch.serialization.PROTOCOL_VERSION
# Bytes of an archive before its data. Real headers are ~250 bytes; within this bound the header is read
# without a pre-scan (no nesting deep enough to matter, no length field reaching past it), which keeps the
# check far cheaper than torch's own read of the archive.
_ARCHIVE_HEADER_BYTES = 4096
STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
}


class _StorageType(str):
    """What 'torch.FloatStorage' & co. resolve to while an archive's header is read: the name, immutable
    (no attributes for a BUILD opcode to set)."""

    __slots__ = ()


class _ArchiveHeaderUnpickler(pickle._Unpickler):
    """Reads the small pickles of a storage archive: only storage types as globals, persistent ids kept.

    The pure-Python unpickler, because it reads a length field's bytes before allocating them: a header
    claiming a 3 GB string costs a short read (an error), where the C unpickler would allocate 3 GB first.
    Its loop is iterative, so nesting within `_ARCHIVE_HEADER_BYTES` cannot exhaust the stack.
    """

    pids: list  # the persistent ids met, in order (set by the caller)

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafePickle(f"unreadable torch storage (its archive refers to '{module}.{name}', not a storage type)")

    def persistent_load(self, pid: Any) -> Any:
        self.pids.append(pid)
        return _StorageType  # a placeholder the caller recognises


def _archive_pickle(f: io.BytesIO, pids: Optional[list] = None) -> Any:
    """The next pickle of an archive's header, read from `f` (at most `_ARCHIVE_HEADER_BYTES`)."""
    unpickler = _ArchiveHeaderUnpickler(f)
    unpickler.pids = [] if pids is None else pids
    try:
        return unpickler.load()
    except UnsafePickle:
        raise
    except Exception as e:  # EOF past the header's bound, damaged opcodes, ...
        raise UnsafePickle(
            f"unreadable torch storage (damaged archive header: {type(e).__name__}: {str(e)[:200]})"
        ) from None


def _count(value: object, lo: int, hi: int) -> bool:
    return type(value) is int and lo <= value <= hi


def check_storage_archive(data: bytes) -> Tuple[torch.dtype, int]:
    """Check a torch storage archive (the argument of `torch.storage._load_from_bytes`) without allocating
    anything: the legacy format, one storage of a numeric dtype, its element count within
    `limits.MAX_TENSOR_ELEMENTS` (and, counted into the current `load_pickle`, all storages within
    `limits.MAX_CHECKPOINT_ELEMENTS`), and its data header and bytes present in full. Returns the dtype and
    the elements of what torch will return (the storage, or the view of it the archive names); raises
    UnsafePickle naming what is wrong.
    """
    if not data.startswith(b"\x80\x02"):
        kind = "a zip archive" if data.startswith(b"PK") else "not a legacy torch.save archive"
        raise UnsafePickle(f"unreadable torch storage (payload is {kind}; official pickles hold legacy archives)")
    size = len(data)
    f = io.BytesIO(data[:_ARCHIVE_HEADER_BYTES])
    if _archive_pickle(f) != _TORCH_MAGIC:
        raise UnsafePickle("unreadable torch storage (wrong magic number)")
    if _archive_pickle(f) != _TORCH_VERSION:
        raise UnsafePickle("unreadable torch storage (unknown format version)")
    _archive_pickle(f)  # system info: byte order and C type sizes of the writer; the data is little-endian
    pids: list = []
    if _archive_pickle(f, pids) is not _StorageType or len(pids) != 1:
        raise UnsafePickle("unreadable torch storage (the archive does not describe exactly one storage)")
    pid = pids[0]
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] in ("storage", b"storage")):
        raise UnsafePickle(f"unreadable torch storage (malformed description {short_repr(pid)})")
    _, storage_type, key, location, numel, view = pid
    if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(location, str):
        raise UnsafePickle(f"unreadable torch storage (malformed description {short_repr(pid)})")
    if not _count(numel, 0, limits.MAX_TENSOR_ELEMENTS):
        raise UnsafePickle(
            f"torch storage claims {short_repr(numel)} elements (expected 0 to {limits.MAX_TENSOR_ELEMENTS})"
        )
    if view is not None and not (
        isinstance(view, tuple)
        and len(view) == 3
        and isinstance(view[0], str)
        and _count(view[1], 0, numel)
        and _count(view[2], 0, numel - view[1])
    ):
        raise UnsafePickle(f"torch storage view {short_repr(view)} does not lie inside its storage of {numel} elements")
    if _archive_pickle(f) != [key]:
        raise UnsafePickle("unreadable torch storage (its key list does not match its description)")
    start = f.tell()
    header = data[start : start + 8]
    dtype = STORAGE_DTYPES[storage_type]
    nbytes = numel * dtype.itemsize
    present = size - start - 8
    if len(header) < 8:
        raise UnsafePickle(f"torch storage of {numel} elements without its data (truncated archive)")
    if int.from_bytes(header, "little") != numel:
        raise UnsafePickle(
            f"torch storage data header says {int.from_bytes(header, 'little')} elements, its description {numel}"
        )
    if present < nbytes:
        raise UnsafePickle(
            f"torch storage of {numel} {str(dtype).replace('torch.', '')} elements needs {nbytes} bytes, "
            f"the archive holds {present} (truncated or forged)"
        )
    total = getattr(_LOADING, "storage_elements", None)
    if total is not None:
        _LOADING.storage_elements = total + numel
        if _LOADING.storage_elements > limits.MAX_CHECKPOINT_ELEMENTS:
            raise UnsafePickle(f"torch storages hold more than {limits.MAX_CHECKPOINT_ELEMENTS} elements in all")
    return dtype, numel if view is None else view[2]


def _load_from_bytes(data):
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickle("torch storage payload is not bytes")
    data = bytes(data)
    dtype, numel = check_storage_archive(data)  # before torch allocates what the archive claims
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage deprecation noise
            storage = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
            typed = isinstance(storage, torch.storage.TypedStorage)
            valid = typed and storage.dtype == dtype and storage.size() == numel
    except Exception as e:  # any failure here means a damaged or hostile archive
        raise UnsafePickle(f"unreadable torch storage ({type(e).__name__}: {e})") from None
    if not valid:
        raise UnsafePickle(
            f"unreadable torch storage (torch read a {type(storage).__name__}, not the storage described)"
        )
    return storage


def _require_empty(value, what):
    if value is None:
        return
    if isinstance(value, (dict, list, tuple, set)) and len(value) == 0:
        return
    raise UnsafePickle(f"refuses {what} (hooks or extra state are not allowed in checkpoints)")


def _as_int_tuple(value, what):
    if not isinstance(value, (tuple, list)) or not all(type(v) is int for v in value):
        raise UnsafePickle(f"tensor {what} is not a tuple of ints")
    return tuple(value)


def check_view(size: Tuple[int, ...], stride: Tuple[int, ...], offset: int, storage_numel: int) -> int:
    """Check a tensor view (size, stride, offset) of a storage of `storage_numel` elements before building it.

    The view must lie inside its storage (offset + sum((size - 1) * stride) < storage_numel), and may not
    claim more elements than the storage holds (an overlapping view such as a stride-0 50000 x 50000 tensor
    of one float costs 10 GB once copied) nor more than `limits.MAX_TENSOR_ELEMENTS`. Counts the view into
    the running total of the current `load_pickle` (`limits.MAX_CHECKPOINT_ELEMENTS`). Returns its elements.
    """
    if any(n < 0 for n in size) or any(st < 0 for st in stride) or offset < 0:
        raise UnsafePickle("tensor with negative size, stride or offset")
    elements = math.prod(size)
    if elements > limits.MAX_TENSOR_ELEMENTS:
        raise UnsafePickle(f"tensor claims {elements} elements (more than {limits.MAX_TENSOR_ELEMENTS})")
    if elements > 0:
        last = offset + sum((n - 1) * st for n, st in zip(size, stride))
        if last >= storage_numel:
            raise UnsafePickle(
                f"tensor of size {list(size)} extends past the end of its storage of {storage_numel} elements"
            )
        if elements > storage_numel:
            raise UnsafePickle(
                f"tensor of size {list(size)} claims {elements} elements from a storage of {storage_numel} "
                "(overlapping view)"
            )
    budget = getattr(_LOADING, "elements", None)
    if budget is not None:
        _LOADING.elements = budget + elements
        if _LOADING.elements > limits.MAX_CHECKPOINT_ELEMENTS:
            raise UnsafePickle(f"tensors claim more than {limits.MAX_CHECKPOINT_ELEMENTS} elements in all")
    return elements


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UnsafePickle("tensor rebuilt from something that is not a typed storage")
    size = _as_int_tuple(size, "size")
    stride = _as_int_tuple(stride, "stride")
    if type(storage_offset) is not int or storage_offset < 0 or len(size) != len(stride):
        raise UnsafePickle("tensor with invalid offset/size/stride")
    _require_empty(backward_hooks, "tensor backward hooks")
    _require_empty(metadata, "tensor metadata")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dtype, numel = storage.dtype, storage.size()
        untyped = storage.untyped()
    check_view(size, stride, storage_offset, numel)
    t = torch.empty((0,), dtype=dtype)
    t.set_(untyped, storage_offset, size, stride)
    return t


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, torch.Tensor):
        raise UnsafePickle("parameter rebuilt from something that is not a tensor")
    _require_empty(backward_hooks, "parameter backward hooks")
    return data


def _rebuild_parameter_with_state(data, requires_grad=False, backward_hooks=None, state=None):
    _require_empty(state, "parameter extra state")
    return _rebuild_parameter(data, requires_grad, backward_hooks)


# --------------------------------------------------------------------------------------------
# numpy: dtypes are validated before any numpy object is built, so a file can neither
# make object arrays nor mutate numpy's shared dtype singletons through BUILD.

_NUMPY_KINDS = "biufc"  # bool, ints, floats, complex: never objects, structs or strings


class NumpyDType:
    """Stand-in for `numpy.dtype(spec, align, copy)`; `.dtype` is the validated real dtype."""

    def __init__(self, spec: object, align: bool = False, copy: bool = False) -> None:
        if not isinstance(spec, str):
            raise UnsafePickle(f"refuses numpy dtype {short_repr(spec)}")
        try:
            dt = np.dtype(spec)
        except TypeError:
            raise UnsafePickle(f"refuses numpy dtype {short_repr(spec)}") from None
        if dt.kind not in _NUMPY_KINDS or dt.hasobject or dt.fields is not None or dt.subdtype is not None:
            raise UnsafePickle(f"refuses numpy dtype {short_repr(spec)} (object and structured arrays are not allowed)")
        self.dtype = dt

    def __setstate__(self, state):
        # numpy's state: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not isinstance(state, tuple) or len(state) < 8 or state[2:5] != (None, None, None):
            raise UnsafePickle("refuses numpy dtype state (only plain numeric dtypes are allowed)")
        order = state[1]
        if order not in ("<", ">", "|", "="):
            raise UnsafePickle(f"numpy dtype with byte order {short_repr(order)}")
        if order in "<>" and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(order)

    def __repr__(self):
        return f"NumpyDType({self.dtype.str!r})"


def _real_dtype(dt):
    if isinstance(dt, NumpyDType) and isinstance(getattr(dt, "dtype", None), np.dtype):
        return dt.dtype
    raise UnsafePickle("numpy data without a validated dtype")


class NumpyArray(np.ndarray):
    """ndarray subclass whose only purpose is a validating `__setstate__`."""

    def __new__(cls, *args, **kwargs):
        # A file calling numpy.ndarray(shape, 'O') directly would skip the dtype checks.
        raise UnsafePickle("refuses direct numpy.ndarray construction")

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickle("malformed numpy array state")
        if len(state) == 4:
            state = (1,) + state
        _version, shape, dtype, is_fortran, raw = state
        dtype = _real_dtype(dtype)
        shape = _as_int_tuple(shape, "shape")
        if not isinstance(raw, (bytes, bytearray)):
            raise UnsafePickle("refuses numpy array whose data is not raw bytes (object arrays are not allowed)")
        if any(n < 0 for n in shape) or len(raw) != math.prod(shape) * dtype.itemsize:
            raise UnsafePickle("numpy array data does not match its shape")
        super().__setstate__((1, shape, dtype, bool(is_fortran), bytes(raw)))


def _np_reconstruct(subtype, shape, typecode):
    if subtype is not NumpyArray:
        raise UnsafePickle("numpy _reconstruct of a type other than ndarray")
    return np.ndarray.__new__(NumpyArray, (0,), np.uint8)


def _np_scalar(dtype, data=None):
    dtype = _real_dtype(dtype)
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise UnsafePickle("refuses numpy scalar whose data is not raw bytes of the right size")
    return np.frombuffer(bytes(data), dtype=dtype)[0]


def _np_frombuffer(buf, dtype, shape, order):
    # protocol-5 ndarray pickles; the buffer arrives in-band as bytes/bytearray.
    dtype = _real_dtype(dtype)
    shape = _as_int_tuple(shape, "shape")
    if isinstance(buf, pickle.PickleBuffer):
        buf = bytes(buf.raw())
    if not isinstance(buf, (bytes, bytearray)) or order not in ("C", "F"):
        raise UnsafePickle("malformed numpy buffer")
    if any(n < 0 for n in shape) or len(buf) != math.prod(shape) * dtype.itemsize:
        raise UnsafePickle("numpy array data does not match its shape")
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy(order="K")


# --------------------------------------------------------------------------------------------
# Small builtins that protocol 2/3 pickles need for sets and bytes.


def _make_set(items=()):
    return set(items)


def _make_frozenset(items=()):
    return frozenset(items)


def _codecs_encode(text, encoding="latin1"):
    # Python 2 protocol pickles store bytes as codecs.encode(str, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickle("refuses codecs.encode with unexpected arguments")
    return text.encode("latin1")


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): _make_set,
    ("builtins", "frozenset"): _make_frozenset,
    ("__builtin__", "set"): _make_set,  # protocol-2 pickles written by Python 2
    ("__builtin__", "frozenset"): _make_frozenset,
    ("_codecs", "encode"): _codecs_encode,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("numpy", "ndarray"): NumpyArray,
    ("numpy", "dtype"): NumpyDType,
}
for _np_mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_np_mod, "_reconstruct")] = _np_reconstruct
    _ALLOWED[(_np_mod, "scalar")] = _np_scalar
for _np_mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_np_mod, "_frombuffer")] = _np_frombuffer


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that resolves only `_ALLOWED` globals, each to our own safe replacement."""

    def find_class(self, module: str, name: str) -> Any:
        target = _ALLOWED.get((module, name))
        if target is None:
            raise UnsafePickle(f"refuses global '{module}.{name}' (not an allowed checkpoint object)")
        return target

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickle("refuses persistent id references (not used by StyleGAN checkpoints)")


# --------------------------------------------------------------------------------------------
# Pre-scan: bound a pickle's structure before unpickling it.


class _ClampedReader:
    """A read-only file whose reads never ask for more bytes than remain: a length field claiming
    terabytes gives a short read (an error) instead of a huge allocation."""

    def __init__(self, f: Any, size: int) -> None:
        self._f, self._size = f, size

    def read(self, n: int = -1) -> bytes:
        remaining = max(self._size - self._f.tell(), 0)
        return self._f.read(remaining if n is None or n < 0 else min(n, remaining))

    def readline(self) -> bytes:
        return self._f.readline(1 << 20)  # text opcodes (protocol 0/1 style) hold short lines only

    def tell(self) -> int:
        return self._f.tell()


class _Node:
    """What the pre-scan knows of one stack entry: nesting depth, and the objects it holds when shared
    references are counted each time they occur (what a walk or a copy of it costs)."""

    __slots__ = ("depth", "nodes", "shared")

    def __init__(self, depth: int, nodes: int) -> None:
        self.depth, self.nodes, self.shared = depth, nodes, False


_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
_INPLACE_OPS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}  # modify the entry below
_LONG_OPS = {"LONG", "LONG1", "LONG4"}


def scan_pickle(f: Any, size: int) -> None:
    """Walk the opcode stream of the pickle in `f` (`size` bytes) without building anything, and raise
    UnsafePickle when it would build something too large or too deep for its size: more than
    `limits.MAX_PICKLE_OPS` opcodes, nesting deeper than `limits.MAX_PICKLE_DEPTH`, more than
    `limits.MAX_PICKLE_NODES` objects counting shared references each time (memo "billion laughs"
    bombs), integers longer than `limits.MAX_PICKLE_INT_BYTES`, or a container modified after it was
    shared (which would hide the size of what shares it). The stack is simulated with `pickletools`'
    description of each opcode.
    """
    stack: list = []
    marks: list = []
    memo: Dict[Any, _Node] = {}
    count = 0

    def new(children):
        depth = max((c.depth for c in children), default=0) + 1
        nodes = sum(c.nodes for c in children) + 1
        for c in children:
            c.shared = True
        return _check(_Node(depth, nodes))

    def _check(node):
        if node.depth > limits.MAX_PICKLE_DEPTH:
            raise UnsafePickle(f"pickle nested more than {limits.MAX_PICKLE_DEPTH} levels deep")
        if node.nodes > limits.MAX_PICKLE_NODES:
            raise UnsafePickle(
                f"pickle structure holds more than {limits.MAX_PICKLE_NODES} objects counting shared references "
                "(a reference bomb)"
            )
        return node

    def pop_mark():
        mark = marks.pop()
        items = stack[mark:]
        del stack[mark:]
        return items

    try:
        for op, arg, _pos in pickletools.genops(_ClampedReader(f, size)):  # type: ignore[arg-type]  # duck-typed file
            count += 1
            if count > limits.MAX_PICKLE_OPS:
                raise UnsafePickle(f"pickle has more than {limits.MAX_PICKLE_OPS} opcodes")
            name = op.name
            if name == "MARK":
                marks.append(len(stack))
            elif name in _PUT_OPS:
                memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
            elif name in _GET_OPS:
                stack.append(memo[arg])
            elif name == "POP":
                stack.pop()
            elif name == "POP_MARK":
                pop_mark()
            elif name == "DUP":
                stack.append(stack[-1])
            elif name in _INPLACE_OPS:
                if name in ("APPEND", "BUILD"):
                    items = [stack.pop()]
                elif name == "SETITEM":
                    items = [stack.pop(), stack.pop()]
                else:
                    items = pop_mark()
                target = stack[-1]
                if not items:
                    continue
                depth = max(target.depth, max(c.depth for c in items) + 1)
                nodes = target.nodes + sum(c.nodes for c in items)
                # shared already, or about to hold itself (a GET/DUP of the target among the items: a cycle)
                shared = target.shared or any(c is target for c in items)
                if shared and (depth > target.depth or nodes > target.nodes):
                    raise UnsafePickle("pickle modifies a container after sharing it (cyclic or self-modifying)")
                for c in items:
                    c.shared = True
                target.depth, target.nodes = depth, nodes
                _check(target)
            else:
                if name in _LONG_OPS and isinstance(arg, int) and arg.bit_length() > 8 * limits.MAX_PICKLE_INT_BYTES:
                    raise UnsafePickle(f"pickle holds an integer longer than {limits.MAX_PICKLE_INT_BYTES} bytes")
                if pickletools.markobject in op.stack_before:
                    # everything above the mark, then what the opcode takes from below it (none for built-in ops)
                    children = pop_mark()
                    children += [stack.pop() for _ in range(op.stack_before.index(pickletools.markobject))]
                else:
                    children = [stack.pop() for _ in op.stack_before]
                for _ in op.stack_after:
                    stack.append(new(children))
            if name == "STOP":
                return
    except UnsafePickle:
        raise
    except (IndexError, KeyError):
        raise UnsafePickle("malformed pickle (its opcodes do not form a valid stack program)") from None
    except (ValueError, EOFError) as e:
        raise UnsafePickle(f"truncated or not a pickle ({str(e).splitlines()[0][:200]})") from None


def load_pickle(path: Union[str, os.PathLike]) -> Any:
    """Unpickle `path` with the allowlist above. Raises CheckpointError naming the file.

    The opcode stream is first checked by `scan_pickle` (size, depth and reference-bomb limits); nested
    torch storage archives by `check_storage_archive` before torch reads them, tensor views by `check_view`
    as they are rebuilt.
    """
    _LOADING.elements = _LOADING.storage_elements = 0
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            if len(head) < 2 or head[0] != 0x80 or head[1] not in _PICKLE_PROTOCOLS:
                raise CheckpointError(f"{path}: truncated or not a pickle (unrecognised file header)")
            f.seek(0)
            scan_pickle(f, os.fstat(f.fileno()).st_size)
            f.seek(0)
            return RestrictedUnpickler(f).load()
    except CheckpointError:
        raise
    except UnsafePickle as e:
        raise CheckpointError(f"{path}: {e}") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read file ({e.strerror or e})") from None
    except (EOFError, pickle.UnpicklingError) as e:
        raise CheckpointError(f"{path}: truncated or not a pickle ({e})") from None
    except RecursionError:
        raise CheckpointError(f"{path}: malformed pickle (nested too deeply)") from None
    except MemoryError:
        raise CheckpointError(f"{path}: malformed pickle (claims more memory than available)") from None
    except Exception as e:  # struct/value/type errors from damaged opcodes
        raise CheckpointError(f"{path}: malformed pickle ({type(e).__name__}: {str(e)[:200]})") from None
    finally:
        _LOADING.elements = _LOADING.storage_elements = None
