"""A batch of latent codes that knows its space, converts forward through a generator, and saves itself.

Spaces and shapes:
    'z'  [N, z_dim]                       the mapping network's input
    'w'  [N, w_dim]                       one w per image (broadcast to every layer)
    'w+' [N, num_ws, w_dim]               one w per layer
    's'  [N, sum of style channels]       the per-layer styles, packed (see SynthesisNetwork.pack_styles)
Conversions go forward only: z -> w -> w+ -> s -> image.

Codes of real images (`latentlab project`, `latentlab encode`) also carry the per-image noise maps they
were found with (`noise`: one [N, 1, R, R] per noise layer, saved as arrays noise0, noise1, ...);
rendering uses them (`noise_mode='const'`), so a projected image renders as its reconstruction, and
every row operation (selection, edits, repeats) keeps them aligned with the codes.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..models.identity import model_hash
from ..models.noise import noise_layers, noise_override
from ..utils.atomic import save_npz
from ..utils.npy import check_kind, load_npz
from ..utils.safe_json import Obj, loads_json
from .seeds import z_from_seeds

if TYPE_CHECKING:
    from tqdm import tqdm

    from ..models.aliases import AnyGenerator

SPACES = ("z", "w", "w+", "s")
NVIDIA_W_KEY = "w"  # the one array of NVIDIA's projected_w.npz: W+ codes [N, num_ws, w_dim]
NVIDIA_W_FILE = "projected_w.npz"  # the file name NVIDIA's projector writes and its generate.py --projected-w reads
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


def check_forward(have: str, want: str, source: str = "the codes", fix: str = "") -> None:
    """ConfigError (one line naming `source`, with `fix` appended) unless `have` codes convert forward to `want`."""
    check_space(have)
    check_space(want)
    if _ORDER[want] < _ORDER[have]:
        raise ConfigError(
            f"{source}: {have} codes cannot become {want} codes (conversions go z -> w -> w+ -> s, never back)"
            + (f"; {fix}" if fix else "")
        )


@dataclass
class LatentCodes:
    """Codes `data` of one `space`, with optional per-code seeds, labels `c` and noise maps.

    model_id: the hash of the generator they belong to (`load_for` refuses another model's). meta:
    JSON-able facts (e.g. 'targets': the image names of inverted codes, one per code). noise: per-code
    noise maps, one [N, 1, R, R] tensor per noise layer of the generator (`noise_layers` order), used
    when rendering with noise_mode='const'; None: the generator's own constant noise. source: the file
    the codes were read from (for messages and records; not saved).
    """

    data: torch.Tensor
    space: str
    seeds: Optional[List[int]] = None
    c: Optional[torch.Tensor] = None  # labels of conditional generators, [N, c_dim]
    model_id: Optional[str] = None
    meta: dict = field(default_factory=dict)
    noise: Optional[List[torch.Tensor]] = None
    source: Optional[str] = None

    def __post_init__(self):
        check_space(self.space)
        want = 3 if self.space == "w+" else 2
        if self.data.ndim != want:
            raise ConfigError(f"{self.space} codes must have {want} dims, got shape {tuple(self.data.shape)}")
        if self.seeds is not None and len(self.seeds) != len(self.data):
            raise ConfigError(f"{len(self.seeds)} seeds for {len(self.data)} codes")
        if self.noise is not None:
            self.noise = list(self.noise)
            for k, n in enumerate(self.noise):
                if n.ndim != 4 or n.shape[0] != len(self.data) or n.shape[1] != 1 or n.shape[2] != n.shape[3]:
                    raise ConfigError(
                        f"noise map {k} must be [N={len(self.data)}, 1, R, R] (one per code), got {tuple(n.shape)}"
                    )

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
        return self._rows(torch.arange(len(self))[idx])

    def _rows(self, rows: torch.Tensor, data: Optional[torch.Tensor] = None) -> LatentCodes:
        """These codes' rows `rows` (a 1-D index tensor, repeats allowed): seeds, labels, noise and the
        per-code meta 'targets' follow; `data`, when given, replaces the selected codes' values."""
        meta = dict(self.meta)
        targets = meta.get("targets")
        if isinstance(targets, list) and len(targets) == len(self):
            meta["targets"] = [targets[i] for i in rows.tolist()]
        return self.replace(
            data=self.data[rows.to(self.data.device)] if data is None else data,
            seeds=[self.seeds[i] for i in rows.tolist()] if self.seeds is not None else None,
            c=self.c[rows.to(self.c.device)] if self.c is not None else None,
            noise=None if self.noise is None else [n[rows.to(n.device)] for n in self.noise],
            meta=meta,
        )

    def repeat_rows(self, k: int, data: Optional[torch.Tensor] = None) -> LatentCodes:
        """Every code k times in a row (code-major: code0 x k, code1 x k, ...), with its seed, label, noise
        and name; `data` [N*k, ...] replaces the values (e.g. an edit sweep's columns)."""
        rows = torch.arange(len(self)).repeat_interleave(int(k))
        if data is not None and len(data) != len(rows):
            raise ConfigError(f"{len(data)} codes for {len(self)} codes x {k} repeats")
        return self._rows(rows, data)

    def replace(self, **changes: Any) -> LatentCodes:
        kw: Dict[str, Any] = dict(
            data=self.data,
            space=self.space,
            seeds=self.seeds,
            c=self.c,
            model_id=self.model_id,
            meta=dict(self.meta),
            noise=self.noise,
            source=self.source,
        )
        kw.update(changes)
        return LatentCodes(**kw)

    def names(self) -> List[str]:
        """One name per code, for file names and tables: the image names of inverted codes (meta 'targets'),
        else seedNNNN, else codeNNNN (the code's index)."""
        targets = self.meta.get("targets")
        if isinstance(targets, list) and len(targets) == len(self):
            return [str(t) for t in targets]
        if self.seeds is not None:
            return [f"seed{s:04d}" for s in self.seeds]
        return [f"code{i:04d}" for i in range(len(self))]

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
        self._check_noise(G)

    def _check_noise(self, G):
        if self.noise is None:
            return
        layers = noise_layers(G.synthesis)
        if len(self.noise) != len(layers):
            raise ConfigError(
                f"{len(self.noise)} noise maps (noise0, noise1, ...) for this generator's {len(layers)} noise layers"
            )
        for k, (n, (_, r)) in enumerate(zip(self.noise, layers)):
            if n.shape[-1] != r:
                raise ConfigError(f"noise map {k} is {n.shape[-1]}x{n.shape[-1]}, this generator's layer is {r}x{r}")

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

    def render_batches(
        self,
        G: AnyGenerator,
        noise_mode: str = "const",
        batch_size: int = 16,
        progress: Optional[tqdm] = None,
        **synthesis_kwargs: Any,
    ) -> Iterator[torch.Tensor]:
        """Float images [B, C, H, W], `batch_size` codes at a time, without grad. With noise_mode='const' codes
        that carry noise maps render with them (`noise_override`); 'random' and 'none' ignore them."""
        from ..utils.render import render_batches

        inputs = self.synthesis_input(G)
        if self.noise is None or noise_mode != "const":
            yield from render_batches(
                G, **inputs, batch_size=batch_size, noise_mode=noise_mode, progress=progress, **synthesis_kwargs
            )
            return
        self._check_noise(G)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        ((kind, x),) = inputs.items()
        for i in range(0, len(self), batch_size):
            with noise_override(G.synthesis, [n[i : i + batch_size] for n in self.noise]):
                (img,) = render_batches(
                    G, **{kind: x[i : i + batch_size]}, batch_size=batch_size, noise_mode="const", **synthesis_kwargs
                )
            yield img  # outside the override: the caller may render with G in between
            if progress is not None:
                progress.update(len(img))

    def render(
        self, G: AnyGenerator, noise_mode: str = "const", batch_size: int = 16, **synthesis_kwargs: Any
    ) -> torch.Tensor:
        """Images [N, C, H, W] (batched; no grad; with the codes' noise maps, see `render_batches`)."""
        return torch.cat(list(self.render_batches(G, noise_mode, batch_size, **synthesis_kwargs)))

    def render_uint8(
        self,
        G: AnyGenerator,
        noise_mode: str = "const",
        batch_size: int = 16,
        progress: Optional[tqdm] = None,
        **synthesis_kwargs: Any,
    ) -> np.ndarray:
        """uint8 images [N, H, W, C] (rounded as `latentlab.utils.render.render_uint8` rounds), batched, without
        grad, with the codes' noise maps (see `render_batches`)."""
        from ..utils.images import to_uint8

        out = [to_uint8(x) for x in self.render_batches(G, noise_mode, batch_size, progress, **synthesis_kwargs)]
        if not out:
            return np.zeros((0, G.img_resolution, G.img_resolution, G.img_channels), dtype=np.uint8)
        return np.concatenate(out)

    # ---- files ---------------------------------------------------------------------------
    def arrays(self, prefix: str = "") -> Dict[str, np.ndarray]:
        d = {f"{prefix}codes": self.data.detach().cpu().numpy()}
        if self.seeds is not None:
            d[f"{prefix}seeds"] = np.asarray(self.seeds, dtype=np.int64)
        if self.c is not None:
            d[f"{prefix}c"] = self.c.detach().cpu().numpy()
        for k, n in enumerate(self.noise or ()):
            d[f"{prefix}noise{k}"] = n.detach().cpu().numpy()
        return d

    def save(self, path: Union[str, os.PathLike], **extra_arrays: Any) -> None:
        """Write an .npz with the codes, space, seeds, labels, noise maps (noise0, noise1, ...) and model id
        (atomically); `extra_arrays` are added (and win over those of the same name)."""
        arrays = self.arrays()
        arrays["space"] = np.asarray(self.space)
        arrays["model_id"] = np.asarray(self.model_id or "")
        arrays["meta"] = np.asarray(json.dumps(self.meta, default=str))
        arrays.update({k: np.asarray(v) for k, v in extra_arrays.items()})
        save_npz(path, arrays)

    def save_projected_w(self, path: Union[str, os.PathLike], G: AnyGenerator) -> None:
        """Write the codes as NVIDIA's projected_w.npz (one array `w`, float32 [N, num_ws, w_dim]; atomically),
        which stylegan2-ada-pytorch's generate.py --projected-w renders and `load` reads back as W+ codes. Z and
        W codes are mapped or repeated per layer with G; S codes cannot go back to W+ (ConfigError)."""
        ws = self if self.space == "w+" else self.to("w+", G)
        save_npz(path, {NVIDIA_W_KEY: ws.data.detach().cpu().numpy().astype(np.float32, copy=False)})

    @classmethod
    def load(cls, path: Union[str, os.PathLike], prefix: str = "") -> LatentCodes:
        """The codes `prefix`codes of an .npz written by `save` (with their seeds, labels, noise maps, meta).

        Without a prefix, NVIDIA's `projected_w.npz` (stylegan2-ada-pytorch's projector output: one
        array `w`, float [N, num_ws, w_dim], nothing else) reads as W+ codes, without a model id (the file has
        none) or noise maps (the projector does not save its optimised noise; its generate.py renders the codes
        with the generator's constant noise, as these render)."""
        fixed = {f"{prefix}codes", f"{prefix}seeds", f"{prefix}c", "space", "model_id", "meta"}
        if not prefix:
            fixed.add(NVIDIA_W_KEY)
        noise_name = re.compile(re.escape(prefix) + r"noise\d+")
        f = load_npz(path, keys=lambda k: k in fixed or noise_name.fullmatch(k) is not None, what="latents file")
        if f"{prefix}codes" not in f:
            if not prefix and NVIDIA_W_KEY in f:
                return cls._from_projected_w(f[NVIDIA_W_KEY], os.fspath(path))
            raise ConfigError(
                f"{path}: no latent codes in this file (neither latentlab's '{prefix}codes' array nor the 'w' "
                "array of NVIDIA's projected_w.npz)"
            )
        noise_keys = [k for k in f if noise_name.fullmatch(k)]
        wanted = [f"{prefix}noise{k}" for k in range(len(noise_keys))]
        if sorted(noise_keys) != sorted(wanted):
            raise ConfigError(f"{path}: noise maps must be numbered noise0..noise{len(noise_keys) - 1}")
        for k in [f"{prefix}codes", f"{prefix}c", *wanted]:
            check_kind(f, k, "biuf", os.fspath(path))
        check_kind(f, f"{prefix}seeds", "iu", os.fspath(path), "integers")
        for k in ("space", "model_id", "meta"):
            check_kind(f, k, "U", os.fspath(path), "text")
        if "space" not in f:
            raise ConfigError(f"{path}: no 'space' entry (which latent space the codes are in)")
        meta = loads_json(str(f["meta"]), f"{path}: meta", Obj({})) if "meta" in f else {}
        codes = cls(
            torch.from_numpy(f[f"{prefix}codes"]).float(),
            str(f["space"]),
            seeds=f[f"{prefix}seeds"].tolist() if f"{prefix}seeds" in f else None,
            c=torch.from_numpy(f[f"{prefix}c"]).float() if f"{prefix}c" in f else None,
            model_id=(str(f["model_id"]) if "model_id" in f else "") or None,
            meta=meta,
            noise=[torch.from_numpy(f[k]).float() for k in wanted] if wanted else None,
        )
        return codes.replace(source=os.fspath(path))

    @classmethod
    def _from_projected_w(cls, w: np.ndarray, path: str) -> LatentCodes:
        """W+ codes from the `w` array of NVIDIA's projected_w.npz (see `load`)."""
        check_kind({NVIDIA_W_KEY: w}, NVIDIA_W_KEY, "f", path, "floats")
        if w.ndim != 3:
            raise ConfigError(
                f"{path}: 'w' has shape {tuple(w.shape)}; NVIDIA's projected_w.npz holds [N, num_ws, w_dim]"
            )
        return cls(torch.from_numpy(w).float(), "w+", meta={"format": "nvidia projected_w"}, source=path)

    @classmethod
    def load_for(
        cls, path: Union[str, os.PathLike], G: AnyGenerator, device: Union[torch.device, str] = "cpu"
    ) -> LatentCodes:
        """Load a latents file for generator G: refuses (one line naming the file) files made with another model,
        codes that do not fit G, and noise maps that do not fit G's noise layers (count and resolutions)."""
        try:
            codes = cls.load(path)
        except ConfigError as e:
            raise ConfigError(str(e) if os.fspath(path) in str(e) else f"{path}: {e}") from None
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
        return codes.replace(
            data=codes.data.to(device),
            c=None if codes.c is None else codes.c.to(device),
            noise=None if codes.noise is None else [n.to(device) for n in codes.noise],
        )
