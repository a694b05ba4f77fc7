"""The embedded default model: a small StyleGAN2 trained on procedural toyfaces, shipped with latentlab.

Every command falls back to it when no `--model` is given, so latentlab works right after
install, offline. Its files live in the `checkpoints` package:

    checkpoints/toyfaces/generator.safetensors     G_ema (latentlab format), 64x64
    checkpoints/toyfaces/classifier.safetensors    attribute classifier (scores per toyfaces attribute)
    checkpoints/toyfaces/boundaries_z/             Z-space boundaries (for the correlation study)
    checkpoints/boundaries/toyfaces/               W-space boundaries, the registry entry behind --attr
    checkpoints/toyfaces/README.md                 the model card (how each file was made, scores)

`--classifier` defaults to its classifier only when the model is this one: a classifier of
cartoon faces says nothing about another model's images.
"""
import os
from importlib import resources

NAME = "toyfaces"


def _shipped(*parts):
    return str(resources.files("checkpoints").joinpath(NAME, *parts))


def model_path():
    """Path of the embedded generator."""
    return _shipped("generator.safetensors")


def classifier_path():
    return _shipped("classifier.safetensors")


def classifier_spec():
    """`load_classifier` spec of the embedded model's classifier."""
    return "toyfaces:" + classifier_path()


def z_boundaries_dir():
    return _shipped("boundaries_z")


def w_boundaries_dir():
    return str(resources.files("checkpoints").joinpath("boundaries", NAME))


def is_available():
    return os.path.isfile(model_path())


def is_default_model(G, spec=None):
    """Whether G is the embedded model (by name or by the hash of its weights)."""
    if spec is not None and os.fspath(spec) == NAME:
        return True
    from .edits.registry import model_id_for

    return model_id_for(G, spec) == NAME


def reference_table(n=20000, seed=0):
    """The renderer's own labels in the classifier's score space: the correlation study's reference.

    The label correlations of the sampler are the ground truth the generated faces should show.
    """
    from .attributes.toyfaces import reference_scores
    from .datasets.toyfaces import sample_attributes

    return reference_scores(sample_attributes(n, seed))
