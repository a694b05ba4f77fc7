"""What a network described by a checkpoint would cost, checked before anything is built.

A checkpoint's constructor kwargs decide how large a network latentlab builds: `img_resolution=2**20`
means noise buffers of 10**12 pixels, `num_layers=10**9` a billion modules, `channel_base=0` a division
by zero. `check_kwargs` range-checks every kwarg latentlab's networks take (against `utils.limits`);
`plan_network` then builds the network on PyTorch's 'meta' device, which records shapes but allocates
no memory, and counts its parameters and buffers against `limits.MAX_PARAMS`. Only a network that
passes both, and whose tensors match the file's (`state_dicts.check_state_dict`), is built for real.
Every failure is one CheckpointError naming the file and the network.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Dict, Mapping, Tuple

import torch

from ..errors import CheckpointError
from ..utils import limits
from .safe_pickle import short_repr

__all__ = ["check_kwargs", "plan_network", "count_elements"]


def _power_of_two(v: int) -> bool:
    return v >= 4 and v & (v - 1) == 0


# kwarg name (at any nesting level) -> (lowest, highest, what the value must be)
_INT_RANGES: Dict[str, Tuple[int, int]] = {
    "z_dim": (1, limits.MAX_DIM),
    "w_dim": (1, limits.MAX_DIM),
    "latent_size": (1, limits.MAX_DIM),
    "dlatent_size": (1, limits.MAX_DIM),
    "c_dim": (0, limits.MAX_DIM),
    "label_size": (0, limits.MAX_DIM),
    "embed_features": (0, limits.MAX_DIM),
    "layer_features": (1, limits.MAX_DIM),
    "mapping_fmaps": (1, limits.MAX_DIM),
    "cmap_dim": (1, limits.MAX_DIM),
    "img_channels": (1, limits.MAX_IMG_CHANNELS),
    "num_channels": (1, limits.MAX_IMG_CHANNELS),
    "channel_max": (1, limits.MAX_CHANNELS),
    "fmap_max": (1, limits.MAX_CHANNELS),
    "channel_base": (1, limits.MAX_CHANNEL_BASE),
    "fmap_base": (1, limits.MAX_CHANNEL_BASE),
    "num_layers": (0, limits.MAX_MAPPING_LAYERS),  # 0: a discriminator without label mapping
    "mapping_layers": (1, limits.MAX_MAPPING_LAYERS),
    "num_fp16_res": (0, 32),
    "mbstd_group_size": (0, limits.MAX_MBSTD),
    "mbstd_num_channels": (0, limits.MAX_MBSTD),
    "mbstd_num_features": (0, limits.MAX_MBSTD),
}
_RESOLUTIONS = ("img_resolution", "resolution")
_FILTERS = ("resample_filter", "resample_kernel", "blur_filter")
_POSITIVE_FLOATS = ("conv_clamp",)
_MAX_LIST = 64  # longest list kwarg (filters have <= MAX_FILTER_TAPS entries)
_MAX_STRING = 100  # longest string kwarg ('lrelu', 'skip', ...)


def _fail(where: str, key: str, value: object, expected: str) -> CheckpointError:
    return CheckpointError(f"{where}: constructor argument {key!r} = {short_repr(value)}; expected {expected}")


def _check_filter(where: str, key: str, value: object) -> None:
    if value is None:
        return
    rows = value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
    taps = []
    for row in rows:
        if not isinstance(row, list) or not 1 <= len(row) <= limits.MAX_FILTER_TAPS:
            raise _fail(where, key, value, f"a list of 1 to {limits.MAX_FILTER_TAPS} numbers")
        taps += row
    if len(rows) > limits.MAX_FILTER_TAPS or not all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in taps
    ):
        raise _fail(where, key, value, f"a list of 1 to {limits.MAX_FILTER_TAPS} finite numbers")
    if sum(taps) == 0:
        raise _fail(where, key, value, "taps with a non-zero sum (the filter is normalised by it)")


def _walk(where: str, key: str, value: Any, depth: int) -> None:
    if depth > 4:
        raise _fail(where, key, value, "plain values (kwargs nested too deeply)")
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(where, str(k), v, depth + 1)
        return
    if key in _FILTERS:
        _check_filter(where, key, value)
        return
    if isinstance(value, list):
        if len(value) > _MAX_LIST:
            raise _fail(where, key, f"<list of {len(value)}>", f"at most {_MAX_LIST} entries")
        for v in value:
            _walk(where, key, v, depth + 1)
        return
    if isinstance(value, str) and len(value) > _MAX_STRING:
        raise _fail(where, key, value, f"a string of at most {_MAX_STRING} characters")
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, float):
        if not math.isfinite(value) or (key in _POSITIVE_FLOATS and value <= 0):
            raise _fail(where, key, value, "a finite number" + (" > 0" if key in _POSITIVE_FLOATS else ""))
        return
    if isinstance(value, int):
        if key in _RESOLUTIONS:
            if not (_power_of_two(value) and value <= limits.MAX_RESOLUTION):
                raise _fail(where, key, value, f"a power of two from 4 to {limits.MAX_RESOLUTION}")
            return
        lo, hi = _INT_RANGES.get(key, (-limits.MAX_CHANNEL_BASE, limits.MAX_CHANNEL_BASE))
        if key in _POSITIVE_FLOATS:
            lo = 1
        if not lo <= value <= hi:
            raise _fail(where, key, value, f"an integer from {lo} to {hi}")


def check_kwargs(where: str, class_name: str, kwargs: Mapping[str, Any]) -> None:
    """Range-check the constructor kwargs of a `class_name` network read from a file (before building it).

    Known sizes must lie in their `limits` ranges (resolutions: powers of two up to MAX_RESOLUTION),
    floats must be finite, filters short lists of finite taps with a non-zero sum, and every block of a
    StyleGAN2 network must get at least one channel (channel_base >= img_resolution).
    where: 'file: network NAME', named first in the message.
    """
    if not isinstance(kwargs, Mapping):
        raise CheckpointError(f"{where}: constructor arguments are a {type(kwargs).__name__}, not a dict")
    for key, value in kwargs.items():
        _walk(where, str(key), value, 0)
    if class_name in ("Generator", "Discriminator"):
        sub = kwargs.get("synthesis_kwargs") if class_name == "Generator" else kwargs
        base = sub.get("channel_base", 32768) if isinstance(sub, Mapping) else 32768
        res = kwargs.get("img_resolution")
        if isinstance(base, int) and isinstance(res, int) and base < res:
            raise _fail(
                where, "channel_base", base, f"at least img_resolution ({res}), or its last blocks get 0 channels"
            )


def count_elements(module: torch.nn.Module) -> int:
    """Elements of all parameters and buffers of `module` (persistent or not)."""
    return sum(t.numel() for t in itertools.chain(module.parameters(), module.buffers()))


def plan_network(where: str, factory: Callable[..., torch.nn.Module], kwargs: Mapping[str, Any]) -> torch.nn.Module:
    """`factory(**kwargs)` built on the meta device (no memory), after `check_kwargs`; CheckpointError when
    the kwargs are refused by the constructor or describe more than `limits.MAX_PARAMS` elements."""
    check_kwargs(where, getattr(factory, "__name__", "network"), kwargs)
    try:
        with torch.device("meta"):
            net = factory(**kwargs)
    except (MemoryError, RecursionError):
        raise CheckpointError(f"{where}: constructor arguments describe a network too large to build") from None
    except Exception as e:  # TypeError/ValueError/ZeroDivisionError/RuntimeError...: kwargs the class cannot take
        msg = str(e).splitlines()[0][:200] if str(e) else ""
        raise CheckpointError(
            f"{where}: unsupported constructor arguments ({type(e).__name__}{': ' + msg if msg else ''})"
        ) from None
    n = count_elements(net)
    if n > limits.MAX_PARAMS:
        raise CheckpointError(
            f"{where}: constructor arguments describe a network of {n:,} parameters and buffers "
            f"(more than the limit of {limits.MAX_PARAMS:,})"
        )
    return net
