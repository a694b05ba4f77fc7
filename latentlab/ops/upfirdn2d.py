"""Upsample, FIR-filter and downsample 2-D images in one op (the resampling used by StyleGAN2)."""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ._impl import choose_impl

# An int for both axes or an (x, y) pair; padding also takes (x0, x1, y0, y1).
Scaling = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int]]


def _pair(v, what):
    if isinstance(v, int):
        return v, v
    sx, sy = v
    if not (isinstance(sx, int) and isinstance(sy, int)):
        raise ConfigError(f"{what} must be ints, got {v!r}")
    return sx, sy


def parse_scaling(s: Scaling) -> Tuple[int, int]:
    sx, sy = _pair(s, "up/down factors")
    if sx < 1 or sy < 1:
        raise ConfigError(f"up/down factors must be >= 1, got {s!r}")
    return sx, sy


def parse_padding(p: Padding) -> Tuple[int, int, int, int]:
    """int -> all sides; (px, py) -> both sides of each axis; (x0, x1, y0, y1) as is."""
    if isinstance(p, int):
        return p, p, p, p
    p = tuple(int(v) for v in p)
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    if len(p) == 4:
        return p
    raise ConfigError(f"padding must be an int, 2 or 4 ints, got {p!r}")


def filter_size(f: Optional[torch.Tensor]) -> Tuple[int, int]:
    """(width, height) of a filter; None counts as 1x1."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[1], f.shape[0]


def setup_filter(
    f: Union[torch.Tensor, Sequence[float], Sequence[Sequence[float]], float, None],
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: Optional[bool] = None,
    device: Union[torch.device, str, None] = None,
) -> torch.Tensor:
    """Turn a list of taps into a float32 filter tensor.

    A 1-D kernel with fewer than 8 taps becomes its outer product (a 2-D filter),
    as the official code does; so [1, 3, 3, 1] becomes a normalised 4x4 filter.
    """
    if f is None:
        f = 1
    t = torch.as_tensor(f, dtype=torch.float32, device=device)
    if t.ndim == 0:
        t = t[None]
    if t.ndim not in (1, 2) or t.numel() == 0:
        raise ConfigError(f"filter must be 1-D or 2-D and non-empty, got shape {tuple(t.shape)}")
    if separable is None:
        separable = t.ndim == 1 and t.numel() >= 8
    if t.ndim == 1 and not separable:
        t = t.ger(t)
    if normalize:
        t = t / t.sum()
    if flip_filter:
        t = t.flip(list(range(t.ndim)))
    t = t * (gain ** (t.ndim / 2))
    return t


def _filter_channels(x, k, stride, padding, adjoint, out_hw):
    """Correlate every channel of x with the 2-D filter k (`adjoint`: the transposed operation, sized out_hw)."""
    c = x.shape[1]
    w = k[None, None].expand(c, 1, *k.shape)
    if not adjoint:
        return F.conv2d(x, w, stride=stride, padding=padding, groups=c)
    # The rows/columns a strided correlation's input had beyond its last window come back as output padding.
    extra = [o - ((i - 1) * s - 2 * p + t) for o, i, s, p, t in zip(out_hw, x.shape[2:], stride, padding, k.shape)]
    return F.conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=extra, groups=c)


class _ConstantFilter(torch.autograd.Function):
    """A per-channel FIR with a constant filter whose gradient is its adjoint, again this op, so gradients of any
    order run as per-channel filters. Through autograd's own convolution formulas the second derivative (R1, path
    length) also computes the filter's gradient, constant or not, as one small convolution per channel: 6 % of the
    embedded model's CPU training step went there, more with more channels. Linear in x, so forward-mode derivatives
    are the op itself, and torch.func transforms get a generated vmap rule."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, k, stride, padding, adjoint, out_hw):
        return _filter_channels(x, k, stride, padding, adjoint, out_hw)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, ctx.k, ctx.stride, ctx.padding, ctx.adjoint, ctx.out_hw = inputs
        ctx.in_hw = tuple(x.shape[2:])

    @staticmethod
    def backward(ctx, g):
        gx = _ConstantFilter.apply(g, ctx.k, ctx.stride, ctx.padding, not ctx.adjoint, ctx.in_hw)
        return gx, None, None, None, None, None

    @staticmethod
    def jvp(ctx, tx, *_):
        return _ConstantFilter.apply(tx, ctx.k, ctx.stride, ctx.padding, ctx.adjoint, ctx.out_hw)


