"""Truncation in Z (BigGAN's truncation trick): resample every |z| > threshold from N(0, 1) until inside."""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any, Dict, Optional

import torch

from ..errors import ConfigError
from .base import Truncation, check_int, check_number, map_z

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator


class ZTruncatedNormal(Truncation):
    """z -> truncated-normal z -> mapping (no W truncation).

    The resampling stream of each row is seeded from a hash of that row's bytes
    (and `seed`), so a given z always gives the same output, whatever batch it is in.
    """

    kind = "z"

    def __init__(self, threshold: float = 2.0, seed: int = 0) -> None:
        self.threshold = check_number("threshold", threshold, 0, lo_open=True)
        self.seed = check_int("seed", seed)
        if self.seed >= 2**64:
            raise ConfigError(f"seed must be below 2**64, got {seed}")

    @property
    def name(self) -> str:
        return f"z threshold={self.threshold:g}"

    def truncate_z(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, z_dim] -> z with every entry in [-threshold, threshold]; in-range entries are kept as they are."""
        if not torch.is_tensor(z) or z.ndim != 2:
            raise ConfigError(f"z must be a tensor [N, z_dim], got {getattr(z, 'shape', type(z))}")
        out = z.clone()
        outside = (z.abs() > self.threshold).cpu()
        rows = outside.any(dim=1).nonzero().flatten().tolist()
        if not rows:
            return out
        z32 = z.detach().to("cpu", torch.float32).contiguous().numpy()
        # P(|x| <= t) for x ~ N(0, 1): draw enough candidates to fill the row in about one round
        accept = math.erf(self.threshold / math.sqrt(2))
        for i in rows:
            idx = outside[i].nonzero().flatten()
            gen = torch.Generator().manual_seed(self._row_seed(z32[i]))
            filled = []
            need = len(idx)
            while need > 0:
                cand = torch.randn(int(need / accept * 1.2) + 8, generator=gen, dtype=torch.float64)
                cand = cand[cand.abs() <= self.threshold][:need]
                filled.append(cand)
                need -= len(cand)
            out[i, idx.to(out.device)] = torch.cat(filled).to(device=out.device, dtype=out.dtype)
        return out

    def _row_seed(self, row):
        h = hashlib.blake2b(row.tobytes(), digest_size=8, key=self.seed.to_bytes(8, "little"))
        return int.from_bytes(h.digest(), "little") >> 1  # torch seeds take 63 bits safely

    def __call__(self, G, z, c=None):
        return map_z(G, self.truncate_z(z), c)

    def transform_ws(self, G: Optional[AnyGenerator], ws: torch.Tensor) -> torch.Tensor:
        raise TypeError("ZTruncatedNormal acts on z, not on ws: call it with z (variant(G, z))")

    def get_params(self) -> Dict[str, Any]:
        return {"threshold": self.threshold, "seed": self.seed}
