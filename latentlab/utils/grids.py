"""The memory a grid picture costs, checked before any image of it is rendered, and the scale its cells are drawn at.

`edit`, `mix`, `interpolate` and `truncate` render every image of their grid, keep them and compose grid.png
in memory; the grid's size is the product of several options (seeds x alphas, rows x columns, pairs x frames,
variants x seeds) and of the cells' upscaling (`--grid-scale`), each within its own limit, so their product is
checked here against `MAX_GRID_BYTES`:

    check_grid(len(seeds), len(alphas), G, "--seeds x --alpha")   # ConfigError naming the options when too big

The scale: a whole number from 1 to MAX_GRID_SCALE (cells are exact pixel replicas of the images), or None,
"auto": the smallest scale that makes a cell at least `AUTO_CELL_PX` wide (64 px images -> 2, 256 px -> 1),
lowered where the grid would not fit MAX_GRID_BYTES (`grid_scale_for`). Nothing here imports NumPy or torch
(the command line parses --grid-scale with `parse_grid_scale`).
"""

from ..errors import ConfigError
from .limits import MAX_GRID_BYTES, MAX_GRID_SCALE

# Smallest cell side (px) that "auto" upscales to: labels and faces stay readable on a screen.
AUTO_CELL_PX = 128


def auto_grid_scale(resolution):
    """The smallest whole scale that makes a `resolution` px image a cell of at least AUTO_CELL_PX px."""
    return max(1, -(-AUTO_CELL_PX // max(1, int(resolution))))


def parse_grid_scale(value, option="grid_scale"):
    """'auto' or None -> None (auto); a whole number from 1 to MAX_GRID_SCALE (int or text) -> that int.
    ConfigError (one line starting with `option`) otherwise."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    try:
        scale = int(value.strip()) if isinstance(value, str) else int(value)
        whole = isinstance(value, str) or scale == value
    except (TypeError, ValueError):
        scale, whole = None, False
    if isinstance(value, bool) or not whole or scale is None or not 1 <= scale <= MAX_GRID_SCALE:
        raise ConfigError(
            f"{option}: {value!r} is not a grid scale; use auto or a whole number from 1 to {MAX_GRID_SCALE}"
        )
    return scale


def grid_bytes(rows, cols, resolution, channels=3, scale=1):
    """Pixel bytes of a rows x cols grid of uint8 images of resolution^2 x channels, each upscaled `scale` times
    (padding and labels left out)."""
    return int(rows) * int(cols) * (int(resolution) * int(scale)) ** 2 * int(channels)


def grid_scale_for(rows, cols, resolution, channels=3, scale=None):
    """The scale a rows x cols grid is drawn at: `scale` as given (checked, `parse_grid_scale`), or for None the
    auto rule (`auto_grid_scale`) lowered until the grid fits MAX_GRID_BYTES (1 at least: `check_grid` refuses a
    grid too large even then)."""
    given = parse_grid_scale(scale)
    if given is not None:
        return given
    s = auto_grid_scale(resolution)
    while s > 1 and grid_bytes(rows, cols, resolution, channels, s) > MAX_GRID_BYTES:
        s -= 1  # auto never refuses a grid that fits unscaled: it shrinks the cells instead
    return s


def check_grid(rows, cols, G, options, hint=None, scale=None, scale_option="--grid-scale"):
    """Refuse (ConfigError, one line starting with `options`, e.g. '--seeds x --alpha') a rows x cols grid of G's
    images whose pixels exceed MAX_GRID_BYTES at the grid's scale (`scale`: as `grid_scale_for`; a given scale
    that makes it too large is named in the line as `scale_option`). G: a generator (its img_resolution and
    img_channels are used). Returns the grid's pixel bytes."""
    res, ch = int(G.img_resolution), int(getattr(G, "img_channels", 3))
    s = grid_scale_for(rows, cols, res, ch, scale)
    size = grid_bytes(rows, cols, res, ch, s)
    if size > MAX_GRID_BYTES:
        if s > 1:  # only a given scale gets here (auto shrinks to 1 first)
            where = f"{options} at {scale_option} {s}"
            cells = f"{res}x{res} px upscaled {s} times"
            hint = hint or f"use a smaller {scale_option} or fewer images"
        else:
            where, cells = options, f"{res}x{res} px"
        raise ConfigError(
            f"{where}: a grid of {rows} x {cols} images at {cells} needs {size / 2**20:,.0f} MiB, more "
            f"than {MAX_GRID_BYTES >> 20} MiB ({hint or 'ask for fewer images'})"
        )
    return size
