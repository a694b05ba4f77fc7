"""The original StyleGAN (v1) generator and discriminator (Karras et al. 2019).

Same interface as the StyleGAN2 networks (`mapping`, `synthesis`, `num_ws`,
`noise_mode`, per-layer styles in and out), so every edit and metric runs on
both generations. Numerics follow the official TensorFlow code at lod 0:
equalised learning rate with the gain folded into the weights, noise -> bias
-> activation -> (pixel norm) -> instance norm -> style modulation per layer,
[1,2,1] blur after every upsampling conv and before every downsampling conv,
and the fused ("transposed") up/down-scaling convs from 128 px on.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..ops import setup_filter, upfirdn2d
from .arguments import MAPPING_RANGES, check_arguments, check_channels, check_size
from .discriminator import MinibatchStdLayer
from .layers import HookPoint, check_resolution, normalize_2nd_moment
from .mapping import truncate
from .style_space import StyleLayer, StyleSpaceMixin

SQRT2 = math.sqrt(2)


def _act(x, name):
    if name == "lrelu":
        return F.leaky_relu(x, 0.2)  # max(x, 0.2 x); v1 puts the sqrt(2) gain into the weights instead
    if name == "relu":
        return F.relu(x)
    if name == "linear":
        return x
    raise ConfigError(f"unknown nonlinearity {name!r} (lrelu, relu)")


def nf(stage: int, fmap_base: int, fmap_decay: float, fmap_max: int) -> int:
    """Feature maps of a stage, as the official build functions compute them."""
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def _fused(fused_scale, resolution):
    if fused_scale == "auto":
        return resolution >= 128
    if isinstance(fused_scale, bool):
        return fused_scale
    raise ConfigError(f"fused_scale must be True, False or 'auto', got {fused_scale!r}")


class EqualizedDense(nn.Module):
    """y = act(x @ (W * gain / sqrt(in) * lrmul).T + b * lrmul) with W stored unscaled (use_wscale)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        gain: float = SQRT2,
        lr_multiplier: float = 1.0,
        activation: str = "lrelu",
        use_wscale: bool = True,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        he_std = gain / math.sqrt(in_features)
        init_std, self.weight_gain = (
            (1.0 / lr_multiplier, he_std * lr_multiplier) if use_wscale else (he_std / lr_multiplier, lr_multiplier)
        )
        self.bias_gain = lr_multiplier
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) * init_std)
        self.bias = nn.Parameter(torch.zeros([out_features]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _act(torch.addmm(self.bias * self.bias_gain, x, (self.weight * self.weight_gain).t()), self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


class EqualizedConv2d(nn.Module):
    """Square conv kernel stored unscaled; `runtime_weight()` applies gain / sqrt(fan_in)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, gain: float = SQRT2, use_wscale: bool = True
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        he_std = gain / math.sqrt(in_channels * kernel_size**2)
        init_std, self.weight_gain = (1.0, he_std) if use_wscale else (he_std, 1.0)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]) * init_std)

    def runtime_weight(self) -> torch.Tensor:
        return self.weight * self.weight_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.runtime_weight(), padding=self.kernel_size // 2)


def _window_sum(w):
    """[O, I, 3, 3] -> [O, I, 4, 4]: the sum of the four 2x2-shifted copies of the zero-padded kernel."""
    w = F.pad(w, [1, 1, 1, 1])
    return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]


class StyleGAN1Layer(nn.Module):
    """One style layer: (const | conv | upsampling conv + blur), noise, bias, act, norms, style modulation."""

    noise_const: torch.Tensor  # buffers
    blur_filter: Optional[torch.Tensor]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kind: str = "conv",  # 'const' (the 4x4 input), 'conv' or 'up'
        fused_scale: Union[bool, str] = "auto",
        blur_filter: Optional[Sequence[float]] = (1, 2, 1),
        use_noise: bool = True,
        use_pixel_norm: bool = False,
        use_instance_norm: bool = True,
        use_styles: bool = True,
        nonlinearity: str = "lrelu",
        use_wscale: bool = True,
    ) -> None:
        if kind not in ("const", "conv", "up"):
            raise ConfigError(f"layer kind must be const, conv or up, got {kind!r}")
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.kind = kind
        self.fused = kind == "up" and _fused(fused_scale, resolution)
        self.use_noise = use_noise
        self.use_pixel_norm = use_pixel_norm
        self.use_instance_norm = use_instance_norm
        self.use_styles = use_styles
        self.nonlinearity = nonlinearity
        if kind != "const":
            self.conv = EqualizedConv2d(in_channels, out_channels, 3, gain=SQRT2, use_wscale=use_wscale)
        if kind == "up" and blur_filter is not None:
            # correlation == convolution for the symmetric [1,2,1] kernel; normalised to sum 1
            self.register_buffer("blur_filter", setup_filter(list(blur_filter)), persistent=False)
        else:
            self.blur_filter = None
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([out_channels]))  # one strength per channel
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        if use_styles:
            self.affine = EqualizedDense(w_dim, out_channels * 2, gain=1.0, activation="linear", use_wscale=use_wscale)
        self.hook_style = HookPoint()
        self.hook_out = HookPoint()

    @property
    def style_dim(self) -> int:
        return 2 * self.out_channels  # scales, then shifts

    def style(self, w: torch.Tensor) -> torch.Tensor:
        if not self.use_styles:
            return w.new_zeros([w.shape[0], self.style_dim])
        return self.affine(w)

    def _convolve(self, x):
        if self.kind == "conv":
            return self.conv(x)
        w = self.conv.runtime_weight()
        if self.fused:
            # stride-2 transposed conv with the 4x4 window-sum kernel: y[2i+a-1] += x[i] k4[a]
            x = F.conv_transpose2d(x, _window_sum(w).transpose(0, 1), stride=2, padding=1)
        else:
            x = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w, padding=1)
        if self.blur_filter is not None:
            x = upfirdn2d(x, self.blur_filter, padding=self.blur_filter.shape[-1] // 2)
        return x

    def forward(
        self,
        x: torch.Tensor,
        w: Optional[torch.Tensor] = None,
        noise_mode: str = "const",
        style: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        if self.kind != "const":
            x = self._convolve(x)
        if self.use_noise and noise_mode != "none":
            if noise_mode == "const":
                noise = (
                    self.noise_const if self.noise_const.ndim == 4 else self.noise_const[None, None]
                )  # [N,1,R,R]: models.noise
            elif noise_mode == "random":
                noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
            else:
                raise ConfigError(f"noise_mode must be const, random or none, got {noise_mode!r}")
            x = x + noise * self.noise_strength.reshape(1, -1, 1, 1)
        elif noise_mode not in ("const", "random", "none"):
            raise ConfigError(f"noise_mode must be const, random or none, got {noise_mode!r}")
        x = _act(x + self.bias.reshape(1, -1, 1, 1), self.nonlinearity)
        if self.use_pixel_norm:
            x = normalize_2nd_moment(x, dim=1)
        if self.use_instance_norm:
            x = x - x.mean(dim=[2, 3], keepdim=True)
            x = x * (x.square().mean(dim=[2, 3], keepdim=True) + 1e-8).rsqrt()
        if self.use_styles:
            assert style is not None or w is not None, "a style layer needs w or a style"
            s = self.hook_style(self.style(w) if w is not None and style is None else style)
            scale, shift = s[:, : self.out_channels], s[:, self.out_channels :]
            x = x * (scale[:, :, None, None] + 1) + shift[:, :, None, None]
        return self.hook_out(x)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, in={self.in_channels}, out={self.out_channels}, res={self.resolution}, fused={self.fused}"


class StyleGAN1Block(nn.Module):
    """Two style layers at one resolution (the 4x4 block starts from the learned constant)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        use_wscale: bool = True,
        **layer_kwargs: Any,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.out_channels = out_channels
        self.is_last = is_last
        if resolution == 4:
            self.const = nn.Parameter(torch.ones([out_channels, 4, 4]))
            self.conv0 = StyleGAN1Layer(
                out_channels, out_channels, w_dim, 4, kind="const", use_wscale=use_wscale, **layer_kwargs
            )
        else:
            self.conv0 = StyleGAN1Layer(
                in_channels, out_channels, w_dim, resolution, kind="up", use_wscale=use_wscale, **layer_kwargs
            )
        self.conv1 = StyleGAN1Layer(
            out_channels, out_channels, w_dim, resolution, kind="conv", use_wscale=use_wscale, **layer_kwargs
        )
        if is_last:
            self.torgb = EqualizedConv2d(out_channels, img_channels, 1, gain=1.0, use_wscale=use_wscale)
            self.torgb_bias = nn.Parameter(torch.zeros([img_channels]))
        self.hook_x = HookPoint()

    def layer_names(self) -> List[str]:
        return ["conv0", "conv1"]

    def forward(
        self,
        x: Optional[torch.Tensor],
        ws: Optional[torch.Tensor],
        styles: Optional[Mapping[str, torch.Tensor]] = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        styles = styles or {}
        if self.resolution == 4:
            n = ws.shape[0] if ws is not None else next(iter(styles.values())).shape[0]
            x = self.const.unsqueeze(0).repeat([n, 1, 1, 1])
        for i, name in enumerate(self.layer_names()):
            w = ws[:, i] if ws is not None else None
            x = getattr(self, name)(x, w, noise_mode=noise_mode, style=styles.get(name))
        return self.hook_x(x)

    def to_rgb(self, x: torch.Tensor) -> torch.Tensor:
        return self.torgb(x) + self.torgb_bias.reshape(1, -1, 1, 1)


class StyleGAN1Synthesis(StyleSpaceMixin, nn.Module):
    """ws [N, num_ws, w_dim] -> image; two ws (and two styles) per resolution."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        fmap_base: int = 8192,
        fmap_decay: float = 1.0,
        fmap_max: int = 512,
        use_wscale: bool = True,
        **layer_kwargs: Any,
    ) -> None:
        sizes = dict(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, fmap_base=fmap_base)
        check_arguments("StyleGAN1Synthesis", dict(sizes, fmap_decay=fmap_decay, fmap_max=fmap_max, **layer_kwargs))
        log2 = check_resolution(img_resolution)
        channels = {2**r: nf(r - 1, fmap_base, fmap_decay, fmap_max) for r in range(2, log2 + 1)}
        check_channels("StyleGAN1Synthesis", channels, f"fmap_base = {fmap_base}, fmap_decay = {fmap_decay}")
        # the 3x3 conv weights (and the 4x4 constant): a part of the network's size
        prev, bound = 0, 0
        for ch in channels.values():
            bound += 9 * ch * (prev + ch) + (0 if prev else 16 * ch)
            prev = ch
        check_size("StyleGAN1Synthesis", bound)
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        self.num_ws = 2 * len(self.block_resolutions)
        prev = 0
        for res in self.block_resolutions:
            ch = nf(int(np.log2(res)) - 1, fmap_base, fmap_decay, fmap_max)
            block = StyleGAN1Block(
                prev, ch, w_dim, res, img_channels, is_last=res == img_resolution, use_wscale=use_wscale, **layer_kwargs
            )
            setattr(self, f"b{res}", block)
            prev = ch
        self.hook_img = HookPoint()

    def blocks(self) -> List[StyleGAN1Block]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def style_layers(self) -> List[Tuple[str, StyleLayer, int]]:
        return [
            (f"b{b.resolution}.{name}", getattr(b, name), 2 * i + k)
            for i, b in enumerate(self.blocks())
            for k, name in enumerate(b.layer_names())
        ]

    def forward(
        self,
        ws: Optional[torch.Tensor] = None,
        styles: Union[Mapping[str, torch.Tensor], torch.Tensor, None] = None,
        noise_mode: str = "const",
        **_ignored: Any,
    ) -> torch.Tensor:
        """Render from ws or styles (see `compute_styles`); extra StyleGAN2 options are accepted and ignored."""
        ws, styles = self._normalise_inputs(ws, styles)
        x = None
        for i, block in enumerate(self.blocks()):
            bws = ws[:, 2 * i : 2 * i + 2] if ws is not None else None
            x = block(x, bws, self._block_styles(styles, block.resolution), noise_mode=noise_mode)
        assert x is not None  # there is always a 4x4 block
        return self.hook_img(self.blocks()[-1].to_rgb(x))

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, res={self.img_resolution}, channels={self.img_channels}, num_ws={self.num_ws}"


class StyleGAN1Mapping(nn.Module):
    """z (and labels) -> w: optional label embedding concatenated to z, pixel norm, MLP with lrmul 0.01."""

    w_avg: torch.Tensor  # buffer
    fc0: EqualizedDense  # the first of fc0 .. fc{num_layers-1}, set with setattr

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 8,
        layer_features: int = 512,
        lr_multiplier: float = 0.01,
        activation: str = "lrelu",
        normalize_latents: bool = True,
        use_wscale: bool = True,
    ) -> None:
        args: Dict[str, object] = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=num_layers)
        args.update(layer_features=layer_features, lr_multiplier=lr_multiplier, activation=activation)
        check_arguments("StyleGAN1Mapping", args, MAPPING_RANGES)
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.normalize_latents = normalize_latents
        if c_dim > 0:
            self.embed = nn.Parameter(torch.randn([z_dim, c_dim]))  # used as is: no scaling, no bias
        features = [z_dim * (2 if c_dim > 0 else 1)] + [layer_features] * (num_layers - 1) + [w_dim]
        check_size("StyleGAN1Mapping", z_dim * c_dim + sum(a * b for a, b in zip(features, features[1:])))
        for i in range(num_layers):
            layer = EqualizedDense(
                features[i],
                features[i + 1],
                gain=SQRT2,
                lr_multiplier=lr_multiplier,
                activation=activation,
                use_wscale=use_wscale,
            )
            setattr(self, f"fc{i}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))
        self.hook_z = HookPoint()
        self.hook_w = HookPoint()

    def forward(
        self,
        z: torch.Tensor,
        c: Optional[torch.Tensor] = None,
        truncation_psi: float = 1,
        truncation_cutoff: Optional[int] = None,
        **_ignored: Any,
    ) -> torch.Tensor:
        if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ConfigError(f"z must be [N, {self.z_dim}], got {None if z is None else tuple(z.shape)}")
        dtype = self.fc0.weight.dtype if self.num_layers else torch.float32
        x = z.to(dtype)
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ConfigError(
                    f"c must be [N, {self.c_dim}] for this conditional network, got {None if c is None else tuple(c.shape)}"
                )
            x = torch.cat([x, c.to(dtype) @ self.embed.t()], dim=1)
        if self.normalize_latents:
            x = normalize_2nd_moment(x)
        x = self.hook_z(x)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        x = self.hook_w(x)
        ws = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)


class StyleGAN1Generator(nn.Module):
    """The official `G_style`: mapping + synthesis, with the official TF kwarg names.

    Truncation follows latentlab's uniform API: `truncation_cutoff=None` means
    all layers (the official v1 default of psi 0.7 / cutoff 8 is not applied
    implicitly; pass it when you want it).
    """

    generation = 1

    def __init__(
        self,
        latent_size: int = 512,
        label_size: int = 0,
        dlatent_size: int = 512,
        resolution: int = 1024,
        num_channels: int = 3,
        mapping_layers: int = 8,
        mapping_fmaps: int = 512,
        mapping_lrmul: float = 0.01,
        mapping_nonlinearity: str = "lrelu",
        normalize_latents: bool = True,
        fmap_base: int = 8192,
        fmap_decay: float = 1.0,
        fmap_max: int = 512,
        use_styles: bool = True,
        use_noise: bool = True,
        nonlinearity: str = "lrelu",
        use_wscale: bool = True,
        use_pixel_norm: bool = False,
        use_instance_norm: bool = True,
        fused_scale: Union[bool, str] = "auto",
        blur_filter: Optional[Sequence[float]] = (1, 2, 1),
    ) -> None:
        init_kwargs = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        check_arguments("StyleGAN1Generator", init_kwargs)
        super().__init__()
        self.init_kwargs = copy.deepcopy(init_kwargs)
        self.init_kwargs["blur_filter"] = list(blur_filter) if blur_filter is not None else None
        self.z_dim = latent_size
        self.c_dim = label_size
        self.w_dim = dlatent_size
        self.img_resolution = resolution
        self.img_channels = num_channels
        self.synthesis = StyleGAN1Synthesis(
            dlatent_size,
            resolution,
            num_channels,
            fmap_base=fmap_base,
            fmap_decay=fmap_decay,
            fmap_max=fmap_max,
            use_wscale=use_wscale,
            fused_scale=fused_scale,
            blur_filter=blur_filter,
            use_noise=use_noise,
            use_pixel_norm=use_pixel_norm,
            use_instance_norm=use_instance_norm,
            use_styles=use_styles,
            nonlinearity=nonlinearity,
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = StyleGAN1Mapping(
            latent_size,
            label_size,
            dlatent_size,
            self.num_ws,
            num_layers=mapping_layers,
            layer_features=mapping_fmaps,
            lr_multiplier=mapping_lrmul,
            activation=mapping_nonlinearity,
            normalize_latents=normalize_latents,
            use_wscale=use_wscale,
        )

    def forward(
        self,
        z: torch.Tensor,
        c: Optional[torch.Tensor] = None,
        truncation_psi: float = 1,
        truncation_cutoff: Optional[int] = None,
        noise_mode: str = "const",
        **synthesis_kwargs: Any,
    ) -> torch.Tensor:
        if c is None and self.c_dim == 0:
            c = torch.zeros([z.shape[0], 0], device=z.device)
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, res={self.img_resolution}"


class StyleGAN1DBlock(nn.Module):
    """conv0, then blur + downsampling conv1 (conv + 2x2 average, or the fused stride-2 conv from 128 px)."""

    blur_filter: Optional[torch.Tensor]  # buffer

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        resolution: int,
        fused_scale: Union[bool, str] = "auto",
        blur_filter: Optional[Sequence[float]] = (1, 2, 1),
        nonlinearity: str = "lrelu",
        use_wscale: bool = True,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.nonlinearity = nonlinearity
        self.fused = _fused(fused_scale, resolution)
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3, use_wscale=use_wscale)
        self.bias0 = nn.Parameter(torch.zeros([in_channels]))
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, use_wscale=use_wscale)
        self.bias1 = nn.Parameter(torch.zeros([out_channels]))
        if blur_filter is not None:
            self.register_buffer("blur_filter", setup_filter(list(blur_filter)), persistent=False)
        else:
            self.blur_filter = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _act(self.conv0(x) + self.bias0.reshape(1, -1, 1, 1), self.nonlinearity)
        if self.blur_filter is not None:
            x = upfirdn2d(x, self.blur_filter, padding=self.blur_filter.shape[-1] // 2)
        w = self.conv1.runtime_weight()
        if self.fused:
            x = F.conv2d(x, _window_sum(w) * 0.25, stride=2, padding=1)  # == conv then 2x2 average
        else:
            x = F.avg_pool2d(F.conv2d(x, w, padding=1), 2)
        return _act(x + self.bias1.reshape(1, -1, 1, 1), self.nonlinearity)


class StyleGAN1Discriminator(nn.Module):
    """The official `D_basic` at lod 0, with the official TF kwarg names. D(img, c) -> [N, 1]."""

    def __init__(
        self,
        num_channels: int = 1,
        resolution: int = 32,
        label_size: int = 0,
        fmap_base: int = 8192,
        fmap_decay: float = 1.0,
        fmap_max: int = 512,
        nonlinearity: str = "lrelu",
        use_wscale: bool = True,
        mbstd_group_size: Optional[int] = 4,
        mbstd_num_features: int = 1,
        fused_scale: Union[bool, str] = "auto",
        blur_filter: Optional[Sequence[float]] = (1, 2, 1),
    ) -> None:
        init_kwargs = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        check_arguments("StyleGAN1Discriminator", init_kwargs)
        log2 = check_resolution(resolution)
        channels = {
            stage: nf(stage, fmap_base, fmap_decay, fmap_max) for stage in range(log2)
        }  # stage: 2**(stage+1) px
        rule = f"fmap_base = {fmap_base}, fmap_decay = {fmap_decay}"
        check_channels("StyleGAN1Discriminator", {2 ** (s + 1): ch for s, ch in channels.items()}, rule)
        # the blocks' 3x3 conv weights and the dense layer after the 4x4 conv: a part of the network's size
        bound = sum(9 * channels[r - 1] * (channels[r - 1] + channels[r - 2]) for r in range(3, log2 + 1))
        check_size("StyleGAN1Discriminator", bound + 16 * channels[1] * channels[0])
        super().__init__()
        self.init_kwargs = copy.deepcopy(init_kwargs)
        self.init_kwargs["blur_filter"] = list(blur_filter) if blur_filter is not None else None
        self.c_dim = label_size
        self.img_resolution = resolution
        self.img_channels = num_channels
        self.nonlinearity = nonlinearity
        ch = lambda stage: nf(stage, fmap_base, fmap_decay, fmap_max)  # noqa: E731
        self.block_resolutions = [2**r for r in range(log2, 2, -1)]
        self.fromrgb = EqualizedConv2d(num_channels, ch(log2 - 1), 1, use_wscale=use_wscale)
        self.fromrgb_bias = nn.Parameter(torch.zeros([ch(log2 - 1)]))
        for res in self.block_resolutions:
            r = int(np.log2(res))
            block = StyleGAN1DBlock(ch(r - 1), ch(r - 2), res, fused_scale, blur_filter, nonlinearity, use_wscale)
            setattr(self, f"b{res}", block)
        self.mbstd = (
            MinibatchStdLayer(mbstd_group_size, mbstd_num_features)
            if mbstd_group_size and mbstd_group_size > 1
            else None
        )
        extra = mbstd_num_features if self.mbstd is not None else 0
        self.conv = EqualizedConv2d(ch(1) + extra, ch(1), 3, use_wscale=use_wscale)
        self.conv_bias = nn.Parameter(torch.zeros([ch(1)]))
        self.fc = EqualizedDense(ch(1) * 16, ch(0), gain=SQRT2, activation=nonlinearity, use_wscale=use_wscale)
        self.out = EqualizedDense(ch(0), max(label_size, 1), gain=1.0, activation="linear", use_wscale=use_wscale)

    def forward(self, img: torch.Tensor, c: Optional[torch.Tensor] = None, **_ignored: Any) -> torch.Tensor:
        if img.ndim != 4 or img.shape[1:] != (self.img_channels, self.img_resolution, self.img_resolution):
            raise ConfigError(
                f"D expects images [N, {self.img_channels}, {self.img_resolution}, {self.img_resolution}], got {tuple(img.shape)}"
            )
        x = _act(self.fromrgb(img.to(torch.float32)) + self.fromrgb_bias.reshape(1, -1, 1, 1), self.nonlinearity)
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = _act(self.conv(x) + self.conv_bias.reshape(1, -1, 1, 1), self.nonlinearity)
        x = self.out(self.fc(x.flatten(1)))
        if self.c_dim > 0:
            if c is None or c.shape != (img.shape[0], self.c_dim):
                raise ConfigError(f"c must be [N, {self.c_dim}] for this conditional discriminator")
            x = (x * c.to(x.dtype)).sum(dim=1, keepdim=True)
        return x
