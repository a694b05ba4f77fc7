"""Read official StyleGAN2 checkpoint files into a neutral, code-free record.

`read_checkpoint(path)` unpickles with the restricted unpickler of
`safe_pickle`, detects the format and returns a `RawCheckpoint` whose networks
are described by class name, constructor kwargs (stylegan2-ada-pytorch names)
and a state dict with the official stylegan2-ada-pytorch parameter/buffer names.

The per-format conversions live in `pytorch_pickle.py` and `tf_pickle.py`.
"""
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import CheckpointError
from .safe_pickle import NumpyDType, PersistentObject, TFNetwork, load_pickle

__all__ = ["NetworkRecord", "RawCheckpoint", "read_checkpoint", "detect_format"]

FORMAT_PYTORCH = "stylegan2-ada-pytorch"
FORMAT_TF = "stylegan2-tf"


@dataclass
class NetworkRecord:
    class_name: str  # 'Generator' or 'Discriminator'
    init_kwargs: dict  # stylegan2-ada-pytorch constructor kwargs; plain dicts/lists/numbers/strings
    state: dict  # official parameter and buffer name -> float32 CPU tensor
    init_args: tuple = ()  # positional args as found in the file (already merged into init_kwargs)


@dataclass
class RawCheckpoint:
    path: str
    format: str  # 'stylegan2-ada-pytorch' or 'stylegan2-tf'
    networks: dict  # subset of {'G', 'D', 'G_ema'} -> NetworkRecord
    extras: dict = field(default_factory=dict)


def detect_format(obj):
    """'stylegan2-ada-pytorch', 'stylegan2-tf', 'stylegan-tf' (v1) or None for an unpickled object."""
    if isinstance(obj, dict) and any(k in obj for k in ("G", "D", "G_ema")):
        return FORMAT_PYTORCH
    # A TFNetwork whose BUILD never ran has no `state`: not a usable network.
    if isinstance(obj, tuple) and len(obj) == 3 and all(
        isinstance(n, TFNetwork) and isinstance(getattr(n, "state", None), dict) for n in obj
    ):
        state = obj[0].state
        version = state.get("version")
        if state.get("build_func_name") == "G_style" or not isinstance(version, int) or version < 4:
            return "stylegan-tf"
        return FORMAT_TF
    return None


def read_checkpoint(path) -> RawCheckpoint:
    """Read an official StyleGAN pickle (v1 TF, v2 TF, v2 PyTorch) without running code from it.

    Raises CheckpointError (naming the file and the problem) for anything unsafe,
    damaged, or not a StyleGAN2 checkpoint.
    """
    path = os.fspath(path)
    obj = load_pickle(path)
    kind = detect_format(obj)
    if kind == FORMAT_PYTORCH:
        from . import pytorch_pickle

        return pytorch_pickle.convert(path, obj)
    if kind == FORMAT_TF:
        from . import tf_pickle

        return tf_pickle.convert(path, obj)
    if kind == "stylegan-tf":
        from . import tf_stylegan1

        return tf_stylegan1.convert(path, obj)
    raise CheckpointError(f"{path}: not a StyleGAN checkpoint (unpickled a {describe(obj)})")


# --------------------------------------------------------------------------------------------
# Helpers shared by the format converters.


def describe(obj):
    if isinstance(obj, dict):
        keys = ", ".join(repr(k) for k in list(obj)[:6])
        return f"dict with keys [{keys}{', ...' if len(obj) > 6 else ''}]"
    if isinstance(obj, (tuple, list)):
        return f"{type(obj).__name__} of length {len(obj)}"
    if isinstance(obj, PersistentObject):
        return f"persistent {obj.class_name!r} object"
    return type(obj).__name__


def to_plain(value, path, where, depth=0):
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
                raise CheckpointError(f"{path}: {where} has a non-string key {k!r}")
            out[k] = to_plain(v, path, f"{where}.{k}", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [to_plain(v, path, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.size <= 4096:
        return np.asarray(value).tolist()
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel() <= 4096:
        return value.tolist()
    raise CheckpointError(f"{path}: {where} holds an unexpected {type(value).__name__} object")


def summarise(value, depth=0):
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


def float_tensor(value, path, what):
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


def resample_filter(kernel):
    """The buffer stylegan2-ada-pytorch's `upfirdn2d.setup_filter` makes from a resample kernel.

    1-D kernels with fewer than 8 taps become the normalised outer product
    (f = outer(k, k) / sum); longer ones stay separable (k / sum).
    """
    f = torch.as_tensor(1.0 if kernel is None else kernel, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim == 1 and f.numel() < 8:
        f = torch.outer(f, f)
    return f / f.sum()
