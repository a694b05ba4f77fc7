"""One reader for weight files and one strict state-dict loader, used by every part of latentlab.

    tensors, metadata = read_state_dict("resnet18_celeba.pt", nesting=("state_dict",), prefixes=WRAPPER_PREFIXES)
    load_state_dict_strict(net, tensors, where="resnet18_celeba.pt", what="a 40-attribute resnet18")

`read_state_dict` reads a `.safetensors` file or a file written by `torch.save`, the latter
with `torch.load(weights_only=True)`, so no code from the file runs. It checks sizes before
trusting them (an empty file, a `max_bytes` limit, a safetensors header that does not fit or
whose tensors do not end where the file ends, i.e. a truncated or padded download), unwraps
the entry a training checkpoint nests its weights under (`nesting`) and strips the prefixes
that wrappers add to every key (`prefixes`). It returns `(tensors, metadata)`: a flat
{name: tensor} dict and the safetensors header's string metadata ({} for torch files).

`load_state_dict_strict` is the one rule for putting weights into a module:

  * the keys match exactly: no key of the module missing, no extra key in the file; the only
    exceptions are what the caller declares: prefixes stripped when reading, and unexpected
    keys under `ignore_unexpected` prefixes (a classification head a feature extractor drops);
  * every tensor has the shape of the module's entry;
  * dtype: a floating-point entry takes any floating-point tensor, converted to the entry's own
    dtype (as `nn.Module.load_state_dict` copies it); a non-floating entry (an integer counter
    such as BatchNorm's `num_batches_tracked`) takes any integer or bool tensor; complex tensors
    are refused, and so are floating-point values that are not finite (NaN or inf weights);
  * anything else is one CheckpointError, one line, naming the file (`where`), what it should
    have held (`what`) and the first few offending keys.

Callers: the checkpoint loader (`loader.build_network`), the ResNet and toyfaces attribute
classifiers, the NVIDIA CelebA-HQ classifiers (through `build_network`), latentlab's own
`.safetensors` checkpoints (`native.read_native`) and the HSR feature extractors.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import torch

from ..errors import CheckpointError, ConfigError
from ..utils import limits
from .safe_pickle import short_repr

__all__ = [
    "WRAPPER_PREFIXES",
    "is_safetensors",
    "read_state_dict",
    "strip_prefixes",
    "check_state_dict",
    "load_state_dict_strict",
    "nonfinite_counts",
]

# Prefixes wrappers add to every key: DataParallel / DistributedDataParallel ('module.'), Lightning-style ('model.').
WRAPPER_PREFIXES = ("module.", "model.")
# safetensors refuses headers above 100 MB; a larger length field means a damaged or foreign file.
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
SHOWN_KEYS = 3  # offending keys named in an error message

M = TypeVar("M", bound=torch.nn.Module)


def is_safetensors(path: Union[str, os.PathLike]) -> bool:
    """True for a file named *.safetensors or one that starts like a safetensors file.

    A safetensors file starts with an 8-byte little-endian header length followed by a JSON object
    that fits in the file. Files without the suffix are recognised by that start alone.
    """
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(9)
        size = os.path.getsize(path)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and 8 + int.from_bytes(head[:8], "little") <= size


def _first_line(e):
    msg = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


# Bytes per element of the safetensors dtypes latentlab can load.
_SAFETENSORS_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


def _check_safetensors_entry(name, entry):
    """The end offset of one tensor entry of a safetensors header, after checking, before anything is read,
    that its dtype is known, its shape non-negative and within `limits.MAX_TENSOR_ELEMENTS`, and that its
    byte range is exactly as long as its shape and dtype say."""
    label = short_repr(name)
    if not isinstance(entry, dict):
        raise ConfigError(f"tensor {label} is not described by a JSON object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in _SAFETENSORS_ITEMSIZE:
        raise ConfigError(f"tensor {label} has unsupported dtype {short_repr(dtype)}")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise ConfigError(f"tensor {label} has an invalid shape {short_repr(shape)}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int and o >= 0 for o in offsets):
        raise ConfigError(f"tensor {label} has invalid data_offsets {short_repr(offsets)}")
    elements = math.prod(shape)
    if elements > limits.MAX_TENSOR_ELEMENTS:
        raise ConfigError(f"tensor {label} claims {elements} elements (more than {limits.MAX_TENSOR_ELEMENTS})")
    if offsets[1] - offsets[0] != elements * _SAFETENSORS_ITEMSIZE[dtype]:
        raise ConfigError(
            f"tensor {label} of shape {shape} ({dtype}) needs {elements * _SAFETENSORS_ITEMSIZE[dtype]} bytes, "
            f"its data_offsets give {offsets[1] - offsets[0]}"
        )
    return offsets[1]


def _read_safetensors(path, size, what):
    """(tensors, metadata) of a safetensors file whose header and size agree."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else None
        if n is None or n > MAX_SAFETENSORS_HEADER or 8 + n > size:
            raise CheckpointError(f"{path}: not a readable {what} (truncated, or not a safetensors file)")
        raw = f.read(n)
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ConfigError("the header is not a JSON object")
        meta = header.get("__metadata__") or {}
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise ConfigError("the metadata is not a JSON object of strings")
        ends = [_check_safetensors_entry(k, e) for k, e in header.items() if k != "__metadata__"]
    except RecursionError:
        raise CheckpointError(f"{path}: not a readable {what} (safetensors header nested too deeply)") from None
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not a readable {what} (damaged safetensors header: {_first_line(e)})") from None
    declared = 8 + n + max(ends, default=0)
    if declared != size:
        problem = "truncated" if declared > size else "has trailing bytes"
        raise CheckpointError(
            f"{path}: not a readable {what} ({problem}: its header describes {declared} bytes, the file has {size})"
        )
    try:
        tensors = load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a readable {what} (damaged safetensors file: {_first_line(e)})") from None
    return tensors, {str(k): str(v) for k, v in meta.items()}


