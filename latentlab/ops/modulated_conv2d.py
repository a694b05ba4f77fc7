"""Style-modulated convolution with optional weight demodulation (StyleGAN2, section 2.2)."""

from __future__ import annotations

import math
from typing import Optional

import torch

from ..errors import ConfigError
from .conv2d_resample import conv2d_resample
from .upfirdn2d import Padding


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: Optional[torch.Tensor] = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    resample_filter: Optional[torch.Tensor] = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
) -> torch.Tensor:
    """Convolve each sample with the shared weight scaled by its own styles.

    Args:
        x: [N, Cin, H, W]; weight: [Cout, Cin, kh, kw]; styles: [N, Cin].
        noise: optional tensor broadcastable to the output, added after demodulation.
        demodulate: rescale each output channel to unit expected variance (eps 1e-8).
        fused_modconv: True = one grouped conv with per-sample kernels; False =
            scale activations before and after a shared conv (same maths, and on
            the CPU usually faster because the conv is batched).
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if styles.shape != (n, in_ch):
        raise ConfigError(f"styles must be [{n}, {in_ch}], got {tuple(styles.shape)}")

    if x.dtype == torch.float16 and demodulate:
        # Pre-scale so that the products below stay inside the fp16 range; cancels out after demodulation.
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    dcoefs = None
    if demodulate:
        # sum_{i,k} (w[o,i,k] s[n,i])^2 = sum_i s[n,i]^2 sum_k w[o,i,k]^2: a matmul, no [N, Cout, Cin, k, k] tensor.
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, Cout]

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(
            x, weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight
        )
        if dcoefs is not None and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(n, -1, 1, 1))  # one pass
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, Cout, Cin, kh, kw]
    if dcoefs is not None:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])  # the batch becomes conv groups
    w = w.reshape(-1, in_ch, kh, kw)
    x = conv2d_resample(
        x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, groups=n, flip_weight=flip_weight
    )
    x = x.reshape(n, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x
