"""Render images for seeds in batches (the library behind `latentlab generate`: `write_generation`)."""

import os

import torch

from .errors import ConfigError
from .utils.images import make_grid, save_png, to_pil, to_uint8
from .utils.render import render_batches, render_uint8


def class_labels(G, n, class_idx=None, device="cpu"):
    """One-hot labels for conditional generators; an empty [n, 0] tensor otherwise."""
    c = torch.zeros([n, G.c_dim], device=device)
    if G.c_dim == 0:
        if class_idx is not None:
            raise ConfigError("this generator is unconditional; drop the class index")
        return c
    if class_idx is None:
        raise ConfigError(f"this generator is conditional ({G.c_dim} classes); pass a class index")
    if not 0 <= class_idx < G.c_dim:
        raise ConfigError(f"class index {class_idx} is outside 0..{G.c_dim - 1}")
    c[:, class_idx] = 1
    return c


@torch.no_grad()
def generate_images(
    G,
    seeds,
    truncation_psi=1.0,
    truncation_cutoff=None,
    noise_mode="const",
    class_idx=None,
    batch_size=8,
    device="cpu",
    progress=None,
):
    """Yield (seed, uint8 [H, W, C] image) for every seed, rendering `batch_size` at a time.

    z for a seed is NumPy's RandomState(seed).randn(z_dim), as in NVIDIA's generate.py,
    so a seed gives the same image here as there. The images are rendered from the w's that
    `generation_latents` returns (what `latentlab generate` saves in latents.npz).
    """
    seeds = [int(s) for s in seeds]
    _, w = generation_latents(G, seeds, truncation_psi, truncation_cutoff, class_idx, device)
    k = 0
    for x in render_batches(G, w.wplus(G), batch_size, noise_mode, progress):
        for arr in to_uint8(x):
            yield seeds[k], arr
            k += 1


