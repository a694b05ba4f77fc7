"""Linear edits `code + alpha * n` in Z, W, W+ (chosen layers) and S (whole vector or chosen channels)."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, List, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..latents.codes import LatentCodes, space_dim
from ..latents.directions import DirectionLike
from ..latents.layers import LayerSpec, parse_layers
from ..utils.limits import MAX_ALPHAS
from .directions import Direction, load_direction

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator

# Alphas: one value, a list, or text ('2', '-3,0,3', 'start:stop:count').
Alphas = Union[str, float, Sequence[float]]
# S-space channels: text ('b64.conv0:12,b32.conv1:3-5', '17,300') or flat indices.
Channels = Union[str, Sequence[int]]


def parse_alphas(spec: Alphas) -> List[float]:
    """'2', '-3,0,3' or 'start:stop:count' (inclusive, like numpy.linspace) -> list of floats;
    at most MAX_ALPHAS of them."""
    if isinstance(spec, (int, float, list, tuple)):
        out = [float(a) for a in (spec if isinstance(spec, (list, tuple)) else [spec])]
        if not all(math.isfinite(a) for a in out):
            raise ConfigError(f"bad alpha {spec!r}: alphas must be finite numbers")
        return out
    text = str(spec).strip()
    try:
        if text.count(":") == 2:
            start, stop, count = text.split(":")
            n = int(count)
            lo, hi = float(start), float(stop)
            if n < 1 or not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError
            if n > MAX_ALPHAS:
                raise ConfigError(f"bad alpha {spec!r}: {n} values, at most {MAX_ALPHAS} per sweep")
            out = [float(a) for a in np.linspace(lo, hi, n)]
        else:
            out = [float(a) for a in text.split(",") if a.strip()]
        if not out or not all(math.isfinite(a) for a in out):  # nan/inf edits render black images
            raise ValueError
        if len(out) > MAX_ALPHAS:
            raise ConfigError(f"bad alpha: {len(out)} values, at most {MAX_ALPHAS} per sweep")
        return out
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(
            f"bad alpha {spec!r}: use finite values: a value (2), a list (-2,0,2) or start:stop:count (-3:3:13)"
        ) from None


def parse_channels(spec: str, G: AnyGenerator) -> List[int]:
    """S-space channels: 'b64.conv0:12,b32.conv1:3-5' (layer:channel; StyleGAN3 layers: 'L3_52_512:7', 'input:2')
    or flat indices '17,300' -> flat indices."""
    dims = G.synthesis.style_dims
    offsets, total = {}, 0
    for name, d in dims.items():
        offsets[name] = (total, d)
        total += d
    out: List[int] = []
    for part in str(spec).split(","):
        part = part.strip()
        m = re.fullmatch(r"([\w.]+):(\d+)(?:-(\d+))?", part)
        if m:
            layer, lo, hi = m.group(1), int(m.group(2)), int(m.group(3) or m.group(2))
            if layer not in offsets:
                raise ConfigError(f"unknown style layer {layer!r}; layers are {', '.join(dims)}")
            start, d = offsets[layer]
            if not 0 <= lo <= hi < d:
                raise ConfigError(f"style layer {layer} has channels 0-{d - 1}, got {part!r}")
            out.extend(range(start + lo, start + hi + 1))
        elif part.isdigit() and int(part) < total:
            out.append(int(part))
        else:
            raise ConfigError(
                f"bad style channel {part!r}: use LAYER:CHANNEL (e.g. b64.conv0:12) or a flat index below {total}"
            )
    return sorted(set(out))


@torch.no_grad()
def direction_in_s(G: AnyGenerator, direction: DirectionLike) -> torch.Tensor:
    """The S-space move [sum C] that a unit W direction n causes: every layer's style is affine in w
    (A_l w + b_l), so styles(w + alpha n) = styles(w) + alpha (styles(n) - styles(0)) exactly. Not
    renormalised, so alpha keeps its W meaning on S codes (e.g. encoded images)."""
    d = load_direction(direction)
    if d.space not in (None, "w") or d.vector.size != G.w_dim:
        raise ConfigError(f"direction {d.name!r} is not a W direction ({d.vector.size} dims, W has {G.w_dim})")
    param = next(G.parameters())
    n = torch.as_tensor(d.vector, dtype=param.dtype, device=param.device).reshape(1, 1, -1)
    ws = torch.cat([n, torch.zeros_like(n)]).repeat(1, G.num_ws, 1)
    s = G.synthesis.pack_styles(G.synthesis.compute_styles(ws))
    return (s[0] - s[1]).float()


def _is_w_direction_for_s(direction: Optional[DirectionLike], G: AnyGenerator) -> bool:
    if direction is None:
        return False
    d = load_direction(direction)
    return d.space == "w" or (d.space is None and d.vector.size == G.w_dim != space_dim(G, "s"))


def _as_tensor(direction, like):
    return torch.as_tensor(direction.vector, dtype=like.dtype, device=like.device)


def edit(
    codes: LatentCodes,
    direction: Optional[DirectionLike],
    alpha: float,
    G: AnyGenerator,
    layers: LayerSpec = None,
    channels: Optional[Channels] = None,
) -> LatentCodes:
    """Return codes moved by alpha along the unit direction.

    z, w: the whole code. w+: only the ws layers in `layers` (spec or list; all by
    default); the direction is a w-sized vector. s: the whole S vector, or with
    `channels` (spec or flat indices) only those channels, by alpha along the
    direction's part on them (without a direction: the unit vector on them, so each of
    k channels moves by alpha / sqrt(k); one channel moves by alpha). A W direction on s
    codes moves them exactly as `w + alpha n` moves the styles (`direction_in_s`).
    """
    space = codes.space
    if space == "s" and direction is None:
        if channels is None:
            raise ConfigError("an S-space edit needs a direction or channels")
        idx = parse_channels(channels, G) if isinstance(channels, str) else list(channels)
        vec = np.zeros(space_dim(G, "s"))
        vec[idx] = 1.0
        direction = Direction(vec, name=f"channels:{channels}", space="s")
    if direction is None:
        raise ConfigError(f"a {space}-space edit needs a direction")
    if space == "s" and channels is None and _is_w_direction_for_s(direction, G):
        if layers is not None:
            raise ConfigError("--layers needs the w+ space (a W direction moves every layer of S codes)")
        direction = load_direction(direction)
        data = codes.data + alpha * direction_in_s(G, direction).to(codes.data)
        meta = dict(codes.meta, edit=dict(direction=direction.name, alpha=float(alpha), space="s", moved_as="w"))
        return codes.replace(data=data, meta=meta)
    direction = load_direction(direction)
    direction.check_dim(space_dim(G, space), space)
    n = _as_tensor(direction, codes.data)
    data = codes.data.clone()
    if space == "w+":
        sel = parse_layers(layers, G)
        data[:, sel] = data[:, sel] + alpha * n
    elif space == "s" and channels is not None:
        idx = parse_channels(channels, G) if isinstance(channels, str) else list(channels)
        mask = torch.zeros_like(n)
        mask[idx] = 1
        data = data + alpha * n * mask
    else:
        if layers is not None:
            raise ConfigError(f"--layers needs the w+ space (the {space} code has no layers)")
        data = data + alpha * n
    meta = dict(codes.meta, edit=dict(direction=direction.name, alpha=float(alpha), space=space))
    return codes.replace(data=data, meta=meta)


def sweep(
    codes: LatentCodes,
    direction: Optional[DirectionLike],
    alphas: Alphas,
    G: AnyGenerator,
    layers: LayerSpec = None,
    channels: Optional[Channels] = None,
    to_distance: bool = False,
) -> LatentCodes:
    """[edit(codes, direction, a) for a in alphas] as one LatentCodes ordered code-major (rows = codes; each
    code's seed, label and noise maps repeated for its columns).

    With to_distance=True each value is a target signed distance to the boundary
    through the origin instead of a step (InterFaceGAN's start/end distance).
    """
    if to_distance:
        if channels is not None or layers is not None:
            raise ConfigError("target distances work on whole z, w or s codes (no --layers / --channels)")
        if direction is None:
            raise ConfigError("target distances need a direction")
        direction = load_direction(direction).check_dim(space_dim(G, codes.space), codes.space)
        edited = [edit_to_distance(codes, direction, t, G) for t in parse_alphas(alphas)]
    else:
        edited = [edit(codes, direction, a, G, layers, channels) for a in parse_alphas(alphas)]
    data = torch.stack([e.data for e in edited], dim=1).flatten(0, 1)
    return codes.repeat_rows(len(edited), data)  # seeds, labels, noise maps and names repeat with the codes


def distance(codes: LatentCodes, direction: DirectionLike, offset: float = 0.0) -> torch.Tensor:
    """Signed distance of each code to the hyperplane {x: n.x + offset = 0} (n unit): [N] (W+: [N, num_ws])."""
    direction = load_direction(direction)
    n = _as_tensor(direction, codes.data)
    return codes.data @ n + offset


def edit_to_distance(
    codes: LatentCodes,
    direction: DirectionLike,
    target: float,
    G: AnyGenerator,
    offset: float = 0.0,
    layers: LayerSpec = None,
) -> LatentCodes:
    """Move each code along n until its signed distance equals `target` (InterFaceGAN's start/end distance)."""
    if codes.space == "w+":
        raise ConfigError("edit_to_distance works on z, w or s codes (a w+ code has one distance per layer)")
    if codes.space == "s" and _is_w_direction_for_s(direction, G):
        raise ConfigError("a distance to a W boundary is not defined for s codes: give alphas (steps) instead")
    direction = load_direction(direction)
    d = distance(codes, direction, offset)
    n = _as_tensor(direction, codes.data)
    return codes.replace(data=codes.data + (target - d)[:, None] * n)
