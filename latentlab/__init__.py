"""latentlab: analyse and edit the latent spaces of pretrained StyleGAN-family generators.

Quick start::

    import latentlab
    G = latentlab.load_generator("ffhq.pkl")          # safe: never runs code from the file
    z = latentlab.z_from_seeds([0, 1], G.z_dim)       # same z as NVIDIA's generate.py
    img = G(z, truncation_psi=0.7)                     # [2, 3, 1024, 1024] in about [-1, 1]
"""
from .checkpoints import Checkpoint, convert, load_checkpoint, load_generator
from .errors import CheckpointError
from .latents import parse_seeds, z_from_seeds
from .models import Discriminator, Generator

__version__ = "0.1.0"

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Discriminator",
    "Generator",
    "convert",
    "load_checkpoint",
    "load_generator",
    "parse_seeds",
    "z_from_seeds",
]
