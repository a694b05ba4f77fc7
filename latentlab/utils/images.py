"""Image conversion, atomic PNG writing, and grids of images (plain, or labelled and upscaled for people)."""

import functools
import math

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError
from .atomic import atomic_path


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in about [-1, 1] -> uint8 [N, H, W, C], rounding as the official scripts do."""
    x = (img.detach().to(torch.float32).permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.cpu().numpy()


def to_pil(arr: np.ndarray) -> Image.Image:
    """uint8 [H, W, C] with C in {1, 3} -> PIL image."""
    if arr.shape[-1] == 1:
        return Image.fromarray(arr[..., 0], "L")
    if arr.shape[-1] == 3:
        return Image.fromarray(arr, "RGB")
    raise ConfigError(f"cannot save an image with {arr.shape[-1]} channels as PNG (need 1 or 3)")


def save_png(image: Image.Image, path):
    """Write a PNG atomically (temporary file in the same folder, then rename)."""
    with atomic_path(path, ".png") as tmp:
        image.save(tmp, format="PNG")


def make_grid(images: np.ndarray, cols=None, pad=2, fill=255) -> np.ndarray:
    """uint8 [N, H, W, C] -> one uint8 [rows*(H+pad)-pad, cols*(W+pad)-pad, C] mosaic, row-major."""
    n, h, w, c = images.shape
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), fill, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = images[i]
    return grid


# ---- labelled grids: what every grid.png shows ---------------------------------------------------------------------
def _cell_scale(h, w, scale):
    from .grids import auto_grid_scale, parse_grid_scale

    given = parse_grid_scale(scale, "scale")
    return auto_grid_scale(min(h, w)) if given is None else given


def label_font_size(cell_px):
    """Text size (px) for labels of cells `cell_px` wide: an eighth of the cell, 12 to 48 px."""
    return max(12, min(48, int(cell_px) // 8))


@functools.cache
def label_font(size):
    """PIL's built-in font (offline, shipped with Pillow) at `size` px; Pillow before 10.1 or without FreeType
    has only the fixed bitmap font (about 11 px), used then."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError, AttributeError):  # no size argument, or no FreeType
        return ImageFont.load_default()


def _text_box(font, text):
    """(left, top, right, bottom) of `text` drawn at the origin."""
    left, top, right, bottom = font.getbbox(text)
    return left, top, right, bottom


def _text_width(font, text):
    left, _, right, _ = _text_box(font, text)
    return right - left if text else 0


def _line_height(font):
    """Height of a line of any label: the box of tall and deep glyphs, so every label of a strip lines up."""
    _, top, _, bottom = _text_box(font, "Ag|(-0")
    return bottom - top


def _draw_centred(draw, font, text, cx, cy):
    """Draw `text` centred on (cx, cy) from its measured box (bitmap fonts take no anchors)."""
    if text:
        left, top, right, bottom = _text_box(font, text)
        draw.text((round(cx - (left + right) / 2), round(cy - (top + bottom) / 2)), text, fill=0, font=font)


def _elide(font, text, width):
    """`text`, shortened in the middle with '..' until it is at most `width` px wide."""
    if _text_width(font, text) <= width:
        return text
    keep = len(text)
    while keep > 1:
        keep -= 1
        head = (keep + 1) // 2
        short = text[:head] + ".." + text[len(text) - (keep - head) :]
        if _text_width(font, short) <= width:
            return short
    return ".."


def _fitting_font(labels, width, size):
    """The largest font from `size` down to 10 px in which every label fits `width` px (else the 10 px one:
    the caller elides what still does not fit)."""
    for s in range(size, 9, -1):
        font = label_font(s)
        if all(_text_width(font, t) <= width for t in labels):
            return font
    return label_font(min(size, 10))


