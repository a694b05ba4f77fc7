"""The StyleGAN3 (alias-free) generator (Karras et al. 2021), configurations T and R.

Same interface as the other generations (`mapping`, `synthesis`, `num_ws`, per-layer styles in and out),
so edits, boundaries, truncation, mixing, ALS and PPL run unchanged. The synthesis network is a
stack of layers that each treat the feature maps as samples of a band-limited continuous signal:

    input:  Fourier features at the first cutoff, rotated and translated by an affine of ws[0]
            (and by the user's `transform`, `SynthesisInput.set_transform`);
    L0..LN: modulated conv (styles of ws[i + 1]) -> bias, upsample to a temporary rate (x lrelu_upsampling),
            leaky ReLU, low-pass to the layer's cutoff and resample (`ops.filtered_lrelu`);
    ToRGB:  the last layer (1x1 modulated conv, no demodulation, no nonlinearity), then x output_scale.

Cutoffs, stop bands, sampling rates, sizes and channels follow the official geometric schedule
(`layer_schedule`), computed from the recorded constructor arguments as NVlabs/stylegan3 does, so that
official pickles (whose filters are stored taps) load and match their own outputs.
"""

from __future__ import annotations

import copy
import math
import numbers
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..ops import modulated_conv2d
from ..ops.filtered_lrelu import filtered_lrelu
from ..utils import limits
from .arguments import MAPPING_RANGES, check_arguments, check_size
from .layers import FullyConnectedLayer, HookPoint, check_resolution
from .mapping import MappingNetwork
from .style_space import StyleLayer, StyleSpaceMixin
from .stylegan3_filters import design_lowpass_filter

__all__ = [
    "check_transform",
    "input_transform",
    "parse_translate",
    "LayerSpec",
    "layer_schedule",
    "SynthesisInput",
    "StyleGAN3Layer",
    "StyleGAN3Synthesis",
    "StyleGAN3Generator",
]

