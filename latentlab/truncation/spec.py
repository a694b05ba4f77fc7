"""Truncation variants from short strings, for the command line (`--trunc w:0.7@8`)."""

from __future__ import annotations

import math
import os
from typing import Dict, Union

from ..errors import ConfigError
from ..utils.npy import load_npy
from .base import Truncation
from .cluster_base import BaseClusterTruncation, check_cluster_count
from .clusters import ClusterTruncation
from .standard import LayerScheduleTruncation, NoTruncation, RadiusClamp, WTruncation
from .znormal import ZTruncatedNormal

FORMS = (
    "none, w:PSI[@CUTOFF], schedule:PSI0,PSI1,..., center:FILE.npy:PSI[@CUTOFF], z:THRESHOLD, "
    "clamp:PERCENTILE, clusters:FILE.npz, clusters:k=K,psi=PSI[,method=gmm|kmeans,cov=full|diag,"
    "keep_last=yes|no,levels=coarse+middle+fine,rep=styles|w,dims=D|none]"
)


def parse_truncation(spec: Union[str, Truncation]) -> Truncation:
    """A spec string (see FORMS) -> a Truncation; variants that need fit() come back unfitted.

    Raises ValueError with one line naming the problem and the accepted forms.
    """
    if isinstance(spec, Truncation):
        return spec
    if not isinstance(spec, str):
        raise ConfigError(f"truncation spec must be a string, got {type(spec).__name__}; accepted: {FORMS}")
    try:
        return _parse(spec.strip())
    except (ValueError, OSError) as e:
        raise ConfigError(f"bad truncation spec {spec!r}: {e}; accepted: {FORMS}") from None


def _parse(text):
    kind, sep, arg = text.partition(":")
    kind = kind.strip().lower()
    if kind == "none" and not sep:
        return NoTruncation()
    kinds = ("w", "schedule", "center", "z", "clamp", "clusters")
    if kind not in kinds:
        raise ConfigError(f"unknown kind {kind!r}")
    arg = arg.strip()
    if not arg:
        raise ConfigError(f"'{kind}:' needs an argument")
    if kind == "w":
        return WTruncation(*_psi_cutoff(arg))
    if kind == "schedule":
        return LayerScheduleTruncation([_float(p, "psi") for p in arg.split(",")])
    if kind == "center":
        path, sep, rest = arg.rpartition(":")  # from the right: the path may hold ':'
        if not sep or not path:
            raise ConfigError("use center:FILE.npy:PSI")
        psi, cutoff = _psi_cutoff(rest)
        return WTruncation(psi, cutoff, center=_load_center(path))
    if kind == "z":
        return ZTruncatedNormal(_float(arg, "threshold"))
    if kind == "clamp":
        return RadiusClamp(_float(arg, "percentile"))
    if "=" in arg and not os.path.exists(arg):
        return ClusterTruncation(**_cluster_kwargs(arg))
    if not os.path.exists(arg):
        raise ConfigError(f"no such file: {arg}")
    t = Truncation.load(arg)
    if not isinstance(t, BaseClusterTruncation):
        raise ConfigError(f"{arg} holds a {type(t).__name__}, not fitted or learned clusters")
    return t


def parse_choice(text: str) -> Dict[str, int]:
    """'coarse=3,fine=1' -> {'coarse': 3, 'fine': 1} (the cluster to generate from, per level).

    Only the form is checked here; `BaseClusterTruncation.check_clusters` checks the levels and ids.
    """
    out = {}
    for part in str(text).split(","):
        level, sep, value = part.partition("=")
        level, value = level.strip(), value.strip()
        if not sep or not level or not value:
            raise ConfigError(f"--choose: {part.strip()!r} is not LEVEL=ID (e.g. coarse=3,fine=1)")
        if level in out:
            raise ConfigError(f"--choose names level {level!r} twice")
        try:
            out[level] = int(value)
        except ValueError:
            raise ConfigError(f"--choose: cluster id {value!r} of level {level!r} is not an integer") from None
    return out


def _float(text, what):
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what} {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{what} {text.strip()!r} is not a finite number")
    return value


def _int(text, what):
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{what} {text.strip()!r} is not an integer") from None


def _psi_cutoff(text):
    psi, sep, cutoff = text.partition("@")
    return _float(psi, "psi"), (_int(cutoff, "cutoff") if sep else None)


def _load_center(path):
    if not os.path.exists(path):
        raise ConfigError(f"no such file: {path}")
    arr = load_npy(path, max_bytes=64 << 20, what="centre (.npy array)")
    while arr.ndim > 1 and arr.shape[0] == 1:  # (1, w_dim) directions and [1, num_ws, w_dim] ws files
        arr = arr[0]
    return arr


def _cluster_kwargs(text):
    kwargs = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise ConfigError(f"{part.strip()!r} is not KEY=VALUE")
        if key == "k":
            kwargs["k"] = check_cluster_count(_int(value, "k"), "clusters:k")
        elif key == "psi":
            kwargs["psi"] = _float(value, "psi")
        elif key == "method":
            kwargs["method"] = value.lower()
        elif key in ("cov", "covariance", "covariance_type"):
            kwargs["covariance_type"] = value.lower()
        elif key == "keep_last":
            flags = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
            if value.lower() not in flags:
                raise ConfigError(f"keep_last must be yes or no, got {value!r}")
            kwargs["keep_last"] = flags[value.lower()]
        elif key == "levels":
            kwargs["levels"] = tuple(v.strip() for v in value.split("+"))
        elif key in ("rep", "representation"):
            kwargs["representation"] = value.lower()
        elif key == "dims":
            kwargs["dims"] = None if value.lower() == "none" else _int(value, "dims")
        else:
            raise ConfigError(f"unknown clusters option {key!r} (k, psi, method, cov, keep_last, levels, rep, dims)")
    return kwargs
