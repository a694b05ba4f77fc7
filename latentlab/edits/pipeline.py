"""Edit sweeps from seeds or given codes (a latents file, e.g. projected photos) to files: the library behind
`latentlab edit` (usable from scripts too)."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..latents.codes import LatentCodes, check_forward
from ..models.identity import model_hash
from ..utils.atomic import save_npz, write_text
from ..utils.grids import grid_scale_for
from ..utils.images import labelled_grid, save_png, to_pil
from ..utils.versions import versions
from .linear import Alphas, Channels, parse_alphas, sweep

if TYPE_CHECKING:
    from tqdm import tqdm

    from ..latents.directions import Direction, DirectionLike
    from ..latents.layers import LayerSpec
    from ..models.aliases import AnyGenerator


def start_codes(
    G: AnyGenerator,
    seeds: Union[Sequence[int], LatentCodes],
    space: str,
    truncation_psi: float = 1.0,
    truncation_cutoff: Optional[int] = None,
    c: Optional[torch.Tensor] = None,
    device: Union[torch.device, str] = "cpu",
) -> LatentCodes:
    """Codes for seeds, or given codes (a LatentCodes, e.g. `LatentCodes.load_for(file, G)`), in `space`.

    Truncation applies on the way out of Z (for Z edits: at render time); given codes of another space
    are used as they are, so truncation is refused for them, and they convert forward only
    (z -> w -> w+ -> s). Given codes keep their own labels and noise maps (`c` is for seeds)."""
    if isinstance(seeds, LatentCodes):
        check_given_codes(seeds, space, truncation_psi, truncation_cutoff)
        codes = seeds.replace(data=seeds.data.to(device))
    else:
        codes = LatentCodes.from_seeds(G, seeds, c=c, device=device)
    if space == "z":
        return codes
    if space == "w" and truncation_cutoff is not None and truncation_psi != 1:
        raise ConfigError("a truncation cutoff makes the layers differ: edit in w+ (with --layers all) instead of w")
    with torch.no_grad():
        return codes.to(space, G, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


def check_given_codes(
    codes: LatentCodes, space: str, truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None
) -> None:
    """Refuse (one line naming the codes' file) given codes that cannot be used in `space` (conversions go
    forward only) or with truncation (which applies when mapping from Z: other codes are used as they are)."""
    source = codes.source or "the given codes"
    fix = ""
    if codes.space == "s":
        fix = "edit them in S: --space s with --channels LAYER:CHANNEL or an S-space direction"
    elif space == "z":
        fix = f"edit them in {codes.space} (a W direction, --space {codes.space})"
    check_forward(codes.space, space, source, fix)
    if codes.space != "z" and (truncation_psi != 1 or truncation_cutoff is not None):
        raise ConfigError(
            f"{source}: truncation applies when mapping from Z; these {codes.space} codes are used as they are "
            "(drop --trunc / --trunc-cutoff)"
        )


def default_edit_space(direction: Optional[Direction], codes: Optional[LatentCodes] = None) -> str:
    """The space an edit runs in when none is asked for: the direction's ('w' when it has none; 's' for a
    channel edit without a direction), for given W+ codes and a W direction 'w+' (a W direction
    moves every layer; W+ codes do not convert back to W), for given S codes 's' (a W direction moves
    them as it moves the styles)."""
    if direction is None:
        return "s"
    if codes is not None and codes.space == "s":
        return "s"  # S directions, and W directions moved into S exactly (`direction_in_s`)
    space = direction.space or "w"
    if codes is not None and codes.space == "w+" and space == "w":
        return "w+"
    return space


def edit_direction(
    G: AnyGenerator,
    model: Union[str, os.PathLike, None] = None,
    attr: Optional[str] = None,
    boundary: Optional[str] = None,
    boundaries_dir: Optional[str] = None,
    conditions: Optional[Sequence[str]] = (),
    space: Optional[str] = None,
    codes: Optional[LatentCodes] = None,
) -> Direction:
    """The direction `latentlab edit` moves along: a registered attribute (`attr`, resolved for the model, with
    InterFaceGAN's released conditioned file when one fits the conditions) or a direction file (`boundary`),
    made orthogonal to each of `conditions` (attribute names or .npy files). space: the space edited (None: the
    direction's); a direction of another space is refused (a W direction serves W+). codes: the given codes
    to edit, if any: a direction of a space they cannot convert to is refused, saying what to do instead
    (e.g. a W direction for s codes: edit in S). ValueError, one line."""
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
    if codes is not None:
        from ..latents.codes import space_dim

        source = codes.source or "the given codes"
        kind_s = d.space or ("s" if d.vector.size == space_dim(G, "s") else "w" if d.vector.size == G.w_dim else "?")
        if codes.space == "s" and kind_s not in ("s", "w"):  # W directions move s codes exactly (direction_in_s)
            kind = f"a {d.space.upper()} direction" if d.space else f"a {d.vector.size}-d direction, not S or W"
            raise ConfigError(
                f"{source} holds s codes (the styles, e.g. from `latentlab encode`), which cannot move along "
                f"{d.name!r}, {kind} (s codes do not convert back); use a W direction, --channels "
                "LAYER:CHANNEL, or an S-space direction (--boundary FILE.npy --space s)"
            )
        if codes.space in ("w", "w+") and d.space == "z":
            raise ConfigError(
                f"{source} holds {codes.space} codes, which cannot move along {d.name!r}, a Z direction (they do "
                "not convert back to z); use a W direction of this attribute"
            )
    if d.space is not None and space is not None and d.space != space and not (d.space == "w" and space in ("w+", "s")):
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
    seeds: Union[Sequence[int], LatentCodes],
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
    """Edit the faces of `seeds` (or given codes, e.g. a projected photo's: see `start_codes`) along
    `direction` for every alpha (or target distance, with to_distance).

    With `original` (the default) the unedited image is the first column unless alpha 0 was asked for
    (see `edit_alphas`). Returns (original codes, edited codes [code-major: code0 a0, code0 a1, ...],
    uint8 images [S*A, H, W, C]); edited.meta["alphas"] lists the columns rendered (None: unedited).
    Codes with noise maps render with them, each image's noise in every column of its row, so an edit of
    a projected photo starts from its exact reconstruction.
    """
    columns = edit_alphas(alphas, original, to_distance)
    codes = start_codes(G, seeds, space, truncation_psi, truncation_cutoff, c, device)
    targets = [a for a in columns if a is not None]
    edited = sweep(codes, direction, targets, G, layers=layers, channels=channels, to_distance=to_distance)
    if None in columns:  # the unedited codes as the first column of every row
        k = len(targets)
        moved = edited.data.reshape(len(codes), k, *codes.data.shape[1:])
        data = torch.cat([codes.data.unsqueeze(1), moved], dim=1).flatten(0, 1)
        edited = codes.repeat_rows(len(columns), data)
    edited.meta["alphas"] = columns
    images = render_codes(G, edited, truncation_psi, truncation_cutoff, noise_mode, batch_size, progress)
    return codes, edited, images


def edit_picture(
    images: np.ndarray,
    codes: LatentCodes,
    alphas: Sequence[Optional[float]],
    record: Optional[Dict[str, Any]] = None,
    grid_scale: Optional[int] = None,
) -> np.ndarray:
    """The picture of grid.png (`save_edit`): rows = codes, columns = alphas, labelled and upscaled."""
    info = record or {}
    rows = [f"seed {s}" for s in codes.seeds] if codes.seeds is not None else codes.names()
    word = "distance" if info.get("to_distance") else "alpha"
    cols = ["original" if a is None else f"{word} {a:g}" for a in alphas]
    direction = info.get("direction")
    corner = direction.get("name") if isinstance(direction, dict) else None
    if corner is None and info.get("channels"):
        corner = f"channels {info['channels']}"
    if corner is not None and len(str(corner)) > 28:  # a long file name must not widen the row labels' margin
        corner = str(corner)[:25] + "..."
    _, h, w, ch = images.shape
    scale = grid_scale_for(len(rows), len(cols), max(h, w), ch, grid_scale)
    return labelled_grid(images, cols=len(cols), row_labels=rows, col_labels=cols, corner=corner, scale=scale)


def save_edit(
    out_dir: Union[str, os.PathLike],
    G: AnyGenerator,
    codes: LatentCodes,
    edited: LatentCodes,
    images: np.ndarray,
    alphas: Union[str, Sequence[Optional[float]], None] = None,
    record: Optional[Dict[str, Any]] = None,
    grid_scale: Optional[int] = None,
) -> Dict[str, Any]:
    """grid.png (rows = codes, columns = alphas), one PNG per image, edit.json and latents.npz.

    grid.png labels its rows (seed 12, or the codes' names) and columns (alpha -2, original; distance 2 with
    record["to_distance"]), names the direction in its corner (record["direction"]["name"], or the channels),
    and upscales its cells `grid_scale` times (None: auto, at least 128 px a cell; `latentlab.utils.grids`);
    the per-image PNGs keep the generator's resolution.

    Images are named by the codes' names (`LatentCodes.names`: seedNNNN for seeds, the image name of
    projected or encoded codes): NAME_alphaA.png. `alphas`: the columns rendered [default:
    edited.meta["alphas"], as run_edit sets it]; a None column is the unedited code (NAME_original.png;
    NaN in latents.npz's `alphas`). latents.npz holds original_* and edited_* codes (noise maps included).
    edit.json records `record`, the seeds or names, and the latents file the codes came from.
    """
    os.makedirs(out_dir, exist_ok=True)
    if alphas is None:
        alphas = edited.meta.get("alphas")
        if alphas is None:
            raise ConfigError("save_edit needs the alphas rendered: pass alphas=, or edited codes from run_edit")
    alphas = [None if a is None else float(a) for a in (parse_alphas(alphas) if isinstance(alphas, str) else alphas)]
    files = []
    names = codes.names()
    if len(images) != len(names) * len(alphas):
        raise ConfigError(f"{len(images)} images for {len(names)} codes x {len(alphas)} alphas")
    for k, img in enumerate(images):
        stem, a = names[k // len(alphas)], alphas[k % len(alphas)]
        name = f"{stem}_original.png" if a is None else f"{stem}_alpha{a:+.2f}.png"
        save_png(to_pil(img), os.path.join(out_dir, name))
        files.append(name)
    save_png(to_pil(edit_picture(images, codes, alphas, record, grid_scale)), os.path.join(out_dir, "grid.png"))
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
        names=None if codes.seeds is not None else names,
        latents=codes.source,
        space=codes.space,
        versions=versions(),
        command=sys.argv,
        files=dict(grid="grid.png", images=files, latents="latents.npz"),
    )
    write_text(os.path.join(out_dir, "edit.json"), json.dumps(record, indent=1, default=str))
    return record
