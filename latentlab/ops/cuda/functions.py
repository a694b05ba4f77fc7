"""Autograd wrappers around our compiled kernels (first and second derivatives).

The public functions take already-normalised arguments (see their docstrings); the public
ops in latentlab.ops do the parsing and call these only for CUDA tensors. The
compiled modules also run on CPU tensors (a plain host loop), which the tests use
to check the kernels' maths on machines without a GPU.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence, Tuple

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


# ----------------------------------------------------------------------- filtered_lrelu

_ACT, _MASKED = 0, 1  # modes of the fused kernel (filtered_lrelu.h)


class _Chain(NamedTuple):
    """One pass of the fused kernel: stage 1 (up, FIR), a pointwise step, stage 2 (FIR, down).

    Pairs are (x, y); paddings (x0, x1, y0, y1), stage 1's in upsampled pixels, stage 2's in
    intermediate pixels. gains: (stage 1, activation, stage 2). clamp < 0 means none. tile:
    output tile size of the kernel, 0 = automatic (tests force small tiles).
    """

    up: Tuple[int, int]
    down: Tuple[int, int]
    pad1: Tuple[int, int, int, int]
    pad2: Tuple[int, int, int, int]
    flip_taps: bool
    gains: Tuple[float, float, float]
    slope: float
    clamp: float
    tile: int


def _taps(f: torch.Tensor) -> Tuple[int, int]:
    """(width, height) of a 1-D (separable) or 2-D filter."""
    return (f.shape[0], f.shape[0]) if f.ndim == 1 else (f.shape[1], f.shape[0])


def _axis_sizes(n: int, u: int, d: int, p0: int, p1: int, q0: int, q1: int, t1: int, t2: int) -> Tuple[int, int]:
    """Intermediate and output lengths along one axis (as filtered_lrelu.cpp computes them).

    n: input length; u, d: up and down factors; p0, p1: stage 1 padding (upsampled pixels);
    q0, q1: stage 2 padding (intermediate pixels); t1, t2: the two filters' taps on this axis.
    """
    mid = n * u + p0 + p1 - t1 + 1
    return mid, (mid + q0 + q1 - t2) // d + 1


def _adjoint_axis(
    n: int, u: int, d: int, p0: int, p1: int, q0: int, q1: int, t1: int, t2: int
) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """Paddings (pad1, pad2) of the adjoint chain along one axis (arguments as for _axis_sizes).

    The adjoint of each stage is upfirdn2d's adjoint (see _transpose_cfg) taken in reverse
    order: up by d with the stage 2 filter, then down by u with the stage 1 filter. Its
    intermediate grid is the forward one, so the recorded codes index it unchanged.
    """
    mid, out = _axis_sizes(n, u, d, p0, p1, q0, q1, t1, t2)
    return (t2 - 1 - q0, mid - out * d + q0), (t1 - 1 - p0, n * u - mid + p0 - u + 1)


def _adjoint(chain: _Chain, f1: torch.Tensor, f2: torch.Tensor, in_hw: Tuple[int, int]) -> _Chain:
    """The chain computing the transpose of `chain` (as a linear map for fixed codes); its filters are (f2, f1)."""
    (t1w, t1h), (t2w, t2h) = _taps(f1), _taps(f2)
    (ux, uy), (dx, dy) = chain.up, chain.down
    px0, px1, py0, py1 = chain.pad1
    qx0, qx1, qy0, qy1 = chain.pad2
    ax1, ax2 = _adjoint_axis(in_hw[1], ux, dx, px0, px1, qx0, qx1, t1w, t2w)
    ay1, ay2 = _adjoint_axis(in_hw[0], uy, dy, py0, py1, qy0, qy1, t1h, t2h)
    g1, g, g2 = chain.gains
    return chain._replace(
        up=chain.down,
        down=chain.up,
        pad1=ax1 + ay1,
        pad2=ax2 + ay2,
        flip_taps=not chain.flip_taps,
        gains=(g2, g, g1),
    )


def _run_chain(
    x: torch.Tensor,
    b: Optional[torch.Tensor],
    f1: torch.Tensor,
    f2: torch.Tensor,
    mask: Optional[torch.Tensor],
    chain: _Chain,
    mode: int,
    write_mask: bool,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(y, codes or None) from one kernel pass over x (+ b); `mask` (the codes) is read in _MASKED mode."""
    e = _empty_like(x)
    m = mask if mask is not None else x.new_empty([0], dtype=torch.uint8)
    return _ext("filtered_lrelu").filtered_lrelu(
        x,
        e if b is None else b,
        f1,
        f2,
        m,
        list(chain.up + chain.down),
        list(chain.pad1),
        list(chain.pad2),
        chain.flip_taps,
        list(chain.gains),
        chain.slope,
        chain.clamp,
        mode,
        write_mask,
        chain.tile,
    )


