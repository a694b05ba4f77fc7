"""The default classifier of a model: what `--classifier` means when it is not given.

The embedded model (`latentlab.defaults.NAME`) is scored by its own classifier; the registry's face
models (FFHQ, CelebA-HQ: `"domain": "faces"` in registry.json) by NVIDIA's 40 CelebA-HQ attribute
classifiers (`nvidia-celebahq`, downloaded on first use). Other models have no default: a classifier
of cartoon or photographed faces says nothing about their images.
"""

from .. import defaults
from ..errors import ConfigError

FACE_CLASSIFIER = "nvidia-celebahq"  # the `load_classifier` name of NVIDIA's CelebA-HQ classifiers

CLASSIFIER_HELP = (
    "for face images pass --classifier nvidia-celebahq (NVIDIA's 40 CelebA-HQ attribute classifiers, downloaded on "
    "first use; nvidia-celebahq:Smiling,Male for some of them); or train one with `latentlab train-classifier "
    "--celeba DIR --out clf.pt` and pass --classifier resnet:clf.pt; other forms: torchscript:FILE (a program: "
    "needs --trust-code), "
    "clip:WEIGHTS:PROMPTS.json, table:SCORES.csv, nvidia:FOLDER"
)


class NoDefaultClassifier(ConfigError):
    """The model has no default classifier: the message says how to get one."""


def is_face_model(model_spec):
    """Whether the registry says `model_spec` (a registry name, an official file name or URL, or the
    cached download of one) is a model of face photographs (`"domain": "faces"`)."""
    if model_spec is None:
        return False
    from ..checkpoints.download import entry_for

    found = entry_for(model_spec)
    return found is not None and found[1].get("domain") == "faces"


def default_classifier_spec(G=None, model_spec=None, attrs=None):
    """The `load_classifier` spec to use for a model when the user gives none.

    * the embedded model (model_spec None or 'toyfaces', its file, or its weights in G): its own classifier;
    * a face model of the registry (`is_face_model`): NVIDIA's CelebA-HQ classifiers, `nvidia-celebahq`,
      or `nvidia-celebahq:A,B` when `attrs` (names or a comma-separated string, CelebA spellings and
      aliases such as 'smile', 'age' allowed) asks for some attributes only: only their files are
      downloaded and run;
    * any other model: NoDefaultClassifier (a ValueError) saying how to get or train one.
    G may be None (the decision then rests on model_spec alone).
    """
    from ..edits.registry import is_default_model

    if model_spec is None or is_default_model(G, model_spec):
        return defaults.classifier_spec()
    if is_face_model(model_spec):
        if attrs:
            from .nvidia import registry_attributes

            wanted = attrs.split(",") if isinstance(attrs, str) else list(attrs)
            files = registry_attributes([a.strip() for a in wanted if a.strip()])
            return f"{FACE_CLASSIFIER}:{','.join(files)}"
        return FACE_CLASSIFIER
    raise NoDefaultClassifier(
        "--classifier is required for models other than the embedded toyfaces model and the registry's face models "
        f"(`latentlab models`): {CLASSIFIER_HELP}"
    )
