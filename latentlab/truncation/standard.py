"""Truncation in W: the classic psi/cutoff trick, per-layer schedules, custom centers, a radius clamp."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError
from .base import Truncation, check_int, check_is_fitted, check_number, check_ws, sample_ws, w_avg

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator

# A center: [w_dim] or [num_ws, w_dim], as an array, a tensor or nested lists.
CenterLike = Union[np.ndarray, torch.Tensor, Sequence[float], Sequence[Sequence[float]]]


def as_center(center: Optional[CenterLike]) -> Optional[np.ndarray]:
    """A user center as float32 [w_dim] or [num_ws, w_dim] NumPy array (None stays None)."""
    if center is None:
        return None
    if torch.is_tensor(center):
        center = center.detach().cpu().numpy()
    arr = np.asarray(center, dtype=np.float32)
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise ConfigError(f"center must be [w_dim] or [num_ws, w_dim], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ConfigError("center contains NaN or inf")
    return arr


def resolve_center(G: AnyGenerator, center: Optional[np.ndarray], ws: torch.Tensor) -> torch.Tensor:
    """The center as a tensor on ws's device: the user's (checked against ws) or G's w_avg."""
    if center is None:
        return w_avg(G, ws)
    num_ws, w_dim = ws.shape[1], ws.shape[2]
    if center.shape not in ((w_dim,), (num_ws, w_dim)):
        raise ConfigError(
            f"center has shape {list(center.shape)} but this generator needs [{w_dim}] (w_dim) "
            f"or [{num_ws}, {w_dim}] (num_ws, w_dim)"
        )
    return torch.from_numpy(center).to(device=ws.device, dtype=ws.dtype)


def _fmt(x):
    return f"{x:g}"


class NoTruncation(Truncation):
    """The identity: plain mapping output."""

    kind = "none"

    def transform_ws(self, G: Optional[AnyGenerator], ws: torch.Tensor) -> torch.Tensor:
        return check_ws(G, ws).clone()


class WTruncation(Truncation):
    """ws <- center + psi (ws - center) on layers < cutoff (all if None); center defaults to w_avg.

    With the default center this is exactly G.mapping(z, truncation_psi=psi, truncation_cutoff=cutoff).
    """

    kind = "w"

    def __init__(self, psi: float = 0.7, cutoff: Optional[int] = None, center: Optional[CenterLike] = None) -> None:
        self.psi = check_number("psi", psi)
        self.cutoff = None if cutoff is None else check_int("cutoff", cutoff)
        self.center = as_center(center)

    @property
    def name(self) -> str:
        return (
            "w psi="
            + _fmt(self.psi)
            + ("" if self.cutoff is None else f" cutoff={self.cutoff}")
            + ("" if self.center is None else " custom center")
        )

    def transform_ws(self, G: AnyGenerator, ws: torch.Tensor) -> torch.Tensor:
        ws = check_ws(G, ws)
        if self.psi == 1:
            return ws.clone()
        center = resolve_center(G, self.center, ws)
        cut = ws.shape[1] if self.cutoff is None else min(self.cutoff, ws.shape[1])
        out = ws.clone()
        c = center if center.ndim == 1 else center[:cut]
        out[:, :cut] = c.lerp(ws[:, :cut], self.psi)  # the same op as models.mapping.truncate: identical bits
        return out

    def get_params(self) -> Dict[str, Any]:
        return {"psi": self.psi, "cutoff": self.cutoff, "center": self.center}


