"""Rendering codes to images in batches: the one loop behind every command that writes pictures.

    from latentlab.utils.render import render_uint8
    images = render_uint8(G, ws, batch_size=8)                  # uint8 [N, H, W, C], as the official scripts round
    images = render_uint8(G, styles=s, noise_mode="random")     # packed S-space codes
    for x in render_batches(G, ws, batch_size=16):              # float [B, C, H, W], e.g. to score with a classifier
        ...

Rendering is G.synthesis under torch.no_grad, `batch_size` codes at a time, so only one batch of images
exists at once; `progress` (anything with `update(n)`, such as `utils.progress.progress_bar`) advances by
the batch's size.
"""

import numpy as np
import torch

from ..errors import ConfigError
from .images import to_uint8


def _inputs(G, ws, styles):
    if (ws is None) == (styles is None):
        raise ConfigError("render: give either ws or styles")
    if styles is not None:
        return "styles", styles
    if ws.ndim == 2:  # one w per image: every layer gets it
        ws = ws[:, None].repeat(1, G.num_ws, 1)
    if ws.ndim != 3:
        raise ConfigError(f"render: ws must be [N, num_ws, w_dim] or [N, w_dim], got shape {tuple(ws.shape)}")
    return "ws", ws


def render_batches(G, ws=None, batch_size=8, noise_mode="const", progress=None, styles=None, **synthesis_kwargs):
    """Yield float images [B, C, H, W] of G.synthesis for ws [N, num_ws, w_dim] (or w [N, w_dim], broadcast to
    every layer), or for packed `styles` [N, sum of style channels], `batch_size` codes at a time, without grad."""
    kind, codes = _inputs(G, ws, styles)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    with torch.no_grad():
        for i in range(0, len(codes), batch_size):
            part = codes[i : i + batch_size]
            if kind == "styles":
                x = G.synthesis(styles=part, noise_mode=noise_mode, **synthesis_kwargs)
            else:
                x = G.synthesis(part, noise_mode=noise_mode, **synthesis_kwargs)
            yield x
            if progress is not None:
                progress.update(len(part))


def render_uint8(G, ws=None, batch_size=8, noise_mode="const", progress=None, styles=None, **synthesis_kwargs):
    """uint8 images [N, H, W, C] of `render_batches` (same arguments), rounded as the official scripts round."""
    out = [to_uint8(x) for x in render_batches(G, ws, batch_size, noise_mode, progress, styles, **synthesis_kwargs)]
    if not out:
        res, ch = G.img_resolution, G.img_channels
        return np.zeros((0, res, res, ch), dtype=np.uint8)
    return np.concatenate(out)
