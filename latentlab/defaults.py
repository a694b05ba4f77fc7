"""The embedded default model, the files latentlab ships, and the default classifier of a model.

Every command falls back to the embedded model when no `--model` is given, so latentlab works right
after install, offline. Its files live in the `checkpoints` data folder beside the `latentlab`
package (`shipped_path`):

    checkpoints/registry.json                      checkpoints and classifiers known by name (downloaded on first use)
    checkpoints/toyfaces/generator.safetensors     G_ema (latentlab format), 64x64
    checkpoints/toyfaces/classifier.safetensors    attribute classifier (scores per toyfaces attribute)
    checkpoints/toyfaces/boundaries_z/             Z-space boundaries (for the correlation study)
    checkpoints/boundaries/toyfaces/               W-space boundaries, the registry entry behind --attr
    checkpoints/toyfaces/README.md                 the model card (how each file was made, scores)

`--classifier` defaults (`default_classifier_spec`) to the embedded model's classifier for the
embedded model, and to NVIDIA's 40 CelebA-HQ attribute classifiers (`nvidia-celebahq`, downloaded
on first use) for the registry's face models (FFHQ, CelebA-HQ: `"domain": "faces"`). Other models
have no default: a classifier of cartoon or photographed faces says nothing about their images.
"""
import os

NAME = "toyfaces"
FACE_CLASSIFIER = "nvidia-celebahq"  # the `load_classifier` name of NVIDIA's CelebA-HQ classifiers

CLASSIFIER_HELP = (
    "for face images pass --classifier nvidia-celebahq (NVIDIA's 40 CelebA-HQ attribute classifiers, downloaded on "
    "first use; nvidia-celebahq:Smiling,Male for some of them); or train one with `latentlab train-classifier "
    "--celeba DIR --out clf.pt` and pass --classifier resnet:clf.pt; other forms: torchscript:FILE, "
    "clip:WEIGHTS:PROMPTS.json, table:SCORES.csv, nvidia:FOLDER")


class NoDefaultClassifier(ValueError):
    """The model has no default classifier: the message says how to get one."""


def shipped_dir():
    """The `checkpoints` data folder installed beside the `latentlab` package.

    Found from latentlab's own location (in editable and regular installs alike `checkpoints/`
    sits beside `latentlab/`), never by importing `checkpoints`: from a folder that holds a
    `checkpoints/` folder of its own, that import finds the user's folder instead.
    """
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folder = os.path.join(here, "checkpoints")
    if os.path.isfile(os.path.join(folder, "registry.json")):
        return folder
    import importlib.util  # an unusual layout: ask the import system for the real package

    spec = importlib.util.find_spec("checkpoints")
    origin = getattr(spec, "origin", None) if spec is not None else None
    if origin and os.path.basename(origin) == "__init__.py":
        return os.path.dirname(origin)
    return folder  # missing files then fail with their path in the message


def shipped_path(*parts):
    """Path of a file shipped in the `checkpoints` data folder."""
    return os.path.join(shipped_dir(), *parts)


def _shipped(*parts):
    return shipped_path(NAME, *parts)


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
    return shipped_path("boundaries", NAME)


def is_available():
    return os.path.isfile(model_path())


def _is_embedded_file(spec):
    try:
        return os.path.exists(spec) and os.path.samefile(spec, model_path())
    except OSError:
        return False


def is_default_model(G, spec=None):
    """Whether G is the embedded model (by name, by path or by the hash of its weights)."""
    if spec is not None and (os.fspath(spec) == NAME or _is_embedded_file(os.fspath(spec))):
        return True
    if G is None:
        return False
    from .edits.registry import model_id_for

    return model_id_for(G, spec) == NAME


def is_face_model(model_spec):
    """Whether the registry says `model_spec` (a registry name, an official file name or URL, or the
    cached download of one) is a model of face photographs (`"domain": "faces"`)."""
    if model_spec is None:
        return False
    from .checkpoints.download import entry_for

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
    if model_spec is None or is_default_model(G, model_spec):
        return classifier_spec()
    if is_face_model(model_spec):
        if attrs:
            from .attributes.nvidia import registry_attributes

            wanted = attrs.split(",") if isinstance(attrs, str) else list(attrs)
            files = registry_attributes([a.strip() for a in wanted if a.strip()])
            return f"{FACE_CLASSIFIER}:{','.join(files)}"
        return FACE_CLASSIFIER
    raise NoDefaultClassifier(
        "--classifier is required for models other than the embedded toyfaces model and the registry's face models "
        f"(`latentlab models`): {CLASSIFIER_HELP}")


def reference_table(n=20000, seed=0):
    """The renderer's own labels in the classifier's score space: the correlation study's reference.

    The label correlations of the sampler are the ground truth the generated faces should show.
    """
    from .attributes.toyfaces import reference_scores
    from .datasets.toyfaces import sample_attributes

    return reference_scores(sample_attributes(n, seed))
