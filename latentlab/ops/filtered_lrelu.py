"""Filtered leaky ReLU: StyleGAN3's alias-free nonlinearity (bias, upsample, lrelu, clamp, downsample).

The nonlinearity of a continuous signal must not create frequencies the next sampling grid cannot hold,
so StyleGAN3 applies it at a temporarily higher sampling rate: upsample with a low-pass FIR filter,
apply the pointwise leaky ReLU there, low-pass again and decimate. Per channel, in this order:

    1. add the bias,
    2. upsample by inserting up - 1 zeros after each sample,
    3. pad (negative = crop) by `padding`, in upsampled pixels,
    4. convolve with `fu` (gain up**2 keeps the signal's level),
    5. multiply by `gain`, leaky ReLU with `slope`, clamp to [-clamp, clamp],
    6. convolve with `fd`, keep every `down`-th sample.

Output size per axis: (in * up + pad0 + pad1 - (fu_taps - 1) - (fd_taps - 1) + (down - 1)) // down.
The reference path composes `bias_act` and `upfirdn2d` (any-order gradients, exact on the CPU).
On CUDA tensors `filtered_lrelu` runs our fused kernel (`ops/cuda/filtered_lrelu.*`): it keeps
only a uint8 code per upsampled pixel for the backward, not the intermediate images.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from ..errors import ConfigError
from ._impl import choose_impl
from .bias_act import bias_act
from .upfirdn2d import Padding, filter_size, parse_padding, upfirdn2d

__all__ = ["filtered_lrelu", "filtered_lrelu_ref", "output_size"]


def _check(x, fu, fd, b, up, down, gain, slope, clamp):
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ConfigError(f"filtered_lrelu expects [N, C, H, W], got {getattr(x, 'shape', type(x).__name__)}")
    for name, f in (("fu", fu), ("fd", fd)):
        if f is not None and (not isinstance(f, torch.Tensor) or f.ndim not in (1, 2)):
            raise ConfigError(f"filtered_lrelu: {name} must be None or a 1-D (separable) or 2-D filter tensor")
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[1]):
        raise ConfigError(f"filtered_lrelu: bias of shape {tuple(b.shape)} for {x.shape[1]} channels")
    if not (isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1):
        raise ConfigError(f"filtered_lrelu: up and down must be integers >= 1, got {up!r}, {down!r}")
    if not (math.isfinite(gain) and gain > 0 and math.isfinite(slope) and slope >= 0):
        raise ConfigError(f"filtered_lrelu: gain must be > 0 and slope >= 0, got {gain!r}, {slope!r}")
    if clamp is not None and not clamp >= 0:
        raise ConfigError(f"filtered_lrelu: clamp must be None or >= 0, got {clamp!r}")


def output_size(in_size: int, up: int, down: int, pad0: int, pad1: int, fu_taps: int, fd_taps: int) -> int:
    """The output length along one axis (see the module docstring)."""
    return (in_size * up + pad0 + pad1 - (fu_taps - 1) - (fd_taps - 1) + (down - 1)) // down


def filtered_lrelu_ref(
    x: torch.Tensor,
    fu: Optional[torch.Tensor] = None,
    fd: Optional[torch.Tensor] = None,
    b: Optional[torch.Tensor] = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: Optional[float] = None,
    flip_filter: bool = False,
) -> torch.Tensor:
    """Reference path from `bias_act` and `upfirdn2d` (plain PyTorch ops, any-order gradients)."""
    _check(x, fu, fd, b, up, down, gain, slope, clamp)
    px0, px1, py0, py1 = parse_padding(padding)
    n, c, h, w = x.shape
    (fuw, fuh), (fdw, fdh) = filter_size(fu), filter_size(fd)
    out_h = output_size(h, up, down, py0, py1, fuh, fdh)
    out_w = output_size(w, up, down, px0, px1, fuw, fdw)
    if out_h < 1 or out_w < 1:
        raise ConfigError(f"filtered_lrelu: padding {(px0, px1, py0, py1)} leaves no output for a {h}x{w} input")
    x = bias_act(x, b, impl="ref")
    x = upfirdn2d(x, fu, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter, impl="ref")
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp, impl="ref")
    x = upfirdn2d(x, fd, down=down, flip_filter=flip_filter, impl="ref")
    assert x.shape == (n, c, out_h, out_w), (tuple(x.shape), (n, c, out_h, out_w))
    return x


def filtered_lrelu(
    x: torch.Tensor,
    fu: Optional[torch.Tensor] = None,
    fd: Optional[torch.Tensor] = None,
    b: Optional[torch.Tensor] = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: Optional[float] = None,
    flip_filter: bool = False,
    impl: Optional[str] = None,
) -> torch.Tensor:
    """Bias, FIR upsampling, leaky ReLU, clamp and FIR downsampling of [N, C, H, W] images in one op.

    Args:
        x: [N, C, H, W] float tensor.
        fu, fd: upsampling / downsampling filters: [taps] (separable), [h, w], or None (identity).
        b: optional bias [C], added first.
        up, down: integer factors.
        padding: int, (px, py) or (x0, x1, y0, y1), in upsampled pixels; negative values crop.
        gain: scale before the activation (sqrt(2) for StyleGAN3's layers, 1 for its ToRGB).
        slope: the leaky ReLU's negative slope (1 = linear).
        clamp: clamp the activation's output to [-clamp, clamp]; None = no clamping.
        flip_filter: correlate instead of convolve.
        impl: 'ref', 'cuda' or None (automatic: our kernel for CUDA tensors when it builds).
    Filters that require gradients always take the reference path (the kernel treats them as constants).
    """
    _check(x, fu, fd, b, up, down, gain, slope, clamp)
    constant_filters = not any(f is not None and f.requires_grad for f in (fu, fd))
    if constant_filters and choose_impl(x, impl, "filtered_lrelu") == "cuda":
        from .cuda.functions import filtered_lrelu_cuda

        c = None if clamp is None else float(clamp)
        pad = parse_padding(padding)
        return filtered_lrelu_cuda(x, fu, fd, b, up, down, pad, float(gain), float(slope), c, bool(flip_filter))
    return filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)