class LayerScheduleTruncation(Truncation):
    """One psi per ws layer: ws[:, l] <- center + psis[l] (ws[:, l] - center)."""

    kind = "schedule"

    def __init__(
        self, psis: Union[Sequence[float], np.ndarray, torch.Tensor], center: Optional[CenterLike] = None
    ) -> None:
        if torch.is_tensor(psis) or isinstance(psis, np.ndarray):
            psis = psis.tolist()
        if isinstance(psis, (str, bytes)) or not hasattr(psis, "__len__") or len(psis) == 0:
            raise ConfigError(f"psis must be a non-empty list with one psi per ws layer, got {psis!r}")
        self.psis = [check_number(f"psis[{i}]", p) for i, p in enumerate(psis)]
        self.center = as_center(center)

    @property
    def name(self) -> str:
        runs: List[List[float]] = []  # run-length: 0.7x8,1x10 rather than eighteen numbers
        for p in self.psis:
            if runs and runs[-1][0] == p:
                runs[-1][1] += 1
            else:
                runs.append([p, 1])
        text = ",".join(_fmt(p) + (f"x{n}" if n > 1 else "") for p, n in runs)
        return "schedule psi=" + text + ("" if self.center is None else " custom center")

    def transform_ws(self, G: AnyGenerator, ws: torch.Tensor) -> torch.Tensor:
        ws = check_ws(G, ws)
        if len(self.psis) != ws.shape[1]:
            raise ConfigError(f"the schedule has {len(self.psis)} psis but this generator has {ws.shape[1]} ws layers")
        center = resolve_center(G, self.center, ws)
        weight = torch.tensor(self.psis, device=ws.device, dtype=ws.dtype).unsqueeze(1)  # [num_ws, 1]
        return center.lerp(ws, weight)

    def get_params(self) -> Dict[str, Any]:
        return {"psis": list(self.psis), "center": self.center}


class RadiusClamp(Truncation):
    """Move every w (per layer) farther than r from w_avg onto the sphere of radius r; keep the rest.

    fit() sets r (`radius_`) to the given percentile of ||w - w_avg|| over sampled w; or give
    `radius` directly (the variant then runs unfitted; a fitted `radius_` takes precedence).
    """

    kind = "clamp"
    requires_fit = True
    not_fitted_hint = "call fit(G) first or give radius="

    def __init__(self, percentile: float = 95.0, radius: Optional[float] = None) -> None:
        self.percentile = check_number("percentile", percentile, 0, 100, lo_open=True)
        self.radius = None if radius is None else check_number("radius", radius, 0)

    @property
    def name(self) -> str:
        return f"clamp p{_fmt(self.percentile)}" if self.radius is None else f"clamp r={_fmt(self.radius)}"

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "radius_") or self.radius is not None

    def fit(
        self, G: AnyGenerator, n_samples: int = 10000, seed: int = 0, batch_size: int = 1000, progress: bool = False
    ) -> RadiusClamp:
        dists = np.empty(n_samples, dtype=np.float64)
        for start, ws in sample_ws(G, n_samples, seed, batch_size, progress, desc="fitting radius"):
            w = ws[:, 0]  # the mapping broadcasts one w to every layer
            dists[start : start + len(w)] = (w - w_avg(G, w)).norm(dim=-1).double().cpu().numpy()
        self.radius_ = float(np.percentile(dists, self.percentile))
        return self

    def transform_ws(self, G: AnyGenerator, ws: torch.Tensor) -> torch.Tensor:
        ws = check_ws(G, ws)
        check_is_fitted(self)
        radius = self.radius_ if hasattr(self, "radius_") else self.radius
        center = w_avg(G, ws)
        d = ws - center
        dist = d.norm(dim=-1, keepdim=True)
        scale = radius / dist.clamp_min(torch.finfo(ws.dtype).tiny)
        return torch.where(dist > radius, center + d * scale, ws)

    def get_params(self) -> Dict[str, Any]:
        return {"percentile": self.percentile, "radius": self.radius}

    def get_state(self) -> Dict[str, Any]:
        return {"radius_": self.radius_} if hasattr(self, "radius_") and self.radius is None else {}

    def set_state(self, state: Dict[str, Any]) -> None:
        if "radius_" in state:
            self.radius_ = check_number("radius_", state["radius_"], 0)