def _depthwise(x, k, stride, padding=(0, 0)):
    if k.requires_grad:  # a learned filter: autograd's formulas give its gradient too
        return _filter_channels(x, k, stride, padding, False, None)
    return _ConstantFilter.apply(x, k, tuple(stride), tuple(padding), False, None)


def _as_separable(f):
    """(column, row) taps if the 2-D filter is an outer product (e.g. [1,3,3,1] x [1,3,3,1]), else None."""
    total = f.sum()
    if (
        f.requires_grad
        or f.shape[0] != f.shape[1]
        or f.shape[0] < 3
        or not math.isfinite(float(total))
        or float(total) == 0
    ):
        return None
    col, row = f.sum(dim=1), f.sum(dim=0) / total
    if not torch.allclose(torch.outer(col, row), f, rtol=1e-6, atol=1e-7 * float(f.abs().max())):
        return None
    return col, row


def _along(taps, axis):
    """A 1-D kernel as the 2-D one of a pass along `axis` (3: x, 2: y)."""
    return taps[None, :] if axis == 3 else taps[:, None]


def _pad_axis(x, axis, p0, p1):
    return F.pad(x, [0, 0] * (x.ndim - 1 - axis) + [p0, p1])


def _zero_insert(x, axis, up):
    """`up - 1` zeros after every sample along `axis`."""
    if up == 1:
        return x
    shape = list(x.shape)
    shape[axis] *= up
    return _pad_axis(x.unsqueeze(axis + 1), axis + 1, 0, up - 1).reshape(shape)


def _pad_or_crop(x, axis, p0, p1):
    """(x, conv padding): symmetric non-negative padding is left to the convolution (no padded copy); any other is
    applied here, negative values cropping."""
    if p0 == p1 and p0 >= 0:
        return x, p0
    x = _pad_axis(x, axis, max(p0, 0), max(p1, 0))
    return x.narrow(axis, max(-p0, 0), x.shape[axis] - max(-p0, 0) - max(-p1, 0)), 0


