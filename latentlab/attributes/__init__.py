"""Attribute classifiers behind one interface: generator images -> named logits.

    clf = load_classifier("toyfaces")                   # by name: the embedded model's classifier
    clf = load_classifier("nvidia-celebahq:Smiling,Male")  # NVIDIA's CelebA-HQ classifiers (downloaded once)
    clf = load_classifier("resnet:celeba_r18.pt")      # or nvidia:/clip:/table:
    clf = load_classifier("torchscript:clf.pt", trust_code=True)  # a program: runs code from the file
    logits = clf(G.synthesis(ws))                       # [N, A], positive = attribute present
    smile = clf.select(["smile", "age"])                # a view; 'age' is Young negated

Every classifier has `names`, `index(name)`, `select(names)` and an explicit `preprocess`
(`Preprocess`) turning the generator's [-1, 1] images into what it was trained on.
"""

import os

from ..errors import ConfigError
from ..utils.optional import MissingDependency
from .base import AttributeClassifier, NamedAttributes, SelectedAttributes
from .celeba import ALIASES, CELEBA_40, read_celeba, resolve_name
from .clip import ClipZeroShotClassifier, read_prompts
from .nvidia import CELEBA_NAME, NVIDIA_ATTRIBUTES, NvidiaCelebAHQClassifier, read_nvidia_classifier
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from .resnet import ARCHS, ResNetAttributeClassifier, celeba_preprocess
from .table import TableScores
from .torchscript import TorchScriptClassifier

__all__ = [
    "ALIASES",
    "ARCHS",
    "AttributeClassifier",
    "CELEBA_40",
    "CELEBA_NAME",
    "ClipZeroShotClassifier",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MissingDependency",
    "NVIDIA_ATTRIBUTES",
    "NamedAttributes",
    "NvidiaCelebAHQClassifier",
    "Preprocess",
    "ResNetAttributeClassifier",
    "SelectedAttributes",
    "SPEC_FORMS",
    "TableScores",
    "TorchScriptClassifier",
    "celeba_preprocess",
    "load_classifier",
    "read_celeba",
    "read_nvidia_classifier",
    "read_prompts",
    "resolve_name",
    "train_attribute_classifier",
]

SPEC_FORMS = (
    "toyfaces (the embedded model's classifier)",
    "nvidia-celebahq[:ATTR,...] (NVIDIA's 40 CelebA-HQ classifiers, or some, downloaded on first use)",
    "resnet:PATH[:ARCH]",
    "torchscript:PATH (a program: runs code from the file, needs --trust-code)",
    "clip:WEIGHTS:PROMPTS.json",
    "nvidia:FILE1.pkl,FILE2.pkl (or nvidia:FOLDER of celebahq-classifier-*.pkl)",
    "table:PATH.csv (or .parquet)",
    "toyfaces:FILE.safetensors (the toyfaces attribute classifier)",
)


def train_attribute_classifier(*args, **kwargs):
    """See `latentlab.attributes.training.train_attribute_classifier` (imported lazily: PIL, tqdm)."""
    from .training import train_attribute_classifier as train

    return train(*args, **kwargs)


def _split_last(rest, what, spec):
    if ":" not in rest:
        raise ConfigError(f"classifier spec {spec!r}: expected {what}")
    a, b = rest.rsplit(":", 1)
    if not a or not b:
        raise ConfigError(f"classifier spec {spec!r}: expected {what}")
    return a, b


def load_classifier(spec, trust_code=False):
    """Build a classifier (or a TableScores) from a name or a CLI-style spec; ValueError listing the forms otherwise.

    trust_code: allow `torchscript:FILE`. A TorchScript file is a program (loading and calling it runs code
    from the file), so without trust_code=True it is refused with a ConfigError; every other form reads
    weights only (state dicts, allowlisted pickles) and ignores this flag.

    Names work like `load_generator`'s registry names: "toyfaces" is the embedded model's classifier,
    "nvidia-celebahq" NVIDIA's 40 CelebA-HQ attribute classifiers (the separability metric's, fetched
    into the cache on first use and checked), "nvidia-celebahq:Smiling,Male" some of them.
    """
    spec = os.fspath(spec) if isinstance(spec, os.PathLike) else spec
    if spec == "toyfaces":
        from .. import defaults

        spec = defaults.classifier_spec()
    if spec == NvidiaCelebAHQClassifier.REGISTRY_SET:
        return NvidiaCelebAHQClassifier.from_registry()
    kind, sep, rest = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if kind == NvidiaCelebAHQClassifier.REGISTRY_SET:
        return NvidiaCelebAHQClassifier.from_registry([a.strip() for a in rest.split(",") if a.strip()])
    if not sep or not rest:
        raise ConfigError(f"unknown classifier spec {spec!r}; use one of: {'; '.join(SPEC_FORMS)}")
    if kind == "resnet":
        head, _, tail = rest.rpartition(":")
        if head and tail in ARCHS:
            return ResNetAttributeClassifier.from_file(head, arch=tail)
        return ResNetAttributeClassifier.from_file(rest)
    if kind == "torchscript":
        return TorchScriptClassifier(rest, trust_code=trust_code)
    if kind == "clip":
        weights, prompts = _split_last(rest, "clip:WEIGHTS:PROMPTS.json", spec)
        return ClipZeroShotClassifier(prompts=prompts, weights=weights)
    if kind == "nvidia":
        if os.path.isdir(rest):
            return NvidiaCelebAHQClassifier.from_folder(rest)
        files = [p for p in rest.split(",") if p]
        return NvidiaCelebAHQClassifier.from_files(files)
    if kind == "table":
        return TableScores(rest)
    if kind == "toyfaces":
        from .toyfaces import ToyFacesClassifier  # lazy: pulls in the toyfaces renderer (PIL)

        return ToyFacesClassifier.from_file(rest)
    raise ConfigError(f"unknown classifier kind {kind!r} in {spec!r}; use one of: {'; '.join(SPEC_FORMS)}")
