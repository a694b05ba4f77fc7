"""The memory a grid picture costs, checked before any image of it is rendered.

`edit`, `mix`, `interpolate` and `truncate` render every image of their grid, keep them and compose grid.png
in memory; the grid's size is the product of several options (seeds x alphas, rows x columns, pairs x frames,
variants x seeds), each within its own limit, so their product is checked here against `MAX_GRID_BYTES`:

    check_grid(len(seeds), len(alphas), G, "--seeds x --alpha")   # ConfigError naming the options when too big
"""

from ..errors import ConfigError
from .limits import MAX_GRID_BYTES


def grid_bytes(rows, cols, resolution, channels=3):
    """Pixel bytes of a rows x cols grid of uint8 images of resolution^2 x channels (padding left out)."""
    return int(rows) * int(cols) * int(resolution) ** 2 * int(channels)


def check_grid(rows, cols, G, options, hint=None):
    """Refuse (ConfigError, one line starting with `options`, e.g. '--seeds x --alpha') a rows x cols grid of G's
    images whose pixels exceed MAX_GRID_BYTES; G: a generator (its img_resolution and img_channels are used)."""
    res, ch = int(G.img_resolution), int(getattr(G, "img_channels", 3))
    size = grid_bytes(rows, cols, res, ch)
    if size > MAX_GRID_BYTES:
        raise ConfigError(
            f"{options}: a grid of {rows} x {cols} images at {res}x{res} px needs {size / 2**20:,.0f} MiB, more "
            f"than {MAX_GRID_BYTES >> 20} MiB ({hint or 'ask for fewer images'})"
        )
    return size
