"""Style mixing and interpolation between latent codes, and the grids and paths built from them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..latents.codes import LatentCodes

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


def _side(G, given, truncation_psi, truncation_cutoff, device, what):
    """(w+ codes, labels for file names) of one side of a mixing grid: seeds, or given codes (z codes are
    mapped with the truncation; w/w+ codes are used as they are; s codes refused)."""
    from .pipeline import start_codes

    if isinstance(given, LatentCodes):
        if given.space == "s":
            raise ConfigError(
                f"{given.source or 'the ' + what + ' codes'}: style mixing copies ws layers, and s codes "
                "cannot become w+ codes (conversions go z -> w -> w+ -> s, never back)"
            )
        psi, cutoff = (truncation_psi, truncation_cutoff) if given.space == "z" else (1.0, None)
        codes = start_codes(G, given, "w+", psi, cutoff, device=device)
        return codes, codes.names() if codes.seeds is None else [f"{s:04d}" for s in codes.seeds]
    seeds = [int(s) for s in given]
    codes = start_codes(G, seeds, "w+", truncation_psi, truncation_cutoff, device=device)
    return codes, [f"{s:04d}" for s in seeds]


def _mix_cells(img_r: np.ndarray, img_c: np.ndarray, img_m: np.ndarray) -> np.ndarray:
    """The cells of a mixing grid, row-major: a blank corner and the column sources, then per row its source
    and its mixes."""
    blank = np.full((1, *img_r.shape[1:]), 255, np.uint8)
    cells = [blank, img_c]
    for i in range(len(img_r)):
        cells += [img_r[i : i + 1], img_m[i * len(img_c) : (i + 1) * len(img_c)]]
    return np.concatenate(cells)


def mix_grid(
    G: AnyGenerator,
    rows: Union[Sequence[int], LatentCodes],
    cols: Union[Sequence[int], LatentCodes],
    layers: LayerSpec = "coarse",
    truncation_psi: float = 1.0,
    truncation_cutoff: Optional[int] = None,
    noise_mode: str = "const",
    batch_size: int = 8,
    device: Union[torch.device, str] = "cpu",
    progress: Optional[tqdm] = None,
) -> Dict[str, Any]:
    """A style-mixing grid: each row image with the ws `layers` taken from each column image.

    rows, cols: seeds (lists of ints) or given codes (LatentCodes, e.g. `LatentCodes.load_for(file, G)`:
    z codes are mapped with the truncation, w and w+ codes are used as they are, s codes are refused);
    layers: indices or a spec (`latentlab.latents.parse_layers`: 0-5, coarse, middle, fine, ...). Codes
    with noise maps render with them: a mixed image has its row image's noise. Returns dict(rows, cols
    (seeds, or None for given codes), row_names, col_names (file-name labels: 4-digit seeds or the
    codes' names), layers (indices), images_rows [R, H, W, C], images_cols [C, ...], images [R*C, ...]
    (row-major: row i, column j at i*C + j) uint8, grid uint8 (the top row shows the column sources, the
    left column the row sources, the corner blank; at the generator's resolution, unlabelled: grid.png is
    this grid labelled and upscaled, `mix_picture`), record (what `write_mix` puts in mix.json besides
    versions)).
    """
    from ..latents import parse_layers
    from ..utils.images import make_grid

    if isinstance(rows, LatentCodes) and isinstance(cols, LatentCodes) and rows.space != "z" and cols.space != "z":
        if truncation_psi != 1 or truncation_cutoff is not None:
            raise ConfigError(
                "truncation applies when mapping from Z: these w/w+ codes are used as they are (drop --trunc)"
            )
    sel = parse_layers(layers, G)
    with torch.no_grad():
        cr, row_names = _side(G, rows, truncation_psi, truncation_cutoff, device, "row")
        cc, col_names = _side(G, cols, truncation_psi, truncation_cutoff, device, "column")
        mixed_ws = style_mix(cr.data.repeat_interleave(len(cc), 0), cc.data.repeat(len(cr), 1, 1), sel)
        mixed = cr.repeat_rows(len(cc), mixed_ws)  # each mixed image keeps its row image's noise
    img_r, img_c, img_m = (c.render_uint8(G, noise_mode, batch_size, progress) for c in (cr, cc, mixed))
    grid = make_grid(_mix_cells(img_r, img_c, img_m), cols=len(cc) + 1)
    row_seeds = None if isinstance(rows, LatentCodes) else [int(s) for s in rows]
    col_seeds = None if isinstance(cols, LatentCodes) else [int(s) for s in cols]
    record = dict(
        rows=row_seeds if row_seeds is not None else row_names,
        cols=col_seeds if col_seeds is not None else col_names,
        row_latents=rows.source if isinstance(rows, LatentCodes) else None,
        col_latents=cols.source if isinstance(cols, LatentCodes) else None,
        layers=sel,
        truncation=dict(psi=truncation_psi, cutoff=truncation_cutoff),
        noise_mode=noise_mode,
    )
    return dict(
        rows=row_seeds,
        cols=col_seeds,
        row_names=row_names,
        col_names=col_names,
        layers=sel,
        images_rows=img_r,
        images_cols=img_c,
        images=img_m,
        grid=grid,
        record=record,
    )


def _span_text(indices: Sequence[int]) -> str:
    """Layer indices as short text: [0, 1, 2, 3, 8] -> '0-3,8'."""
    parts: list = []
    for i in sorted(int(k) for k in indices):
        if parts and parts[-1][1] == i - 1:
            parts[-1][1] = i
        else:
            parts.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


def _grid_labels(seeds: Optional[Sequence[int]], names: Sequence[str]) -> list:
    """Grid labels of one side: 'seed 12' for seeds, else the codes' names."""
    return [f"seed {int(s)}" for s in seeds] if seeds is not None else [str(n) for n in names]


