"""latentlab: analyse and edit the latent spaces of pretrained StyleGAN-family generators.

Quick start::

    import latentlab
    G = latentlab.load_generator("ffhq.pkl")          # safe: never runs code from the file
    z = latentlab.z_from_seeds([0, 1], G.z_dim)       # same z as NVIDIA's generate.py
    img = G(z, truncation_psi=0.7)                     # [2, 3, 1024, 1024] in about [-1, 1]

    w = G.mapping(latentlab.z_from_seeds(range(200), G.z_dim), None)[:, 0]
    res = latentlab.als(G, classifier, w[0::2], w[1::2])   # Attribute Linearity Score per attribute
    b = latentlab.train_boundary(codes, scores)             # InterFaceGAN boundary: b.normal, b.save(path)

Every public name is imported on first use (PEP 562), so that `import latentlab` is instant and
loads neither torch nor NumPy: the `latentlab` command answers `--help` without them, and a
script pays only for what it uses. `from latentlab import load_generator` and
`latentlab.models` (any subpackage) work as if they were imported eagerly.
"""

import importlib

from .errors import CheckpointError  # dependency-free
from .utils.versions import package_version as _package_version

__version__ = _package_version()  # from the package metadata: pyproject.toml holds the one version

# public name -> (module, attribute); resolved and cached in the module's globals on first access
_LAZY = {
    "Checkpoint": ("latentlab.checkpoints", "Checkpoint"),
    "convert": ("latentlab.checkpoints", "convert"),
    "load_checkpoint": ("latentlab.checkpoints", "load_checkpoint"),
    "load_generator": ("latentlab.checkpoints", "load_generator"),
    "load_classifier": ("latentlab.attributes", "load_classifier"),
    "parse_seeds": ("latentlab.latents", "parse_seeds"),
    "z_from_seeds": ("latentlab.latents", "z_from_seeds"),
    "Discriminator": ("latentlab.models", "Discriminator"),
    "Generator": ("latentlab.models", "Generator"),
    "als": ("latentlab.studies.als", "als"),
    "train_boundary": ("latentlab.boundaries.svm", "train_boundary"),
}

# subpackages reachable as attributes after a bare `import latentlab` (as when they were imported eagerly)
_SUBPACKAGES = (
    "attributes",
    "boundaries",
    "checkpoints",
    "datasets",
    "defaults",
    "edits",
    "errors",
    "generate",
    "latents",
    "models",
    "ops",
    "sampling",
    "studies",
    "train",
    "truncation",
    "utils",
)


def __getattr__(name):
    """Import a public name of _LAZY, or a subpackage, on first access (PEP 562)."""
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")  # the import sets the attribute itself
    raise AttributeError(f"module 'latentlab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES))


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Discriminator",
    "Generator",
    "als",
    "convert",
    "load_checkpoint",
    "load_classifier",
    "load_generator",
    "parse_seeds",
    "train_boundary",
    "z_from_seeds",
]
