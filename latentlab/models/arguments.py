"""Range checks of the networks' constructor arguments, run before anything is built.

A network's size follows from its constructor arguments: `img_resolution=2**20` means noise buffers of
10**12 pixels, `num_layers=10**9` a billion modules, `channel_base=0` a division by zero and `z_dim=-1`
a torch error deep inside a layer. Every network calls `check_arguments` first thing in its `__init__`,
so a Python caller gets one `ConfigError` naming the argument and what is accepted; once the channel
table is known it calls `check_channels` (no block without channels) and `check_size` (a lower bound of
its parameters against `limits.MAX_PARAMS`, skipped on the 'meta' device, which allocates nothing).
`checkpoints.budget` runs the same `check_arguments` on kwargs read from a file, turns its errors into
`CheckpointError`s naming the file, and counts the parameters exactly on the meta device.

The ranges are those of `utils.limits`, by argument name at any nesting level (`mapping_kwargs`,
`synthesis_kwargs`, ...): the official names of StyleGAN2-ADA and of the original StyleGAN both.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from typing import Any, Dict, Mapping, Optional, Tuple

import torch

from ..errors import ConfigError
from ..utils import limits

__all__ = ["INT_RANGES", "MAPPING_RANGES", "check_arguments", "check_channel_base", "check_channels", "check_size"]

# Largest num_ws of a mapping network (the number of ws layers; published models have <= 18).
_MAX_WS = limits.MAX_LAYER_INDEX + 1

# argument name (at any nesting level) -> (lowest, highest)
INT_RANGES: Dict[str, Tuple[int, int]] = {
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
    "num_layers": (0, limits.MAX_MAPPING_LAYERS),  # 0: a discriminator's mapping_kwargs without label mapping
    "mapping_layers": (1, limits.MAX_MAPPING_LAYERS),
    "num_ws": (1, _MAX_WS),
    "num_fp16_res": (0, 32),
    "mbstd_group_size": (0, limits.MAX_MBSTD),
    "mbstd_num_channels": (0, limits.MAX_MBSTD),
    "mbstd_num_features": (0, limits.MAX_MBSTD),
    # StyleGAN3 layers (defaults 3, 6, 2): 0 would build empty kernels or filters
    "conv_kernel": (1, limits.MAX_CONV_KERNEL),
    "filter_size": (1, limits.MAX_FILTER_TAPS),  # low-pass taps per unit of resampling factor
    "lrelu_upsampling": (1, limits.MAX_RESAMPLING_FACTOR),
}
# A network that builds a mapping network (a generator; a conditional discriminator) needs >= 1 layer.
MAPPING_RANGES = {"num_layers": (1, limits.MAX_MAPPING_LAYERS)}
_RESOLUTIONS = ("img_resolution", "resolution")
_FILTERS = ("resample_filter", "resample_kernel", "blur_filter")
# numbers > 0: lr multipliers divide weights; StyleGAN3's band limits (`stylegan3.layer_schedule` checks them
# against img_resolution)
_POSITIVE = ("conv_clamp", "lr_multiplier", "mapping_lrmul", "first_cutoff", "first_stopband", "last_stopband_rel")
_REALS = ("output_scale",)  # any finite number (a string or list would only fail when rendering)
_FLAGS = ("use_radial_filters",)  # True or False
# arguments that may be None (a default computed from the others, or "off"); any other known size may not
_OPTIONAL = ("embed_features", "layer_features", "cmap_dim", "num_ws", "mbstd_group_size", "conv_clamp")
_OTHER_INTS = (-limits.MAX_CHANNEL_BASE, limits.MAX_CHANNEL_BASE)  # any other integer argument
# numbers with a range of their own: the original StyleGAN's channels fmap_base / 2**(stage * fmap_decay)
# (1.0 in every model; 2**(10 * 1e300) overflows)
_NUMBER_RANGES = {"fmap_decay": (0.0, 16.0), "magnitude_ema_beta": (0.0, 1.0)}
_MAX_LIST = 64  # longest list argument (filters have <= MAX_FILTER_TAPS entries)
_MAX_STRING = 100  # longest string argument ('lrelu', 'skip', ...)
_MAX_NESTING = 4  # Generator(synthesis_kwargs={...}) nests 1 deep; files nest <= 2
# names of single values: a list or tuple there is refused, not checked entry by entry
_SCALARS = frozenset(INT_RANGES) | frozenset(_RESOLUTIONS + _POSITIVE + _REALS + _FLAGS) | frozenset(_NUMBER_RANGES)

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 3, 60, 60, 40


def _short(value: object) -> str:
    """repr() for a message: bounded in length and depth, never recursing through a hostile structure."""
    try:
        return _SHORT.repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _fail(where: str, key: str, value: object, expected: str) -> ConfigError:
    return ConfigError(f"{where}: constructor argument {key!r} = {_short(value)}; expected {expected}")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond float's range
        return False


def _check_filter(where: str, key: str, value: object) -> None:
    if value is None:
        return
    if _is_number(value):  # one tap, as setup_filter accepts
        value = [value]
    elif isinstance(value, torch.Tensor) or type(value).__module__ == "numpy":  # a tensor or array of taps
        if getattr(value, "ndim", 0) > 2 or math.prod(getattr(value, "shape", ())) > limits.MAX_FILTER_TAPS**2:
            raise _fail(where, key, value, f"a list of 1 to {limits.MAX_FILTER_TAPS} numbers")
        value = value.tolist()  # type: ignore[attr-defined]
    rows = value if isinstance(value, list) and value and isinstance(value[0], (list, tuple)) else [value]
    taps: list = []
    for row in rows:
        if not isinstance(row, (list, tuple)) or not 1 <= len(row) <= limits.MAX_FILTER_TAPS:
            raise _fail(where, key, value, f"a list of 1 to {limits.MAX_FILTER_TAPS} numbers")
        taps += row
    if len(rows) > limits.MAX_FILTER_TAPS or not all(_is_number(t) and _finite(t) for t in taps):
        raise _fail(where, key, value, f"a list of 1 to {limits.MAX_FILTER_TAPS} finite numbers")
    if sum(taps) == 0:
        raise _fail(where, key, value, "taps with a non-zero sum (the filter is normalised by it)")


def _walk(where: str, key: str, value: Any, depth: int, ranges: Mapping[str, Tuple[int, int]]) -> None:
    if depth > _MAX_NESTING:
        raise _fail(where, key, value, "plain values (arguments nested too deeply)")
    if isinstance(value, Mapping):
        for k, v in value.items():
            _walk(where, str(k), v, depth + 1, ranges)
        return
    if key.endswith("_kwargs") and value is not None:  # mapping_kwargs, synthesis_kwargs, block_kwargs, ...
        raise _fail(where, key, value, "a dict of constructor arguments")
    if key in _FILTERS:
        _check_filter(where, key, value)
        return
    if isinstance(value, (list, tuple)) and key not in _SCALARS and key not in ranges:
        if len(value) > _MAX_LIST:
            raise _fail(where, key, f"<{type(value).__name__} of {len(value)}>", f"at most {_MAX_LIST} entries")
        for v in value:
            _walk(where, key, v, depth + 1, ranges)
        return
    if value is None and (key in _OPTIONAL or key not in ranges and key not in _SCALARS):
        return
    if key in _RESOLUTIONS:
        if not (_is_int(value) and 4 <= value <= limits.MAX_RESOLUTION and value & (value - 1) == 0):
            raise _fail(where, key, value, f"a power of two from 4 to {limits.MAX_RESOLUTION}")
    elif key in ranges:
        lo, hi = ranges[key]
        if not (_is_int(value) and lo <= value <= hi):
            raise _fail(where, key, value, f"an integer from {lo} to {hi}")
    elif key in _POSITIVE:
        if not (_is_number(value) and _finite(value) and value > 0):
            raise _fail(where, key, value, "a finite number > 0")
    elif key in _NUMBER_RANGES:
        lo_f, hi_f = _NUMBER_RANGES[key]
        if not (_is_number(value) and lo_f <= value <= hi_f):
            raise _fail(where, key, value, f"a number from {lo_f} to {hi_f}")
    elif key in _REALS:
        if not (_is_number(value) and _finite(value)):
            raise _fail(where, key, value, "a finite number")
    elif key in _FLAGS:
        if not (isinstance(value, bool) or type(value).__name__ == "bool_"):  # numpy's bool too
            raise _fail(where, key, value, "True or False")
    elif isinstance(value, str):
        if len(value) > _MAX_STRING:
            raise _fail(where, key, value, f"a string of at most {_MAX_STRING} characters")
    elif _is_int(value):
        if not _OTHER_INTS[0] <= value <= _OTHER_INTS[1]:
            raise _fail(where, key, value, "an integer from {} to {}".format(*_OTHER_INTS))
    elif _is_number(value) and not _finite(value):
        raise _fail(where, key, value, "a finite number")


def check_arguments(
    where: str, kwargs: Mapping[str, Any], ranges: Optional[Mapping[str, Tuple[int, int]]] = None
) -> None:
    """Range-check a network's constructor arguments before it is built; ConfigError otherwise.

    Known sizes (`INT_RANGES`, by name at any nesting level) must be integers in their `limits` ranges,
    resolutions powers of two from 4 to `limits.MAX_RESOLUTION`, numbers finite (lr multipliers, conv_clamp
    and StyleGAN3's band limits > 0), flags booleans, `*_kwargs` dicts, filters short lists of finite taps
    with a non-zero sum, lists and strings short; a known single value is never a list, nor None unless
    optional.
    where: who is asking, named first in the message ('Generator', 'ffhq.pkl: network 'G_ema'').
    ranges: replacements for some of `INT_RANGES` (e.g. z_dim from 0 for a label-only mapping network).
    """
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"{where}: constructor arguments are a {type(kwargs).__name__}, not a dict")
    table = {**INT_RANGES, **(ranges or {})}
    for key, value in kwargs.items():
        _walk(where, str(key), value, 0, table)


def check_channel_base(where: str, channel_base: object, img_resolution: object) -> None:
    """StyleGAN2 networks give a block of resolution r min(channel_base // r, channel_max) channels: the
    last block gets none unless channel_base >= img_resolution."""
    if _is_int(channel_base) and _is_int(img_resolution) and int(channel_base) < int(img_resolution):  # type: ignore[call-overload]
        raise _fail(
            where,
            "channel_base",
            channel_base,
            f"at least img_resolution ({img_resolution}), or its last blocks get 0 channels",
        )


def check_channels(where: str, channels: Mapping[int, int], rule: str) -> None:
    """Every block (resolution -> channels) must get at least one channel; `rule` says which argument decides."""
    empty = sorted(res for res, ch in channels.items() if ch < 1)
    if empty:
        raise ConfigError(f"{where}: constructor arguments give the {empty[-1]}x{empty[-1]} block 0 channels ({rule})")


def check_size(where: str, lower_bound: int) -> None:
    """Refuse a network whose parameters and buffers number at least `lower_bound` > `limits.MAX_PARAMS`.

    Networks pass a cheap lower bound (their largest weights and buffers, from the channel table) before
    building anything; on the 'meta' device nothing is allocated and the check is skipped, so that
    `checkpoints.budget.plan_network` can count a file's network exactly there.
    """
    if lower_bound > limits.MAX_PARAMS and torch.get_default_device().type != "meta":
        raise ConfigError(
            f"{where}: constructor arguments describe a network of at least {lower_bound:,} parameters and buffers "
            f"(more than the limit of {limits.MAX_PARAMS:,})"
        )
