"""Style mixing and interpolation between latent codes, and the grids and paths built from them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError

if TYPE_CHECKING:
    from tqdm import tqdm

    from ..latents.layers import LayerSpec
    from ..models.aliases import AnyGenerator


def style_mix(ws_dst: torch.Tensor, ws_src: torch.Tensor, layers: Sequence[int]) -> torch.Tensor:
    """Copy the ws layers `layers` (list of indices) from ws_src into a copy of ws_dst ([N, num_ws, w_dim] each)."""
    if ws_dst.shape != ws_src.shape:
        raise ConfigError(f"cannot mix ws of shapes {tuple(ws_dst.shape)} and {tuple(ws_src.shape)}")
    out = ws_dst.clone()
    out[:, layers] = ws_src[:, layers]
    return out


def lerp(a: torch.Tensor, b: torch.Tensor, t: Union[torch.Tensor, Sequence[float], float]) -> torch.Tensor:
    """a + t (b - a) for every t in the 1-D tensor `t`: [T, *a.shape]."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device).reshape(-1, *([1] * a.ndim))
    return torch.lerp(a.unsqueeze(0), b.unsqueeze(0), t)  # exact at both ends


def slerp(
    a: torch.Tensor, b: torch.Tensor, t: Union[torch.Tensor, Sequence[float], float], eps: float = 1e-7
) -> torch.Tensor:
    """Spherical interpolation of directions with linearly interpolated norms: [T, N, d] for a, b [N, d].

    The direction moves along the great circle between a/|a| and b/|b|; the norm
    goes from |a| to |b| linearly (so equal-norm endpoints keep their norm).
    """
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device).reshape(-1, 1, 1)
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    cos = (ua * ub).sum(-1, keepdim=True).clamp(-1 + eps, 1 - eps)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    near = so < 1e-4  # nearly parallel: fall back to normalised lerp
    wa = torch.where(near, 1 - t, torch.sin((1 - t) * omega) / so)
    wb = torch.where(near, t, torch.sin(t * omega) / so)
    u = wa * ua + wb * ub
    u = u / u.norm(dim=-1, keepdim=True).clamp_min(eps)
    return u * ((1 - t) * na + t * nb)


# ---- style-mixing grids and interpolation paths: the library behind `latentlab mix` and `latentlab interpolate` ----
MIX_RECORD = "mix.json"
PATH_FILE = "path.npz"


def mix_grid(
    G: AnyGenerator,
    rows: Sequence[int],
    cols: Sequence[int],
    layers: LayerSpec = "coarse",
    truncation_psi: float = 1.0,
    truncation_cutoff: Optional[int] = None,
    noise_mode: str = "const",
    batch_size: int = 8,
    device: Union[torch.device, str] = "cpu",
    progress: Optional[tqdm] = None,
) -> Dict[str, Any]:
    """A style-mixing grid: each row seed's image with the ws `layers` taken from each column seed's.

    rows, cols: seeds (lists of ints); layers: indices or a spec (`latentlab.latents.parse_layers`:
    0-5, coarse, middle, fine, ...). Returns dict(rows, cols, layers (indices), images_rows [R, H, W, C],
    images_cols [C, ...], images [R*C, ...] (row-major: row seed i, column seed j at i*C + j) uint8,
    grid uint8 (the top row shows the column sources, the left column the row sources, the corner blank),
    record (what `write_mix` puts in mix.json besides versions)).
    """
    from ..latents import parse_layers
    from ..utils.images import make_grid
    from ..utils.render import render_uint8
    from .pipeline import start_codes

    rows, cols = [int(s) for s in rows], [int(s) for s in cols]
    sel = parse_layers(layers, G)
    with torch.no_grad():
        wr = start_codes(G, rows, "w+", truncation_psi, truncation_cutoff, device=device).data
        wc = start_codes(G, cols, "w+", truncation_psi, truncation_cutoff, device=device).data
        mixed = style_mix(wr.repeat_interleave(len(cols), 0), wc.repeat(len(rows), 1, 1), sel)
    img_r, img_c, img_m = (render_uint8(G, ws, batch_size, noise_mode, progress) for ws in (wr, wc, mixed))
    blank = np.full((1, *img_r.shape[1:]), 255, np.uint8)
    cells = [blank, img_c]
    for i in range(len(rows)):
        cells += [img_r[i : i + 1], img_m[i * len(cols) : (i + 1) * len(cols)]]
    grid = make_grid(np.concatenate(cells), cols=len(cols) + 1)
    record = dict(
        rows=rows,
        cols=cols,
        layers=sel,
        truncation=dict(psi=truncation_psi, cutoff=truncation_cutoff),
        noise_mode=noise_mode,
    )
    return dict(
        rows=rows, cols=cols, layers=sel, images_rows=img_r, images_cols=img_c, images=img_m, grid=grid, record=record
    )


