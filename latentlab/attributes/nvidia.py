"""NVIDIA's CelebA-HQ attribute classifiers (`celebahq-classifier-XX-<attr>.pkl`), read safely.

Facts from NVlabs/stylegan `metrics/linear_separability.py` (and the stylegan2-ada copy):
  * 40 files, one binary classifier each, numbered 00-39 in the order of
    `NVIDIA_ATTRIBUTES` below: male, smiling, attractive, wavy-hair, young first, then
    the other CelebA attributes alphabetically. This is NOT the order of
    list_attr_celeba.txt (`CELEBA_40`); `CELEBA_NAME` maps one to the other.
  * each file unpickles to ONE dnnlib.tflib.network.Network (stylegan2-ada does
    `classifier = pickle.load(f)`), a discriminator-style network without labels;
    the StyleGAN paper says they share the discriminator's architecture (D_basic).
  * the metric feeds them the generator's images as they are (range [-1, 1], no
    conversion), downsampled to 256x256 when larger by reshaping into factor x factor
    cells and averaging (`factor = H // 256`); grayscale images are tiled to 3 channels
    (stylegan2-ada); then `logits = classifier.get_output_for(images, None)` and
    `softmax([logits, -logits])`, i.e. P(first class) = sigmoid(2 * logit).
  * the metric runs them on minibatches of 4 images per GPU (`minibatch_per_gpu=4`), and
    D_basic's minibatch-stddev layer (group size 4 by default) mixes statistics of the
    images in a group: a logit depends on the other images of its group. We evaluate
    in consecutive chunks of `chunk` images (default 4) to match.
Which class is "attribute present" is not stated in the public code; we return the
raw D output as the logit and assume positive = present (the separability metric is
symmetric in the two classes, so it does not depend on this).

The 40 files are registry entries (`celebahq-classifier-NN-<attr>`, set `nvidia-celebahq`):
`from_registry` downloads the ones it needs into latentlab's cache on first use and checks
each fresh download's structure (`check_official`: a D_basic for 256x256 RGB images with one
output and no labels; no sha256 of NVIDIA's files is recorded, see registry.json).
`load_classifier("nvidia-celebahq")` loads all 40, `"nvidia-celebahq:Smiling,Male"` some.
"""

import glob
import os
import re

import torch
from torch import nn

from ..checkpoints.loader import build_network
from ..checkpoints.records import describe
from ..checkpoints.safe_pickle import TFNetwork, load_pickle
from ..checkpoints.tf_stylegan1 import convert_network
from ..errors import CheckpointError, ConfigError
from .base import AttributeClassifier
from .celeba import CELEBA_40, normalize_name, resolve_name
from .preprocess import Preprocess

__all__ = [
    "NvidiaCelebAHQClassifier",
    "read_nvidia_classifier",
    "NVIDIA_ATTRIBUTES",
    "CELEBA_NAME",
    "attribute_from_filename",
    "REGISTRY_SET",
    "OFFICIAL_RESOLUTION",
    "check_official",
    "registry_attributes",
    "registry_name",
]

NVIDIA_ATTRIBUTES = [
    "male",
    "smiling",
    "attractive",
    "wavy-hair",
    "young",
    "5-o-clock-shadow",
    "arched-eyebrows",
    "bags-under-eyes",
    "bald",
    "bangs",
    "big-lips",
    "big-nose",
    "black-hair",
    "blond-hair",
    "blurry",
    "brown-hair",
    "bushy-eyebrows",
    "chubby",
    "double-chin",
    "eyeglasses",
    "goatee",
    "gray-hair",
    "heavy-makeup",
    "high-cheekbones",
    "mouth-slightly-open",
    "mustache",
    "narrow-eyes",
    "no-beard",
    "oval-face",
    "pale-skin",
    "pointy-nose",
    "receding-hairline",
    "rosy-cheeks",
    "sideburns",
    "straight-hair",
    "wearing-earrings",
    "wearing-hat",
    "wearing-lipstick",
    "wearing-necklace",
    "wearing-necktie",
]
CELEBA_NAME = {n: next(c for c in CELEBA_40 if normalize_name(c) == normalize_name(n)) for n in NVIDIA_ATTRIBUTES}