def mix_picture(result: Dict[str, Any], grid_scale: Optional[int] = None) -> np.ndarray:
    """grid.png of a `mix_grid` result: its grid's cells upscaled `grid_scale` times (None: auto, at least
    128 px a cell; `latentlab.utils.grids`), columns labelled with the column sources, rows with the row
    sources (seed 12, or the codes' names), the copied layers in the corner."""
    from ..utils.grids import grid_scale_for
    from ..utils.images import labelled_grid

    rows = _grid_labels(result.get("rows"), result.get("row_names") or [])
    cols = _grid_labels(result.get("cols"), result.get("col_names") or [])
    _, h, w, ch = result["images_rows"].shape
    scale = grid_scale_for(len(rows) + 1, len(cols) + 1, max(h, w), ch, grid_scale)
    return labelled_grid(
        _mix_cells(result["images_rows"], result["images_cols"], result["images"]),
        cols=len(cols) + 1,
        row_labels=["", *rows],  # the first row holds the column sources: its column labels say which
        col_labels=["", *cols],
        corner=f"layers {_span_text(result['layers'])}",
        scale=scale,
    )


def write_mix(
    out_dir: Union[str, os.PathLike],
    result: Dict[str, Any],
    record: Optional[Dict[str, Any]] = None,
    grid_scale: Optional[int] = None,
) -> Dict[str, Any]:
    """grid.png (`mix_picture`: labelled, upscaled `grid_scale` times, None: auto), mix_ROW_COL.png per mixed
    image at the generator's resolution (4-digit seeds, or the given codes' names) and mix.json (`result`'s
    record, `record`'s extra entries such as the model, versions). Returns mix.json's record."""
    import json
    import os

    from ..utils.atomic import write_text
    from ..utils.images import save_png, to_pil
    from ..utils.versions import versions

    os.makedirs(out_dir, exist_ok=True)
    save_png(to_pil(mix_picture(result, grid_scale)), os.path.join(out_dir, "grid.png"))
    rows = result.get("row_names") or [f"{s:04d}" for s in result["rows"]]
    cols = result.get("col_names") or [f"{s:04d}" for s in result["cols"]]
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            save_png(to_pil(result["images"][i * len(cols) + j]), os.path.join(out_dir, f"mix_{r}_{c}.png"))
    record = dict(record or {}, **result["record"], versions=versions())
    write_text(os.path.join(out_dir, MIX_RECORD), json.dumps(record, indent=1, default=str))
    return record


def code_path(a: LatentCodes, b: LatentCodes, t: Union[torch.Tensor, Sequence[float]]) -> LatentCodes:
    """Frames between codes a[i] and b[i] (one space) at positions t: slerp in Z, lerp elsewhere; pair-major
    (pair i, frame f at i*T + f). Noise maps, when the codes have them, are lerped alike (exact at both ends;
    a pair of one image's codes keeps its noise). Labels follow a."""
    if a.space != b.space or a.data.shape != b.data.shape:
        raise ConfigError(f"path ends differ: {a.space} {tuple(a.data.shape)} and {b.space} {tuple(b.data.shape)}")
    t = torch.as_tensor(t, dtype=a.data.dtype, device=a.data.device)
    path = slerp(a.data, b.data, t) if a.space == "z" else lerp(a.data, b.data, t)  # [T, P, ...]
    frames = a.repeat_rows(len(t), path.transpose(0, 1).flatten(0, 1)).replace(seeds=None)
    if a.noise is not None and b.noise is not None:
        frames.noise = [lerp(na, nb, t.to(na.device)).transpose(0, 1).flatten(0, 1) for na, nb in zip(a.noise, b.noise)]
    elif (a.noise is None) != (b.noise is None):
        raise ConfigError("path ends differ: one has noise maps, the other not")
    return frames


