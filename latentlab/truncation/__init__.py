"""Truncation variants behind one interface: variant(G, z) -> ws, variant.transform_ws(G, ws) -> ws.

from latentlab.truncation import parse_truncation, compare
t = parse_truncation("w:0.7@8")           # or WTruncation(0.7, cutoff=8)
ws = t(G, z)                              # [N, num_ws, w_dim]
img = G.synthesis(ws, noise_mode="const")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Sequence, Union

import torch

from .base import NotFittedError, Truncation, check_is_fitted
from .cluster_base import BaseClusterTruncation
from .clusters import ClusterTruncation
from .learned_clusters import LearnedClusterTruncation
from .spec import FORMS, parse_truncation
from .standard import LayerScheduleTruncation, NoTruncation, RadiusClamp, WTruncation
from .znormal import ZTruncatedNormal

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator


def compare(
    G: AnyGenerator, variants: Sequence[Union[str, Truncation]], z: torch.Tensor, c: Optional[torch.Tensor] = None
) -> Dict[Optional[str], torch.Tensor]:
    """Run every variant (Truncation or spec string) on the same z: {name: ws}, in the given order.

    Repeated names get a ' #2', ' #3' suffix so no result is lost.
    """
    out = {}
    for v in variants:
        v = parse_truncation(v)
        name, n = v.name, 2
        while name in out:
            name, n = f"{v.name} #{n}", n + 1
        out[name] = v(G, z, c)
    return out


__all__ = [
    "BaseClusterTruncation",
    "ClusterTruncation",
    "FORMS",
    "LayerScheduleTruncation",
    "LearnedClusterTruncation",
    "NoTruncation",
    "NotFittedError",
    "RadiusClamp",
    "Truncation",
    "WTruncation",
    "ZTruncatedNormal",
    "check_is_fitted",
    "compare",
    "parse_truncation",
]