_FILENAME = re.compile(r"celebahq-classifier-(\d+)-(.+)\.pkl")
LS_MINIBATCH = 4  # minibatch_per_gpu of the official 'ls' metric
REGISTRY_SET = "nvidia-celebahq"  # the registry's name for the 40 files (and the load_classifier spec)
OFFICIAL_RESOLUTION = 256  # NVIDIA's files classify 256x256 RGB images


def registry_name(attribute):
    """Registry entry of one of NVIDIA's classifiers: 'smiling' -> 'celebahq-classifier-01-smiling'."""
    return f"celebahq-classifier-{NVIDIA_ATTRIBUTES.index(attribute):02d}-{attribute}"


def registry_attributes(names):
    """NVIDIA's file attributes for `names` (NVIDIA or CelebA spellings, aliases such as 'smile' or 'age'),
    in the order given, each once; ValueError listing the 40 names for an unknown one."""
    out = []
    for name in names:
        try:
            i, _ = resolve_name(name, NVIDIA_ATTRIBUTES)
        except ValueError:
            raise ConfigError(
                f"{REGISTRY_SET}: no classifier for {name!r}; NVIDIA's 40 are: "
                f"{', '.join(NVIDIA_ATTRIBUTES)} (CelebA spellings such as Smiling also work)"
            ) from None
        if NVIDIA_ATTRIBUTES[i] not in out:
            out.append(NVIDIA_ATTRIBUTES[i])
    if not out:
        raise ConfigError(f"{REGISTRY_SET}: no attributes named")
    return out


def attribute_from_filename(path):
    """'celebahq-classifier-00-male.pkl' -> (0, 'male'); ValueError for other names."""
    m = _FILENAME.fullmatch(os.path.basename(os.fspath(path)))
    if not m:
        raise ConfigError(f"{path}: expected a file named celebahq-classifier-<NN>-<attribute>.pkl (or pass names=)")
    return int(m.group(1)), m.group(2)


