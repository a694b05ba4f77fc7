"""A restricted unpickler for official StyleGAN checkpoint files.

Pickle runs whatever callable a file names, so the official loaders can be made
to execute arbitrary code. Here `find_class` resolves only an allowlist of
globals, each to `collections.OrderedDict` or to a replacement written below
that validates its arguments: no module named in a file is ever imported, and
the Python source embedded in official pickles is dropped unread.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import warnings
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch

from ..errors import CheckpointError

__all__ = ["load_pickle", "PersistentObject", "TFNetwork", "EasyDict", "UnsafePickle"]

_PICKLE_PROTOCOLS = (2, 3, 4, 5)


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
        return f"PersistentObject({self.class_name!r}, version={self.version!r})"


class TFNetwork:
    """Stand-in for dnnlib.tflib.network.Network: keeps the pickled state dict, builds nothing."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise UnsafePickle("dnnlib.tflib.network.Network state is not a dict")
        self.state = state

    def __repr__(self):
        name = getattr(self, "state", {}).get("name")
        return f"TFNetwork({name!r})"


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict):
        raise UnsafePickle("persistent object metadata is not a dict")
    if meta.get("type") != "class":
        raise UnsafePickle(f"persistent object of type {meta.get('type')!r} (only 'class' is supported)")
    class_name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise UnsafePickle("persistent object without class_name/state")
    return PersistentObject(class_name, meta.get("version"), state)


# --------------------------------------------------------------------------------------------
# torch tensors: storages arrive as nested torch.save archives, read with torch's own
# weights-only unpickler; tensors and parameters are then views on those storages.


def _load_from_bytes(data):
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickle("torch storage payload is not bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage deprecation noise
            storage = torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
    except Exception as e:  # any failure here means a damaged or hostile archive
        raise UnsafePickle(f"unreadable torch storage ({type(e).__name__}: {e})") from None
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise UnsafePickle(f"torch storage archive holds a {type(storage).__name__}, not a storage")
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


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UnsafePickle("tensor rebuilt from something that is not a typed storage")
    size = _as_int_tuple(size, "size")
    stride = _as_int_tuple(stride, "stride")
    if type(storage_offset) is not int or storage_offset < 0 or len(size) != len(stride):
        raise UnsafePickle("tensor with invalid offset/size/stride")
    if any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise UnsafePickle("tensor with negative size or stride")
    _require_empty(backward_hooks, "tensor backward hooks")
    _require_empty(metadata, "tensor metadata")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dtype, numel = storage.dtype, storage.size()
        untyped = storage.untyped()
    if all(s > 0 for s in size):  # check bounds ourselves rather than trusting the file
        last = storage_offset + sum((n - 1) * st for n, st in zip(size, stride))
        if last >= numel:
            raise UnsafePickle("tensor extends past the end of its storage")
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
            raise UnsafePickle(f"refuses numpy dtype {spec!r}")
        try:
            dt = np.dtype(spec)
        except TypeError:
            raise UnsafePickle(f"refuses numpy dtype {spec!r}") from None
        if dt.kind not in _NUMPY_KINDS or dt.hasobject or dt.fields is not None or dt.subdtype is not None:
            raise UnsafePickle(f"refuses numpy dtype {spec!r} (object and structured arrays are not allowed)")
        self.dtype = dt

    def __setstate__(self, state):
        # numpy's state: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not isinstance(state, tuple) or len(state) < 8 or state[2:5] != (None, None, None):
            raise UnsafePickle("refuses numpy dtype state (only plain numeric dtypes are allowed)")
        order = state[1]
        if order not in ("<", ">", "|", "="):
            raise UnsafePickle(f"numpy dtype with byte order {order!r}")
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


def load_pickle(path: Union[str, os.PathLike]) -> Any:
    """Unpickle `path` with the allowlist above. Raises CheckpointError naming the file."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            if len(head) < 2 or head[0] != 0x80 or head[1] not in _PICKLE_PROTOCOLS:
                raise CheckpointError(f"{path}: truncated or not a pickle (unrecognised file header)")
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
        raise CheckpointError(f"{path}: malformed pickle ({type(e).__name__}: {e})") from None
