"""Per-image noise for the synthesis network's noise inputs.

Every noise layer holds a constant buffer `noise_const` [R, R] (`noise_mode='const'`).
Metrics such as PPL need fresh noise per image that is still shared between the images
of one pair; `noise_override` swaps the buffers for per-image noise [N, 1, R, R] for the
duration of a `with` block, so the layers run unchanged (their noise term broadcasts over
the batch) and the stored noise is restored afterwards, also on errors.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, List, Sequence, Tuple, Union

import torch
from torch import nn

from ..errors import ConfigError


def noise_layers(synthesis: nn.Module) -> List[Tuple[nn.Module, int]]:
    """[(module, resolution)] of every layer with a `noise_const` buffer, in module order."""
    out = []
    for module in synthesis.modules():
        buf = getattr(module, "_buffers", {}).get("noise_const")
        if buf is not None:
            out.append((module, buf.shape[-1]))
    return out


def draw_noise(
    synthesis: nn.Module, seeds: Sequence[int], device: Union[torch.device, str] = "cpu"
) -> List[torch.Tensor]:
    """Fresh N(0, 1) noise per image: one list entry per noise layer, each [N, 1, R, R].

    Image i's noise comes from torch.Generator(device).manual_seed(seeds[i]) (drawn layer by
    layer in module order), so it does not depend on the batch an image falls in.
    """
    layers = noise_layers(synthesis)
    per_image = []
    for s in seeds:
        g = torch.Generator(device=device).manual_seed(int(s))
        per_image.append([torch.randn([1, r, r], generator=g, device=device) for _, r in layers])
    if not per_image:
        return [torch.zeros([0, 1, r, r], device=device) for _, r in layers]
    return [torch.stack([img[k] for img in per_image]) for k in range(len(layers))]


@contextmanager
def noise_override(synthesis: nn.Module, noise: Sequence[torch.Tensor]) -> Iterator[None]:
    """Render with `noise` (from `draw_noise`, or any list of [N, 1, R, R] / [R, R] tensors) as the
    constant noise of every layer; use `noise_mode='const'` inside the block."""
    layers = noise_layers(synthesis)
    if len(noise) != len(layers):
        raise ConfigError(f"{len(noise)} noise tensors for {len(layers)} noise layers")
    saved = []
    try:
        for (module, r), n in zip(layers, noise):
            if n.shape[-2:] != (r, r) or n.ndim not in (2, 4):
                raise ConfigError(
                    f"noise for a {r}x{r} layer must be [N, 1, {r}, {r}] or [{r}, {r}], got {tuple(n.shape)}"
                )
            old = module._buffers["noise_const"]
            assert old is not None  # noise_layers() lists only modules that hold this buffer
            saved.append((module, old))
            module._buffers["noise_const"] = n.to(device=old.device, dtype=old.dtype)
        yield
    finally:
        for module, old in saved:
            module._buffers["noise_const"] = old
