"""torchvision ResNets with one logit per attribute (the common CelebA 40-attribute classifier).

Weights come only from local files, read by `latentlab.checkpoints.state_dicts.read_state_dict`
(`torch.load(weights_only=True)`) and loaded by its `load_state_dict_strict`; the networks are
built with `weights=None`, so nothing is ever downloaded.
"""

import os
import re

import torch

from ..checkpoints.state_dicts import WRAPPER_PREFIXES, load_state_dict_strict, read_state_dict
from ..errors import CheckpointError, ConfigError
from .base import AttributeClassifier
from .celeba import CELEBA_40
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess

__all__ = ["ResNetAttributeClassifier", "celeba_preprocess", "ARCHS", "read_resnet_state_dict", "infer_resnet_arch"]

# blocks per stage and whether the blocks are bottlenecks (conv3 present)
ARCHS = {
    "resnet18": ((2, 2, 2, 2), False),
    "resnet34": ((3, 4, 6, 3), False),
    "resnet50": ((3, 4, 6, 3), True),
    "resnet101": ((3, 4, 23, 3), True),
    "resnet152": ((3, 8, 36, 3), True),
}
# Wrappers that add a prefix to every key: DataParallel ('module.'), Lightning-style ('model.'), ours ('net.').
PREFIXES = WRAPPER_PREFIXES + ("net.",)


def celeba_preprocess(size=224, crop=None):
    """The usual preprocessing of ImageNet-initialised CelebA classifiers: [0, 1], ImageNet mean/std.

    `crop` optionally keeps the face region first, as fractions (top, left, height, width).
    """
    return Preprocess(
        resize=size, resize_mode="bilinear", crop=crop, input_range=(0, 1), mean=IMAGENET_MEAN, std=IMAGENET_STD
    )


def _build(arch, num_outputs):
    import torchvision

    if arch not in ARCHS:
        raise ConfigError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_outputs)


def read_resnet_state_dict(path):
    """A ResNet state dict saved with torch.save, read without running code; wrapper prefixes removed.

    Bare state dicts and training checkpoints that keep it under 'state_dict' are accepted.
    """
    return read_state_dict(path, nesting=("state_dict",), prefixes=PREFIXES)[0]


def infer_resnet_arch(state, path="state dict"):
    """Which torchvision ResNet a state dict belongs to, from its block layout."""
    blocks = [0, 0, 0, 0]
    for key in state:
        m = re.match(r"layer([1-4])\.(\d+)\.", key)
        if m:
            stage = int(m.group(1)) - 1
            blocks[stage] = max(blocks[stage], int(m.group(2)) + 1)
    bottleneck = any(re.match(r"layer1\.0\.conv3\.", k) for k in state)
    for arch, (layout, bott) in ARCHS.items():
        if tuple(blocks) == layout and bott == bottleneck:
            return arch
    kind = "bottleneck" if bottleneck else "basic"
    raise CheckpointError(
        f"{path}: not a supported torchvision ResNet ({kind} blocks per stage {blocks}; supported: {', '.join(ARCHS)})"
    )


class ResNetAttributeClassifier(AttributeClassifier):
    """A torchvision ResNet whose fc has one logit per attribute (40 CelebA attributes by default).

    state_dict: None (random init), a dict, or a path to a file saved with torch.save.
    """

    def __init__(self, arch="resnet18", names=CELEBA_40, state_dict=None, preprocess=None):
        super().__init__(names, celeba_preprocess() if preprocess is None else preprocess)
        self.arch = arch
        self.net = _build(arch, len(self.names))
        if state_dict is not None:
            where = "state dict"
            if isinstance(state_dict, (str, os.PathLike)):
                where = os.fspath(state_dict)
                state_dict = read_resnet_state_dict(state_dict)
            self._load(state_dict, where)
        self.eval()

    def _load(self, state, where):
        fc, want = state.get("fc.weight"), list(self.net.fc.weight.shape)
        if torch.is_tensor(fc) and fc.ndim == 2 and fc.shape[0] != len(self.names):  # the likely mistake: say so
            raise CheckpointError(
                f"{where}: key 'fc.weight' has shape {list(fc.shape)}, expected {want} "
                f"({fc.shape[0]} attributes in the file, {len(self.names)} names given)"
            )
        load_state_dict_strict(self.net, state, where, f"a {len(self.names)}-attribute {self.arch}")

    @classmethod
    def from_file(cls, path, arch=None, names=None, preprocess=None):
        """Load a state dict saved with torch.save (bare keys, or 'module.' / 'model.' prefixed).

        The arch is inferred from the keys when not given. If a JSON report written by
        `train_attribute_classifier` sits beside the file (same name, .json), its names
        and preprocessing are used unless given here.
        """
        path = os.fspath(path)
        state = read_resnet_state_dict(path)
        inferred = infer_resnet_arch(state, path)
        if arch is None:
            arch = inferred
        elif arch != inferred:
            raise CheckpointError(f"{path}: holds a {inferred}, not a {arch}")
        sidecar = _read_sidecar(path)
        if names is None:
            names = sidecar.get("names")
        if names is None:
            fc = state.get("fc.weight")
            count = fc.shape[0] if fc is not None and fc.ndim == 2 else None
            names = CELEBA_40 if count in (None, 40) else [f"attr{i}" for i in range(count)]
        if preprocess is None and "preprocess" in sidecar:
            try:
                preprocess = Preprocess.from_dict(sidecar["preprocess"])
            except (ValueError, TypeError) as e:
                raise CheckpointError(f"{_sidecar_path(path)}: bad preprocess settings ({e})") from None
        clf = cls(arch=arch, names=names, preprocess=preprocess)
        clf._load(state, path)
        return clf

    def classify(self, x):
        return self.net(x)

    def extra_repr(self):
        return f"arch={self.arch}, " + super().extra_repr()


def _sidecar_path(path):
    return os.path.splitext(path)[0] + ".json"


def _read_sidecar(path):
    side = _sidecar_path(path)
    if side == path or not os.path.exists(side):
        return {}
    from ..utils.safe_json import load_json

    try:
        data = load_json(side, error=CheckpointError)  # size and depth checked before parsing
    except OSError as e:
        raise CheckpointError(f"{side}: unreadable classifier report ({e})") from None
    if not isinstance(data, dict) or data.get("kind") != "latentlab-attribute-classifier":
        return {}  # some other JSON file that happens to share the name
    return data
