"""StyleGAN2-ADA's training configurations (`train.py --cfg`), as data.

Each preset fixes the networks' mapping depth, channel base and maximum and minibatch-std group, and the
training's batch, learning rate, R1 gamma, G_ema half-life and ramp-up, style-mixing probability and
path-length weight. `auto` derives batch, group, width, learning rate, gamma and EMA from the resolution and
the number of processes (the official formulas); `cifar` also turns off path length and mixing and gives D
the 'orig' architecture. Explicit settings override a preset (`TrainingOptions.resolved`, `scratch_networks`).

Deliberate differences from the official script: the number of processes stands for its GPU count; the whole
per-process batch runs at once (the official loop accumulates in rounds of batch // ref_gpus); and fp16 stays
with `--fp16` (the official presets always use it; on a CPU it only costs time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import ConfigError

__all__ = ["Preset", "PRESETS", "preset", "resolve_preset"]


@dataclass(frozen=True)
class Preset:
    ref_gpus: int  # GPUs the preset was tuned for (-1: the run's own count)
    kimg: int  # official training length
    batch: int  # total minibatch (-1: from the resolution)
    mbstd: int  # minibatch-std group size
    fmaps: float  # channel_base = fmaps * 32768
    lr: float
    gamma: float  # R1 weight
    ema_kimg: float  # G_ema half-life
    ema_rampup: Optional[float]  # None: no ramp-up
    map_layers: int
    pl_weight: float = 2.0
    style_mixing_prob: float = 0.9
    d_architecture: str = "resnet"


PRESETS = {
    "auto": Preset(-1, 25000, -1, -1, -1, -1, -1, -1, 0.05, 2),
    "stylegan2": Preset(8, 25000, 32, 4, 1, 0.002, 10, 10, None, 8),
    "paper256": Preset(8, 25000, 64, 8, 0.5, 0.0025, 1, 20, None, 8),
    "paper512": Preset(8, 25000, 64, 8, 1, 0.0025, 0.5, 20, None, 8),
    "paper1024": Preset(8, 25000, 32, 4, 1, 0.002, 2, 10, None, 8),
    "cifar": Preset(2, 100000, 64, 32, 1, 0.0025, 0.01, 500, 0.05, 2, 0.0, 0.0, "orig"),
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown training configuration {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def resolve_preset(name: str, resolution: int, gpus: int = 1) -> dict:
    """The settings of preset `name` for a run at `resolution` on `gpus` processes.

    Returns {'options': TrainingOptions fields, 'network': scratch_networks arguments}; `auto` uses the
    official formulas: batch max(min(gpus * min(4096 // res, 32), 64), gpus), group min(batch // gpus, 4),
    channel_base 32768 at 512 px and up (16384 below), lr 0.002 at 1024 px (0.0025 below),
    gamma 0.0002 res^2 / batch, EMA half-life batch * 10 / 32 kimg.
    """
    p = preset(name)
    if not (isinstance(gpus, int) and gpus >= 1):
        raise ConfigError(f"gpus must be an integer >= 1, got {gpus!r}")
    batch, mbstd, fmaps, lr, gamma, ema = p.batch, p.mbstd, p.fmaps, p.lr, p.gamma, p.ema_kimg
    if name == "auto":
        batch = max(min(gpus * min(4096 // resolution, 32), 64), gpus)
        mbstd = min(batch // gpus, 4)
        fmaps = 1 if resolution >= 512 else 0.5
        lr = 0.002 if resolution >= 1024 else 0.0025
        gamma = 0.0002 * resolution**2 / batch
        ema = batch * 10 / 32
    return {
        "options": {
            "batch_size": batch,
            "lr": lr,
            "r1_gamma": gamma,
            "ema_kimg": ema,
            "ema_rampup": 0.0 if p.ema_rampup is None else p.ema_rampup,  # 0 = no ramp-up
            "style_mixing_prob": p.style_mixing_prob,
            "pl_weight": p.pl_weight,
        },
        "network": {
            "map_layers": p.map_layers,
            "channel_base": int(fmaps * 32768),
            "channel_max": 512,
            "mbstd_group": mbstd,
            "d_architecture": p.d_architecture,
        },
    }
