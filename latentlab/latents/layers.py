"""Which W+ layers (ws indices) a user means: ranges, lists and the StyleGAN paper's levels.

The resolution of a ws index is the resolution of the convolution that consumes it
(a StyleGAN2 ToRGB shares its w with the next block's first conv; the last w feeds
only the final ToRGB and counts at full resolution). Levels, as in the StyleGAN paper:
coarse = 4-8 px, middle = 16-32 px, fine = 64 px and up.
"""
import re

LEVELS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1 << 30)}
LEVEL_ALIASES = {"medium": "middle"}


def ws_resolutions(G):
    """List with the resolution of every ws index of `G` (any generation)."""
    layers = [(int(name.split(".", 1)[0][1:]), name.endswith("torgb"), i) for name, _, i in G.synthesis.style_layers()]
    res = {i: r for r, rgb, i in layers if not rgb}  # convolutions define the resolution...
    for r, rgb, i in layers:
        res.setdefault(i, r)  # ...a ToRGB only claims an index no conv uses (the last one)
    return [res[i] for i in range(G.num_ws)]


def level_layers(G, level):
    """ws indices of a level ('coarse', 'middle'/'medium', 'fine')."""
    level = LEVEL_ALIASES.get(level, level)
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; use coarse, middle (medium) or fine")
    lo, hi = LEVELS[level]
    return [i for i, r in enumerate(ws_resolutions(G)) if lo <= r <= hi]


def parse_layers(spec, G):
    """'0-5', '0,2,7', 'coarse', 'middle,fine', 'all' (or None) -> sorted list of ws indices.

    Raises ValueError naming the valid range when an index does not exist.
    """
    num_ws = G.num_ws
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "all")):
        return list(range(num_ws))
    if isinstance(spec, (list, tuple, range)):
        out = sorted({int(i) for i in spec})
    else:
        out = set()
        for part in str(spec).split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part in LEVELS or part in LEVEL_ALIASES:
                out.update(level_layers(G, part))
                continue
            m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
            if m:
                lo, hi = int(m.group(1)), int(m.group(2))
                if hi < lo:
                    raise ValueError(f"bad layer range {part!r}: end is before start")
                out.update(range(lo, hi + 1))
            elif part.isdigit():
                out.add(int(part))
            else:
                raise ValueError(f"bad layer spec {part!r}: use N, A-B, a list, coarse, middle, fine or all")
        out = sorted(out)
    bad = [i for i in out if not 0 <= i < num_ws]
    if bad:
        raise ValueError(f"layer {bad[0]} does not exist: this generator has ws layers 0-{num_ws - 1}")
    if not out:
        raise ValueError(f"layer spec {spec!r} selects no layer")
    return out
