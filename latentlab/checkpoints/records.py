"""The neutral record every format converter produces, and the helpers all converters share.

A converter turns one unpickled official file into a `RawCheckpoint`: per network, the
class name, constructor kwargs (stylegan2-ada-pytorch names, plain data) and a state dict
under the official stylegan2-ada-pytorch parameter/buffer names. No code from the file is
ever run; anything unexpected is a CheckpointError naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from .safe_pickle import NumpyDType, PersistentObject, TFNetwork, short_repr

__all__ = ["NetworkRecord", "RawCheckpoint", "describe", "to_plain", "summarise", "float_tensor"]


@dataclass
class NetworkRecord:
    """One network of a checkpoint, described by data only."""

    class_name: str  # a class of latentlab.checkpoints.loader.NETWORK_CLASSES, e.g. 'Generator'
    init_kwargs: dict  # stylegan2-ada-pytorch constructor kwargs; plain dicts/lists/numbers/strings
    state: dict  # official parameter and buffer name -> float32 CPU tensor
    init_args: tuple = ()  # positional args as found in the file (already merged into init_kwargs)


@dataclass
class RawCheckpoint:
    """What a converter read from one official file; `loader.load_checkpoint` builds the networks."""

    path: str
    format: str  # a tag of .tags.OFFICIAL_FORMATS
    networks: dict  # subset of {'G', 'D', 'G_ema'} -> NetworkRecord
    extras: dict = field(default_factory=dict)


def describe(obj: object) -> str:
    """A short description of an unpickled object for error messages (never its contents)."""
    if isinstance(obj, dict):
        keys = ", ".join(short_repr(k) for k in list(obj)[:6])
        return f"dict with keys [{keys}{', ...' if len(obj) > 6 else ''}]"
    if isinstance(obj, (tuple, list)):
        return f"{type(obj).__name__} of length {len(obj)}"
    if isinstance(obj, PersistentObject):
        return f"persistent {short_repr(obj.class_name)} object"
    return type(obj).__name__


def to_plain(value: object, path: str, where: str, depth: int = 0) -> Any:
    """Constructor kwargs as plain Python data; anything unexpected is an error."""
    if depth > 20:
        raise CheckpointError(f"{path}: {where} is nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, dict):  # includes EasyDict and OrderedDict
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise CheckpointError(f"{path}: {where} has a non-string key {short_repr(k)}")
            out[k] = to_plain(v, path, f"{where}.{k}", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [to_plain(v, path, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.size <= 4096:
        return np.asarray(value).tolist()
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel() <= 4096:
        return value.tolist()
    raise CheckpointError(f"{path}: {where} holds an unexpected {type(value).__name__} object")


def summarise(value: object, depth: int = 0) -> Any:
    """Extras as plain, JSON-friendly data: small values kept, big arrays described."""
    if depth > 20:
        return "<nested too deeply>"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PersistentObject):
        return {"class_name": value.class_name, "init_kwargs": summarise(value.init_kwargs, depth + 1)}
    if isinstance(value, TFNetwork):
        return {"tf_network": value.state.get("name")}
    if isinstance(value, NumpyDType):
        return value.dtype.str
    if isinstance(value, dict):
        return {str(k): summarise(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [summarise(v, depth + 1) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if value.ndim == 0:
            return value.item()
        return {"shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return f"<{type(value).__name__}>"


def float_tensor(value: object, path: str, what: str) -> torch.Tensor:
    """A float32, contiguous CPU copy of a tensor or numpy array; non-float data is refused."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind != "f":
            raise CheckpointError(f"{path}: {what} has non-float dtype {value.dtype}")
        return torch.from_numpy(np.array(value, dtype=np.float32, order="C"))
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise CheckpointError(f"{path}: {what} has non-float dtype {value.dtype}")
        return value.detach().to(device="cpu", dtype=torch.float32).contiguous().clone()
    raise CheckpointError(f"{path}: {what} is a {type(value).__name__}, not a tensor")
