"""The StyleGAN2 / StyleGAN2-ADA discriminator."""

from __future__ import annotations

import copy
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..ops import downsample2d, setup_filter
from .arguments import MAPPING_RANGES, check_arguments, check_channel_base, check_channels, check_size
from .layers import Conv2dLayer, FullyConnectedLayer, check_resolution, cpu_channels_last
from .mapping import MappingNetwork


class DiscriminatorBlock(nn.Module):
    """fromrgb (first block or 'skip'), conv0, downsampling conv1, resnet skip."""

    resample_filter: torch.Tensor  # buffer

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        first_layer_idx: int = 0,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: Optional[float] = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        freeze_layers: int = 0,
    ) -> None:
        if architecture not in ("orig", "skip", "resnet"):
            raise ConfigError(f"architecture must be orig, skip or resnet, got {architecture!r}")
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.freeze_layers = freeze_layers
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.num_layers = 0

        def trainable():  # layers before `freeze_layers` hold buffers instead of parameters
            idx = first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= freeze_layers

        common: Dict[str, Any] = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(
            tmp_channels,
            out_channels,
            kernel_size=3,
            down=2,
            resample_filter=resample_filter,
            trainable=trainable(),
            **common,
        )
        if architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels,
                out_channels,
                kernel_size=1,
                bias=False,
                down=2,
                resample_filter=resample_filter,
                trainable=trainable(),
                channels_last=self.channels_last,
            )

    def forward(
        self, x: Optional[torch.Tensor], img: Optional[torch.Tensor], force_fp32: bool = False
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        ref = x if x is not None else img
        assert ref is not None, "a discriminator block needs features or an image"
        dtype = torch.float16 if self.use_fp16 and ref.device.type == "cuda" and not force_fp32 else torch.float32
        # oneDNN runs these convolutions (the 32-channel ones at full resolution above all, and the depthwise
        # low-pass filters) up to twice as fast on channels-last tensors (`cpu_channels_last`).
        cpu_cl = ref.device.type == "cpu" and cpu_channels_last(self, self.resolution)
        memory_format = (
            torch.channels_last if (self.channels_last and not force_fp32) or cpu_cl else torch.contiguous_format
        )
        if x is not None:
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == "skip":
            assert img is not None  # the first block and every 'skip' block get the image
            y = self.fromrgb(img.to(dtype=dtype, memory_format=memory_format))
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class MinibatchStdLayer(nn.Module):
    """Append the standard deviation across groups of samples as extra feature maps.

    Group members are strided: sample i belongs to group i % (N // G), as in the official code.
    """

    def __init__(self, group_size: Optional[int], num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g != 0:
            raise ConfigError(f"minibatch-stddev: batch size {n} is not a multiple of the group size {g}")
        f = self.num_channels
        y = x.float().reshape(g, -1, f, c // f, h, w)  # [G, n/G, F, c, H, W]
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [n/G, F]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w).to(x.dtype)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch stddev, conv, dense, output (projected onto the label map when conditional)."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: Optional[int] = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: Optional[float] = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation, conv_clamp=conv_clamp
        )
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(
        self, x: torch.Tensor, img: Optional[torch.Tensor], cmap: Optional[torch.Tensor], force_fp32: bool = False
    ) -> torch.Tensor:
        x = x.to(torch.float32)
        if self.architecture == "skip":
            assert img is not None  # 'skip' blocks pass the downsampled image on
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            assert cmap is not None, "a conditional discriminator needs the label map"
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """D(img, c) -> logits [N, 1].

    Constructor arguments follow stylegan2-ada-pytorch; they are range-checked before anything is
    built (`arguments`): ConfigError for sizes outside `utils.limits`, channel_base < img_resolution,
    or a network over `limits.MAX_PARAMS`.
    """

    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: Optional[float] = None,
        cmap_dim: Optional[int] = None,
        block_kwargs: Optional[Mapping[str, Any]] = None,
        mapping_kwargs: Optional[Mapping[str, Any]] = None,
        epilogue_kwargs: Optional[Mapping[str, Any]] = None,
    ) -> None:
        block_kwargs, mapping_kwargs, epilogue_kwargs = (
            dict(block_kwargs or {}),
            dict(mapping_kwargs or {}),
            dict(epilogue_kwargs or {}),
        )
        init_kwargs = dict(
            c_dim=c_dim,
            img_resolution=img_resolution,
            img_channels=img_channels,
            architecture=architecture,
            channel_base=channel_base,
            channel_max=channel_max,
            num_fp16_res=num_fp16_res,
            conv_clamp=conv_clamp,
            cmap_dim=cmap_dim,
            block_kwargs=block_kwargs,
            mapping_kwargs=mapping_kwargs,
            epilogue_kwargs=epilogue_kwargs,
        )
        check_arguments("Discriminator", init_kwargs, MAPPING_RANGES if isinstance(c_dim, int) and c_dim > 0 else None)
        check_channel_base("Discriminator", channel_base, img_resolution)
        super().__init__()
        self.init_kwargs = copy.deepcopy(init_kwargs)
        log2 = check_resolution(img_resolution)
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        check_channels("Discriminator", channels, f"channel_base = {channel_base}, channel_max = {channel_max}")
        # conv weights of the blocks (tmp x tmp and tmp x out 3x3) and the epilogue's dense layer: part of its size
        blocks = sum(9 * channels[r] * (channels[r] + channels[r // 2]) for r in self.block_resolutions)
        check_size("Discriminator", blocks + 16 * channels[4] ** 2)
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        common: Dict[str, Any] = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < img_resolution else 0,
                channels[res],
                channels[res // 2],
                resolution=res,
                first_layer_idx=layer_idx,
                use_fp16=res >= fp16_resolution,
                **block_kwargs,
                **common,
            )
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(
                z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs
            )
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, **common)

    def forward(self, img: torch.Tensor, c: Optional[torch.Tensor] = None, force_fp32: bool = False) -> torch.Tensor:
        if img.ndim != 4 or img.shape[1:] != (self.img_channels, self.img_resolution, self.img_resolution):
            raise ConfigError(
                f"D expects images [N, {self.img_channels}, {self.img_resolution}, {self.img_resolution}], got {tuple(img.shape)}"
            )
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32)
        cmap = None
        if self.c_dim > 0:
            cmap = self.mapping(None, c)
        return self.b4(x, img, cmap)
