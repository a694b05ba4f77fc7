"""Edit sweeps from seeds to files: the library behind `latentlab edit` (usable from scripts too)."""
import json
import os
import platform
import sys

import numpy as np
import torch

from ..latents.codes import LatentCodes
from ..models.identity import model_hash
from ..utils.atomic import save_npz, write_text
from ..utils.images import make_grid, save_png, to_pil, to_uint8
from .linear import parse_alphas, sweep


def start_codes(G, seeds, space, truncation_psi=1.0, truncation_cutoff=None, c=None, device="cpu"):
    """Codes for seeds in `space`; truncation applies on the way out of Z (for Z edits: at render time)."""
    codes = LatentCodes.from_seeds(G, seeds, c=c, device=device)
    if space == "z":
        return codes
    if space == "w" and truncation_cutoff is not None and truncation_psi != 1:
        raise ValueError("a truncation cutoff makes the layers differ: edit in w+ (with --layers all) instead of w")
    with torch.no_grad():
        return codes.to(space, G, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


def render_codes(G, codes, truncation_psi=1.0, truncation_cutoff=None, noise_mode="const", batch_size=8, progress=None):
    """uint8 images [N, H, W, C] for codes of any space, in batches."""
    out = []
    with torch.no_grad():
        for i in range(0, len(codes), batch_size):
            part = codes[i : i + batch_size]
            if part.space == "z":
                part = part.to("w+", G, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
            out.append(to_uint8(part.render(G, noise_mode=noise_mode, batch_size=batch_size)))
            if progress is not None:
                progress.update(len(part))
    return np.concatenate(out)


def edit_alphas(alphas, original=True, to_distance=False):
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


def run_edit(G, seeds, direction, alphas, space="w", layers=None, channels=None, truncation_psi=1.0,
             truncation_cutoff=None, noise_mode="const", c=None, batch_size=8, device="cpu", progress=None,
             to_distance=False, original=True):
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


def versions():
    import latentlab

    return {"latentlab": latentlab.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def save_edit(out_dir, G, codes, edited, images, alphas=None, record=None):
    """grid.png (rows = seeds, columns = alphas), one PNG per image, edit.json and latents.npz.

    `alphas`: the columns rendered [default: edited.meta["alphas"], as run_edit sets it]; a None
    column is the unedited code (seedNNNN_original.png; NaN in latents.npz's `alphas`).
    """
    os.makedirs(out_dir, exist_ok=True)
    alphas = edited.meta.get("alphas") if alphas is None else alphas
    alphas = [None if a is None else float(a) for a in (parse_alphas(alphas) if isinstance(alphas, str) else alphas)]
    files = []
    for k, img in enumerate(images):
        seed, a = codes.seeds[k // len(alphas)], alphas[k % len(alphas)]
        name = f"seed{seed:04d}_original.png" if a is None else f"seed{seed:04d}_alpha{a:+.2f}.png"
        save_png(to_pil(img), os.path.join(out_dir, name))
        files.append(name)
    save_png(to_pil(make_grid(images, cols=len(alphas))), os.path.join(out_dir, "grid.png"))
    arrays = {**codes.arrays("original_"), **edited.arrays("edited_"),
              "alphas": np.asarray([np.nan if a is None else a for a in alphas], dtype=np.float64),
              "space": np.asarray(codes.space), "model_id": np.asarray(model_hash(G))}
    save_npz(os.path.join(out_dir, "latents.npz"), arrays)
    record = dict(record or {}, model_id=model_hash(G), alphas=alphas, seeds=codes.seeds, space=codes.space,
                  versions=versions(), command=sys.argv, files=dict(grid="grid.png", images=files, latents="latents.npz"))
    write_text(os.path.join(out_dir, "edit.json"), json.dumps(record, indent=1, default=str))
    return record
