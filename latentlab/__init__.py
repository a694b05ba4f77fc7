"""latentlab: analyse and edit the latent spaces of pretrained StyleGAN-family generators.

Quick start::

    import latentlab
    G = latentlab.load_generator("ffhq.pkl")          # safe: never runs code from the file
    z = latentlab.z_from_seeds([0, 1], G.z_dim)       # same z as NVIDIA's generate.py
    img = G(z, truncation_psi=0.7)                     # [2, 3, 1024, 1024] in about [-1, 1]

    w = G.mapping(latentlab.z_from_seeds(range(200), G.z_dim), None)[:, 0]
    res = latentlab.als(G, classifier, w[0::2], w[1::2])   # Attribute Linearity Score per attribute
    b = latentlab.train_boundary(codes, scores)             # InterFaceGAN boundary: b.normal, b.save(path)

`als` (from latentlab.studies) and `train_boundary` (from latentlab.boundaries) are imported on
first use, so that `import latentlab` does not load those packages and whatever they import.
"""
from .checkpoints import Checkpoint, convert, load_checkpoint, load_generator
from .errors import CheckpointError
from .latents import parse_seeds, z_from_seeds
from .models import Discriminator, Generator

__version__ = "0.1.0"

_LAZY = {"als": ("latentlab.studies.als", "als"), "train_boundary": ("latentlab.boundaries.svm", "train_boundary")}


def __getattr__(name):
    """Import the entry points in _LAZY on first access (PEP 562)."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'latentlab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Discriminator",
    "Generator",
    "als",
    "convert",
    "load_checkpoint",
    "load_generator",
    "parse_seeds",
    "train_boundary",
    "z_from_seeds",
]
