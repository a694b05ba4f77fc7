"""Edit sweeps from seeds to files: the library behind `latentlab edit` (usable from scripts too)."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..latents.codes import LatentCodes
from ..models.identity import model_hash
from ..utils.atomic import save_npz, write_text
from ..utils.images import make_grid, save_png, to_pil
from ..utils.versions import versions
from .linear import Alphas, Channels, parse_alphas, sweep

if TYPE_CHECKING:
    from tqdm import tqdm

    from ..latents.directions import Direction, DirectionLike
    from ..latents.layers import LayerSpec
    from ..models.aliases import AnyGenerator


def start_codes(
    G: AnyGenerator,
    seeds: Sequence[int],
    space: str,
    truncation_psi: float = 1.0,
    truncation_cutoff: Optional[int] = None,
    c: Optional[torch.Tensor] = None,
    device: Union[torch.device, str] = "cpu",
) -> LatentCodes:
    """Codes for seeds in `space`; truncation applies on the way out of Z (for Z edits: at render time)."""
    codes = LatentCodes.from_seeds(G, seeds, c=c, device=device)
    if space == "z":
        return codes
    if space == "w" and truncation_cutoff is not None and truncation_psi != 1:
        raise ConfigError("a truncation cutoff makes the layers differ: edit in w+ (with --layers all) instead of w")
    with torch.no_grad():
        return codes.to(space, G, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


def edit_direction(
    G: AnyGenerator,
    model: Union[str, os.PathLike, None] = None,
    attr: Optional[str] = None,
    boundary: Optional[str] = None,
    boundaries_dir: Optional[str] = None,
    conditions: Optional[Sequence[str]] = (),
    space: Optional[str] = None,
) -> Direction:
    """The direction `latentlab edit` moves along: a registered attribute (`attr`, resolved for the model, with
    InterFaceGAN's released conditioned file when one fits the conditions) or a direction file (`boundary`),
    made orthogonal to each of `conditions` (attribute names or .npy files). space: the space edited (None: the
    direction's); a direction of another space is refused (a W direction serves W+). ValueError, one line."""
    from ..latents.directions import load_direction, orthogonalize
    from .registry import resolve_attribute, resolve_direction

    if (attr is None) == (boundary is None):
        raise ConfigError("give exactly one of an attribute name or a direction file")

    def one(spec, space):
        if os.path.exists(spec) or spec.endswith(".npy"):
            return load_direction(spec)
        return resolve_attribute(spec, G, model, boundaries_dir, space=space)

    conditions = list(conditions or ())
    if attr is not None:  # conditions applied there (InterFaceGAN's released conditioned file when one fits)
        d, conditions = resolve_direction(attr, G, model, boundaries_dir, space, conditions), []
    else:
        d = one(boundary, space)
    if d.space is not None and space is not None and d.space != space and not (d.space == "w" and space == "w+"):
        raise ConfigError(f"direction {d.name!r} belongs to the {d.space} space, not {space}; pass --space {d.space}")
    if conditions:
        d = orthogonalize(d, [one(c, space or d.space) for c in conditions])
    return d


def render_codes(
    G: AnyGenerator,
    codes: LatentCodes,
    truncation_psi: float = 1.0,
    truncation_cutoff: Optional[int] = None,
    noise_mode: str = "const",
    batch_size: int = 8,
    progress: Optional[tqdm] = None,
) -> np.ndarray:
    """uint8 images [N, H, W, C] for codes of any space, in batches (z codes truncated on the way to W+)."""
    if codes.space == "z":
        with torch.no_grad():
            codes = codes.to("w+", G, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    return codes.render_uint8(G, noise_mode=noise_mode, batch_size=batch_size, progress=progress)


def edit_alphas(alphas: Alphas, original: bool = True, to_distance: bool = False) -> Sequence[Optional[float]]:
    """The columns an edit renders: the parsed `alphas`, with the unedited image first when `original`
    and the user did not ask for it. Steps: alpha 0.0 is put first unless already among them. Target
    distances (`to_distance`): None is put first, meaning the unedited code (whose distance differs
    per image, so no target value stands for it)."""
    alphas = parse_alphas(alphas)
    if not original:
        return alphas
    if to_distance:
        return [None] + alphas
    return alphas if 0.0 in alphas else [0.0] + alphas


def run_edit(
    G: AnyGenerator,
    seeds: Sequence[int],
    direction: Optional[DirectionLike],
    alphas: Alphas,
    space: str = "w",
    layers: LayerSpec = None,
    channels: Optional[Channels] = None,
    truncation_psi: float = 1.0,
    truncation_cutoff: Optional[int] = None,
    noise_mode: str = "const",
    c: Optional[torch.Tensor] = None,
    batch_size: int = 8,
    device: Union[torch.device, str] = "cpu",
    progress: Optional[tqdm] = None,
    to_distance: bool = False,
    original: bool = True,
) -> Tuple[LatentCodes, LatentCodes, np.ndarray]:
    """Edit the faces of `seeds` along `direction` for every alpha (or target distance, with to_distance).

    With `original` (the default) the unedited image is the first column unless alpha 0 was asked for
    (see `edit_alphas`). Returns (original codes, edited codes [seed-major: seed0 a0, seed0 a1, ...],
    uint8 images [S*A, H, W, C]); edited.meta["alphas"] lists the columns rendered (None: unedited).
    """
    columns = edit_alphas(alphas, original, to_distance)
    codes = start_codes(G, seeds, space, truncation_psi, truncation_cutoff, c, device)
    targets = [a for a in columns if a is not None]
    edited = sweep(codes, direction, targets, G, layers=layers, channels=channels, to_distance=to_distance)
    if None in columns:  # the unedited codes as the first column of every row
        k = len(targets)
        moved = edited.data.reshape(len(codes), k, *codes.data.shape[1:])
        data = torch.cat([codes.data.unsqueeze(1), moved], dim=1).flatten(0, 1)
        seeds_out = [s for s in codes.seeds for _ in columns] if codes.seeds is not None else None
        c_out = codes.c.repeat_interleave(len(columns), dim=0) if codes.c is not None else None
        edited = edited.replace(data=data, seeds=seeds_out, c=c_out)
    edited.meta["alphas"] = columns
    images = render_codes(G, edited, truncation_psi, truncation_cutoff, noise_mode, batch_size, progress)
    return codes, edited, images


def save_edit(
    out_dir: Union[str, os.PathLike],
    G: AnyGenerator,
    codes: LatentCodes,
    edited: LatentCodes,
    images: np.ndarray,
    alphas: Union[str, Sequence[Optional[float]], None] = None,
    record: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """grid.png (rows = seeds, columns = alphas), one PNG per image, edit.json and latents.npz.

    `alphas`: the columns rendered [default: edited.meta["alphas"], as run_edit sets it]; a None
    column is the unedited code (seedNNNN_original.png; NaN in latents.npz's `alphas`).
    """
    os.makedirs(out_dir, exist_ok=True)
    if alphas is None:
        alphas = edited.meta.get("alphas")
        if alphas is None:
            raise ConfigError("save_edit needs the alphas rendered: pass alphas=, or edited codes from run_edit")
    alphas = [None if a is None else float(a) for a in (parse_alphas(alphas) if isinstance(alphas, str) else alphas)]
    files = []
    for k, img in enumerate(images):
        assert codes.seeds is not None, "save_edit names the files by seed: pass codes made from seeds"
        seed, a = codes.seeds[k // len(alphas)], alphas[k % len(alphas)]
        name = f"seed{seed:04d}_original.png" if a is None else f"seed{seed:04d}_alpha{a:+.2f}.png"
        save_png(to_pil(img), os.path.join(out_dir, name))
        files.append(name)
    save_png(to_pil(make_grid(images, cols=len(alphas))), os.path.join(out_dir, "grid.png"))
    arrays = {
        **codes.arrays("original_"),
        **edited.arrays("edited_"),
        "alphas": np.asarray([np.nan if a is None else a for a in alphas], dtype=np.float64),
        "space": np.asarray(codes.space),
        "model_id": np.asarray(model_hash(G)),
    }
    save_npz(os.path.join(out_dir, "latents.npz"), arrays)
    record = dict(
        record or {},
        model_id=model_hash(G),
        alphas=alphas,
        seeds=codes.seeds,
        space=codes.space,
        versions=versions(),
        command=sys.argv,
        files=dict(grid="grid.png", images=files, latents="latents.npz"),
    )
    write_text(os.path.join(out_dir, "edit.json"), json.dumps(record, indent=1, default=str))
    return record