def write_mix(
    out_dir: Union[str, os.PathLike], result: Dict[str, Any], record: Optional[Dict[str, Any]] = None
) -> Dict[str, Any]:
    """grid.png, mix_ROW_COL.png per mixed image (4-digit seeds) and mix.json (`result`'s record, `record`'s
    extra entries such as the model, versions). Returns mix.json's record."""
    import json
    import os

    from ..utils.atomic import write_text
    from ..utils.images import save_png, to_pil
    from ..utils.versions import versions

    os.makedirs(out_dir, exist_ok=True)
    save_png(to_pil(result["grid"]), os.path.join(out_dir, "grid.png"))
    cols = result["cols"]
    for i, r in enumerate(result["rows"]):
        for j, c in enumerate(cols):
            save_png(to_pil(result["images"][i * len(cols) + j]), os.path.join(out_dir, f"mix_{r:04d}_{c:04d}.png"))
    record = dict(record or {}, **result["record"], versions=versions())
    write_text(os.path.join(out_dir, MIX_RECORD), json.dumps(record, indent=1, default=str))
    return record


def interpolation_path(
    G: AnyGenerator,
    seeds: Sequence[int],
    frames: int = 8,
    space: str = "w",
    truncation_psi: float = 1.0,
    truncation_cutoff: Optional[int] = None,
    device: Union[torch.device, str] = "cpu",
) -> Dict[str, Any]:
    """Paths between consecutive seeds: slerp in Z, lerp in W / W+, `frames` frames per pair, both ends included.

    Returns dict(seeds, space, frames (per pair), t [frames], codes: LatentCodes of every frame, pair-major:
    pair p, frame f at p*frames + f). Z frames are truncated when rendered (`render_interpolation`).
    Cheap (mapping only): every refusal comes from here, before anything is rendered."""
    from .pipeline import start_codes

    seeds = [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ConfigError("interpolation needs at least two seeds")
    if frames < 2:
        raise ConfigError(f"frames must be >= 2 (both ends), got {frames}")
    if space not in ("z", "w", "w+"):
        raise ConfigError(f"interpolation runs in z, w or w+, got {space!r}")
    codes = start_codes(G, seeds, space, truncation_psi, truncation_cutoff, device=device)
    t = torch.linspace(0, 1, frames)
    a, b = codes.data[:-1], codes.data[1:]
    path = slerp(a, b, t) if space == "z" else lerp(a, b, t)  # [T, P, ...]
    frames_codes = codes.replace(data=path.transpose(0, 1).flatten(0, 1), seeds=None)
    return dict(seeds=seeds, space=space, frames=frames, t=t, codes=frames_codes)


def render_interpolation(
    G: AnyGenerator,
    path: Dict[str, Any],
    truncation_psi: float = 1.0,
    truncation_cutoff: Optional[int] = None,
    noise_mode: str = "const",
    batch_size: int = 8,
    progress: Optional[tqdm] = None,
) -> Dict[str, Any]:
    """`path` (an `interpolation_path`) with its frames rendered: the same dict plus images uint8
    [P*frames, H, W, C], pair-major."""
    from .pipeline import render_codes

    images = render_codes(G, path["codes"], truncation_psi, truncation_cutoff, noise_mode, batch_size, progress)
    return dict(path, images=images)


def write_interpolation(out_dir: Union[str, os.PathLike], result: Dict[str, Any]) -> None:
    """pairPP_frameFFF.png per frame, grid.png (a row per pair) and path.npz (codes, space, seeds, t)."""
    import os

    from ..utils.atomic import save_npz
    from ..utils.images import make_grid, save_png, to_pil

    os.makedirs(out_dir, exist_ok=True)
    steps, images = result["frames"], result["images"]
    for k, img in enumerate(images):
        save_png(to_pil(img), os.path.join(out_dir, f"pair{k // steps:02d}_frame{k % steps:03d}.png"))
    save_png(to_pil(make_grid(images, cols=steps)), os.path.join(out_dir, "grid.png"))
    arrays = dict(
        codes=result["codes"].data.cpu().numpy(),
        space=np.asarray(result["space"]),
        seeds=np.asarray(result["seeds"]),
        t=result["t"].numpy(),
    )
    save_npz(os.path.join(out_dir, PATH_FILE), arrays)
