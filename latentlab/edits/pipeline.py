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


def run_edit(G, seeds, direction, alphas, space="w", layers=None, channels=None, truncation_psi=1.0,
             truncation_cutoff=None, noise_mode="const", c=None, batch_size=8, device="cpu", progress=None,
             to_distance=False):
    """Edit the faces of `seeds` along `direction` for every alpha (or target distance, with to_distance).

    Returns (original codes, edited codes [seed-major: seed0 a0, seed0 a1, ...], uint8 images [S*A, H, W, C]).
    """
    alphas = parse_alphas(alphas)
    codes = start_codes(G, seeds, space, truncation_psi, truncation_cutoff, c, device)
    edited = sweep(codes, direction, alphas, G, layers=layers, channels=channels, to_distance=to_distance)
    images = render_codes(G, edited, truncation_psi, truncation_cutoff, noise_mode, batch_size, progress)
    return codes, edited, images


def versions():
    import latentlab

    return {"latentlab": latentlab.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def save_edit(out_dir, G, codes, edited, images, alphas, record):
    """grid.png (rows = seeds, columns = alphas), one PNG per image, edit.json and latents.npz."""
    os.makedirs(out_dir, exist_ok=True)
    alphas = parse_alphas(alphas)
    files = []
    for k, img in enumerate(images):
        seed, a = codes.seeds[k // len(alphas)], alphas[k % len(alphas)]
        name = f"seed{seed:04d}_alpha{a:+.2f}.png"
        save_png(to_pil(img), os.path.join(out_dir, name))
        files.append(name)
    save_png(to_pil(make_grid(images, cols=len(alphas))), os.path.join(out_dir, "grid.png"))
    arrays = {**codes.arrays("original_"), **edited.arrays("edited_"), "alphas": np.asarray(alphas),
              "space": np.asarray(codes.space), "model_id": np.asarray(model_hash(G))}
    save_npz(os.path.join(out_dir, "latents.npz"), arrays)
    record = dict(record, model_id=model_hash(G), alphas=alphas, seeds=codes.seeds, space=codes.space,
                  versions=versions(), command=sys.argv, files=dict(grid="grid.png", images=files, latents="latents.npz"))
    write_text(os.path.join(out_dir, "edit.json"), json.dumps(record, indent=1, default=str))
    return record