NOISE_MODES = ("const", "random", "none")  # accepted for the common interface; StyleGAN3 has no noise inputs
# Sanity bounds of the derived schedule (published models: factors <= 4, <= 24 taps, <= 16 layers).
_MAX_FACTOR = limits.MAX_RESAMPLING_FACTOR
_MAX_TAPS = 128
_MAX_LAYERS = 64


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the schedule (layer `index` of 0..num_layers; the last one is ToRGB)."""

    index: int
    channels: int
    size: int  # output width = height (pixels, margins included)
    sampling_rate: int
    cutoff: float  # f_c
    half_width: float  # f_h = max(stopband, rate / 2) - cutoff
    stopband: float  # f_t
    use_fp16: bool


def layer_schedule(
    img_resolution: int,
    img_channels: int,
    channel_base: int,
    channel_max: int,
    num_layers: int,
    num_critical: int,
    first_cutoff: float,
    first_stopband: float,
    last_stopband_rel: float,
    margin_size: int,
    num_fp16_res: int,
) -> List[LayerSpec]:
    """The per-layer cutoffs, stop bands, sampling rates, sizes and channels of a StyleGAN3 synthesis net.

    Entry 0 describes the Fourier-feature input as well as L0 (their cutoff and rate are the first ones).
    Cutoffs and minimum stop bands rise geometrically from the first layer's to the last's (the image's
    Nyquist frequency, and that times last_stopband_rel) and stay there for the `num_critical` last,
    critically sampled layers; each layer samples at the smallest power of two >= twice its stop band
    (at most the image resolution), and has channel_base / 2 / cutoff channels (at most channel_max).
    ConfigError for a schedule no network can have (non-positive bands, absurd resampling factors).
    """
    for name, value, kind in (
        ("num_layers", num_layers, numbers.Integral),
        ("num_critical", num_critical, numbers.Integral),
        ("margin_size", margin_size, numbers.Integral),
        ("first_cutoff", first_cutoff, numbers.Real),
        ("first_stopband", first_stopband, numbers.Real),
        ("last_stopband_rel", last_stopband_rel, numbers.Real),
    ):
        if not isinstance(value, kind) or isinstance(value, bool):
            expected = "an integer" if kind is numbers.Integral else "a number"
            raise ConfigError(f"StyleGAN3Synthesis: {name} is a {type(value).__name__}; expected {expected}")
    if num_layers < 1 or num_layers > _MAX_LAYERS or not 0 <= num_critical < num_layers:
        raise ConfigError(
            f"StyleGAN3Synthesis: num_layers = {num_layers}, num_critical = {num_critical}; expected "
            f"1 <= num_layers <= {_MAX_LAYERS} and 0 <= num_critical < num_layers"
        )
    for name, value in (("first_cutoff", first_cutoff), ("first_stopband", first_stopband)):
        if not (math.isfinite(value) and 0 < value <= img_resolution / 2):
            raise ConfigError(f"StyleGAN3Synthesis: {name} = {value!r}; expected a number in (0, img_resolution / 2]")
    if not (math.isfinite(last_stopband_rel) and 1 <= last_stopband_rel <= 16):
        raise ConfigError(
            f"StyleGAN3Synthesis: last_stopband_rel = {last_stopband_rel!r}; expected a number in [1, 16]"
        )
    if not 0 <= margin_size <= img_resolution:
        raise ConfigError(f"StyleGAN3Synthesis: margin_size = {margin_size!r}; expected 0 to img_resolution")
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    if rates.min() < 1 or (rates[1:] / rates[:-1]).max() > _MAX_FACTOR or (rates[:-1] / rates[1:]).max() > _MAX_FACTOR:
        raise ConfigError(
            "StyleGAN3Synthesis: constructor arguments give sampling rates "
            f"{[int(r) for r in rates]}; expected rates >= 1 changing by at most {_MAX_FACTOR}x per layer"
        )
    if channels.min() < 1:
        raise ConfigError(
            f"StyleGAN3Synthesis: constructor arguments give a layer 0 channels (channel_base = {channel_base})"
        )
    return [
        LayerSpec(
            index=i,
            channels=int(channels[i]),
            size=int(sizes[i]),
            sampling_rate=int(rates[i]),
            cutoff=float(cutoffs[i]),
            half_width=float(half_widths[i]),
            stopband=float(stopbands[i]),
            use_fp16=bool(rates[i] * (2**num_fp16_res) > img_resolution),
        )
        for i in range(num_layers + 1)
    ]


class SynthesisInput(nn.Module):
    """Fourier features: sin(2 pi (f . xy + phase)) on a size x size grid, rotated/translated by ws[0].

    The affine of w gives (r_c, r_s, t_x, t_y): a rotation (normalised) and a translation of the
    frequencies; the `transform` buffer (identity by default) is a further user transform of the
    output image (`set_transform`), as in the official visualiser.
    """

    transform: torch.Tensor  # buffers
    freqs: torch.Tensor
    phases: torch.Tensor

    def __init__(
        self,
        w_dim: int,  # Intermediate latent (W) dimensionality.
        channels: int,  # Number of output channels.
        size: int,  # Output width = height, pixels.
        sampling_rate: float,  # Output sampling rate.
        bandwidth: float,  # Output bandwidth (the first cutoff).
    ) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = size
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth
        # Frequencies drawn uniformly from a disc of radius `bandwidth` (radial density as the official one).
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad():  # starts as the identity transform
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))  # type: ignore[union-attr]
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand([channels]) - 0.5)
        self.hook_style = HookPoint()
        self.hook_out = HookPoint()

    @property
    def style_dim(self) -> int:
        return 4

    def style(self, w: torch.Tensor) -> torch.Tensor:
        return self.affine(w)

    def set_transform(self, translate: Sequence[float] = (0.0, 0.0), rotate: float = 0.0) -> None:
        """Translate the output image by `translate` (in image units: 1 = the image's width) and rotate it
        by `rotate` degrees; the buffer holds the inverse, as the official visualiser sets it."""
        a = math.radians(rotate)
        m = torch.tensor(
            [[math.cos(a), math.sin(a), translate[0]], [-math.sin(a), math.cos(a), translate[1]], [0.0, 0.0, 1.0]],
            dtype=torch.float64,
        )
        self.transform.copy_(torch.linalg.inv(m).to(self.transform.dtype))

    def forward(self, w: Optional[torch.Tensor] = None, style: Optional[torch.Tensor] = None) -> torch.Tensor:
        """w [N, w_dim] (or `style` [N, 4], the affine's output) -> features [N, channels, size, size]."""
        t = self.hook_style(self.affine(w) if style is None else style)
        n, device = t.shape[0], t.device
        t = t / t[:, :2].norm(dim=1, keepdim=True)  # (cos, sin) of the rotation, and the translation
        m_r = torch.eye(3, device=device, dtype=t.dtype).unsqueeze(0).repeat([n, 1, 1])  # inverse rotation of the image
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = torch.eye(3, device=device, dtype=t.dtype).unsqueeze(0).repeat([n, 1, 1])  # inverse translation
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)  # rotate, then translate, then the user's transform

        freqs, phases = self.freqs.unsqueeze(0), self.phases.unsqueeze(0)
        phases = phases + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        # A user transform can push frequencies beyond the band: fade those out instead of aliasing.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        theta = torch.eye(2, 3, device=device, dtype=t.dtype)
        theta[0, 0] = 0.5 * self.size / self.sampling_rate
        theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grids = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)
        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return self.hook_out(x.permute(0, 3, 1, 2))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, size={self.size}, rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}"