def write_images(items, out_dir, grid_name="grid.png", cols=None):
    """Save each (seed, image) as seedNNNN.png plus a grid of all; return the file paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths, images = [], []
    for seed, arr in items:
        path = os.path.join(out_dir, f"seed{seed:04d}.png")
        save_png(to_pil(arr), path)
        paths.append(path)
        images.append(arr)
    if images and grid_name:
        import numpy as np

        path = os.path.join(out_dir, grid_name)
        save_png(to_pil(make_grid(np.stack(images), cols=cols)), path)
        paths.append(path)
    return paths


# ---- what a generate run used: settings and latents ----------------------------------------------------------------
LATENTS_FORMATS = ("latentlab", "nvidia", "wplus")
LATENTS_FILE = "latents.npz"
NVIDIA_W_FILE = "projected_w.npz"
SETTINGS_FILE = "generate.json"


@torch.no_grad()
def generation_latents(G, seeds, truncation_psi=1.0, truncation_cutoff=None, class_idx=None, device="cpu", wplus=False):
    """(z, w) LatentCodes that `generate_images` renders for `seeds`: z drawn as NVIDIA's generate.py
    draws it, w = G.mapping(z, c) with the same truncation ([N, w_dim], or W+ [N, num_ws, w_dim] when
    a truncation cutoff makes the layers differ or `wplus` is set). G.synthesis(w) with the same
    noise gives the same images as G(z, c, ...)."""
    from .latents import LatentCodes

    seeds = [int(s) for s in seeds]
    c = class_labels(G, len(seeds), class_idx, device)  # refuses a class for unconditional models, and the reverse
    z = LatentCodes.from_seeds(G, seeds, c=c if G.c_dim else None, device=device)
    uniform = truncation_cutoff is None or truncation_psi == 1
    w = z.to(
        "w+" if wplus or not uniform else "w", G, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff
    )
    return z, w.replace(meta=dict(truncation=dict(psi=truncation_psi, cutoff=truncation_cutoff)))


def save_generation_latents(out_dir, z, w, G, fmt="latentlab"):
    """Write the latents of a generate run into out_dir; return the file names written.

    latents.npz (every format): the w codes in LatentCodes' layout (`codes`, `space`, `seeds`,
    `model_id`, `meta`, `c` for conditional models: `LatentCodes.load` and `ppl --latents` read it)
    plus plain `z` [N, z_dim] and `w` (= codes) arrays. fmt 'latentlab': w is [N, w_dim] (W+
    when a truncation cutoff makes the layers differ); 'wplus': W+ [N, num_ws, w_dim] always;
    'nvidia': as 'latentlab', plus projected_w.npz in the layout of stylegan2-ada-pytorch's
    projector (one key `w`, float32 [N, num_ws, w_dim]), which its generate.py --projected-w renders.
    """
    import numpy as np

    from .utils.atomic import save_npz

    if fmt not in LATENTS_FORMATS:
        raise ConfigError(f"unknown latents format {fmt!r}; choose from {', '.join(LATENTS_FORMATS)}")
    if z.space != "z" or w.space not in ("w", "w+"):
        raise ConfigError(f"expected z and w/w+ codes, got {z.space} and {w.space}")
    if fmt == "wplus" and w.space != "w+":
        w = w.to("w+", G)
    w.save(os.path.join(out_dir, LATENTS_FILE), z=z.data.detach().cpu().numpy(), w=w.data.detach().cpu().numpy())
    files = [LATENTS_FILE]
    if fmt == "nvidia":
        ws = (w if w.space == "w+" else w.to("w+", G)).data.detach().cpu().numpy().astype(np.float32)
        save_npz(os.path.join(out_dir, NVIDIA_W_FILE), dict(w=ws))
        files.append(NVIDIA_W_FILE)
    return files


def save_generation_settings(out_dir, G, record, files):
    """Write generate.json: `record` (model, seeds, truncation, noise mode, class, ...) plus model id,
    versions, the command line and the files written. Returns the full record."""
    import json
    import sys

    from .models.identity import model_hash
    from .utils.atomic import write_text
    from .utils.versions import versions

    record = dict(record, model_id=model_hash(G), versions=versions(), command=sys.argv, files=files)
    write_text(os.path.join(out_dir, SETTINGS_FILE), json.dumps(record, indent=1, default=str))
    return record


def check_generation(G, class_idx=None, latents_format="latentlab"):
    """Refuse (ValueError, one line) what `write_generation` could not do for G: a class index for an
    unconditional model or none for a conditional one, an unknown latents format. Cheap: call it before
    showing progress."""
    class_labels(G, 1, class_idx)
    if latents_format not in LATENTS_FORMATS:
        raise ConfigError(f"unknown latents format {latents_format!r}; choose from {', '.join(LATENTS_FORMATS)}")


def write_generation(
    G,
    seeds,
    out_dir,
    truncation_psi=1.0,
    truncation_cutoff=None,
    noise_mode="const",
    class_idx=None,
    batch_size=8,
    device="cpu",
    latents_format="latentlab",
    model=None,
    progress=None,
):
    """What `latentlab generate` writes: seedNNNN.png per seed, grid.png, latents.npz (+ projected_w.npz for
    latents_format 'nvidia', see `save_generation_latents`) and generate.json. Returns generate.json's record.

    The images are rendered from the saved w's, so rendering latents.npz with the same noise mode gives them
    again. `model` names the model in the record; `progress` advances by the images rendered.
    Everything is checked (`check_generation`) before anything is rendered or written.
    """
    seeds = [int(s) for s in seeds]
    check_generation(G, class_idx, latents_format)
    z, w = generation_latents(
        G, seeds, truncation_psi, truncation_cutoff, class_idx, device, wplus=latents_format == "wplus"
    )
    images = render_uint8(G, w.wplus(G), batch_size, noise_mode, progress)
    paths = write_images(zip(seeds, images), out_dir)
    files = save_generation_latents(out_dir, z, w, G, latents_format)
    record = dict(
        model=model,
        seeds=seeds,
        truncation=dict(psi=truncation_psi, cutoff=truncation_cutoff),
        noise_mode=noise_mode,
        class_idx=class_idx,
        latents_format=latents_format,
        latents_space=w.space,
    )
    return save_generation_settings(out_dir, G, record, [os.path.basename(p) for p in paths] + files)
