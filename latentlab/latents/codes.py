"""A batch of latent codes that knows its space, converts forward through a generator, and saves itself.

Spaces and shapes:
    'z'  [N, z_dim]                       the mapping network's input
    'w'  [N, w_dim]                       one w per image (broadcast to every layer)
    'w+' [N, num_ws, w_dim]               one w per layer
    's'  [N, sum of style channels]       the per-layer styles, packed (see SynthesisNetwork.pack_styles)
Conversions go forward only: z -> w -> w+ -> s -> image.
"""
import json
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch

from ..models.identity import model_hash
from ..utils.atomic import save_npz
from .seeds import z_from_seeds

SPACES = ("z", "w", "w+", "s")
_ORDER = {s: i for i, s in enumerate(SPACES)}


def check_space(space):
    if space not in SPACES:
        raise ValueError(f"unknown latent space {space!r}; choose from {', '.join(SPACES)}")
    return space


def space_dim(G, space):
    """Size of one code (the last axis) in `space` for generator G."""
    check_space(space)
    if space == "z":
        return G.z_dim
    if space in ("w", "w+"):
        return G.w_dim
    return sum(G.synthesis.style_dims.values())


@dataclass
class LatentCodes:
    data: torch.Tensor
    space: str
    seeds: Optional[List[int]] = None
    c: Optional[torch.Tensor] = None  # labels of conditional generators, [N, c_dim]
    model_id: Optional[str] = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        check_space(self.space)
        want = 3 if self.space == "w+" else 2
        if self.data.ndim != want:
            raise ValueError(f"{self.space} codes must have {want} dims, got shape {tuple(self.data.shape)}")
        if self.seeds is not None and len(self.seeds) != len(self.data):
            raise ValueError(f"{len(self.seeds)} seeds for {len(self.data)} codes")

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def from_seeds(cls, G, seeds, c=None, device="cpu"):
        """z codes for seeds, drawn exactly like NVIDIA's generate.py (RandomState(seed).randn(z_dim))."""
        seeds = [int(s) for s in seeds]
        return cls(z_from_seeds(seeds, G.z_dim, device), "z", seeds=seeds, c=c, model_id=model_hash(G))

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        idx = [idx] if isinstance(idx, int) else idx
        rows = torch.arange(len(self))[idx]
        return self.replace(
            data=self.data[rows],
            seeds=[self.seeds[i] for i in rows.tolist()] if self.seeds is not None else None,
            c=self.c[rows] if self.c is not None else None,
        )

    def replace(self, **changes):
        kw = dict(data=self.data, space=self.space, seeds=self.seeds, c=self.c, model_id=self.model_id, meta=dict(self.meta))
        kw.update(changes)
        return LatentCodes(**kw)

    def _labels(self, G):
        if self.c is not None:
            return self.c.to(self.data.device)
        if G.c_dim:
            raise ValueError(f"this generator is conditional ({G.c_dim} labels); give the codes labels (c=...)")
        return torch.zeros([len(self), 0], device=self.data.device)

    def _check(self, G):
        d = space_dim(G, self.space)
        if self.data.shape[-1] != d or (self.space == "w+" and self.data.shape[1] != G.num_ws):
            shape = f"[N, {G.num_ws}, {d}]" if self.space == "w+" else f"[N, {d}]"
            raise ValueError(f"{self.space} codes of shape {tuple(self.data.shape)} do not fit this generator ({shape})")

    # ---- conversions ---------------------------------------------------------------------
    def to(self, space, G, truncation_psi=1.0, truncation_cutoff=None):
        """Convert forward to `space`. Truncation applies when leaving Z (a cutoff makes the result W+)."""
        check_space(space)
        self._check(G)
        if _ORDER[space] < _ORDER[self.space]:
            raise ValueError(f"cannot convert {self.space} codes back to {space} (conversions go z -> w -> w+ -> s)")
        codes = self
        if codes.space == "z" and space != "z":
            ws = G.mapping(codes.data, codes._labels(G), truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
            uniform = truncation_cutoff is None or truncation_psi == 1
            codes = codes.replace(data=ws[:, 0] if uniform else ws, space="w" if uniform else "w+")
            if space == "w" and codes.space == "w+":
                raise ValueError("a truncation cutoff makes the layers differ: convert to 'w+' instead of 'w'")
        if codes.space == "w" and space in ("w+", "s"):
            codes = codes.replace(data=codes.data.unsqueeze(1).repeat(1, G.num_ws, 1), space="w+")
        if codes.space == "w+" and space == "s":
            codes = codes.replace(data=G.synthesis.pack_styles(G.synthesis.compute_styles(codes.data)), space="s")
        return codes

    def wplus(self, G, **kw):
        return self.to("w+", G, **kw).data

    def render(self, G, noise_mode="const", batch_size=16, **synthesis_kwargs):
        """Images [N, C, H, W] (batched; no grad)."""
        out = []
        with torch.no_grad():
            for i in range(0, len(self), batch_size):
                part = self[i : i + batch_size]
                if part.space == "s":
                    out.append(G.synthesis(styles=part.data, noise_mode=noise_mode, **synthesis_kwargs))
                else:
                    out.append(G.synthesis(part.wplus(G), noise_mode=noise_mode, **synthesis_kwargs))
        return torch.cat(out)

    # ---- files ---------------------------------------------------------------------------
    def arrays(self, prefix=""):
        d = {f"{prefix}codes": self.data.detach().cpu().numpy()}
        if self.seeds is not None:
            d[f"{prefix}seeds"] = np.asarray(self.seeds, dtype=np.int64)
        if self.c is not None:
            d[f"{prefix}c"] = self.c.detach().cpu().numpy()
        return d

    def save(self, path, **extra_arrays):
        """Write an .npz with the codes, space, seeds, labels and model id (atomically)."""
        arrays = self.arrays()
        arrays["space"] = np.asarray(self.space)
        arrays["model_id"] = np.asarray(self.model_id or "")
        arrays["meta"] = np.asarray(json.dumps(self.meta, default=str))
        arrays.update({k: np.asarray(v) for k, v in extra_arrays.items()})
        save_npz(path, arrays)

    @classmethod
    def load(cls, path, prefix=""):
        with np.load(path, allow_pickle=False) as f:
            if f"{prefix}codes" not in f:
                raise ValueError(f"{path}: no latent codes in this file")
            return cls(
                torch.from_numpy(f[f"{prefix}codes"]).float(),
                str(f["space"]),
                seeds=f[f"{prefix}seeds"].tolist() if f"{prefix}seeds" in f else None,
                c=torch.from_numpy(f[f"{prefix}c"]).float() if f"{prefix}c" in f else None,
                model_id=str(f["model_id"]) or None,
                meta=json.loads(str(f["meta"])) if "meta" in f else {},
            )

    @classmethod
    def load_for(cls, path, G, device="cpu"):
        """Load a latents file for generator G: refuses files made with another model or codes that do not fit G."""
        try:
            codes = cls.load(path)
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"{path}: not a latents file ({e})") from None
        if codes.model_id and codes.model_id != model_hash(G)[: len(codes.model_id)]:
            raise ValueError(f"{path}: these latents belong to another model (id {codes.model_id}, this one is "
                             f"{model_hash(G)[: len(codes.model_id)]})")
        try:
            codes._check(G)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        if codes.c is not None and codes.c.shape[1] != G.c_dim:
            raise ValueError(f"{path}: labels of width {codes.c.shape[1]}, the generator expects {G.c_dim}")
        return codes.replace(data=codes.data.to(device), c=None if codes.c is None else codes.c.to(device))
