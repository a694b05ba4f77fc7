"""Which W+ layers (ws indices) a user means: ranges, lists and the StyleGAN paper's levels.

The resolution of a ws index is the resolution of the convolution that consumes it
(a StyleGAN2 ToRGB shares its w with the next block's first conv; the last w feeds
only the final ToRGB and counts at full resolution). Levels, as in the StyleGAN paper:
coarse = 4-8 px, middle = 16-32 px, fine = 64 px and up.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, List, Sequence, Union

from ..errors import ConfigError
from ..utils.limits import MAX_LAYER_INDEX

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator

# A layer spec: text ('0-5', '0,2,7', 'coarse', 'middle,fine', 'all'), None (all), or ws indices.
LayerSpec = Union[str, Sequence[int], range, None]

LEVELS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1 << 30)}
LEVEL_ALIASES = {"medium": "middle"}


def ws_resolutions(G: AnyGenerator) -> List[int]:
    """List with the resolution of every ws index of `G` (any generation; StyleGAN3's say their own)."""
    own = getattr(G.synthesis, "ws_resolutions", None)
    if own is not None:
        return list(own())
    layers = [(int(name.split(".", 1)[0][1:]), name.endswith("torgb"), i) for name, _, i in G.synthesis.style_layers()]
    res = {i: r for r, rgb, i in layers if not rgb}  # convolutions define the resolution...
    for r, _rgb, i in layers:
        res.setdefault(i, r)  # ...a ToRGB only claims an index no conv uses (the last one)
    return [res[i] for i in range(G.num_ws)]


def level_layers(G: AnyGenerator, level: str) -> List[int]:
    """ws indices of a level ('coarse', 'middle'/'medium', 'fine')."""
    level = LEVEL_ALIASES.get(level, level)
    if level not in LEVELS:
        raise ConfigError(f"unknown level {level!r}; use coarse, middle (medium) or fine")
    lo, hi = LEVELS[level]
    return [i for i, r in enumerate(ws_resolutions(G)) if lo <= r <= hi]


def _layer_parts(spec):
    """The parts of a layer spec text: (set of indices, list of level names); ValueError for a malformed part."""
    indices, levels = set(), []
    for part in str(spec).split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part in LEVELS or part in LEVEL_ALIASES:
            levels.append(part)
            continue
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise ConfigError(f"bad layer range {part!r}: end is before start")
            if hi > MAX_LAYER_INDEX:  # checked before the set is built; the model's own range comes later
                raise ConfigError(f"bad layer range {part!r}: no model has a layer {hi} (at most {MAX_LAYER_INDEX})")
            indices.update(range(lo, hi + 1))
        elif part.isdigit():
            indices.add(int(part))
        else:
            raise ConfigError(f"bad layer spec {part!r}: use N, A-B, a list, coarse, middle, fine or all")
    return indices, levels


def _is_all(spec):
    return spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "all"))


def check_layer_spec(spec: LayerSpec) -> LayerSpec:
    """Check the form of a layer spec without a generator (what `parse_layers` reads); returns it unchanged.

    ValueError for a malformed part or a spec that names nothing; the indices' range and the levels'
    layers depend on the generator, so `parse_layers(spec, G)` checks those.
    """
    if _is_all(spec) or isinstance(spec, (list, tuple, range)):
        return spec
    indices, levels = _layer_parts(spec)
    if not indices and not levels:
        raise ConfigError(f"layer spec {spec!r} selects no layer")
    return spec


def parse_layers(spec: LayerSpec, G: AnyGenerator) -> List[int]:
    """'0-5', '0,2,7', 'coarse', 'middle,fine', 'all' (or None) -> sorted list of ws indices.

    Raises ValueError naming the valid range when an index does not exist.
    """
    num_ws = G.num_ws
    if _is_all(spec):
        return list(range(num_ws))
    if isinstance(spec, (list, tuple, range)):
        out = sorted({int(i) for i in spec})
    else:
        out, levels = _layer_parts(spec)
        for level in levels:
            out.update(level_layers(G, level))
        out = sorted(out)
    bad = [i for i in out if not 0 <= i < num_ws]
    if bad:
        raise ConfigError(f"layer {bad[0]} does not exist: this generator has ws layers 0-{num_ws - 1}")
    if not out:
        raise ConfigError(f"layer spec {spec!r} selects no layer")
    return out