def strip_prefixes(state: Dict[str, Any], prefixes: Iterable[str] = WRAPPER_PREFIXES) -> Dict[str, Any]:
    """`state` without the prefixes that wrappers add to every key (e.g. 'module.'), removed repeatedly.

    A prefix is removed only when every key carries it, so a model whose own first module is
    called 'model' keeps its names when some keys lack the prefix.
    """
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    return state


def _is_state(obj):
    return (
        isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())
    )


def read_state_dict(
    path: Union[str, os.PathLike],
    *,
    what: str = "state dict",
    nesting: Sequence[str] = (),
    prefixes: Iterable[str] = (),
    safe_globals: Iterable[Any] = (),
    allow_pickle: bool = True,
    max_bytes: Optional[int] = None,
) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Read a weights file; return (tensors {name: tensor} on the CPU, metadata {str: str}).

    what: the kind of file, for messages ('state dict', 'toyfaces classifier', ...).
    nesting: entries of a training checkpoint that hold the weights, tried in order, up to three
        levels deep (e.g. ('state_dict',), or DINO's ('teacher', 'state_dict', 'model', 'student')).
    prefixes: wrapper prefixes stripped from every key (`strip_prefixes`), e.g. WRAPPER_PREFIXES.
    safe_globals: extra classes torch's weights-only unpickler may rebuild (e.g. argparse.Namespace).
    allow_pickle: False accepts safetensors files only.
    max_bytes: refuse larger files (None: no limit).
    Raises FileNotFoundError / IsADirectoryError for a missing file or a folder, CheckpointError (one line,
    naming the file) for anything unreadable, too large or not a dict of tensors.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such {what} file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: a folder, expected a {what} file")
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointError(f"{path}: an empty file, not a {what}")
    if max_bytes is not None and size > max_bytes:
        raise CheckpointError(f"{path}: {size} bytes, more than a {what} may have ({max_bytes} bytes)")
    if is_safetensors(path):
        obj, meta = _read_safetensors(path, size, what)
    elif not allow_pickle:
        raise CheckpointError(f"{path}: not a readable {what} (not a safetensors file)")
    else:
        meta = {}
        try:
            with torch.serialization.safe_globals(list(safe_globals)):
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # damaged file, or a pickle of something other than tensors
            raise CheckpointError(f"{path}: not a readable {what} ({_first_line(e)})") from None
    for _ in range(3):  # e.g. {'teacher': {'module.backbone.x': ...}} or {'state_dict': {'model': ...}}
        if not isinstance(obj, dict) or _is_state(obj):
            break
        nested = next((obj[k] for k in nesting if isinstance(obj.get(k), dict)), None)
        if nested is None:
            break
        obj = nested
    if not _is_state(obj):
        under = f", optionally under {', '.join(repr(k) for k in nesting)}" if nesting else ""
        raise CheckpointError(f"{path}: not a {what} (expected a dict of parameter name -> tensor{under})")
    return strip_prefixes(obj, prefixes), meta


def _some(keys):
    shown = ", ".join(short_repr(k) for k in keys[:SHOWN_KEYS])
    return shown + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")


def nonfinite_counts(state: Mapping[str, Any]) -> Dict[str, int]:
    """{key: number of NaN/inf values} for the floating-point tensors of `state` that hold any."""
    out = {}
    for key, value in state.items():
        if torch.is_tensor(value) and value.is_floating_point():
            n = int((~torch.isfinite(value)).sum())
            if n:
                out[key] = n
    return out


def check_state_dict(
    expected: Mapping[str, torch.Tensor],
    state: Mapping[str, Any],
    where: str,
    what: str,
    ignore_unexpected: Iterable[str] = (),
    allow_nonfinite: bool = False,
) -> Dict[str, Any]:
    """Check `state` against `expected` (a module's state dict, possibly on the meta device) under the rules of
    this module's docstring, without loading anything; return `state` without the ignored unexpected keys.

    allow_nonfinite: accept NaN/inf values (the caller reports them, e.g. `latentlab info`).
    """
    if ignore_unexpected:
        state = {k: v for k, v in state.items() if k in expected or not k.startswith(tuple(ignore_unexpected))}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        head = f"key {missing[0]!r} is missing" if missing else f"unexpected key {short_repr(unexpected[0])}"
        counts = ([f"{len(missing)} missing: {_some(missing)}"] if missing else []) + (
            [f"{len(unexpected)} unexpected: {_some(unexpected)}"] if unexpected else []
        )
        raise CheckpointError(f"{where}: {head} for {what} ({'; '.join(counts)})")
    for key, ref in expected.items():
        value = state[key]
        if not torch.is_tensor(value):
            raise CheckpointError(f"{where}: key {key!r} holds a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{where}: key {key!r} has shape {list(value.shape)}, expected {list(ref.shape)} for {what}"
            )
        if value.is_complex() or value.is_floating_point() != ref.is_floating_point():
            kind = "floating-point" if ref.is_floating_point() else "integer"
            raise CheckpointError(
                f"{where}: key {key!r} has dtype {value.dtype}, expected a {kind} tensor ({ref.dtype}) for {what}"
            )
        if not allow_nonfinite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{where}: key {key!r} holds non-finite values (NaN or inf)")
    return dict(state)


def load_state_dict_strict(
    module: M,
    state: Mapping[str, Any],
    where: str,
    what: str,
    ignore_unexpected: Iterable[str] = (),
    allow_nonfinite: bool = False,
) -> M:
    """Load `state` into `module` under the rules of this module's docstring (`check_state_dict`); return `module`.

    where: the file (or 'file: network ...') named first in every message.
    what: what the file should hold, completing "... for {what}" (e.g. 'a 40-attribute resnet18').
    ignore_unexpected: key prefixes of entries the module does not have and may drop (e.g. 'head.').
    allow_nonfinite: accept NaN/inf weights (default: refused).
    """
    state = check_state_dict(module.state_dict(), state, where, what, ignore_unexpected, allow_nonfinite)
    module.load_state_dict(state, strict=True)
    return module
