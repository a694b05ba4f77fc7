"""Truncation variants behind one interface: variant(G, z) -> ws, variant.transform_ws(G, ws) -> ws.

    from latentlab.truncation import parse_truncation, compare
    t = parse_truncation("w:0.7@8")           # or WTruncation(0.7, cutoff=8)
    ws = t(G, z)                              # [N, num_ws, w_dim]
    img = G.synthesis(ws, noise_mode="const")
"""
from .base import NotFittedError, Truncation
from .clusters import ClusterTruncation
from .learned_clusters import LearnedClusterTruncation
from .spec import FORMS, parse_truncation
from .standard import LayerScheduleTruncation, NoTruncation, RadiusClamp, WTruncation
from .znormal import ZTruncatedNormal


def compare(G, variants, z, c=None):
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
    "compare",
    "parse_truncation",
]
