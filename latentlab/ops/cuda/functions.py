"""Autograd wrappers around our compiled kernels (first and second derivatives).

Both functions take already-normalised arguments (see their docstrings); the public
ops in latentlab.ops do the parsing and call these only for CUDA tensors. The
compiled modules also run on CPU tensors (a plain host loop), which the tests use
to check the kernels' maths on machines without a GPU.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch.autograd.function import once_differentiable

from ...errors import ConfigError
from . import load_extension

# name -> (kernel index, default alpha, default gain, has a nonzero second derivative)
_ACTS = {
    "linear": (0, 0.0, 1.0, False),
    "relu": (1, 0.0, math.sqrt(2), False),
    "lrelu": (2, 0.2, math.sqrt(2), False),
    "tanh": (3, 0.0, 1.0, True),
    "sigmoid": (4, 0.0, 1.0, True),
    "elu": (5, 1.0, 1.0, True),
    "selu": (6, 0.0, 1.0, True),
    "softplus": (7, 0.0, 1.0, True),
    "swish": (8, 0.0, math.sqrt(2), True),
}
_FORWARD, _GRAD1, _GRAD2 = 0, 1, 2


def _ext(name):
    module = load_extension(name)
    if module is None:
        raise RuntimeError(f"latentlab: the compiled {name} kernels are not available")
    return module


# ----------------------------------------------------------------------------- bias_act


def _sum_except(t, dim):
    dims = [i for i in range(t.ndim) if i != dim]
    return t.sum(dim=dims) if dims else t  # sum(dim=[]) would reduce everything


def _empty_like(x):
    return x.new_empty([0])


def _kernel(mode, x, b, g, h, cfg):
    act, alpha, gain, clamp, dim = cfg
    e = _empty_like(x)
    return _ext("bias_act").bias_act(
        x, e if b is None else b, e if g is None else g, e if h is None else h, act, mode, alpha, gain, clamp, dim
    )


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, cfg):
        y = _kernel(_FORWARD, x, b, None, None, cfg)
        act, _, _, clamp, _ = cfg
        ctx.cfg = cfg
        # A plain linear map needs no reference tensor for its gradient.
        ctx.linear = act == _ACTS["linear"][0] and clamp < 0
        ctx.save_for_backward(None if ctx.linear else x, b)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, b = ctx.saved_tensors
        _, _, gain, _, dim = ctx.cfg
        if not (ctx.needs_input_grad[0] or ctx.needs_input_grad[1]):
            return None, None, None
        if ctx.linear:
            dx = dy * gain if gain != 1 else dy
        else:
            dx = _BiasActGrad.apply(dy, x, b, ctx.cfg)  # differentiable: gives double backward
        db = _sum_except(dx, dim) if ctx.needs_input_grad[1] else None
        return dx, db, None


class _BiasActGrad(torch.autograd.Function):
    """dx = dy * gain * act'(x + b) * [inside clamp], itself differentiable once more."""

    @staticmethod
    def forward(ctx, dy, x, b, cfg):
        ctx.cfg = cfg
        ctx.save_for_backward(dy, x, b)
        return _kernel(_GRAD1, x, b, dy, None, cfg)

    @staticmethod
    @once_differentiable  # third derivatives are not supported
    def backward(ctx, ddx):
        dy, x, b = ctx.saved_tensors
        act, _, _, _, dim = ctx.cfg
        d_dy = d_x = d_b = None
        if ctx.needs_input_grad[0]:  # dx is linear in dy
            d_dy = _kernel(_GRAD1, x, b, ddx, None, ctx.cfg)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            if _HAS_2ND[act]:
                d_x = _kernel(_GRAD2, x, b, ddx, dy, ctx.cfg)
            else:  # piecewise linear: act'' = 0 almost everywhere
                d_x = torch.zeros_like(x)
            if ctx.needs_input_grad[2]:
                d_b = _sum_except(d_x, dim)
        return d_dy, d_x, d_b, None


_HAS_2ND = {idx: has for idx, _, _, has in _ACTS.values()}


def bias_act_cuda(
    x: torch.Tensor,
    b: Optional[torch.Tensor] = None,
    dim: int = 1,
    act: str = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    clamp: Optional[float] = None,
) -> torch.Tensor:
    """clamp(act(x + b) * gain) on our kernels, with first and second derivatives.

    Arguments as for latentlab.ops.bias_act: `b` a 1-D tensor with x.shape[dim] entries
    or None (cast to x's dtype here); `dim` an int (negative counts from the end);
    `act` a name; `alpha`, `gain` floats or None for the activation's defaults; `clamp`
    a float, or None / a negative value for no clamping. x may have any layout; dense
    ones (contiguous, channels_last) are processed in place of memory order.
    Third and higher derivatives raise an error.
    """
    if act not in _ACTS:
        raise ConfigError(f"unknown activation {act!r}; choose from {sorted(_ACTS)}")
    idx, def_alpha, def_gain, _ = _ACTS[act]
    alpha = float(def_alpha if alpha is None else alpha)
    gain = float(def_gain if gain is None else gain)
    clamp = float(-1 if clamp is None else clamp)
    if x.ndim > 0:
        if not -x.ndim <= dim < x.ndim:
            raise ConfigError(f"dim {dim} out of range for a {x.ndim}-D tensor")
        dim = dim % x.ndim
    if b is not None:
        if b.ndim != 1 or x.ndim == 0 or b.shape[0] != x.shape[dim]:
            raise ConfigError(f"bias of shape {tuple(b.shape)} does not fit dim {dim} of {tuple(x.shape)}")
        b = b.to(x.dtype)
    return _BiasAct.apply(x, b, (idx, alpha, gain, clamp, dim))