def read_nvidia_classifier(path):
    """One classifier file -> (StyleGAN1Discriminator in eval mode, info dict). Never runs code from the file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such classifier file")
    obj = load_pickle(path)
    if not isinstance(obj, TFNetwork) or not isinstance(getattr(obj, "state", None), dict):
        raise CheckpointError(
            f"{path}: not an attribute classifier: expected one dnnlib.tflib.network.Network, found a {describe(obj)}"
        )
    static = obj.state.get("static_kwargs")
    labels = static.get("label_size", 0) if isinstance(static, dict) else 0
    if obj.state.get("build_func_name") == "D_basic" and labels not in (0, None):
        raise CheckpointError(
            f"{path}: a conditional D_basic (label_size={labels!r}); attribute classifiers take no labels"
        )
    ignored, unused = [], {}
    record = convert_network(path, "classifier", obj, "D_basic", ignored, unused)
    kwargs = record.init_kwargs
    net = build_network(path, "classifier", record.class_name, kwargs, record.state)
    info = dict(
        path=path,
        name=obj.state.get("name"),
        kwargs=kwargs,
        ignored_tf_variables=ignored,
        ignored_kwargs=unused.get("classifier", {}),
    )
    return net, info


def check_official(net, path):
    """CheckpointError unless `net` has the structure of NVIDIA's classifiers: a D_basic reading
    256x256 RGB images, with one output (read_nvidia_classifier already refuses labels)."""
    found = (net.img_resolution, net.img_channels, net.out.out_features)
    if found != (OFFICIAL_RESOLUTION, 3, 1):
        raise CheckpointError(
            f"{path}: not one of NVIDIA's CelebA-HQ classifiers: expected a D_basic for "
            f"{OFFICIAL_RESOLUTION}x{OFFICIAL_RESOLUTION} RGB images with one output, found one for "
            f"{found[0]}x{found[0]} images with {found[1]} channels and {found[2]} outputs"
        )
    return net


def _verify_download(path):
    check_official(read_nvidia_classifier(path)[0], path)


class NvidiaCelebAHQClassifier(AttributeClassifier):
    """Several NVIDIA CelebA-HQ classifiers (one logit each) as one AttributeClassifier.

    Default preprocess: as the separability metric, generator range kept, box-downsampled
    to the networks' resolution (256 for NVIDIA's files), grayscale tiled to RGB.
    `chunk`: images per forward (minibatch-stddev groups); None = the whole batch at once.
    """

    REGISTRY_SET = REGISTRY_SET

    def __init__(self, networks, names, preprocess=None, chunk=LS_MINIBATCH):
        networks = list(networks)
        if len(networks) != len(names):
            raise ConfigError(f"{len(networks)} networks for {len(names)} names")
        if not networks:
            raise ConfigError("no classifier networks given")
        res = {(n.img_resolution, n.img_channels) for n in networks}
        if len(res) != 1:
            raise ConfigError(f"the classifiers disagree on their input (resolution, channels): {sorted(res)}")
        ((self_res, channels),) = res
        if preprocess is None:
            preprocess = Preprocess(
                resize=self_res, resize_mode="box", input_range=(-1, 1), grayscale_to_rgb=channels == 3
            )
        super().__init__(names, preprocess)
        if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
            raise ConfigError(f"chunk must be a positive int or None, got {chunk!r}")
        self.chunk = chunk
        self.resolution = self_res
        self.nets = nn.ModuleList(networks)

    @classmethod
    def from_files(cls, paths, names=None, preprocess=None, chunk=LS_MINIBATCH):
        """One classifier file per attribute; names parsed from the file names unless given."""
        paths = [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
        if not paths:
            raise ConfigError("no classifier files given")
        if names is None:
            names = [attribute_from_filename(p)[1] for p in paths]
        nets = [read_nvidia_classifier(p)[0] for p in paths]
        return cls(nets, names, preprocess=preprocess, chunk=chunk)

    @classmethod
    def from_folder(cls, folder, attributes=None, preprocess=None, chunk=LS_MINIBATCH):
        """Every celebahq-classifier-*.pkl in `folder`, in NVIDIA's numbering (or only `attributes`)."""
        folder = os.fspath(folder)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{folder}: no such folder")
        found = sorted(
            (attribute_from_filename(p), p) for p in glob.glob(os.path.join(folder, "celebahq-classifier-*.pkl"))
        )
        if not found:
            raise FileNotFoundError(f"{folder}: no celebahq-classifier-NN-<attribute>.pkl files")
        if attributes is not None:
            by_name = {normalize_name(name): p for (_, name), p in found}
            wanted = [normalize_name(a) for a in attributes]
            missing = [a for a, w in zip(attributes, wanted) if w not in by_name]
            if missing:
                raise ConfigError(
                    f"{folder}: no classifier for {', '.join(missing)}; found {', '.join(n for (_, n), _ in found)}"
                )
            return cls.from_files([by_name[w] for w in wanted], preprocess=preprocess, chunk=chunk)
        return cls.from_files([p for _, p in found], preprocess=preprocess, chunk=chunk)

    @classmethod
    def from_registry(cls, attributes=None, preprocess=None, chunk=LS_MINIBATCH, progress=True):
        """NVIDIA's files from latentlab's cache, downloaded on first use (all 40 in NVIDIA's numbering,
        or `attributes` in the order given; see `registry_attributes` for the names accepted).

        Each file must have the official structure (`check_official`); a fresh download that does not
        is removed. Offline, the error names the file, its URL and the cache path to place it at.
        """
        from ..checkpoints.download import fetch

        chosen = NVIDIA_ATTRIBUTES if attributes is None else registry_attributes(attributes)
        nets = []
        for attr in chosen:
            path = fetch(registry_name(attr), "classifier", progress=progress, verify=_verify_download)
            nets.append(check_official(read_nvidia_classifier(path)[0], path))
        return cls(nets, list(chosen), preprocess=preprocess, chunk=chunk)

    def classify(self, x):
        if x.shape[1:] != (self.nets[0].img_channels, self.resolution, self.resolution):
            raise ConfigError(
                f"the classifiers take [N, {self.nets[0].img_channels}, {self.resolution}, {self.resolution}] "
                f"after preprocessing, got {list(x.shape)}"
            )
        step = x.shape[0] if self.chunk is None else self.chunk
        parts = [torch.cat([net(xc) for net in self.nets], dim=1) for xc in x.split(max(step, 1))]
        return torch.cat(parts, dim=0)

    def probabilities(self, images):
        """softmax([logit, -logit])[0] = sigmoid(2 logit), the separability metric's class probability."""
        return torch.sigmoid(2 * self(images))
