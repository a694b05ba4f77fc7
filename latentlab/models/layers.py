"""Building blocks shared by the StyleGAN2 generator and discriminator."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..ops import bias_act, conv2d_resample, setup_filter
from ..ops.bias_act import activation as _activation

# oneDNN on the CPU (measured on the 2-core development machine, BENCHMARKS.md "Training"): channels-last activations
# make forward and input-gradient convolutions faster at every size we tried, but weight gradients slower above
# 64 x 64 px (3x at 256 px, 64 channels). So the CPU uses channels-last except for blocks above this resolution
# whose weights are being trained.
CPU_CHANNELS_LAST_MAX_TRAINED_RES = 64


def cpu_channels_last(block: nn.Module, resolution: int) -> bool:
    """Whether a block on the CPU should run on channels-last activations (see CPU_CHANNELS_LAST_MAX_TRAINED_RES)."""
    if resolution <= CPU_CHANNELS_LAST_MAX_TRAINED_RES or not torch.is_grad_enabled():
        return True
    return not any(p.requires_grad for p in block.parameters())


class HookPoint(nn.Module):
    """Identity module marking a named place in the network.

    Register forward hooks on it (`module.register_forward_hook`) to read or
    replace the activation that flows through, as in TransformerLens.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def check_resolution(resolution: int) -> int:
    """log2 of a power-of-two resolution >= 4; ValueError otherwise."""
    log2 = int(resolution).bit_length() - 1
    if resolution < 4 or 2**log2 != resolution:
        raise ConfigError(f"img_resolution must be a power of two >= 4, got {resolution}")
    return log2


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each vector to unit root-mean-square (the 'pixel norm' of z)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalised learning rate: weights stored unscaled, scaled at run time."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.lr_multiplier = lr_multiplier
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b: Optional[torch.Tensor] = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}, lr_mul={self.lr_multiplier:g}"


class Conv2dLayer(nn.Module):
    """Convolution with equalised learning rate, optional FIR up/down-sampling and clamping."""

    resample_filter: torch.Tensor  # buffer

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: Optional[float] = None,
        channels_last: bool = False,
        trainable: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = _activation(activation).def_gain
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        b = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(b) if b is not None else None
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", b)

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        flip_weight = self.up == 1  # the official layers convolve (not correlate) when upsampling
        x = conv2d_resample(
            x,
            w.to(x.dtype),
            f=self.resample_filter,
            up=self.up,
            down=self.down,
            padding=self.padding,
            flip_weight=flip_weight,
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_channels}, out={self.out_channels}, k={self.kernel_size}, act={self.activation}, "
            f"up={self.up}, down={self.down}, clamp={self.conv_clamp}"
        )
