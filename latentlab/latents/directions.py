"""Semantic directions: one `Direction` type for boundaries and edits, its file layout, loading and conditioning.

A direction is a unit vector in one latent space (z, w, one w+ layer, s). On disk it is
InterFaceGAN's layout, a float64 .npy array of shape (1, d). A boundary folder (what
`latentlab boundary` writes and `latentlab.edits.registry` reads) adds, per direction, a JSON
report beside the .npy (`<stem>.json`) and an entry in the folder's `index.json`:

    {"attributes": {"<stem>": {"file": "<stem>.npy", "space": "w", ...fields..., "report": "<stem>.json"}}}

`Direction.save` writes all three; `latentlab.boundaries.write_boundary` and the edits share it.
It lives here, below both `latentlab.boundaries` and `latentlab.edits`, so that neither imports
the other (`latentlab.edits.Direction` / `load_direction` re-export it).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional, Sequence, Union

import numpy as np

from ..errors import ConfigError
from ..utils.atomic import atomic_path, write_text
from ..utils.limits import MAX_DIRECTION_BYTES
from ..utils.npy import load_npy
from ..utils.safe_json import AnyOf, Map, Obj, Str, load_json

if TYPE_CHECKING:
    import torch

# What load_direction accepts: a Direction, a .npy path, or the vector itself.
DirectionLike = Union["Direction", str, "os.PathLike[str]", np.ndarray, "torch.Tensor", Sequence[float]]

__all__ = ["Direction", "infer_space", "json_default", "load_direction", "orthogonalize"]

# A boundary folder's index.json (`latentlab.utils.safe_json` checks it on every read; other fields are free).
INDEX_SCHEMA = Obj(
    {
        "attributes": Map(
            Obj({"file": Str(1024), "space": AnyOf(None, Str(64)), "report": AnyOf(None, Str(1024))}, required=["file"])
        )
    }
)


def json_default(x: Any) -> Any:
    """`json.dumps(default=...)` for reports: NumPy scalars and arrays as numbers and lists, anything else as str."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


@dataclass
class Direction:
    """A unit vector in one latent space. `vector` is float64 of shape (d,)."""

    vector: np.ndarray
    name: str = "direction"
    space: Optional[str] = None  # 'z', 'w', 'w+' layer code or 's'; None when unknown
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = np.asarray(self.vector, dtype=np.float64).reshape(-1)
        norm = np.linalg.norm(v)
        if not np.isfinite(norm) or norm == 0:
            raise ConfigError(f"direction {self.name!r} has zero or non-finite norm")
        self.vector = v / norm

    @property
    def dim(self) -> int:
        return self.vector.shape[0]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.vector.astype(np.float64).tobytes()).hexdigest()

    def check_dim(self, dim: int, space: str) -> Direction:
        if self.dim != dim:
            raise ConfigError(
                f"direction {self.name!r} has {self.dim} entries but the {space} space of this model has {dim}"
            )
        return self

    def save(
        self,
        path: Union[str, os.PathLike],
        report: Optional[Dict[str, Any]] = None,
        index: Optional[Dict[str, Any]] = None,
    ) -> str:
        """Write InterFaceGAN's layout, a float64 array of shape (1, d), to `path` (.npy appended if missing).

        report: a JSON-able dict, written beside the array as `<stem>.json`. index: register the
        file in its folder's index.json as `<stem>`, with `file`, `space` (this direction's), the
        given fields and `report` (when one is written); other entries of the index are kept.
        Every file is written atomically. Returns the .npy path.
        """
        path = os.fspath(path)
        if not path.endswith(".npy"):
            path += ".npy"  # what np.save does with a bare name
        with atomic_path(path, ".npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, self.vector[None].astype(np.float64))
        stem = path[:-4]
        if report is not None:
            write_text(stem + ".json", json.dumps(report, indent=1, default=json_default))
        if index is not None:
            index_path = os.path.join(os.path.dirname(os.path.abspath(path)), "index.json")
            entries = {}
            if os.path.exists(index_path):
                entries = load_json(index_path, INDEX_SCHEMA)
            entry = {"file": os.path.basename(path), "space": self.space, **index}
            if report is not None:
                entry["report"] = os.path.basename(stem) + ".json"
            entries.setdefault("attributes", {})[os.path.basename(stem)] = entry
            write_text(index_path, json.dumps(entries, indent=1, default=json_default))
        return path


def load_direction(source: DirectionLike, name: Optional[str] = None, space: Optional[str] = None) -> Direction:
    """A Direction from a .npy file ((1, d) or (d,), as InterFaceGAN saves them), an array or a Direction."""
    if isinstance(source, Direction):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such direction file")
        arr = load_npy(path, max_bytes=MAX_DIRECTION_BYTES, what="direction (.npy array)")
        if arr.ndim == 2 and arr.shape[0] != 1 or arr.ndim > 2:
            raise ConfigError(f"{path}: a direction must have shape (1, d) or (d,), got {arr.shape}")
        space = space or infer_space(path)
        return Direction(arr, name=name or os.path.splitext(os.path.basename(path))[0], space=space, source=path)
    arr = np.asarray(source.detach().cpu().numpy() if hasattr(source, "detach") else source)
    if arr.ndim == 2 and arr.shape[0] != 1 or arr.ndim > 2:
        raise ConfigError(f"a direction must have shape (1, d) or (d,), got {arr.shape}")
    return Direction(arr, name=name or "direction", space=space, source="array")


def infer_space(path: Union[str, os.PathLike]) -> Optional[str]:
    """InterFaceGAN names: '..._w_boundary.npy' is W space, '..._boundary.npy' Z space; else unknown."""
    base = os.path.basename(path)
    if base.endswith("_w_boundary.npy"):
        return "w"
    if base.endswith("_boundary.npy"):
        return "z"
    return None


def orthogonalize(primary: DirectionLike, conditions: Iterable[DirectionLike]) -> Direction:
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
        raise ConfigError(
            f"direction {p.name!r} lies in the span of its conditions; nothing is left after conditioning"
        )
    names = "_".join(c.name for c in conds)
    return Direction(
        v, name=f"{p.name}_c_{names}", space=p.space, source=p.source, meta={"conditions": [c.name for c in conds]}
    )