class _FilteredLRelu(torch.autograd.Function):
    """The activation chain; saves only the filters and the uint8 codes for the backward.

    forward(x, b, f1, f2, chain, record): x [N, C, H, W]; b [C] of x's dtype or None; f1, f2 the
    kernel-ready up and down filters (see _filter_for); chain a _Chain in _ACT mode; record
    whether to keep the codes (only when a gradient may be asked for).
    """

    @staticmethod
    def forward(ctx, x, b, f1, f2, chain, record):
        y, codes = _run_chain(x, b, f1, f2, None, chain, _ACT, record)
        ctx.chain, ctx.in_hw = chain, tuple(x.shape[2:])
        ctx.save_for_backward(f1, f2, codes)
        return y

    @staticmethod
    def backward(ctx, dy):
        need_x, need_b = ctx.needs_input_grad[:2]
        if not (need_x or need_b):
            return None, None, None, None, None, None
        f1, f2, codes = ctx.saved_tensors
        dx = _MaskedChain.apply(dy, f2, f1, codes, _adjoint(ctx.chain, f1, f2, ctx.in_hw))
        db = dx.sum([0, 2, 3]) if need_b else None
        return (dx if need_x else None), db, None, None, None, None


class _MaskedChain(torch.autograd.Function):
    """The chain made linear by recorded codes; its gradient is its adjoint, again such a chain.

    The codes are piecewise constant in the op's input, so these are the derivatives of every
    order that the reference's leaky ReLU and clamp have (almost everywhere).

    forward(v, f1, f2, codes, chain): v [N, C, H, W]; f1, f2 the stage 1 and stage 2 filters;
    codes the uint8 record [N, C, MH, MW] of the forward pass; chain a _Chain over that grid.
    """

    @staticmethod
    def forward(ctx, v, f1, f2, codes, chain):
        ctx.chain, ctx.in_hw = chain, tuple(v.shape[2:])
        ctx.save_for_backward(f1, f2, codes)
        return _run_chain(v, None, f1, f2, codes, chain, _MASKED, False)[0]

    @staticmethod
    def backward(ctx, g):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        f1, f2, codes = ctx.saved_tensors
        return _MaskedChain.apply(g, f2, f1, codes, _adjoint(ctx.chain, f1, f2, ctx.in_hw)), None, None, None, None


def filtered_lrelu_cuda(
    x: torch.Tensor,
    fu: Optional[torch.Tensor],
    fd: Optional[torch.Tensor],
    b: Optional[torch.Tensor],
    up: int,
    down: int,
    padding: Sequence[int],
    gain: float,
    slope: float,
    clamp: Optional[float],
    flip_filter: bool,
    tile: int = 0,
) -> torch.Tensor:
    """latentlab.ops.filtered_lrelu on our fused kernel, differentiable to any order in x and b.

    Takes normalised arguments: x [N, C, H, W] of any layout and floating dtype; fu, fd None
    or [taps] / [h, w] filters (no gradient reaches them); b None or [C] (cast to x's dtype);
    up, down ints >= 1; padding (x0, x1, y0, y1) ints in upsampled pixels; gain > 0, slope
    >= 0 floats; clamp a float >= 0 or None; flip_filter bool; tile the kernel's output tile
    size (0 = automatic; small values are for tests).
    """
    if x.ndim != 4:
        raise ConfigError(f"filtered_lrelu expects [N, C, H, W], got shape {tuple(x.shape)}")
    f1, f2 = (_filter_for(x, torch.ones([1, 1]) if f is None else f) for f in (fu, fd))
    if min(f1.numel(), f2.numel()) == 0 or f1.ndim not in (1, 2) or f2.ndim not in (1, 2):
        raise ConfigError("filtered_lrelu: filters must be non-empty 1-D or 2-D tensors")
    px0, px1, py0, py1 = (int(v) for v in padding)
    (t1w, t1h), (t2w, t2h) = _taps(f1), _taps(f2)
    sizes_h = _axis_sizes(x.shape[2], up, down, py0, py1, 0, 0, t1h, t2h)  # (intermediate, output)
    sizes_w = _axis_sizes(x.shape[3], up, down, px0, px1, 0, 0, t1w, t2w)
    if min(sizes_h + sizes_w) < 1:
        raise ConfigError(
            f"filtered_lrelu: padding {tuple(padding)} leaves no output for a {x.shape[2]}x{x.shape[3]} input"
        )
    if b is not None:
        b = b.to(x.dtype)
    chain = _Chain(
        up=(up, up),
        down=(down, down),
        pad1=(px0, px1, py0, py1),
        pad2=(0, 0, 0, 0),
        flip_taps=not flip_filter,
        gains=(float(up * up), float(gain), 1.0),
        slope=float(slope),
        clamp=-1.0 if clamp is None else float(clamp),
        tile=int(tile),
    )
    record = torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))
    return _FilteredLRelu.apply(x, b, f1, f2, chain, record)
