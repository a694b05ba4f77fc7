"""A batch of latent codes that knows its space, converts forward through a generator, and saves itself.

Spaces and shapes:
    'z'  [N, z_dim]                       the mapping network's input
    'w'  [N, w_dim]                       one w per image (broadcast to every layer)
    'w+' [N, num_ws, w_dim]               one w per layer
    's'  [N, sum of style channels]       the per-layer styles, packed (see SynthesisNetwork.pack_styles)
Conversions go forward only: z -> w -> w+ -> s -> image.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..models.identity import model_hash
from ..utils.atomic import save_npz
from .seeds import z_from_seeds

if TYPE_CHECKING:
    from tqdm import tqdm

    from ..models.aliases import AnyGenerator

SPACES = ("z", "w", "w+", "s")
_ORDER = {s: i for i, s in enumerate(SPACES)}


def check_space(space: str) -> str:
    if space not in SPACES:
        raise ConfigError(f"unknown latent space {space!r}; choose from {', '.join(SPACES)}")
    return space


def space_dim(G: AnyGenerator, space: str) -> int:
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
            raise ConfigError(f"{self.space} codes must have {want} dims, got shape {tuple(self.data.shape)}")
        if self.seeds is not None and len(self.seeds) != len(self.data):
            raise ConfigError(f"{len(self.seeds)} seeds for {len(self.data)} codes")

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def from_seeds(
        cls,
        G: AnyGenerator,
        seeds: Sequence[int],
        c: Optional[torch.Tensor] = None,
        device: Union[torch.device, str] = "cpu",
    ) -> LatentCodes:
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

    def replace(self, **changes: Any) -> LatentCodes:
        kw: Dict[str, Any] = dict(
            data=self.data, space=self.space, seeds=self.seeds, c=self.c, model_id=self.model_id, meta=dict(self.meta)
        )
        kw.update(changes)
        return LatentCodes(**kw)

    def _labels(self, G):
        if self.c is not None:
            return self.c.to(self.data.device)
        if G.c_dim:
            raise ConfigError(f"this generator is conditional ({G.c_dim} labels); give the codes labels (c=...)")
        return torch.zeros([len(self), 0], device=self.data.device)

    def _check(self, G):
        d = space_dim(G, self.space)
        if self.data.shape[-1] != d or (self.space == "w+" and self.data.shape[1] != G.num_ws):
            shape = f"[N, {G.num_ws}, {d}]" if self.space == "w+" else f"[N, {d}]"
            raise ConfigError(
                f"{self.space} codes of shape {tuple(self.data.shape)} do not fit this generator ({shape})"
            )

    # ---- conversions ---------------------------------------------------------------------
    def to(
        self, space: str, G: AnyGenerator, truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None
    ) -> LatentCodes:
        """Convert forward to `space`. Truncation applies when leaving Z (a cutoff makes the result W+)."""
        check_space(space)
        self._check(G)
        if _ORDER[space] < _ORDER[self.space]:
            raise ConfigError(f"cannot convert {self.space} codes back to {space} (conversions go z -> w -> w+ -> s)")
        codes = self
        if codes.space == "z" and space != "z":
            ws = G.mapping(
                codes.data, codes._labels(G), truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff
            )
            uniform = truncation_cutoff is None or truncation_psi == 1
            codes = codes.replace(data=ws[:, 0] if uniform else ws, space="w" if uniform else "w+")
            if space == "w" and codes.space == "w+":
                raise ConfigError("a truncation cutoff makes the layers differ: convert to 'w+' instead of 'w'")
        if codes.space == "w" and space in ("w+", "s"):
            codes = codes.replace(data=codes.data.unsqueeze(1).repeat(1, G.num_ws, 1), space="w+")
        if codes.space == "w+" and space == "s":
            codes = codes.replace(data=G.synthesis.pack_styles(G.synthesis.compute_styles(codes.data)), space="s")
        return codes

    def wplus(self, G: AnyGenerator, **kw: Any) -> torch.Tensor:
        return self.to("w+", G, **kw).data

    def synthesis_input(self, G: AnyGenerator) -> Dict[str, torch.Tensor]:
        """What G.synthesis renders these codes from: {'styles': packed S codes} or {'ws': [N, num_ws, w_dim]}
        (z codes are mapped without truncation; convert them with `to` to truncate)."""
        if self.space == "s":
            return {"styles": self.data}
        with torch.no_grad():
            return {"ws": self.wplus(G)}

    def render(
        self, G: AnyGenerator, noise_mode: str = "const", batch_size: int = 16, **synthesis_kwargs: Any
    ) -> torch.Tensor:
        """Images [N, C, H, W] (batched; no grad)."""
        from ..utils.render import render_batches

        return torch.cat(
            list(
                render_batches(
                    G, **self.synthesis_input(G), batch_size=batch_size, noise_mode=noise_mode, **synthesis_kwargs
                )
            )
        )

    def render_uint8(
        self,
        G: AnyGenerator,
        noise_mode: str = "const",
        batch_size: int = 16,
        progress: Optional[tqdm] = None,
        **synthesis_kwargs: Any,
    ) -> np.ndarray:
        """uint8 images [N, H, W, C] (`latentlab.utils.render.render_uint8`), batched, without grad."""
        from ..utils.render import render_uint8

        return render_uint8(
            G,
            **self.synthesis_input(G),
            batch_size=batch_size,
            noise_mode=noise_mode,
            progress=progress,
            **synthesis_kwargs,
        )

    # ---- files ---------------------------------------------------------------------------
    def arrays(self, prefix: str = "") -> Dict[str, np.ndarray]:
        d = {f"{prefix}codes": self.data.detach().cpu().numpy()}
        if self.seeds is not None:
            d[f"{prefix}seeds"] = np.asarray(self.seeds, dtype=np.int64)
        if self.c is not None:
            d[f"{prefix}c"] = self.c.detach().cpu().numpy()
        return d

    def save(self, path: Union[str, os.PathLike], **extra_arrays: Any) -> None:
        """Write an .npz with the codes, space, seeds, labels and model id (atomically)."""
        arrays = self.arrays()
        arrays["space"] = np.asarray(self.space)
        arrays["model_id"] = np.asarray(self.model_id or "")
        arrays["meta"] = np.asarray(json.dumps(self.meta, default=str))
        arrays.update({k: np.asarray(v) for k, v in extra_arrays.items()})
        save_npz(path, arrays)

    @classmethod
    def load(cls, path: Union[str, os.PathLike], prefix: str = "") -> LatentCodes:
        with np.load(path, allow_pickle=False) as f:
            if f"{prefix}codes" not in f:
                raise ConfigError(f"{path}: no latent codes in this file")
            return cls(
                torch.from_numpy(f[f"{prefix}codes"]).float(),
                str(f["space"]),
                seeds=f[f"{prefix}seeds"].tolist() if f"{prefix}seeds" in f else None,
                c=torch.from_numpy(f[f"{prefix}c"]).float() if f"{prefix}c" in f else None,
                model_id=str(f["model_id"]) or None,
                meta=json.loads(str(f["meta"])) if "meta" in f else {},
            )

    @classmethod
    def load_for(
        cls, path: Union[str, os.PathLike], G: AnyGenerator, device: Union[torch.device, str] = "cpu"
    ) -> LatentCodes:
        """Load a latents file for generator G: refuses files made with another model or codes that do not fit G."""
        try:
            codes = cls.load(path)
        except (OSError, KeyError, ValueError) as e:
            raise ConfigError(f"{path}: not a latents file ({e})") from None
        if codes.model_id and codes.model_id != model_hash(G)[: len(codes.model_id)]:
            raise ConfigError(
                f"{path}: these latents belong to another model (id {codes.model_id}, this one is "
                f"{model_hash(G)[: len(codes.model_id)]})"
            )
        try:
            codes._check(G)
        except ValueError as e:
            raise ConfigError(f"{path}: {e}") from None
        if codes.c is not None and codes.c.shape[1] != G.c_dim:
            raise ConfigError(f"{path}: labels of width {codes.c.shape[1]}, the generator expects {G.c_dim}")
        return codes.replace(data=codes.data.to(device), c=None if codes.c is None else codes.c.to(device))
