"""Synthesis network: per-layer styles (S space) from ws, then modulated convolutions to an image."""

from __future__ import annotations

import math
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..ops import bias_act, modulated_conv2d, setup_filter, upsample2d
from ..ops.bias_act import activation as _activation
from .arguments import check_arguments, check_channel_base, check_channels, check_size
from .layers import Conv2dLayer, FullyConnectedLayer, HookPoint, check_resolution, cpu_channels_last
from .style_space import StyleLayer, StyleSpaceMixin

NOISE_MODES = ("const", "random", "none")


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling), noise, bias, activation."""

    resample_filter: torch.Tensor  # buffers
    noise_const: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: Optional[float] = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.act_gain = _activation(activation).def_gain
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)  # styles start at 1
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        )
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.hook_style = HookPoint()
        self.hook_out = HookPoint()

    @property
    def style_dim(self) -> int:
        return self.in_channels

    def style(self, w: torch.Tensor) -> torch.Tensor:
        return self.affine(w)

    def forward(
        self,
        x: torch.Tensor,
        w: Optional[torch.Tensor] = None,
        noise_mode: str = "const",
        fused_modconv: bool = True,
        gain: float = 1,
        style: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """`style` ([N, in_channels], S space) replaces affine(w) when given."""
        styles = self.hook_style(self.affine(w) if style is None else style)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = (
                torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
            )
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        elif noise_mode not in NOISE_MODES:
            raise ConfigError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            noise=noise,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            flip_weight=self.up == 1,  # as in the official layer: convolution, not correlation, when upsampling
            fused_modconv=fused_modconv,
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        x = bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)
        return self.hook_out(x)

    def extra_repr(self) -> str:
        return f"in={self.in_channels}, out={self.out_channels}, res={self.resolution}, up={self.up}, noise={self.use_noise}"


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: Optional[float] = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        )
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.hook_style = HookPoint()
        self.hook_out = HookPoint()

    @property
    def style_dim(self) -> int:
        return self.in_channels

    def style(self, w: torch.Tensor) -> torch.Tensor:
        return self.affine(w)

    def forward(
        self,
        x: torch.Tensor,
        w: Optional[torch.Tensor] = None,
        fused_modconv: bool = True,
        style: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        styles = self.hook_style(self.affine(w) if style is None else style)
        x = modulated_conv2d(x, self.weight, styles * self.weight_gain, demodulate=False, fused_modconv=fused_modconv)
        x = bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)
        return self.hook_out(x)

    def extra_repr(self) -> str:
        return f"in={self.in_channels}, out={self.out_channels}"


class SynthesisBlock(nn.Module):
    """One resolution: (const or upsampling conv0), conv1, and ToRGB for 'skip' or the last block."""

    ARCHITECTURES = ("orig", "skip", "resnet")
    resample_filter: torch.Tensor  # buffer

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: Optional[float] = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        **layer_kwargs: Any,
    ) -> None:
        if architecture not in self.ARCHITECTURES:
            raise ConfigError(f"architecture must be one of {self.ARCHITECTURES}, got {architecture!r}")
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels,
                out_channels,
                w_dim=w_dim,
                resolution=resolution,
                up=2,
                resample_filter=resample_filter,
                conv_clamp=conv_clamp,
                channels_last=self.channels_last,
                **layer_kwargs,
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(
            out_channels,
            out_channels,
            w_dim=w_dim,
            resolution=resolution,
            conv_clamp=conv_clamp,
            channels_last=self.channels_last,
            **layer_kwargs,
        )
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(
                out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp, channels_last=self.channels_last
            )
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels,
                out_channels,
                kernel_size=1,
                bias=False,
                up=2,
                resample_filter=resample_filter,
                channels_last=self.channels_last,
            )
        self.hook_x = HookPoint()  # features after the block's convs
        self.hook_img = HookPoint()  # running RGB image after this block

    def layer_names(self) -> List[str]:
        """Names of the style-taking layers, in the order they consume ws."""
        return [n for n in ("conv0", "conv1", "torgb") if hasattr(self, n)]

    def forward(
        self,
        x: Optional[torch.Tensor],
        img: Optional[torch.Tensor],
        ws: Optional[torch.Tensor] = None,
        styles: Optional[Mapping[str, torch.Tensor]] = None,
        force_fp32: bool = False,
        fused_modconv: Optional[bool] = None,
        noise_mode: str = "const",
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """ws: [N, num_conv + num_torgb, w_dim]; styles: optional dict layer name -> [N, C]."""
        styles = styles or {}
        wi = iter(ws.unbind(dim=1)) if ws is not None else None

        def nxt(name):
            w = next(wi) if wi is not None else None
            s = styles.get(name)
            if w is None and s is None:
                raise ConfigError(f"synthesis block {self.resolution}: layer {name} needs ws or a style")
            return w, s

        ref = ws if ws is not None else next(iter(styles.values()))
        on_gpu = ref.device.type == "cuda"
        dtype = torch.float16 if self.use_fp16 and on_gpu and not force_fp32 else torch.float32
        if fused_modconv is None:
            # Grouped convs win on GPUs; on the CPU one batched conv with scaled activations is faster.
            fused_modconv = on_gpu and not self.training and (dtype == torch.float32 or ref.shape[0] == 1)
        # oneDNN convs (above all the transposed ones) run much faster on channels-last tensors (`cpu_channels_last`).
        cpu_cl = not on_gpu and not fused_modconv and cpu_channels_last(self, self.resolution)
        memory_format = (
            torch.channels_last if (self.channels_last and not force_fp32) or cpu_cl else torch.contiguous_format
        )

        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ref.shape[0], 1, 1, 1]).to(memory_format=memory_format)
        else:
            assert x is not None, "every block after the first takes the previous block's features"
            x = x.to(dtype=dtype, memory_format=memory_format)
        kw = dict(fused_modconv=fused_modconv, noise_mode=noise_mode)
        if self.in_channels == 0:
            w, s = nxt("conv1")
            x = self.conv1(x, w, style=s, **kw)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            w, s = nxt("conv0")
            x = self.conv0(x, w, style=s, **kw)
            w, s = nxt("conv1")
            x = self.conv1(x, w, style=s, gain=np.sqrt(0.5), **kw)
            x = y + x
        else:
            w, s = nxt("conv0")
            x = self.conv0(x, w, style=s, **kw)
            w, s = nxt("conv1")
            x = self.conv1(x, w, style=s, **kw)
        x = self.hook_x(x)

        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            w, s = nxt("torgb")
            y = self.torgb(x, w, fused_modconv=fused_modconv, style=s)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        if img is not None:
            img = self.hook_img(img)
        return x, img

    def extra_repr(self) -> str:
        return f"res={self.resolution}, in={self.in_channels}, out={self.out_channels}, arch={self.architecture}, fp16={self.use_fp16}"


class SynthesisNetwork(StyleSpaceMixin, nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R].

    Per-layer styles ("S space": the outputs of the affine layers) can be read
    with `compute_styles` and fed back through `forward(styles=...)`.

    A block of resolution r has min(channel_base // r, channel_max) channels. Arguments are
    range-checked before anything is built (`arguments`): ConfigError for sizes outside
    `utils.limits`, channel_base < img_resolution, or a network over `limits.MAX_PARAMS`.
    """

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        **block_kwargs: Any,
    ) -> None:
        sizes = dict(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, channel_base=channel_base)
        check_arguments(
            "SynthesisNetwork", dict(sizes, channel_max=channel_max, num_fp16_res=num_fp16_res, **block_kwargs)
        )
        check_channel_base("SynthesisNetwork", channel_base, img_resolution)
        log2 = check_resolution(img_resolution)
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = log2
        self.img_channels = img_channels
        self.channel_base = channel_base
        self.channel_max = channel_max
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        check_channels("SynthesisNetwork", channels, f"channel_base = {channel_base}, channel_max = {channel_max}")
        noise = bool(block_kwargs.get("use_noise", True))
        check_size("SynthesisNetwork", self._size_lower_bound(channels, w_dim, img_channels, noise))
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0,
                channels[res],
                w_dim=w_dim,
                resolution=res,
                img_channels=img_channels,
                is_last=res == img_resolution,
                use_fp16=res >= fp16_resolution,
                **block_kwargs,
            )
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    @staticmethod
    def _size_lower_bound(channels: Mapping[int, int], w_dim: int, img_channels: int, noise: bool) -> int:
        """Elements of the convolution weights, their affines and (with `noise`) noise buffers, and the last
        ToRGB layer: a part of the network's parameters and buffers, computed without building it."""
        n, prev = 0, 0
        for res, ch in channels.items():
            n += (prev + ch) * ch * 9 + (prev + ch) * w_dim + (res * res * (2 if prev else 1) if noise else 0)
            prev = ch
        return n + prev * (img_channels + w_dim)

    def blocks(self) -> List[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def _block_ws(self, ws):
        """Split ws so that each block gets its convs' ws plus the next one for ToRGB."""
        out, idx = [], 0
        for block in self.blocks():
            out.append(ws.narrow(1, idx, block.num_conv + block.num_torgb))
            idx += block.num_conv
        return out

    def style_layers(self) -> List[Tuple[str, StyleLayer, int]]:
        """[(name, layer, w_index)] for every style-taking layer, in ws order."""
        out, idx = [], 0
        for block in self.blocks():
            for k, name in enumerate(block.layer_names()):
                out.append((f"b{block.resolution}.{name}", getattr(block, name), idx + k))
            idx += block.num_conv
        return out

    def forward(
        self,
        ws: Optional[torch.Tensor] = None,
        styles: Union[Mapping[str, torch.Tensor], torch.Tensor, None] = None,
        noise_mode: str = "const",
        force_fp32: bool = False,
        fused_modconv: Optional[bool] = None,
    ) -> torch.Tensor:
        """Render images from ws, or from styles (a dict as from `compute_styles`, or a flat tensor).

        With both, the given styles override the layers they name. noise_mode:
        'const' (the stored noise buffers), 'random', or 'none'.
        """
        ws, styles = self._normalise_inputs(ws, styles)
        block_ws = self._block_ws(ws) if ws is not None else [None] * len(self.block_resolutions)
        x = img = None
        for block, bws in zip(self.blocks(), block_ws):
            bstyles = self._block_styles(styles, block.resolution)
            x, img = block(
                x, img, bws, styles=bstyles, force_fp32=force_fp32, fused_modconv=fused_modconv, noise_mode=noise_mode
            )
        assert img is not None  # the last block always has a ToRGB layer
        return img

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, res={self.img_resolution}, channels={self.img_channels}, num_ws={self.num_ws}"