def labelled_grid(
    images: np.ndarray,
    cols=None,
    row_labels=None,
    col_labels=None,
    cell_labels=None,
    corner=None,
    scale=None,
    pad=2,
    fill=255,
) -> np.ndarray:
    """uint8 [N, H, W, C] (C = 1 or 3) -> one uint8 [rows, cols] mosaic for people: each image upscaled `scale`
    times by pixel replication (nearest neighbour: a cell is exactly np.kron(image, ones((scale, scale, 1)))),
    `pad` px of `fill` between cells, row-major as `make_grid`.

    Labels, black on white in PIL's built-in font sized to the cell (`label_font_size`): `row_labels` (one per
    row) centred in a left margin as wide as the widest label, `col_labels` (one per column) centred in a top
    margin above their cells (shrunk, then shortened with '..', where wider than a cell), `cell_labels` (one per
    image) as a caption above each cell, `corner` (needs both margins) in the top-left box, e.g. an axis title.
    None: no margin (no labels at all: `make_grid` of the upscaled images). scale: 1 to MAX_GRID_SCALE, or None
    for the smallest scale that makes a cell at least 128 px (`latentlab.utils.grids.auto_grid_scale`).
    """
    from PIL import Image, ImageDraw

    n, h, w, c = images.shape
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    s = _cell_scale(h, w, scale)
    ch, cw = h * s, w * s
    for what, labels, count in (
        ("row_labels", row_labels, f"{rows} rows"),
        ("col_labels", col_labels, f"{cols} columns"),
    ):
        if labels is not None and len(labels) != int(count.split()[0]):
            raise ConfigError(f"{what}: {len(labels)} labels for {count}")
    if cell_labels is not None and len(cell_labels) != n:
        raise ConfigError(f"cell_labels: {len(cell_labels)} labels for {n} images")
    if corner is not None and (row_labels is None or col_labels is None):
        raise ConfigError("a corner label needs row_labels and col_labels (it sits where their margins meet)")

    if s > 1:  # the upscaled grid is new memory (the images themselves are already held): bounded before allocating
        from .grids import grid_bytes
        from .limits import MAX_GRID_BYTES

        size = grid_bytes(rows, cols, max(h, w), c, s)
        if size > MAX_GRID_BYTES:
            raise ConfigError(
                f"grid scale {s}: a grid of {rows} x {cols} images at {h}x{w} px upscaled {s} times needs "
                f"{size / 2**20:,.0f} MiB, more than {MAX_GRID_BYTES >> 20} MiB (use a smaller scale)"
            )
    font = label_font(label_font_size(min(ch, cw)))
    line = _line_height(font)
    gap = max(4, line // 3)  # space around a label
    fit = cw - 2  # a column label or caption may use its cell's width, less a pixel each side
    row_text = [str(t) for t in row_labels] if row_labels is not None else None
    col_text = [str(t) for t in col_labels] if col_labels is not None else None
    cell_text = [str(t) for t in cell_labels] if cell_labels is not None else None
    col_font = _fitting_font(col_text, fit, label_font_size(min(ch, cw))) if col_text else font
    cap_font = _fitting_font(cell_text, fit, label_font_size(min(ch, cw))) if cell_text else font
    if row_text is not None:  # the left margin fits the widest row label (and the corner): nothing is clipped
        widest = max([_text_width(font, t) for t in row_text] + [_text_width(font, str(corner or ""))])
        left = widest + 2 * gap
    else:
        left = 0
    top = line + 2 * gap if col_text is not None else 0
    band = _line_height(cap_font) + gap if cell_text is not None else 0  # caption strip above each row of cells
    pitch_y, pitch_x = band + ch + pad, cw + pad
    body_h, body_w = rows * pitch_y - pad, cols * pitch_x - pad
    grid = np.full((top + body_h, left + body_w, c), fill, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = top + r * pitch_y + band, left + q * pitch_x
        cell = images[i] if s == 1 else images[i].repeat(s, axis=0).repeat(s, axis=1)
        grid[y : y + ch, x : x + cw] = cell

    def paste(strip, y, x):
        """A drawn 'L' strip into every channel of the grid (grayscale and RGB grids alike)."""
        a = np.asarray(strip, dtype=np.uint8)
        grid[y : y + a.shape[0], x : x + a.shape[1]] = a[..., None]

    if col_text is not None:
        strip = Image.new("L", (left + body_w, top), 255)
        draw = ImageDraw.Draw(strip)
        for q, t in enumerate(col_text):
            _draw_centred(draw, col_font, _elide(col_font, t, fit), left + q * pitch_x + cw / 2, top / 2)
        if corner is not None:
            _draw_centred(draw, font, str(corner), left / 2, top / 2)
        paste(strip, 0, 0)
    if row_text is not None:
        strip = Image.new("L", (left, body_h), 255)
        draw = ImageDraw.Draw(strip)
        for r, t in enumerate(row_text):
            _draw_centred(draw, font, t, left / 2, r * pitch_y + band + ch / 2)
        paste(strip, top, 0)
    if cell_text is not None:
        for r in range(rows):
            strip = Image.new("L", (body_w, band), 255)
            draw = ImageDraw.Draw(strip)
            for q in range(min(cols, n - r * cols)):
                t = cell_text[r * cols + q]
                _draw_centred(draw, cap_font, _elide(cap_font, t, fit), q * pitch_x + cw / 2, band / 2)
            paste(strip, top + r * pitch_y, left)
    return grid