# ---------------------------------------------------------------------------- upfirdn2d


def _filter_for(x, f):
    """The filter as the kernel wants it: contiguous, on x's device, float64 for float64 x else float32."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    return f.detach().to(device=x.device, dtype=dtype).contiguous()


def _run_upfirdn2d(x, f, up, down, padding, flip_filter, gain):
    ext = _ext("upfirdn2d")
    (ux, uy), (dx, dy) = up, down
    px0, px1, py0, py1 = padding
    k = _filter_for(x, f)
    if k.ndim == 2:
        return ext.upfirdn2d(x, k, ux, uy, dx, dy, px0, px1, py0, py1, not flip_filter, gain)
    # Separable: the same op along x, then along y, each with half the gain exponent.
    g = gain**0.5
    x = ext.upfirdn2d(x, k[None, :], ux, 1, dx, 1, px0, px1, 0, 0, not flip_filter, g)
    return ext.upfirdn2d(x, k[:, None], 1, uy, 1, dy, 0, 0, py0, py1, not flip_filter, g)


class _Upfirdn2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, f, cfg):
        up, down, padding, flip_filter, gain = cfg
        ctx.cfg = cfg
        ctx.in_hw = (x.shape[2], x.shape[3])
        ctx.save_for_backward(f)
        return _run_upfirdn2d(x, f, up, down, padding, flip_filter, gain)

    @staticmethod
    def backward(ctx, dy):
        if not ctx.needs_input_grad[0]:
            return None, None, None
        (f,) = ctx.saved_tensors
        return _Upfirdn2d.apply(dy, f, _transpose_cfg(ctx.cfg, f, ctx.in_hw, dy.shape[2:])), None, None


def _transpose_cfg(cfg, f, in_hw, out_hw):
    """Arguments of the upfirdn2d that is the adjoint (backward) of the one given by `cfg`.

    Per axis with input length L, output length O, up u, down d, taps t and padding
    (p0, p1): the adjoint upsamples the output gradient by d, convolves with the
    reversed filter and keeps every u-th sample. Matching the taps that pair input
    sample m with output sample o (o*d + i - p0 = m*u) gives p0' = t - 1 - p0; p1' is
    chosen so the result has exactly L samples: p1' = L*u - O*d + p0 - u + 1.
    """
    (ux, uy), (dx, dy), (px0, px1, py0, py1), flip_filter, gain = cfg
    tw = f.shape[-1]
    th = f.shape[0]
    (h, w), (oh, ow) = in_hw, out_hw
    padding = (
        tw - 1 - px0,
        w * ux - ow * dx + px0 - ux + 1,
        th - 1 - py0,
        h * uy - oh * dy + py0 - uy + 1,
    )
    return (dx, dy), (ux, uy), padding, not flip_filter, gain


def upfirdn2d_cuda(
    x: torch.Tensor,
    f: torch.Tensor,
    up: Sequence[int] = (1, 1),
    down: Sequence[int] = (1, 1),
    padding: Sequence[int] = (0, 0, 0, 0),
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """upfirdn2d on our kernels, differentiable to any order in x (not in f).

    Takes normalised arguments: x [N, C, H, W] of any layout (channels_last gives a
    channels_last result); f a 2-D [fh, fw] or 1-D separable [k] tensor (never None);
    up, down (x, y) int tuples; padding (x0, x1, y0, y1) ints; flip_filter bool;
    gain float (a separable filter gets sqrt(gain) per axis).
    """
    if x.ndim != 4:
        raise ConfigError(f"upfirdn2d expects [N, C, H, W], got shape {tuple(x.shape)}")
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ConfigError(f"filter must be 1-D or 2-D and non-empty, got shape {tuple(f.shape)}")
    up, down = tuple(int(v) for v in up), tuple(int(v) for v in down)
    padding = tuple(int(v) for v in padding)
    if min(up + down) < 1:
        raise ConfigError(f"up/down factors must be >= 1, got {up}, {down}")
    fh, fw = f.shape if f.ndim == 2 else (f.shape[0], f.shape[0])
    h, w = x.shape[2:]
    px0, px1, py0, py1 = padding
    if h * up[1] + py0 + py1 < fh or w * up[0] + px0 + px1 < fw:
        raise ConfigError(
            f"upfirdn2d: padding {padding} leaves an empty output for a {h}x{w} input and {fh}x{fw} filter"
        )
    return _Upfirdn2d.apply(x, f, (up, down, padding, bool(flip_filter), float(gain)))
