"""Streaming statistics of feature vectors, as StyleGAN2-ADA's `metric_utils.FeatureStats` keeps them.

    stats = FeatureStats(capture_mean_cov=True, max_items=50000)
    for batch in feature_batches:            # [B, F] arrays or tensors
        stats.append(batch)                  # rows past max_items are dropped
        if stats.is_full(): break
    mu, sigma = stats.get_mean_cov()         # float64; sigma = E[x x^T] - mu mu^T (NVIDIA's, divides by n)
    stats.save("real.npz"); FeatureStats.load("real.npz", max_bytes=...)

Features are cast to float32 as they arrive (as NVIDIA's); the mean and the second moment are running sums in
float64 (sum x, sum x x^T), so memory is O(F^2) whatever the number of items, and the mean and covariance do
not depend on how the items were batched beyond float64 round-off. With `capture_all` the float32 features
themselves are kept too (KID and precision/recall need them).

Covariance: NVIDIA's StyleGAN2-ADA FID divides by n (cov = raw_cov / n - mu mu^T), while the TTUR reference
and the TensorFlow StyleGAN FID use np.cov, which divides by n - 1. `get_mean_cov()` returns NVIDIA's;
`get_mean_cov(unbiased=True)` the n - 1 one (the two differ by the factor n / (n - 1): 1.00002 at n = 50 000).

Files: an .npz written atomically (`latentlab.utils.atomic.save_npz`) holding the raw sums (so a loaded object
can keep appending), the features when captured, and a JSON 'meta' entry; read back through
`latentlab.utils.npy.load_npz` (headers and sizes checked before any data is read, `max_bytes` bounds it).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..utils.atomic import save_npz
from ..utils.npy import NUMBERS_AND_TEXT, check_kind, load_npz
from ..utils.safe_json import AnyOf, Anything, Bool, Int, Map, Obj, Str, loads_json

FORMAT = "latentlab-feature-stats"
VERSION = 1
MAX_FEATURES = 1 << 16  # feature dimensions accepted (Inception 2048, VGG16 4096, CLIP 512/768)

META_SCHEMA = Obj(
    {
        "format": Str(64),
        "version": Int(1, 1000),
        "capture_all": Bool(),
        "capture_mean_cov": Bool(),
        "max_items": AnyOf(None, Int(0, None)),
        "num_items": Int(0, None),
        "num_features": AnyOf(None, Int(1, MAX_FEATURES)),
        "info": Map(Anything()),
    },
    required=["format", "version", "capture_all", "capture_mean_cov", "max_items", "num_items", "num_features"],
)


def stats_bytes(num_items: int, num_features: int, capture_all: bool, capture_mean_cov: bool) -> int:
    """Bytes of the arrays a saved FeatureStats of this size holds (the bound to read one back with)."""
    f = int(num_features)
    total = 4096  # meta
    if capture_all:
        total += int(num_items) * f * 4
    if capture_mean_cov:
        total += f * 8 + f * f * 8
    return total


class FeatureStats:
    """Feature vectors [N, F] streamed in batches: running float64 sums for the mean and covariance
    (`capture_mean_cov`) and/or every feature row in float32 (`capture_all`).

    capture_all: keep the features (`get_all`). capture_mean_cov: keep sum x and sum x x^T (`get_mean_cov`).
    max_items: stop accepting rows after this many (`append` drops the rest, `is_full` says so); None: no limit.
    """

    def __init__(self, capture_all: bool = False, capture_mean_cov: bool = False, max_items: Optional[int] = None):
        if max_items is not None and (isinstance(max_items, bool) or int(max_items) != max_items or max_items < 0):
            raise ConfigError(f"max_items must be None or an integer >= 0, got {max_items!r}")
        self.capture_all = bool(capture_all)
        self.capture_mean_cov = bool(capture_mean_cov)
        self.max_items = None if max_items is None else int(max_items)
        self.num_items = 0
        self.num_features: Optional[int] = None
        self._features: list = []
        self.raw_mean: Optional[np.ndarray] = None  # sum of x, float64 [F]
        self.raw_cov: Optional[np.ndarray] = None  # sum of x x^T, float64 [F, F]
        self.info: Dict[str, Any] = {}  # free-form description saved with the file (cache key, source, ...)

    def __repr__(self):
        kinds = [k for k, on in (("all", self.capture_all), ("mean_cov", self.capture_mean_cov)) if on]
        return f"FeatureStats({'+'.join(kinds) or 'count'}, {self.num_items}/{self.max_items} items, F={self.num_features})"

    def _set_num_features(self, f: int) -> None:
        if self.num_features is None:
            if not 1 <= f <= MAX_FEATURES:
                raise ConfigError(f"features must have 1..{MAX_FEATURES} dimensions, got {f}")
            self.num_features = f
            if self.capture_mean_cov:
                self.raw_mean = np.zeros([f], dtype=np.float64)
                self.raw_cov = np.zeros([f, f], dtype=np.float64)
        elif f != self.num_features:
            raise ConfigError(f"features of {f} dimensions appended to statistics of {self.num_features}")

    def is_full(self) -> bool:
        """True once max_items rows were taken (never without max_items)."""
        return self.max_items is not None and self.num_items >= self.max_items

    @property
    def remaining(self) -> Optional[int]:
        """Rows still accepted (None without max_items)."""
        return None if self.max_items is None else max(self.max_items - self.num_items, 0)

    def append(self, x: Union[np.ndarray, torch.Tensor]) -> None:
        """Add feature rows [B, F] (cast to float32 as NVIDIA's); rows beyond max_items are dropped."""
        if torch.is_tensor(x):
            x = x.detach().to("cpu", torch.float32).numpy()
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ConfigError(f"features must be [N, F], got shape {x.shape}")
        if self.max_items is not None and self.num_items + x.shape[0] > self.max_items:
            if self.num_items >= self.max_items:
                return
            x = x[: self.max_items - self.num_items]
        if not np.isfinite(x).all():
            raise ConfigError("the feature extractor returned non-finite values (NaN or inf)")
        self._set_num_features(x.shape[1])
        self.num_items += x.shape[0]
        if self.capture_all:
            self._features.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self.raw_mean += x64.sum(axis=0)
            self.raw_cov += x64.T @ x64

    def get_all(self) -> np.ndarray:
        """Every captured feature row, float32 [N, F], in the order appended."""
        if not self.capture_all:
            raise ConfigError("these statistics did not capture the features (capture_all=False)")
        if not self._features:
            return np.zeros([0, self.num_features or 0], dtype=np.float32)
        if len(self._features) > 1:
            self._features = [np.concatenate(self._features, axis=0)]
        return self._features[0]

    def get_all_torch(self) -> torch.Tensor:
        return torch.from_numpy(self.get_all())

    def get_mean_cov(self, unbiased: bool = False) -> Tuple[np.ndarray, np.ndarray]:
        """(mean [F], covariance [F, F]), float64.

        NVIDIA's (default): cov = sum x x^T / n - mu mu^T. unbiased=True: the same times n / (n - 1)
        (np.cov, as the TTUR reference and the TensorFlow StyleGAN FID compute it).
        """
        if not self.capture_mean_cov:
            raise ConfigError("these statistics did not capture a mean and covariance (capture_mean_cov=False)")
        n = self.num_items
        if n < (2 if unbiased else 1):
            raise ConfigError(f"a covariance needs at least {2 if unbiased else 1} feature vectors, got {n}")
        mean = self.raw_mean / n
        cov = self.raw_cov / n - np.outer(mean, mean)
        if unbiased:
            cov = cov * (n / (n - 1))
        return mean, cov

    # ---- files -------------------------------------------------------------------------------------------------
    def meta(self) -> Dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "capture_all": self.capture_all,
            "capture_mean_cov": self.capture_mean_cov,
            "max_items": self.max_items,
            "num_items": self.num_items,
            "num_features": self.num_features,
            "info": self.info,
        }

    def save(self, path: Union[str, os.PathLike]) -> str:
        """Write the statistics to `path` (.npz), atomically; returns the path."""
        arrays = {"meta": np.array(json.dumps(self.meta(), sort_keys=True))}
        if self.capture_mean_cov and self.raw_mean is not None:
            arrays["raw_mean"] = self.raw_mean
            arrays["raw_cov"] = self.raw_cov
        if self.capture_all:
            arrays["features"] = self.get_all()
        path = os.fspath(path)
        save_npz(path, arrays)
        return path

    @classmethod
    def load(cls, path: Union[str, os.PathLike], max_bytes: Optional[int] = None) -> FeatureStats:
        """Statistics saved by `save`; ConfigError naming the file for anything else. `max_bytes` bounds what is
        read (every array header is checked first, `latentlab.utils.npy`)."""
        path = os.fspath(path)
        arrays = load_npz(path, kinds=NUMBERS_AND_TEXT, max_bytes=max_bytes, what="feature statistics (.npz) file")
        if "meta" not in arrays:
            raise ConfigError(f"{path}: not a latentlab feature statistics file (no 'meta' entry)")
        check_kind(arrays, "meta", "U", path, "text")
        meta = loads_json(str(arrays["meta"]), f"{path}: meta", META_SCHEMA)
        if meta["format"] != FORMAT or meta["version"] > VERSION:
            raise ConfigError(
                f"{path}: not a feature statistics file this latentlab reads ({meta['format']} v{meta['version']})"
            )
        for name in ("raw_mean", "raw_cov", "features"):
            check_kind(arrays, name, "f", path, "floats")
        obj = cls(meta["capture_all"], meta["capture_mean_cov"], meta["max_items"])
        obj.info = dict(meta.get("info") or {})
        n, f = meta["num_items"], meta["num_features"]
        if n and f is None:
            raise ConfigError(f"{path}: {n} items but no feature size")
        if f is not None:
            obj._set_num_features(f)
        obj.num_items = n
        if obj.capture_mean_cov and f is not None:
            mean, cov = arrays.get("raw_mean"), arrays.get("raw_cov")
            if mean is None or cov is None or mean.shape != (f,) or cov.shape != (f, f):
                raise ConfigError(f"{path}: raw_mean / raw_cov missing or not [{f}] / [{f}, {f}]")
            obj.raw_mean, obj.raw_cov = mean.astype(np.float64), cov.astype(np.float64)
        if obj.capture_all:
            feats = arrays.get("features")
            if feats is None and n == 0:
                feats = np.zeros([0, f or 0], dtype=np.float32)
            if feats is None or feats.ndim != 2 or feats.shape[0] != n or (f is not None and feats.shape[1] != f):
                raise ConfigError(f"{path}: features missing or not [{n}, {f}]")
            obj._features = [feats.astype(np.float32, copy=False)]
        return obj