class StyleGAN3Layer(nn.Module):
    """Modulated conv, then bias + filtered leaky ReLU between this layer's input and output grids."""

    magnitude_ema: torch.Tensor  # buffers
    up_filter: Optional[torch.Tensor]
    down_filter: Optional[torch.Tensor]

    def __init__(
        self,
        w_dim: int,  # Intermediate latent (W) dimensionality.
        is_torgb: bool,  # The final ToRGB layer (1x1, no demodulation, linear)?
        is_critically_sampled: bool,  # Cutoff at Nyquist (the last layers): no radial filter.
        use_fp16: bool,  # Run in float16 on GPUs?
        in_channels: int,  # Input channels.
        out_channels: int,  # Output channels.
        in_size: int,  # Input width = height.
        out_size: int,  # Output width = height.
        in_sampling_rate: int,  # Input sampling rate (s).
        out_sampling_rate: int,  # Output sampling rate (s).
        in_cutoff: float,  # Input cutoff frequency (f_c).
        out_cutoff: float,  # Output cutoff frequency (f_c).
        in_half_width: float,  # Input transition band half-width (f_h).
        out_half_width: float,  # Output transition band half-width (f_h).
        conv_kernel: int = 3,  # Convolution kernel size (1 for ToRGB whatever this says).
        filter_size: int = 6,  # Low-pass taps per unit of the resampling factor.
        lrelu_upsampling: int = 2,  # Temporary sampling rate of the nonlinearity, relative (ignored for ToRGB).
        use_radial_filters: bool = False,  # Radially symmetric downsampling filter (config R)?
        conv_clamp: Optional[float] = 256,  # Clamp the output to [-X, +X]; None = no clamping.
        magnitude_ema_beta: float = 0.999,  # Decay of the input magnitude's moving average (training).
    ) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = in_size
        self.out_size = out_size
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # Resampling factors and their low-pass filters.
        self.up_factor = self._factor(self.tmp_sampling_rate, in_sampling_rate)
        self.down_factor = self._factor(self.tmp_sampling_rate, out_sampling_rate)
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        if max(self.up_taps, self.down_taps) > _MAX_TAPS:
            raise ConfigError(
                f"StyleGAN3Layer: filters of {max(self.up_taps, self.down_taps)} taps (at most {_MAX_TAPS})"
            )
        self.down_radial = use_radial_filters and not is_critically_sampled
        fs = self.tmp_sampling_rate
        self.register_buffer("up_filter", design_lowpass_filter(self.up_taps, in_cutoff, in_half_width * 2, fs))
        self.register_buffer(
            "down_filter",
            design_lowpass_filter(self.down_taps, out_cutoff, out_half_width * 2, fs, radial=self.down_radial),
        )

        # Padding that keeps the sample positions centred (the paper's symmetric interpretation, app. C.3).
        pad_total = (out_size - 1) * self.down_factor + 1  # wanted size before downsampling
        pad_total -= (in_size + self.conv_kernel - 1) * self.up_factor  # size after the full conv and upsampling
        pad_total += self.up_taps + self.down_taps - 2  # what the two filters remove
        pad_lo = (pad_total + self.up_factor) // 2
        self.padding = [pad_lo, pad_total - pad_lo, pad_lo, pad_total - pad_lo]
        self.gain = 1.0 if is_torgb else math.sqrt(2)
        self.slope = 1.0 if is_torgb else 0.2
        self.hook_style = HookPoint()
        self.hook_out = HookPoint()

    @staticmethod
    def _factor(high: int, low: int) -> int:
        factor = int(np.rint(high / low))
        if low * factor != high or not 1 <= factor <= _MAX_FACTOR:
            raise ConfigError(
                f"StyleGAN3Layer: sampling rates {high} and {low} are not an integer factor <= {_MAX_FACTOR} apart"
            )
        return factor

    @property
    def style_dim(self) -> int:
        return self.in_channels

    def style(self, w: torch.Tensor) -> torch.Tensor:
        return self.affine(w)

    def forward(
        self,
        x: torch.Tensor,
        w: Optional[torch.Tensor] = None,
        style: Optional[torch.Tensor] = None,
        force_fp32: bool = False,
        fused_modconv: bool = True,
    ) -> torch.Tensor:
        """x [N, in_channels, in_size, in_size] -> [N, out_channels, out_size, out_size]; `style` replaces affine(w)."""
        if x.shape[1:] != (self.in_channels, self.in_size, self.in_size):
            raise ConfigError(
                f"StyleGAN3Layer: input must be [N, {self.in_channels}, {self.in_size}, {self.in_size}], got {tuple(x.shape)}"
            )
        styles = self.hook_style(self.affine(w) if style is None else style)
        weight: torch.Tensor = self.weight
        demodulate = not self.is_torgb
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel**2))
        else:
            # The official layer normalises weight and styles first (the styles over the whole batch);
            # demodulation cancels both up to its epsilon, so this only matters at the float level.
            weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
            styles = styles * styles.square().mean().rsqrt()
        if self.use_fp16 and not force_fp32 and x.device.type == "cuda":
            dtype = torch.float16
        else:  # float32 as NVIDIA's layer; a float64 model stays in float64 (the truth GPU paths are checked against)
            dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        # The input gain is a scalar (1 / RMS of the inputs seen in training): scaling x is scaling the weights.
        x = x.to(dtype) * self.magnitude_ema.rsqrt().to(dtype)
        x = modulated_conv2d(
            x, weight, styles, padding=self.conv_kernel - 1, demodulate=demodulate, fused_modconv=fused_modconv
        )
        x = filtered_lrelu(
            x,
            fu=self.up_filter,
            fd=self.down_filter,
            b=self.bias.to(x.dtype),
            up=self.up_factor,
            down=self.down_factor,
            padding=self.padding,
            gain=self.gain,
            slope=self.slope,
            clamp=self.conv_clamp,
        )
        return self.hook_out(x)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_channels}, out={self.out_channels}, size={self.in_size}->{self.out_size}, "
            f"rate={self.in_sampling_rate}->{self.out_sampling_rate}, up={self.up_factor}, down={self.down_factor}, "
            f"torgb={self.is_torgb}, radial={self.down_radial}"
        )


