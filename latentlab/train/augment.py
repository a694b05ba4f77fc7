"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data").

`AugmentPipe` transforms every image the discriminator sees, real and generated, each transform applied to
each image with probability `p * multiplier`; every step is differentiable, so the generator is trained
through the augmented fakes and R1 sees the gradient with respect to the un-augmented reals. The stages run
in the paper's order:

  1. pixel blitting: x-flip, 90-degree rotations, integer translation (as in the official pipeline these go
     through the same resampling as stage 2, so a flip or an odd quarter turn also passes the asymmetric sym6
     filter: exact up to that low-pass, not a pure copy of pixels);
  2. general geometric: isotropic scaling, pre-rotation, anisotropic scaling, post-rotation, fractional
     translation. Stages 1 and 2 compose one inverse 3x3 matrix per image, applied once: reflect-pad just
     enough, upsample 2x with the symmetric sym6 wavelet low-pass, bilinear resampling, low-pass and
     downsample back (aliasing stays below what D could notice);
  3. colour: brightness, contrast, luma flip, hue rotation, saturation, composed into one 4x4 matrix;
  4. image-space filtering: four frequency bands (a sym2 filter bank) amplified at random, total power
     kept at the expected 1/f spectrum's;
  5. corruptions: additive Gaussian noise, cutout.

The random numbers are drawn in the official pipeline's order and shapes, so on the same torch RNG state the
output equals StyleGAN2-ADA's `training/augment.py` (tests compare with its recorded outputs). One deliberate
difference: at p = 0 the images are returned as they are, bit for bit, where the official pipeline still
resamples them through the identity matrix (a ~1e-6 change).

`AdaptiveP` is ADA's controller of p: r_t = E[sign(D(real))] over every D pass on reals since the last
adjustment; every `interval` steps p += sign(r_t - target) * batch * interval / (speed_kimg * 1000), at
least 0.
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..ops.upfirdn2d import downsample2d, setup_filter, upsample2d

__all__ = ["AugmentPipe", "AdaptiveP", "PRESETS", "AUG_MODES", "make_pipe"]

# Low-pass decomposition filters of two Daubechies symlets (the values PyWavelets tabulates).
SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)
SYM6 = (
    0.015404109327027373,
    0.0034907120842174702,
    -0.11799011114819057,
    -0.048311742585633,
    0.4910559419267466,
    0.787641141030194,
    0.3379294217276218,
    -0.07263752278646252,
    -0.021060292512300564,
    0.04472490177066578,
    0.0017677118642428036,
    -0.007800708325034148,
)

_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
# The paper's pipelines: each group at full multiplier (the strengths are the constructor's defaults).
PRESETS = {
    "blit": _BLIT,
    "geom": _GEOM,
    "color": _COLOR,
    "filter": dict(imgfilter=1),
    "noise": dict(noise=1),
    "cutout": dict(cutout=1),
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1, "cutout": 1},
}
AUG_MODES = ("noaug", "ada", "fixed")  # as StyleGAN2-ADA's train.py --aug

_GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")


def _filter_bank(taps=SYM2, bands=4):
    """[bands, n] FIR filters splitting the spectrum into octaves (band 0 lowest), summing to a unit impulse.

    Built as the paper does: starting from the identity, each round upsamples the bank by 2 (a zero between
    taps), low-passes it with H(z) H(1/z) / 2 and adds the high-pass H(-z) H(-1/z) / 2 to band i's centre.
    """
    lo = np.asarray(taps, dtype=np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2 = np.convolve(lo, lo[::-1]) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bank = np.eye(bands, 1)
    for i in range(1, bands):
        up = np.zeros([bands, bank.shape[1] * 2 - 1])
        up[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in up])
        mid = (bank.shape[1] - hi2.size) // 2
        bank[i, mid : mid + hi2.size] += hi2
    return bank


# ------------------------------------------------------------------------------------------ matrices
# Batched homogeneous matrices; every entry is a [B] tensor or a number (broadcast to the batch).


