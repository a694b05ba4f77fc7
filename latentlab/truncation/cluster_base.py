"""What the fitted and the learned multi-level cluster truncations share (Katzir et al. 2022).

Both hold, per level (coarse / middle / fine ws layers), W centres of k clusters (`centers_[level]`,
[k, len(layers), w_dim]) and a way to tell which cluster a code belongs to (`assign`, reading the
level's `features`). They differ only in where those come from: `ClusterTruncation` (clusters.py)
fits them on samples of G (`fit`), `LearnedClusterTruncation` (learned_clusters.py) holds networks
trained by `latentlab.train.clusters` and is loaded from the file the trainer writes. This base
runs everything after that, the same way for both: truncation toward each level's predicted
cluster (`transform_ws`), controlled generation from chosen clusters (`generate`), `predict`,
level names (aliases such as 'medium') and the checking of chosen cluster ids.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..latents.layers import LEVEL_ALIASES, LEVELS, level_layers
from ..utils.validate import check_int, check_number
from .base import Truncation, check_is_fitted, check_ws, map_z

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator

# Clusters per level: one count for all, or level -> count.
KSpec = Union[int, Mapping[str, int]]
# Levels: names (coarse, middle, fine; aliases such as 'medium'), or level name -> ws indices.
LevelsSpec = Union[str, Sequence[str], Mapping[str, Sequence[int]]]


class BaseClusterTruncation(Truncation):
    """Per-level cluster truncation: w_i <- c_{k,i} + psi (w_i - c_{k,i}) for the level's ws indices i.

    Not used directly: subclasses give the fitted state (`layers_`, level -> ws indices, and
    `centers_`, level -> [k, len(layers), w_dim] float32 tensors) and the two steps
    `features(G, ws, level)` and `assign(level, features)`.

    k: clusters per level (int, or dict level -> int). psi: how far codes stay from their
    centre (0: onto it, 1: unchanged). levels: level names (coarse, middle, fine) or a dict
    name -> list of ws indices. keep_last: the last ws index belongs to no level and keeps
    the untruncated code.
    """

    requires_fit = True
    # fitted state, set by a subclass's fit or set_state (absent before; see check_is_fitted)
    layers_: Dict[str, List[int]]
    centers_: Dict[str, torch.Tensor]

    def __init__(
        self, k: KSpec = 8, psi: float = 0.7, levels: LevelsSpec = ("coarse", "middle", "fine"), keep_last: bool = True
    ) -> None:
        self.levels = _check_levels(levels)
        names = list(self.levels)
        if isinstance(k, dict):
            if set(k) != set(names):
                raise ConfigError(f"k must give one count per level {names}, got keys {sorted(k)}")
            self.k = {n: check_int(f"k[{n!r}]", k[n], lo=1) for n in names}
        else:
            self.k = check_int("k", k, lo=1)
        self.psi = check_number("psi", psi)
        if not isinstance(keep_last, bool):
            raise ConfigError(f"keep_last must be True or False, got {keep_last!r}")
        self.keep_last = keep_last

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "layers_", None) is not None

    @property
    def centers(self) -> Dict[str, torch.Tensor]:
        """Deprecated, read-only: the fitted `centers_` (fitted state ends in '_')."""
        warnings.warn(f"{type(self).__name__}.centers is deprecated: read centers_", DeprecationWarning, stacklevel=2)
        return check_is_fitted(self).centers_

    def _k_text(self):
        return str(self.k) if isinstance(self.k, int) else ",".join(f"{n}:{v}" for n, v in self.k.items())

    def _levels_param(self):
        return dict(self.levels) if isinstance(self.levels, dict) else list(self.levels)

    def k_for(self, level: str) -> int:
        return self.k if isinstance(self.k, int) else self.k[level]

    def resolve_layers(self, G: Union[AnyGenerator, int]) -> Dict[str, List[int]]:
        """level -> ws indices for G (or for a number of ws layers, with levels given as a dict)."""
        num_ws = G if isinstance(G, int) else G.num_ws
        if isinstance(self.levels, dict):
            layers = {n: list(idx) for n, idx in self.levels.items()}
            bad = [i for idx in layers.values() for i in idx if i >= num_ws]
            if bad:
                raise ConfigError(f"level layer {bad[0]} does not exist: the generator has ws layers 0-{num_ws - 1}")
        elif isinstance(G, int):
            raise ConfigError("named levels need the generator to find their layers: pass G, or give levels as a dict")
        else:
            layers = {n: level_layers(G, n) for n in self.levels}
        if self.keep_last:
            layers = {n: [i for i in idx if i != num_ws - 1] for n, idx in layers.items()}
        empty = [n for n, idx in layers.items() if not idx]
        if empty and isinstance(self.levels, dict):
            raise ConfigError(f"level {empty[0]!r} has no layers left (keep_last removes ws {num_ws - 1})")
        layers = {n: idx for n, idx in layers.items() if idx}
        if not layers:
            raise ConfigError(f"none of the levels {list(self.levels)} has layers on this generator")
        return layers

    # --- the two steps a subclass gives, and the move toward the centres ---------------
    def features(self, G: Optional[AnyGenerator], ws: torch.Tensor, level: str) -> torch.Tensor:
        """What `assign` reads for a level, from ws [N, num_ws, w_dim]."""
        raise NotImplementedError

    def assign(self, level: str, feats: torch.Tensor) -> torch.Tensor:
        """Cluster id [N] (long) of each level feature row."""
        raise NotImplementedError

    def move(self, ws: torch.Tensor, level: str, ids: torch.Tensor) -> torch.Tensor:
        """ws with the level's layers moved toward centers_[level][ids] by psi (psi=0: onto the centre)."""
        idx = self.layers_[level]
        target = self.centers_[level].to(device=ws.device, dtype=ws.dtype)[ids.to(ws.device)]  # [N, len(idx), w_dim]
        out = ws.clone()
        out[:, idx] = target.lerp(ws[:, idx], self.psi)
        return out

    # --- use --------------------------------------------------------------------
    def transform_ws(self, G: Optional[AnyGenerator], ws: torch.Tensor) -> torch.Tensor:
        return self._apply(G, ws, {})

    def generate(
        self, G: AnyGenerator, z: torch.Tensor, clusters: Mapping[str, Any], c: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Controlled generation: ws truncated toward the chosen cluster per level ({'coarse': 3, ...}).

        A value may be one id for all samples or one per sample; levels not named keep
        their predicted cluster. Returns ws; G.synthesis(ws) renders them.
        """
        return self._apply(G, map_z(G, z, c), clusters)

    def check_clusters(self, clusters: Mapping[str, Any]) -> Dict[str, Any]:
        """{level: id or ids} with the fitted level names (aliases such as 'medium' resolved).

        ValueError for an unknown or repeated level or an id out of range; checks before any work is done.
        """
        check_is_fitted(self)
        if not isinstance(clusters, dict):
            raise ConfigError(f"clusters must be a dict level -> cluster id, got {type(clusters).__name__}")
        out = {}
        for level, value in clusters.items():
            key = self._level_key(level)
            if key in out:
                raise ConfigError(f"level {key!r} is chosen twice")
            ndim = value.ndim if torch.is_tensor(value) else np.ndim(value)
            self._chosen_ids(key, value, 1 if ndim == 0 else len(value), "cpu")
            out[key] = value
        return out

    def predict(
        self,
        x: Union[AnyGenerator, torch.Tensor, np.ndarray],
        level: str,
        z: Optional[torch.Tensor] = None,
        c: Optional[torch.Tensor] = None,
        G: Optional[AnyGenerator] = None,
    ) -> torch.Tensor:
        """Cluster ids [N] of a level for a generator and z, ws [N, num_ws, w_dim] or W codes [N, w_dim].

        A W code is repeated on every ws layer (what G.mapping gives). Style clusters and the
        image classifier need the generator: predict(G, level, z=z) or predict(ws, level, G=G).
        """
        level = self._level_key(level)
        if isinstance(x, torch.nn.Module):
            if z is None:
                raise ConfigError("predict(G, level) needs z")
            G, x = x, map_z(x, z, c)
        ws = self._as_ws(torch.as_tensor(x), G, level)
        return self.assign(level, self._level_features(G, ws, [level])[level])

    def _as_ws(self, x, G, level):
        if x.ndim == 2:
            num_ws = G.num_ws if G is not None else max(self.layers_[level]) + 1
            return x.unsqueeze(1).expand(-1, num_ws, -1)
        if x.ndim != 3:
            raise ConfigError(f"expected ws [N, num_ws, w_dim] or codes [N, w_dim], got shape {tuple(x.shape)}")
        return x

    def _level_features(self, G, ws, levels):
        """{level: features} for the given levels (one place for subclasses to share work between levels)."""
        return {level: self.features(G, ws, level) for level in levels}

    def _apply(self, G, ws, clusters):
        ws = check_ws(G, ws)
        check_is_fitted(self)
        top = max(i for idx in self.layers_.values() for i in idx)
        if top >= ws.shape[1]:
            raise ConfigError(f"fitted on a generator with more ws layers: level layer {top} does not exist here")
        clusters = self.check_clusters(clusters)
        feats = self._level_features(G, ws, [level for level in self.layers_ if level not in clusters])
        out = ws
        for level in self.layers_:
            if level in clusters:
                ids = self._chosen_ids(level, clusters[level], len(ws), ws.device)
            else:
                ids = self.assign(level, feats[level]).to(ws.device)
            out = self.move(out, level, ids)
        return out

    def _chosen_ids(self, level, value, n, device):
        try:
            ids = torch.as_tensor(value, dtype=torch.long, device=device)
        except (TypeError, ValueError, RuntimeError):
            ids = None
        k = len(self.centers_[level])
        if ids is not None and ids.ndim == 0:
            ids = ids.expand(n)
        if ids is None or ids.shape != (n,) or ids.min() < 0 or ids.max() >= k:
            raise ConfigError(f"cluster for level {level!r} must be an id in 0-{k - 1} or {n} of them, got {value!r}")
        return ids

    def _level_key(self, level):
        """The fitted level a name means ('medium' is 'middle'); ValueError for an unknown one."""
        check_is_fitted(self)
        if isinstance(level, str) and level not in self.layers_ and _canonical(level) in self.layers_:
            level = _canonical(level)
        if level not in self.layers_:
            raise ConfigError(f"unknown level {level!r}; fitted levels: {', '.join(self.layers_)}")
        return level


MIN_CLUSTERS = 2  # one cluster per level is plain truncation toward a mean; learned mappings need 2 to classify


def check_cluster_count(k: Any, name: str = "k") -> int:
    """The number of clusters per level of a cluster truncation, fitted (`clusters:k=`) or learned
    (`train clusters --k`): an integer >= MIN_CLUSTERS, else one line naming `name`."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < MIN_CLUSTERS:
        raise ConfigError(
            f"{name}={k}: cluster truncation needs at least {MIN_CLUSTERS} clusters per level "
            "(one cluster is plain truncation toward the mean: use w:PSI)"
        )
    return int(k)


def _canonical(level):
    return LEVEL_ALIASES.get(level, level) if isinstance(level, str) else level


def _check_levels(levels):
    if isinstance(levels, dict):
        if not levels:
            raise ConfigError("levels must name at least one level")
        out, seen = {}, {}
        for name, idx in levels.items():
            if isinstance(idx, (str, bytes)) or not hasattr(idx, "__iter__"):
                raise ConfigError(f"level {name!r}: give a list of ws indices, got {idx!r}")
            idx = sorted({check_int(f"level {name!r} layer", i) for i in idx})
            if not idx:
                raise ConfigError(f"level {name!r} has no layers")
            for i in idx:
                if i in seen:
                    raise ConfigError(f"ws layer {i} is in both level {seen[i]!r} and level {name!r}")
                seen[i] = name
            out[str(name)] = idx
        return out
    if isinstance(levels, str):
        levels = [levels]
    levels = list(levels)
    if not levels:
        raise ConfigError("levels must name at least one level")
    for n in levels:
        if not isinstance(n, str) or LEVEL_ALIASES.get(n, n) not in LEVELS:
            raise ConfigError(f"unknown level {n!r}; use coarse, middle (medium), fine or a dict name -> ws indices")
    canonical = [LEVEL_ALIASES.get(n, n) for n in levels]
    if len(set(canonical)) != len(canonical):
        raise ConfigError(f"levels repeat a level: {levels}")
    return tuple(canonical)
