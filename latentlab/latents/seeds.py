"""Seeds -> z, exactly as NVIDIA's generate scripts draw them."""

from __future__ import annotations

import re
from typing import List, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..utils.limits import MAX_SEEDS

MAX_SEED = 2**32 - 1  # NumPy's RandomState accepts 32-bit seeds


def parse_seeds(text: Union[str, Sequence[int]]) -> List[int]:
    """'0-7', '1,4,9' or '0-3,10' -> list of ints (order kept, ranges inclusive)."""
    if isinstance(text, (list, tuple)):
        seeds = [int(s) for s in text]
    else:
        seeds = []
        for part in str(text).split(","):
            part = part.strip()
            m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
            if m:
                lo, hi = int(m.group(1)), int(m.group(2))
                if hi < lo:
                    raise ConfigError(f"bad seed range {part!r}: end is before start")
                if len(seeds) + hi - lo + 1 > MAX_SEEDS:  # counted before the list is built
                    raise ConfigError(
                        f"seed range {part!r} makes {len(seeds) + hi - lo + 1} seeds, more than {MAX_SEEDS} per run"
                    )
                seeds.extend(range(lo, hi + 1))
            elif re.fullmatch(r"\d+", part):
                seeds.append(int(part))
            else:
                raise ConfigError(f"bad seed {part!r}: use N, A-B or a comma-separated list such as 0-7,42")
    if not seeds:
        raise ConfigError("no seeds given")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"{len(seeds)} seeds, more than {MAX_SEEDS} per run")
    for s in seeds:
        if not 0 <= s <= MAX_SEED:
            raise ConfigError(f"seed {s} is outside 0..{MAX_SEED}")
    return seeds


def z_from_seeds(seeds: Sequence[int], z_dim: int, device: Union[torch.device, str] = "cpu") -> torch.Tensor:
    """z [len(seeds), z_dim]: row i is RandomState(seeds[i]).randn(z_dim), as in the official generate.py."""
    z = np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds])
    return torch.from_numpy(z).to(torch.float32).to(device)