class StyleGAN3Synthesis(StyleSpaceMixin, nn.Module):
    """ws [N, num_layers + 2, w_dim] -> image [N, img_channels, R, R]: the input takes ws[0], layer i ws[i + 1].

    S space: the input's affine output (4 numbers: rotation and translation) and every layer's styles,
    named 'input' and as the official layers ('L0_36_1024', ..., the last one ToRGB).
    """

    def __init__(
        self,
        w_dim: int,  # Intermediate latent (W) dimensionality.
        img_resolution: int,  # Output resolution.
        img_channels: int,  # Number of color channels.
        channel_base: int = 32768,  # Overall multiplier for the number of channels.
        channel_max: int = 512,  # Maximum number of channels in any layer.
        num_layers: int = 14,  # Layers excluding the Fourier-feature input and ToRGB.
        num_critical: int = 2,  # Critically sampled layers at the end.
        first_cutoff: float = 2,  # Cutoff frequency of the first layer (f_{c,0}).
        first_stopband: float = 2**2.1,  # Minimum stop band of the first layer (f_{t,0}).
        last_stopband_rel: float = 2**0.3,  # Minimum stop band of the last layer, relative to its cutoff.
        margin_size: int = 10,  # Extra pixels around the image in the intermediate layers.
        output_scale: float = 0.25,  # Scale of the output image.
        num_fp16_res: int = 4,  # float16 (on GPUs) for layers sampling above img_resolution / 2**num_fp16_res.
        **layer_kwargs: Any,  # Arguments of StyleGAN3Layer (conv_kernel, use_radial_filters, conv_clamp, ...).
    ) -> None:
        kwargs = dict(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, channel_base=channel_base)
        kwargs.update(channel_max=channel_max, num_fp16_res=num_fp16_res, margin_size=margin_size, **layer_kwargs)
        check_arguments("StyleGAN3Synthesis", kwargs)
        check_resolution(img_resolution)
        schedule = layer_schedule(
            img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
            first_cutoff, first_stopband, last_stopband_rel, margin_size, num_fp16_res,
        )  # fmt: skip
        kernel = int(layer_kwargs.get("conv_kernel", 3))
        check_size(
            "StyleGAN3Synthesis",
            sum(a.channels * b.channels * kernel**2 + w_dim * a.channels for a, b in zip(schedule, schedule[1:])),
        )
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.channel_base = channel_base  # read by the discriminators latentlab builds for a generator
        self.channel_max = channel_max
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res
        self.num_ws = num_layers + 2
        self.schedule = schedule
        first = schedule[0]
        self.input = SynthesisInput(w_dim, first.channels, first.size, first.sampling_rate, first.cutoff)
        self.layer_names: List[str] = []
        for spec in schedule:
            prev = schedule[max(spec.index - 1, 0)]
            layer = StyleGAN3Layer(
                w_dim=w_dim,
                is_torgb=spec.index == num_layers,
                is_critically_sampled=spec.index >= num_layers - num_critical,
                use_fp16=spec.use_fp16,
                in_channels=prev.channels,
                out_channels=spec.channels,
                in_size=prev.size,
                out_size=spec.size,
                in_sampling_rate=prev.sampling_rate,
                out_sampling_rate=spec.sampling_rate,
                in_cutoff=prev.cutoff,
                out_cutoff=spec.cutoff,
                in_half_width=prev.half_width,
                out_half_width=spec.half_width,
                **layer_kwargs,
            )
            name = f"L{spec.index}_{spec.size}_{spec.channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)
        self.hook_img = HookPoint()

    def layers(self) -> List[StyleGAN3Layer]:
        return [getattr(self, name) for name in self.layer_names]

    def style_layers(self) -> List[Tuple[str, StyleLayer, int]]:
        """[(name, layer, w_index)]: 'input' (ws[0]) and the layers (ws[1:]), in ws order."""
        return [("input", self.input, 0)] + [
            (name, getattr(self, name), i + 1) for i, name in enumerate(self.layer_names)
        ]

    def ws_resolutions(self) -> List[int]:
        """The resolution a ws index stands for: its layer's band limit 2 f_c rounded to a power of two
        (log scale), so that the StyleGAN levels (coarse 4-8, middle 16-32, fine 64+) apply."""
        bands = [self.schedule[0].cutoff] + [spec.cutoff for spec in self.schedule]
        return [int(2 ** round(math.log2(2 * c))) for c in bands]

    def forward(
        self,
        ws: Optional[torch.Tensor] = None,
        styles: Union[Mapping[str, torch.Tensor], torch.Tensor, None] = None,
        noise_mode: str = "const",
        force_fp32: bool = False,
        fused_modconv: Optional[bool] = None,
    ) -> torch.Tensor:
        """Render images from ws, or from styles (a dict as from `compute_styles`, or a flat tensor); with both,
        the given styles override the layers they name. noise_mode is accepted and unused (no noise inputs)."""
        if noise_mode not in NOISE_MODES:
            raise ConfigError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        ws, given = self._normalise_inputs(ws, styles)
        per_layer: Mapping[str, torch.Tensor] = given or {}
        ref = ws if ws is not None else next(iter(per_layer.values()))
        if fused_modconv is None:
            # Grouped convs win on GPUs; on the CPU one batched conv with scaled activations is faster.
            fused_modconv = ref.device.type == "cuda" and not self.training

        def w_at(i):
            return ws[:, i] if ws is not None else None

        x = self.input(w_at(0), style=per_layer.get("input"))
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(
                x, w_at(i + 1), style=per_layer.get(name), force_fp32=force_fp32, fused_modconv=fused_modconv
            )
        if self.output_scale != 1:
            x = x * self.output_scale
        return self.hook_img(x.to(torch.float32))

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, res={self.img_resolution}, channels={self.img_channels}, num_ws={self.num_ws}, "
            f"layers={self.num_layers}, critical={self.num_critical}, margin={self.margin_size}"
        )


