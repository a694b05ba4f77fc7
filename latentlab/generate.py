"""Render images for seeds in batches (the library behind `latentlab generate`)."""
import os

import torch

from .latents import z_from_seeds
from .utils.images import make_grid, save_png, to_pil, to_uint8


def class_labels(G, n, class_idx=None, device="cpu"):
    """One-hot labels for conditional generators; an empty [n, 0] tensor otherwise."""
    c = torch.zeros([n, G.c_dim], device=device)
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError("this generator is unconditional; drop the class index")
        return c
    if class_idx is None:
        raise ValueError(f"this generator is conditional ({G.c_dim} classes); pass a class index")
    if not 0 <= class_idx < G.c_dim:
        raise ValueError(f"class index {class_idx} is outside 0..{G.c_dim - 1}")
    c[:, class_idx] = 1
    return c


@torch.no_grad()
def generate_images(G, seeds, truncation_psi=1.0, truncation_cutoff=None, noise_mode="const", class_idx=None,
                    batch_size=8, device="cpu", progress=None):
    """Yield (seed, uint8 [H, W, C] image) for every seed, rendering `batch_size` at a time.

    z for a seed is NumPy's RandomState(seed).randn(z_dim), as in NVIDIA's generate.py,
    so a seed gives the same image here as there.
    """
    for start in range(0, len(seeds), batch_size):
        chunk = seeds[start : start + batch_size]
        z = z_from_seeds(chunk, G.z_dim, device)
        c = class_labels(G, len(chunk), class_idx, device)
        img = G(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, noise_mode=noise_mode)
        for seed, arr in zip(chunk, to_uint8(img)):
            yield seed, arr
        if progress is not None:
            progress.update(len(chunk))


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