def _polyphase_up(x, taps, axis, up, p0, p1):
    """Zero insertion by `up` along `axis`, padding (p0, p1; negative crops) and correlation with `taps`, without
    touching the inserted zeros: output r (mod up) only meets the taps t = (p0 - r) mod up + j * up, which read
    consecutive input samples, so each phase is one correlation of the input with every up-th tap, and the phases
    interleave. The same products as zero insertion, summed in another order; a quarter to a half of the work."""
    n_in, k = x.shape[axis], taps.shape[0]
    n_out = n_in * up + p0 + p1 - k + 1
    per_phase = -(-n_out // up)
    plans = []  # (taps of the phase, first input sample it reads, outputs it makes)
    for r in range(up):
        t0 = (p0 - r) % up
        count = max(0, -(-(n_out - r) // up))
        plans.append((taps[t0::up], (r + t0 - p0) // up, count))  # r + t0 - p0 is a multiple of up
    used = [(g, s, q) for g, s, q in plans if q and len(g)]
    left = max([0] + [-s for _, s, _ in used])
    right = max([0] + [s + q + len(g) - 1 - n_in for g, s, q in used])
    xp = _pad_axis(x, axis, left, right)
    outs = []
    for g, start, count in plans:
        shape = list(x.shape)
        shape[axis] = count
        if count and len(g):
            y = _depthwise(xp.narrow(axis, start + left, count + len(g) - 1), _along(g, axis), (1, 1))
        else:  # no tap of this phase reaches a sample: zeros
            y = x.new_zeros(shape)
        outs.append(_pad_axis(y, axis, 0, per_phase - count))
    y = torch.stack(outs, dim=axis + 1)  # [..., per_phase, up] along the axis
    shape = list(x.shape)
    shape[axis] = per_phase * up
    return y.reshape(shape).narrow(axis, 0, n_out)


def _separable_pass(x, taps, axis, up, down, p0, p1):
    """One axis of a separable upfirdn2d: zero insertion, padding, correlation with `taps`, decimation."""
    if up > 1 and down == 1:
        return _polyphase_up(x, taps, axis, up, p0, p1)
    x, cpad = _pad_or_crop(_zero_insert(x, axis, up), axis, p0, p1)
    stride, padding = ((1, down), (0, cpad)) if axis == 3 else ((down, 1), (cpad, 0))
    return _depthwise(x, _along(taps, axis), stride, padding)


def upfirdn2d_ref(
    x: torch.Tensor,
    f: Optional[torch.Tensor],
    up: Scaling = 1,
    down: Scaling = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Reference path built from differentiable PyTorch ops (any-order gradients)."""
    if x.ndim != 4:
        raise ConfigError(f"upfirdn2d expects [N, C, H, W], got shape {tuple(x.shape)}")
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    ux, uy = parse_scaling(up)
    dx, dy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    n, c, h, w = x.shape
    fw, fh = filter_size(f)
    if h * uy + py0 + py1 < fh or w * ux + px0 + px1 < fw:
        raise ConfigError(
            f"upfirdn2d: padding {(px0, px1, py0, py1)} leaves an empty output for a {h}x{w} input and {fh}x{fw} filter"
        )

    f = f.to(x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:  # conv2d correlates; flipping makes it a true convolution
        f = f.flip(list(range(f.ndim)))
    sep = (f, f) if f.ndim == 1 else _as_separable(f)
    if sep is not None:  # two 1-D passes: a 1-D filter, or a 2-D one that is an outer product
        fy, fx = sep
        x = _separable_pass(x, fx, 3, ux, dx, px0, px1)
        return _separable_pass(x, fy, 2, uy, dy, py0, py1)

    x, cx = _pad_or_crop(_zero_insert(x, 3, ux), 3, px0, px1)
    x, cy = _pad_or_crop(_zero_insert(x, 2, uy), 2, py0, py1)
    return _depthwise(x, f, (dy, dx), (cy, cx))


def upfirdn2d(
    x: torch.Tensor,
    f: Optional[torch.Tensor],
    up: Scaling = 1,
    down: Scaling = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: Optional[str] = None,
) -> torch.Tensor:
    """Pad, upsample by zero insertion, convolve with `f`, then keep every `down`-th sample.

    Args:
        x: [N, C, H, W] tensor.
        f: filter from `setup_filter` ([fh, fw], or [k] for a separable one), or None.
        up, down: int or (x, y) factors.
        padding: int, (px, py) or (x0, x1, y0, y1); negative values crop.
        flip_filter: correlate instead of convolve.
        gain: overall scale of the filter.
        impl: 'ref', 'cuda' or None (automatic).
    Output size per axis: (in * up + pad0 + pad1 - taps) // down + 1.
    """
    if choose_impl(x, impl, "upfirdn2d") == "cuda":
        from .cuda.functions import upfirdn2d_cuda

        if f is None:
            f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
        return upfirdn2d_cuda(
            x, f, parse_scaling(up), parse_scaling(down), parse_padding(padding), bool(flip_filter), float(gain)
        )
    return upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)


def upsample2d(
    x: torch.Tensor,
    f: Optional[torch.Tensor],
    up: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: Optional[str] = None,
) -> torch.Tensor:
    """Upsample by `up` with filter `f`, keeping the image centred."""
    ux, uy = parse_scaling(up)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + (fw + ux - 1) // 2, px1 + (fw - ux) // 2, py0 + (fh + uy - 1) // 2, py1 + (fh - uy) // 2]
    return upfirdn2d(x, f, up=(ux, uy), padding=pad, flip_filter=flip_filter, gain=gain * ux * uy, impl=impl)


def downsample2d(
    x: torch.Tensor,
    f: Optional[torch.Tensor],
    down: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: Optional[str] = None,
) -> torch.Tensor:
    """Low-pass with `f` and downsample by `down`, keeping the image centred."""
    dx, dy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + (fw - dx + 1) // 2, px1 + (fw - dx) // 2, py0 + (fh - dy + 1) // 2, py1 + (fh - dy) // 2]
    return upfirdn2d(x, f, down=(dx, dy), padding=pad, flip_filter=flip_filter, gain=gain, impl=impl)