class StyleGAN3Generator(nn.Module):
    """G(z, c) = synthesis(mapping(z, c)) with the official StyleGAN3 constructor arguments.

    The synthesis arguments are flat, as in NVlabs/stylegan3 (`channel_base`, `conv_kernel`,
    `use_radial_filters`, ...: `StyleGAN3Synthesis` and `StyleGAN3Layer`); the mapping network is
    StyleGAN2's with StyleGAN3's defaults (2 layers, w_avg_beta 0.998), overridden by `mapping_kwargs`.
    """

    generation = 3
    MAPPING_DEFAULTS: Dict[str, Any] = dict(num_layers=2, w_avg_beta=0.998)

    def __init__(
        self,
        z_dim: int,  # Input latent (Z) dimensionality.
        c_dim: int,  # Conditioning label (C) dimensionality, 0 = no labels.
        w_dim: int,  # Intermediate latent (W) dimensionality.
        img_resolution: int,  # Output resolution.
        img_channels: int,  # Number of output color channels.
        mapping_kwargs: Optional[Mapping[str, Any]] = None,  # Arguments of the MappingNetwork.
        **synthesis_kwargs: Any,  # Arguments of StyleGAN3Synthesis (and its layers).
    ) -> None:
        sizes = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels)
        check_arguments(  # first: mapping_kwargs may be anything until then
            "StyleGAN3Generator", dict(sizes, mapping_kwargs=mapping_kwargs, **synthesis_kwargs), MAPPING_RANGES
        )
        given = {} if mapping_kwargs is None else dict(mapping_kwargs=dict(mapping_kwargs))  # recorded as given
        mapping_kwargs = dict(mapping_kwargs or {})
        super().__init__()
        self.init_kwargs = copy.deepcopy(dict(sizes, **given, **synthesis_kwargs))
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = StyleGAN3Synthesis(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **{**self.MAPPING_DEFAULTS, **mapping_kwargs})

    def empty_c(self, n: int, device: Union[torch.device, str, None] = None) -> torch.Tensor:
        return torch.zeros([n, self.c_dim], device=device)

    def forward(
        self,
        z: torch.Tensor,
        c: Optional[torch.Tensor] = None,
        truncation_psi: float = 1,
        truncation_cutoff: Optional[int] = None,
        noise_mode: str = "const",
        **synthesis_kwargs: Any,
    ) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] (None for unconditional) -> images [N, C, R, R] in about [-1, 1]."""
        if c is None and self.c_dim == 0:
            c = self.empty_c(z.shape[0], z.device)
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, "
            f"res={self.img_resolution}, channels={self.img_channels}"
        )


def parse_translate(value: Union[str, Sequence[float]]) -> Tuple[float, float]:
    """'X,Y' (or two numbers) -> (x, y): a translation in image units (1 = the image's width); finite only."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        xy = tuple(float(v) for v in parts)
    except (TypeError, ValueError):
        xy = ()
    if len(xy) != 2 or not all(math.isfinite(v) for v in xy):
        raise ConfigError(f"translation must be two finite numbers X,Y (image units), got {value!r:.60}")
    return xy[0], xy[1]


def check_transform(G: nn.Module, translate: Optional[Sequence[float]], rotate: Optional[float]) -> None:
    """Refuse a translation/rotation for a generator without StyleGAN3's input, or a non-finite angle."""
    if translate is None and rotate is None:
        return
    if not isinstance(getattr(getattr(G, "synthesis", None), "input", None), SynthesisInput):
        raise ConfigError(
            f"translation and rotation need a StyleGAN3 generator (its Fourier-feature input); this is a "
            f"generation-{getattr(G, 'generation', 2)} model"
        )
    if rotate is not None and not math.isfinite(rotate):
        raise ConfigError(f"rotation must be a finite number of degrees, got {rotate!r}")


@contextmanager
def input_transform(G: nn.Module, translate: Sequence[float] = (0.0, 0.0), rotate: float = 0.0) -> Iterator[None]:
    """Render a StyleGAN3 generator's images translated / rotated (degrees) inside a `with` block; the
    stored transform is restored afterwards, also on errors."""
    check_transform(G, translate, rotate)
    synthesis_input = getattr(G.synthesis, "input", None)
    assert isinstance(synthesis_input, SynthesisInput)
    saved = synthesis_input.transform.clone()
    try:
        synthesis_input.set_transform(translate, rotate)
        yield
    finally:
        synthesis_input.transform.copy_(saved)