def interpolation_path(
    G: AnyGenerator,
    seeds: Union[Sequence[int], LatentCodes],
    frames: int = 8,
    space: Optional[str] = "w",
    truncation_psi: float = 1.0,
    truncation_cutoff: Optional[int] = None,
    device: Union[torch.device, str] = "cpu",
) -> Dict[str, Any]:
    """Paths between consecutive seeds (or given codes: a LatentCodes, e.g. projected photos): slerp in Z,
    lerp in W / W+ / S, `frames` frames per pair, both ends included.

    Given codes interpolate in `space` (None: their own; they convert forward only, z -> w -> w+ -> s),
    with their noise maps lerped alike (`code_path`), so both ends render as the codes do.
    Returns dict(seeds (None for given codes), names (one per endpoint), latents (the file the codes came
    from, or None), space, frames (per pair), t [frames], codes: LatentCodes of every frame, pair-major:
    pair p, frame f at p*frames + f). Z frames are truncated when rendered (`render_interpolation`).
    Cheap (mapping only): every refusal comes from here, before anything is rendered."""
    from .pipeline import start_codes

    given = seeds if isinstance(seeds, LatentCodes) else None
    if not isinstance(seeds, LatentCodes):
        seeds = [int(s) for s in seeds]
    space = (given.space if given is not None else "w") if space is None else space
    if len(seeds) < 2:
        if given is not None:
            raise ConfigError(f"{given.source or 'the given codes'}: interpolation needs at least two codes")
        raise ConfigError("interpolation needs at least two seeds")
    if frames < 2:
        raise ConfigError(f"frames must be >= 2 (both ends), got {frames}")
    if space not in ("z", "w", "w+", "s"):
        raise ConfigError(f"interpolation runs in z, w, w+ or s, got {space!r}")
    codes = start_codes(G, seeds, space, truncation_psi, truncation_cutoff, device=device)
    t = torch.linspace(0, 1, frames)
    frames_codes = code_path(codes[:-1], codes[1:], t)
    return dict(
        seeds=None if given is not None else seeds,
        names=codes.names(),
        latents=None if given is None else given.source,
        space=space,
        frames=frames,
        t=t,
        codes=frames_codes,
    )


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


def interpolation_picture(result: Dict[str, Any], grid_scale: Optional[int] = None) -> np.ndarray:
    """grid.png of a `render_interpolation` result: a row per pair ('12 -> 40', or the codes' names), a column
    per t ('t=0.25'), the path's space in the corner, cells upscaled `grid_scale` times (None: auto, at least
    128 px a cell; `latentlab.utils.grids`)."""
    from ..utils.grids import grid_scale_for
    from ..utils.images import labelled_grid

    steps, images = result["frames"], result["images"]
    seeds = result.get("seeds")
    ends = [str(int(s)) for s in seeds] if seeds is not None else [str(n) for n in result["names"]]
    rows = [f"{a} -> {b}" for a, b in zip(ends[:-1], ends[1:])]
    t = result["t"].tolist() if hasattr(result["t"], "tolist") else list(result["t"])
    cols = [f"t={float(v):.2g}" for v in t]
    space = result.get("space")
    corner = None if space is None else f"{'slerp' if space == 'z' else 'lerp'} in {space.upper()}"
    _, h, w, ch = images.shape
    scale = grid_scale_for(len(rows), steps, max(h, w), ch, grid_scale)
    return labelled_grid(images, cols=steps, row_labels=rows, col_labels=cols, corner=corner, scale=scale)


def write_interpolation(
    out_dir: Union[str, os.PathLike], result: Dict[str, Any], grid_scale: Optional[int] = None
) -> None:
    """pairPP_frameFFF.png per frame (the generator's resolution), grid.png (`interpolation_picture`: a row per
    pair, a column per t, labelled, upscaled `grid_scale` times, None: auto) and path.npz (codes, space, t, and
    the seeds or, for given codes, the endpoints' names and the latents file)."""
    import os

    from ..utils.atomic import save_npz
    from ..utils.images import save_png, to_pil

    os.makedirs(out_dir, exist_ok=True)
    steps, images = result["frames"], result["images"]
    for k, img in enumerate(images):
        save_png(to_pil(img), os.path.join(out_dir, f"pair{k // steps:02d}_frame{k % steps:03d}.png"))
    save_png(to_pil(interpolation_picture(result, grid_scale)), os.path.join(out_dir, "grid.png"))
    arrays = dict(
        codes=result["codes"].data.cpu().numpy(),
        space=np.asarray(result["space"]),
        t=result["t"].numpy(),
    )
    if result.get("seeds") is not None:
        arrays["seeds"] = np.asarray(result["seeds"])
    else:
        arrays["names"] = np.asarray(result["names"])
        arrays["latents"] = np.asarray(str(result.get("latents") or ""))
    save_npz(os.path.join(out_dir, PATH_FILE), arrays)
