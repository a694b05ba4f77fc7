"""Semantic directions: loading (InterFaceGAN .npy layout, arrays), checking, and conditioning."""
import hashlib
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class Direction:
    """A unit vector in one latent space. `vector` is float64 of shape (d,)."""

    vector: np.ndarray
    name: str = "direction"
    space: Optional[str] = None  # 'z', 'w', 'w+' layer code or 's'; None when unknown
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        v = np.asarray(self.vector, dtype=np.float64).reshape(-1)
        norm = np.linalg.norm(v)
        if not np.isfinite(norm) or norm == 0:
            raise ValueError(f"direction {self.name!r} has zero or non-finite norm")
        self.vector = v / norm

    @property
    def dim(self):
        return self.vector.shape[0]

    @property
    def sha256(self):
        return hashlib.sha256(self.vector.astype(np.float64).tobytes()).hexdigest()

    def check_dim(self, dim, space):
        if self.dim != dim:
            raise ValueError(f"direction {self.name!r} has {self.dim} entries but the {space} space of this model has {dim}")
        return self

    def save(self, path):
        """InterFaceGAN's layout: float64 array of shape (1, d)."""
        np.save(path, self.vector[None].astype(np.float64))


def load_direction(source, name=None, space=None):
    """A Direction from a .npy file ((1, d) or (d,), as InterFaceGAN saves them), an array or a Direction."""
    if isinstance(source, Direction):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such direction file")
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise ValueError(f"{path}: not a .npy array ({e})") from None
        if arr.ndim == 2 and arr.shape[0] != 1 or arr.ndim > 2:
            raise ValueError(f"{path}: a direction must have shape (1, d) or (d,), got {arr.shape}")
        space = space or infer_space(path)
        return Direction(arr, name=name or os.path.splitext(os.path.basename(path))[0], space=space, source=path)
    arr = np.asarray(source.detach().cpu().numpy() if hasattr(source, "detach") else source)
    if arr.ndim == 2 and arr.shape[0] != 1 or arr.ndim > 2:
        raise ValueError(f"a direction must have shape (1, d) or (d,), got {arr.shape}")
    return Direction(arr, name=name or "direction", space=space, source="array")


def infer_space(path):
    """InterFaceGAN names: '..._w_boundary.npy' is W space, '..._boundary.npy' Z space; else unknown."""
    base = os.path.basename(path)
    if base.endswith("_w_boundary.npy"):
        return "w"
    if base.endswith("_boundary.npy"):
        return "z"
    return None


def orthogonalize(primary, conditions):
    """Remove from `primary` its projection onto span(conditions), then renormalise (InterFaceGAN's conditioning).

    Exact for any number of conditions: the span is orthonormalised by a QR
    decomposition. Fails clearly when the primary lies (numerically) in that span.
    """
    p = load_direction(primary)
    conds = [load_direction(c) for c in conditions]
    if not conds:
        return p
    for c in conds:
        c.check_dim(p.dim, "primary direction's")
    basis, r = np.linalg.qr(np.stack([c.vector for c in conds], axis=1))
    keep = np.abs(np.diag(r)) > 1e-10  # drop conditions that repeat others
    basis = basis[:, keep]
    v = p.vector - basis @ (basis.T @ p.vector)
    if np.linalg.norm(v) < 1e-8:
        raise ValueError(f"direction {p.name!r} lies in the span of its conditions; nothing is left after conditioning")
    names = "_".join(c.name for c in conds)
    return Direction(v, name=f"{p.name}_c_{names}", space=p.space, source=p.source, meta={"conditions": [c.name for c in conds]})
