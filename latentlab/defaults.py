"""The embedded default model and where latentlab's shipped data lives.

Every command falls back to the embedded model (`NAME`, the registry's "shipped" entry 'toyfaces')
when no `--model` is given, so latentlab works right after install, offline. Its files are package
data of latentlab, the package `latentlab.shipped` (the repository's `checkpoints/` folder, mapped
under latentlab by pyproject.toml; `shipped_path`):

    registry.json                      models and classifiers known by name (`latentlab.checkpoints.download`)
    toyfaces/generator.safetensors     G_ema and D (latentlab format), 64x64
    toyfaces/classifier.safetensors    attribute classifier (scores per toyfaces attribute)
    toyfaces/boundaries_z/             Z-space boundaries (for the correlation study)
    boundaries/toyfaces/               W-space boundaries, the registry entry behind --attr
    toyfaces/README.md                 the model card (how each file was made, scores)

A leaf: this module imports nothing of latentlab, so that every layer may ask it for a path. The
default classifier of a model is `latentlab.attributes.default.default_classifier_spec`; whether a
loaded generator is the embedded model, `latentlab.edits.registry.is_default_model`.
"""

import functools
import importlib.util
import os

NAME = "toyfaces"


@functools.cache
def shipped_dir():
    """The folder of latentlab's shipped data: the package `latentlab.shipped`.

    Found by that full name (regular and editable installs alike), never as a top-level `checkpoints`,
    which a user's own folder or another distribution of that name would shadow. In a source checkout
    that is not installed, the `checkpoints/` folder beside `latentlab/`.
    """
    spec = importlib.util.find_spec("latentlab.shipped")  # locates the package without importing it
    if spec is not None and spec.submodule_search_locations:
        return os.fspath(list(spec.submodule_search_locations)[0])
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "checkpoints")


def shipped_path(*parts):
    """Path of a file in latentlab's shipped data."""
    return os.path.join(shipped_dir(), *parts)


def _shipped(*parts):
    return shipped_path(NAME, *parts)


def model_path():
    """Path of the embedded generator (the file of the registry's shipped entry `NAME`)."""
    return _shipped("generator.safetensors")


def classifier_path():
    return _shipped("classifier.safetensors")


def encoder_path():
    """Path of the embedded model's GH-Feat encoder (`latentlab encode` uses it for the embedded model)."""
    return _shipped("encoder.safetensors")


def classifier_spec():
    """`load_classifier` spec of the embedded model's classifier."""
    return "toyfaces:" + classifier_path()


def z_boundaries_dir():
    return _shipped("boundaries_z")


def w_boundaries_dir():
    return shipped_path("boundaries", NAME)


def is_available():
    return os.path.isfile(model_path())
