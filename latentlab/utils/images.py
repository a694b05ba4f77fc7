"""Image conversion and atomic PNG writing."""

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