def _matrix(rows, batch, device):
    flat = [
        e.to(torch.float32) if torch.is_tensor(e) else torch.full([batch], float(e), device=device)
        for row in rows
        for e in row
    ]
    return torch.stack(flat, dim=-1).reshape(batch, len(rows), len(rows[0]))


def _translate2d(tx, ty, batch, device):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], batch, device)


def _scale2d(sx, sy, batch, device):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], batch, device)


def _rotate2d(theta, batch, device):
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, torch.sin(-theta), 0], [s, c, 0], [0, 0, 1]], batch, device)


def _const3(rows, device):
    return torch.tensor(rows, dtype=torch.float32, device=device)


def _rotate3d(v, theta, batch, device):
    """Rotation by theta about the unit axis v (Rodrigues), as a homogeneous 4x4 matrix."""
    vx, vy, vz = v[0], v[1], v[2]
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    rows = [
        [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
        [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
        [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
        [0, 0, 0, 1],
    ]
    return _matrix(rows, batch, device)


class AugmentPipe(torch.nn.Module):
    """The ADA augmentation pipeline (module docstring). Multipliers scale p per transform (0 = off)."""

    def __init__(
        self,
        xflip: float = 0,  # Probability multiplier for x-flip.
        rotate90: float = 0,  # Probability multiplier for 90-degree rotations.
        xint: float = 0,  # Probability multiplier for integer translation.
        xint_max: float = 0.125,  # Range of integer translation, relative to the image size.
        scale: float = 0,  # Probability multiplier for isotropic scaling.
        rotate: float = 0,  # Probability multiplier for arbitrary rotation (pre or post: p overall).
        aniso: float = 0,  # Probability multiplier for anisotropic scaling.
        xfrac: float = 0,  # Probability multiplier for fractional translation.
        scale_std: float = 0.2,  # Log2 standard deviation of isotropic scaling.
        rotate_max: float = 1,  # Range of arbitrary rotation, 1 = full circle.
        aniso_std: float = 0.2,  # Log2 standard deviation of anisotropic scaling.
        xfrac_std: float = 0.125,  # Standard deviation of fractional translation, relative to the image size.
        brightness: float = 0,  # Probability multiplier for brightness.
        contrast: float = 0,  # Probability multiplier for contrast.
        lumaflip: float = 0,  # Probability multiplier for luma flip.
        hue: float = 0,  # Probability multiplier for hue rotation.
        saturation: float = 0,  # Probability multiplier for saturation.
        brightness_std: float = 0.2,  # Standard deviation of the brightness offset.
        contrast_std: float = 0.5,  # Log2 standard deviation of contrast.
        hue_max: float = 1,  # Range of hue rotation, 1 = full circle.
        saturation_std: float = 1,  # Log2 standard deviation of saturation.
        imgfilter: float = 0,  # Probability multiplier for image-space filtering.
        imgfilter_bands: Sequence[float] = (1, 1, 1, 1),  # Probability multipliers of the 4 frequency bands.
        imgfilter_std: float = 1,  # Log2 standard deviation of a band's amplification.
        noise: float = 0,  # Probability multiplier for additive RGB noise.
        cutout: float = 0,  # Probability multiplier for cutout.
        noise_std: float = 0.1,  # Standard deviation of the additive noise.
        cutout_size: float = 0.5,  # Side of the cutout square, relative to the image size.
    ) -> None:
        init_kwargs = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        init_kwargs["imgfilter_bands"] = [float(b) for b in _bands(imgfilter_bands)]
        for k, v in init_kwargs.items():
            if k != "imgfilter_bands" and not (_is_real(v) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"AugmentPipe: {k} must be a finite number >= 0, got {v!r:.60}")
        if init_kwargs["cutout_size"] > 1 or init_kwargs["xint_max"] > 1:
            raise ConfigError("AugmentPipe: cutout_size and xint_max are fractions of the image size (at most 1)")
        super().__init__()
        self.init_kwargs = copy.deepcopy(init_kwargs)
        for k, v in init_kwargs.items():
            setattr(self, k, v if k == "imgfilter_bands" else float(v))
        self.register_buffer("p", torch.ones([]))  # Overall probability multiplier (the trainer sets it).
        self.register_buffer("Hz_geom", setup_filter(list(SYM6)))  # sym6 low-pass of the 2x resampling
        self.register_buffer("Hz_fbank", torch.as_tensor(_filter_bank(), dtype=torch.float32))

    @classmethod
    def from_preset(cls, name: str, **overrides) -> AugmentPipe:
        """The pipeline `name` of PRESETS ('bgc' is StyleGAN2-ADA's default), with optional argument changes."""
        if name not in PRESETS:
            raise ConfigError(f"unknown augmentation pipeline {name!r}; known: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    @property
    def geometric(self) -> bool:
        return any(getattr(self, k) > 0 for k in _GEOMETRIC)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Augment [N, C, H, W] float images (C = 1 or 3 when colour transforms are on); same shape out."""
        if not (torch.is_tensor(images) and images.ndim == 4 and images.is_floating_point()):
            raise ConfigError(f"AugmentPipe expects a float [N, C, H, W] tensor, got {_describe(images)}")
        if float(self.p) == 0:
            return images  # identity, bit for bit (the official pipeline still resamples)
        images = images.to(torch.float32)
        if self.geometric:
            images = self._resample(images, self._geometric_matrix(images))
        images = self._color(images)
        if self.imgfilter > 0:
            images = self._filter(images)
        if self.noise > 0:
            images = self._noise(images)
        if self.cutout > 0:
            images = self._cutout(images)
        return images

    # ---------------------------------------------------------------------------------- drawing

    def _gate(self, value, prob, neutral):
        """`value` where a uniform draw (one per image) falls below `prob`, else `neutral`."""
        shape = [value.shape[0]] + [1] * (value.ndim - 1)
        keep = torch.rand(shape, device=value.device) < prob
        return torch.where(keep, value, torch.full_like(value, neutral))

    # ---------------------------------------------------------------------------------- geometry

    def _geometric_matrix(self, images):
        """G_inv [N, 3, 3]: output pixel -> input pixel (centred coordinates), composed left to right."""
        n, _, h, w = images.shape
        dev, p = images.device, self.p
        G = torch.eye(3, device=dev).expand(n, 3, 3)
        if self.xflip > 0:
            i = self._gate(torch.floor(torch.rand([n], device=dev) * 2), self.xflip * p, 0)
            G = G @ _scale2d(1 / (1 - 2 * i), 1, n, dev)
        if self.rotate90 > 0:
            i = self._gate(torch.floor(torch.rand([n], device=dev) * 4), self.rotate90 * p, 0)
            G = G @ _rotate2d(-(-np.pi / 2 * i), n, dev)
        if self.xint > 0:
            t = self._gate((torch.rand([n, 2], device=dev) * 2 - 1) * self.xint_max, self.xint * p, 0)
            G = G @ _translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h), n, dev)
        if self.scale > 0:
            s = self._gate(torch.exp2(torch.randn([n], device=dev) * self.scale_std), self.scale * p, 1)
            G = G @ _scale2d(1 / s, 1 / s, n, dev)
        p_rot = 1 - torch.sqrt((1 - self.rotate * p).clamp(0, 1))  # P(pre or post rotation) = rotate * p
        if self.rotate > 0:
            theta = self._gate((torch.rand([n], device=dev) * 2 - 1) * np.pi * self.rotate_max, p_rot, 0)
            G = G @ _rotate2d(theta, n, dev)  # before the anisotropic scaling
        if self.aniso > 0:
            s = self._gate(torch.exp2(torch.randn([n], device=dev) * self.aniso_std), self.aniso * p, 1)
            G = G @ _scale2d(1 / s, 1 / (1 / s), n, dev)
        if self.rotate > 0:
            theta = self._gate((torch.rand([n], device=dev) * 2 - 1) * np.pi * self.rotate_max, p_rot, 0)
            G = G @ _rotate2d(theta, n, dev)  # after it
        if self.xfrac > 0:
            t = self._gate(torch.randn([n, 2], device=dev) * self.xfrac_std, self.xfrac * p, 0)
            G = G @ _translate2d(-(t[:, 0] * w), -(t[:, 1] * h), n, dev)
        return G

    def _resample(self, images, G):
        """Apply G (output -> input pixel map) through a 2x-oversampled bilinear resampling."""
        n, c, h, w = images.shape
        dev = images.device
        cx, cy = (w - 1) / 2, (h - 1) / 2
        pad = self.Hz_geom.shape[0] // 4  # the low-pass's reach at the input resolution

        # Reflect-pad just enough that every sampled point (the corners of the output mapped back) is inside.
        corners = _const3([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], dev)
        mapped = (G @ corners.t())[:, :2, :].permute(1, 0, 2).flatten(1)  # [xy, N * 4]
        margin = torch.cat([-mapped, mapped]).max(dim=1).values  # x0, y0, x1, y1
        margin = margin + _const3([pad * 2 - cx, pad * 2 - cy] * 2, dev)
        margin = margin.max(_const3([0, 0] * 2, dev)).min(_const3([w - 1, h - 1] * 2, dev))
        mx0, my0, mx1, my1 = (int(v) for v in margin.ceil().to(torch.int32))
        images = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
        G = _translate2d((mx0 - mx1) / 2, (my0 - my1) / 2, n, dev) @ G

        # Upsample 2x; the matrix follows into the upsampled pixel grid.
        images = upsample2d(images, self.Hz_geom, up=2)
        G = _scale2d(2, 2, n, dev) @ G @ _scale2d(1 / 2, 1 / 2, n, dev)
        G = _translate2d(-0.5, -0.5, n, dev) @ G @ _translate2d(0.5, 0.5, n, dev)

        # Resample into a grid 2x the padded-by-`pad` output, in grid_sample's [-1, 1] coordinates.
        shape = [n, c, (h + pad * 2) * 2, (w + pad * 2) * 2]
        G = (
            _scale2d(2 / images.shape[3], 2 / images.shape[2], n, dev)
            @ G
            @ _scale2d(1 / (2 / shape[3]), 1 / (2 / shape[2]), n, dev)
        )
        grid = F.affine_grid(G[:, :2, :], shape, align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

        # Low-pass, downsample 2x and crop the `pad` border.
        return downsample2d(images, self.Hz_geom, down=2, padding=-pad * 2, flip_filter=True)

    # ---------------------------------------------------------------------------------- colour

    def _color(self, images):
        n, c, h, w = images.shape
        dev, p = images.device, self.p
        steps = []  # 4x4 matrices, applied in order (each one left-multiplies the composition)
        if self.brightness > 0:
            b = self._gate(torch.randn([n], device=dev) * self.brightness_std, self.brightness * p, 0)
            steps.append(_matrix([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]], n, dev))
        if self.contrast > 0:
            k = self._gate(torch.exp2(torch.randn([n], device=dev) * self.contrast_std), self.contrast * p, 1)
            steps.append(_matrix([[k, 0, 0, 0], [0, k, 0, 0], [0, 0, k, 0], [0, 0, 0, 1]], n, dev))
        luma = torch.as_tensor(np.asarray([1, 1, 1, 0]) / np.sqrt(3), dtype=torch.float32, device=dev)
        eye = torch.eye(4, device=dev)
        if self.lumaflip > 0:  # Householder reflection of the luma axis
            i = self._gate(torch.floor(torch.rand([n, 1, 1], device=dev) * 2), self.lumaflip * p, 0)
            steps.append(eye - 2 * luma.outer(luma) * i)
        if self.hue > 0 and c > 1:  # rotation about the luma axis
            theta = self._gate((torch.rand([n], device=dev) * 2 - 1) * np.pi * self.hue_max, self.hue * p, 0)
            steps.append(_rotate3d(luma, theta, n, dev))
        if self.saturation > 0 and c > 1:  # scaling of the chroma plane
            s = self._gate(torch.exp2(torch.randn([n, 1, 1], device=dev) * self.saturation_std), self.saturation * p, 1)
            steps.append(luma.outer(luma) + (eye - luma.outer(luma)) * s)
        if not steps:
            return images
        C = eye
        for m in steps:
            C = m @ C
        if c not in (1, 3):
            raise ConfigError(f"AugmentPipe: colour transforms need 1 or 3 channels, got {c}")
        flat = images.reshape(n, c, h * w)
        if c == 3:
            flat = C[:, :3, :3] @ flat + C[:, :3, 3:]
        else:  # greyscale: the mean of the RGB rows applied to a grey pixel
            C = C[:, :3, :].mean(dim=1, keepdim=True)
            flat = flat * C[:, :, :3].sum(dim=2, keepdim=True) + C[:, :, 3:]
        return flat.reshape(n, c, h, w)

    # ---------------------------------------------------------------------------------- filtering, corruptions

    def _filter(self, images):
        n, c, h, w = images.shape
        dev = images.device
        bands = self.Hz_fbank.shape[0]
        half = self.Hz_fbank.shape[1] // 2
        if min(h, w) <= half:
            raise ConfigError(
                f"AugmentPipe: image-space filtering needs images larger than {half} px (got {h}x{w}); "
                "use a pipeline without it (e.g. bgc)"
            )
        expected_power = torch.as_tensor(np.array([10, 1, 1, 1]) / 13, dtype=torch.float32, device=dev)  # ~1/f
        gain = torch.ones([n, bands], device=dev)
        for i, strength in enumerate(self.imgfilter_bands):
            t_i = self._gate(
                torch.exp2(torch.randn([n], device=dev) * self.imgfilter_std), self.imgfilter * self.p * strength, 1
            )
            t = torch.ones([n, bands], device=dev)
            t[:, i] = t_i
            gain = gain * (t / (expected_power * t.square()).sum(dim=-1, keepdim=True).sqrt())  # power kept
        taps = (gain @ self.Hz_fbank).unsqueeze(1).repeat([1, c, 1]).reshape(n * c, 1, -1)
        x = F.pad(images.reshape(1, n * c, h, w), [half] * 4, mode="reflect")
        x = F.conv2d(x, taps.unsqueeze(2), groups=n * c)
        x = F.conv2d(x, taps.unsqueeze(3), groups=n * c)
        return x.reshape(n, c, h, w)

    def _noise(self, images):
        n, c, h, w = images.shape
        dev = images.device
        sigma = self._gate(torch.randn([n, 1, 1, 1], device=dev).abs() * self.noise_std, self.noise * self.p, 0)
        return images + torch.randn([n, c, h, w], device=dev) * sigma

    def _cutout(self, images):
        n, c, h, w = images.shape
        dev = images.device
        size = self._gate(torch.full([n, 2, 1, 1, 1], self.cutout_size, device=dev), self.cutout * self.p, 0)
        centre = torch.rand([n, 2, 1, 1, 1], device=dev)
        x = torch.arange(w, device=dev).reshape(1, 1, 1, -1)
        y = torch.arange(h, device=dev).reshape(1, 1, -1, 1)
        outside_x = ((x + 0.5) / w - centre[:, 0]).abs() >= size[:, 0] / 2
        outside_y = ((y + 0.5) / h - centre[:, 1]).abs() >= size[:, 1] / 2
        return images * torch.logical_or(outside_x, outside_y).to(torch.float32)

    def extra_repr(self) -> str:
        on = [k for k, v in self.init_kwargs.items() if k in _ON_KEYS and v > 0]
        return f"p={float(self.p):.4f}, transforms={','.join(on) or 'none'}"


_ON_KEYS = set(_GEOMETRIC) | set(_COLOR) | {"imgfilter", "noise", "cutout"}


def _is_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _bands(value):
    if isinstance(value, (str, bytes)):
        raise ConfigError(f"AugmentPipe: imgfilter_bands must be 4 numbers, got {value!r:.60}")
    try:
        bands = [float(b) for b in value]
    except (TypeError, ValueError):
        raise ConfigError(f"AugmentPipe: imgfilter_bands must be 4 numbers, got {value!r:.60}") from None
    if len(bands) != 4 or not all(math.isfinite(b) and b >= 0 for b in bands):
        raise ConfigError(f"AugmentPipe: imgfilter_bands must be 4 finite numbers >= 0, got {value!r:.60}")
    return bands


def _describe(x):
    if torch.is_tensor(x):
        return f"a {x.dtype} tensor of shape {list(x.shape)}"
    return f"a {type(x).__name__}"


class AdaptiveP:
    """ADA's p controller: r_t = E[sign(D(real))] since the last adjustment, p moved towards r_t = target.

    target: the r_t to hold (0.6 in the paper). interval: steps between adjustments (4). speed_kimg: kimg for
    p to move by 1 (500). `observe(real_logits)` after every D pass on reals (main and R1 phases, as the
    official loop reports them); `update(step, batch_size, p)` after each step returns the new p on the
    adjustment steps (None otherwise). `sync`: optional all-reduce (sum) of a tensor across processes.
    """

    def __init__(self, target: float = 0.6, interval: int = 4, speed_kimg: float = 500) -> None:
        if not (_is_real(target) and 0 <= target <= 1):
            raise ConfigError(f"ADA target must be in [0, 1], got {target!r}")
        if not (isinstance(interval, numbers.Integral) and not isinstance(interval, bool) and interval >= 1):
            raise ConfigError(f"ADA interval must be an integer >= 1, got {interval!r}")
        if not (_is_real(speed_kimg) and speed_kimg > 0 and math.isfinite(speed_kimg)):
            raise ConfigError(f"ADA speed must be a finite number of kimg > 0, got {speed_kimg!r}")
        self.target, self.interval, self.speed_kimg = float(target), int(interval), float(speed_kimg)
        self.sign_sum, self.count = 0.0, 0
        self.last_rt: Optional[float] = None

    def observe(self, real_logits: torch.Tensor) -> None:
        signs = real_logits.detach().sign()
        self.sign_sum += float(signs.sum())
        self.count += signs.numel()

    def update(self, step: int, batch_size: int, p: float, sync=None) -> Optional[float]:
        """After step `step` (counted from 1): the new p if this is an adjustment step, else None."""
        if step % self.interval:
            return None
        totals = torch.tensor([self.sign_sum, float(self.count)], dtype=torch.float64)
        if sync is not None:
            totals = sync(totals)
        self.sign_sum, self.count = 0.0, 0
        if totals[1] == 0:
            return None
        self.last_rt = float(totals[0] / totals[1])
        adjust = float(np.sign(self.last_rt - self.target)) * (batch_size * self.interval) / (self.speed_kimg * 1000)
        return max(float(np.float32(p) + np.float32(adjust)), 0.0)

    def state_dict(self) -> dict:
        return {"sign_sum": self.sign_sum, "count": self.count, "last_rt": self.last_rt}

    def load_state_dict(self, state: dict) -> None:
        self.sign_sum, self.count = float(state["sign_sum"]), int(state["count"])
        self.last_rt = None if state.get("last_rt") is None else float(state["last_rt"])


def make_pipe(mode: str, pipe: str = "bgc", p: float = 0.0) -> Optional[AugmentPipe]:
    """The pipeline of a training run: None for 'noaug'; for 'ada' and 'fixed' the preset `pipe` at `p`."""
    if mode not in AUG_MODES:
        raise ConfigError(f"unknown augmentation mode {mode!r}; known: {', '.join(AUG_MODES)}")
    if mode == "noaug":
        return None
    if not (_is_real(p) and 0 <= p <= 1):
        raise ConfigError(f"augmentation probability p must be in [0, 1], got {p!r}")
    aug = AugmentPipe.from_preset(pipe)
    aug.p.fill_(float(p))
    return aug
