"""How generator images become classifier inputs: explicit, deterministic, batched, differentiable.

Steps, in order: grayscale -> RGB (optional), crop (fractions of the image), resize,
range conversion from the generator's [-1, 1] to the classifier's range, optional
clamp, per-channel (x - mean) / std. Every step is a differentiable torch op, so
metrics can take gradients through a classifier.
"""

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError

__all__ = ["Preprocess", "IMAGENET_MEAN", "IMAGENET_STD", "RESIZE_MODES"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# 'box' is the StyleGAN separability metric's downsampling: reshape into factor x factor
# cells and average them (an integer factor only). 'area' is adaptive average pooling.
RESIZE_MODES = ("area", "bilinear", "bicubic", "box")


def _pair(value, what):
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be an int or (h, w), got {value!r}")
    if isinstance(value, int):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ConfigError(f"{what} must be a positive int or a pair (h, w) of them, got {value!r}")
    return tuple(value)


def _floats(value, what, n=None):
    try:
        out = tuple(float(v) for v in value)
    except TypeError:
        raise ConfigError(f"{what} must be a sequence of numbers, got {value!r}") from None
    if n is not None and len(out) != n:
        raise ConfigError(f"{what} must have {n} numbers, got {value!r}")
    if not all(math.isfinite(v) for v in out):
        raise ConfigError(f"{what} must be finite, got {value!r}")
    return out


@dataclass(frozen=True)
class Preprocess:
    """Generator images ([N, C, H, W], about [-1, 1]) -> what a classifier expects.

    resize:           None, an int (square) or (h, w).
    resize_mode:      'area', 'bilinear' (antialiased when shrinking), 'bicubic' (same), or
                      'box' (average non-overlapping factor x factor cells; needs an integer factor,
                      as NVIDIA's separability metric downsamples 1024 -> 256).
    crop:             None or (top, left, height, width) as fractions of the image, applied before resize.
    input_range:      the classifier's range, e.g. (-1, 1), (0, 1) or (0, 255).
    clamp:            clip to input_range after conversion (what saving as a PNG would do).
    mean, std:        per-channel normalisation after range conversion (e.g. ImageNet's), or None.
    grayscale_to_rgb: repeat a single channel three times.
    """

    resize: object = None
    resize_mode: str = "area"
    crop: object = None
    input_range: tuple = (-1.0, 1.0)
    clamp: bool = False
    mean: object = None
    std: object = None
    grayscale_to_rgb: bool = False

    def __post_init__(self):
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        if self.resize is not None:
            put("resize", _pair(self.resize, "resize"))
        if self.resize_mode not in RESIZE_MODES:
            raise ConfigError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}, got {self.resize_mode!r}")
        if self.crop is not None:
            crop = _floats(self.crop, "crop (top, left, height, width)", 4)
            top, left, h, w = crop
            if min(crop) < 0 or h <= 0 or w <= 0 or top + h > 1 + 1e-9 or left + w > 1 + 1e-9:
                raise ConfigError(
                    f"crop must be fractions (top, left, height, width) inside the image, got {self.crop!r}"
                )
            put("crop", crop)
        lo, hi = _floats(self.input_range, "input_range", 2)
        if not lo < hi:
            raise ConfigError(f"input_range must be (low, high) with low < high, got {self.input_range!r}")
        put("input_range", (lo, hi))
        if (self.mean is None) != (self.std is None):
            raise ConfigError("give both mean and std, or neither")
        if self.mean is not None:
            mean, std = _floats(self.mean, "mean"), _floats(self.std, "std")
            if len(mean) != len(std) or not mean:
                raise ConfigError(f"mean and std need one number per channel, got {self.mean!r} and {self.std!r}")
            if min(std) <= 0:
                raise ConfigError(f"std must be positive, got {self.std!r}")
            put("mean", mean)
            put("std", std)
        put("clamp", bool(self.clamp))
        put("grayscale_to_rgb", bool(self.grayscale_to_rgb))

    # ----------------------------------------------------------------------------------------

    def __call__(self, images):
        if not torch.is_tensor(images) or images.ndim != 4 or not images.is_floating_point():
            what = (
                f"a {images.dtype} tensor of shape {tuple(images.shape)}"
                if torch.is_tensor(images)
                else type(images).__name__
            )
            raise ConfigError(f"expected float images [N, C, H, W] in the generator's range, got {what}")
        x = images
        if self.grayscale_to_rgb and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.crop is not None:
            x = self._crop(x)
        if self.resize is not None:
            x = self._resize(x)
        lo, hi = self.input_range
        if (lo, hi) != (-1.0, 1.0):
            x = (x + 1) * ((hi - lo) / 2) + lo
        if self.clamp:
            x = x.clamp(lo, hi)
        if self.mean is not None:
            if x.shape[1] != len(self.mean):
                raise ConfigError(f"mean/std have {len(self.mean)} channels, the images {x.shape[1]}")
            mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
            std = torch.tensor(self.std, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
            x = (x - mean) / std
        return x

    def _crop(self, x):
        H, W = x.shape[-2:]
        top, left, h, w = self.crop
        t, l = int(round(top * H)), int(round(left * W))
        hh, ww = max(1, int(round(h * H))), max(1, int(round(w * W)))
        hh, ww = min(hh, H - t), min(ww, W - l)
        if hh < 1 or ww < 1:
            raise ConfigError(f"crop {self.crop} leaves nothing of a {H}x{W} image")
        return x[:, :, t : t + hh, l : l + ww]

    def _resize(self, x):
        (H, W), (h, w) = x.shape[-2:], self.resize
        if (H, W) == (h, w):
            return x
        if self.resize_mode == "box":
            if H % h or W % w or H // h != W // w:
                raise ConfigError(
                    f"resize_mode 'box' averages factor x factor cells and needs one integer factor: "
                    f"cannot go from {H}x{W} to {h}x{w} (use 'area' or 'bilinear')"
                )
            f = H // h
            return x.reshape(x.shape[0], x.shape[1], h, f, w, f).mean(dim=(3, 5))
        if self.resize_mode == "area":
            return F.adaptive_avg_pool2d(x, (h, w))
        shrink = h < H or w < W
        return F.interpolate(x, size=(h, w), mode=self.resize_mode, align_corners=False, antialias=shrink)

    # ----------------------------------------------------------------------------------------

    def to_dict(self):
        """Plain JSON-friendly data; `Preprocess.from_dict` reverses it."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise ConfigError(f"preprocess settings must be a dict, got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"unknown preprocess setting(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
