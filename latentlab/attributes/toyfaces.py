"""The attribute classifier of the toyfaces dataset: a small CNN trained on rendered faces with their true labels.

    clf = load_classifier("toyfaces:toyfaces-classifier.safetensors")
    scores = clf(G.synthesis(ws))          # [N, 9], one score per toyfaces attribute, positive = present
    feats = clf.features(images)            # [N, 256] penultimate features (Frechet distances)

Scores (`SCORE_KINDS`, `SCORE_MEANING`), in `latentlab.datasets.toyfaces.ATTRIBUTES` order. Every
score is positive exactly when `binarize` calls the attribute present, so the classifier keeps the
interface's rule "positive = attribute present":

  * binary attributes (eyeglasses, male, beard, bangs): a logit (trained with BCE on the 0/1 label);
  * smile, yaw: the value itself, in [-1, 1] (trained with MSE);
  * age, skin: the value rescaled to [-1, 1], 2 v - 1 (MSE); 0 is binarize's threshold 0.5;
  * background: the hue's "warmth" cos(2 pi hue) in [-1, 1] (MSE); the hue is circular, and
    warmth > 0 is binarize's warm half (hue < 0.25 or > 0.75).

`label_targets(table)` maps a label table to these training targets and `reference_scores(table)`
gives the same (binary attributes as 0/1) as a DataFrame: the renderer's own labels in score space,
the reference a correlation study compares the classifier's scores with. `values(scores)` maps
scores back to attribute units (age, skin in [0, 1]; binary attributes as probabilities).

Files are `.safetensors` (no pickle): the network's tensors plus JSON metadata (format tag,
version, architecture, names, score kinds, preprocessing, training report); see `save` and
`ToyFacesClassifier.from_file`. Training lives in `toyfaces_training.py`
(`train_toyfaces_classifier` trains one on a toyfaces folder).
"""

import json
import os

import numpy as np
import torch
from torch import nn

from ..datasets.toyfaces import ATTRIBUTES
from ..errors import CheckpointError, ConfigError
from ..utils.atomic import atomic_path
from ..utils.safe_json import Anything, Int, Map, Obj, Str, loads_json, require_keys
from ..utils.safe_json import List as JsonList
from .base import AttributeClassifier, check_names
from .preprocess import Preprocess

__all__ = [
    "FORMAT",
    "VERSION",
    "SCORE_KINDS",
    "SCORE_MEANING",
    "ToyFacesNet",
    "ToyFacesClassifier",
    "default_preprocess",
    "label_targets",
    "reference_scores",
    "values",
    "scores_to_binary",
]

FORMAT = "latentlab-toyfaces-classifier"
VERSION = 1
RESOLUTION = 64

# 'logit': BCE on the 0/1 label; 'value': MSE on the value mapped to [-1, 1]; 'warmth': MSE on cos(2 pi hue).
SCORE_KINDS = {
    "smile": "value",
    "age": "value",
    "eyeglasses": "logit",
    "male": "logit",
    "beard": "logit",
    "yaw": "value",
    "bangs": "logit",
    "skin": "value",
    "background": "warmth",
}
SCORE_MEANING = {
    "smile": "smile value in [-1, 1] (regressed): frown < 0 < smile; positive = smiling (smile > 0)",
    "age": "2 age - 1 in [-1, 1] (regressed): -1 young .. 1 old; positive = old (age > 0.5)",
    "eyeglasses": "logit of P(eyeglasses); positive = wears glasses",
    "male": "logit of P(male: short hair, visible ears); positive = male",
    "beard": "logit of P(beard); positive = bearded",
    "yaw": "yaw value in [-1, 1] (regressed); positive = turned toward the image's right (yaw > 0)",
    "bangs": "logit of P(bangs); positive = a fringe over the forehead",
    "skin": "2 skin - 1 in [-1, 1] (regressed): -1 light .. 1 dark; positive = darker half (skin > 0.5)",
    "background": "warmth cos(2 pi hue) in [-1, 1] (regressed): 1 red, -1 cyan; positive = warm hue "
    "(hue < 0.25 or > 0.75)",
}
REGRESSED = tuple(n for n in ATTRIBUTES if SCORE_KINDS[n] != "logit")
LOGITS = tuple(n for n in ATTRIBUTES if SCORE_KINDS[n] == "logit")


def default_preprocess(resolution=RESOLUTION):
    """The generator's [-1, 1] images, clamped (as a saved PNG would be), resized to 64 x 64 if needed."""
    return Preprocess(resize=resolution, resize_mode="bilinear", input_range=(-1.0, 1.0), clamp=True)


# --------------------------------------------------------------------------------------- score space


def _column(table, name):
    try:
        col = table[name]
    except (KeyError, IndexError, TypeError):
        raise ConfigError(f"label table has no column {name!r}; needs {', '.join(ATTRIBUTES)}") from None
    v = np.asarray(col, dtype=np.float64)
    if v.ndim != 1:
        raise ConfigError(f"label column {name!r} must be one-dimensional, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ConfigError(f"label column {name!r} holds non-finite values")
    return v


def _to_score(name, v):
    if name in ("smile", "yaw"):
        return np.clip(v, -1.0, 1.0)
    if name in ("age", "skin"):
        return 2.0 * np.clip(v, 0.0, 1.0) - 1.0
    if name == "background":
        return np.cos(2.0 * np.pi * np.mod(v, 1.0))
    return (v >= 0.5).astype(np.float64)  # binary, as the renderer draws it


def label_targets(table):
    """Training targets [N, 9] float32 in score space (`SCORE_MEANING`); binary attributes 0/1.

    table: a DataFrame (e.g. `load_labels`, `sample_attributes`) or a dict of columns, with every
    attribute of `ATTRIBUTES`.
    """
    cols = [_to_score(n, _column(table, n)) for n in ATTRIBUTES]
    return np.stack(cols, axis=1).astype(np.float32) if cols[0].size else np.zeros((0, len(ATTRIBUTES)), np.float32)


def reference_scores(table):
    """The label table in score space as a float64 DataFrame (columns `ATTRIBUTES`, binary as 0/1).

    What a perfect classifier would answer for the rendered faces: the reference for correlation
    studies of the classifier's scores (regressed scores; for binary attributes the labels).
    """
    import pandas as pd

    index = table.index if isinstance(table, pd.DataFrame) else None
    return pd.DataFrame({n: _to_score(n, _column(table, n)) for n in ATTRIBUTES}, index=index)


def reference_table(n=20000, seed=0):
    """The renderer's own labels for n sampled faces in the classifier's score space: the embedded
    model's reference for the correlation study (the label correlations of the sampler are the
    ground truth the generated faces should show)."""
    from ..datasets.toyfaces import sample_attributes

    return reference_scores(sample_attributes(n, seed))


def values(scores, names=ATTRIBUTES):
    """Scores [N, A] (tensor or array) -> attribute units: smile/yaw as is, age/skin in [0, 1] (clamped),
    binary attributes as probabilities, background as warmth."""
    is_tensor = torch.is_tensor(scores)
    s = scores.detach().double().cpu().numpy() if is_tensor else np.asarray(scores, dtype=np.float64)
    out = np.empty_like(s)
    for j, name in enumerate(names):
        kind = SCORE_KINDS.get(name)
        if kind == "logit":
            out[:, j] = 1.0 / (1.0 + np.exp(-s[:, j]))
        elif name in ("age", "skin"):
            out[:, j] = np.clip((s[:, j] + 1.0) / 2.0, 0.0, 1.0)
        else:
            out[:, j] = s[:, j]
    return torch.from_numpy(out).float() if is_tensor else out


def scores_to_binary(scores):
    """0/1 per attribute by `binarize`'s rules: a score is positive exactly when the attribute is present."""
    return (scores > 0).long() if torch.is_tensor(scores) else (np.asarray(scores) > 0).astype(np.int64)


# ------------------------------------------------------------------------------------------- network


def _conv(cin, cout, stride):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class ToyFacesNet(nn.Module):
    """Small CNN: stages of (3x3 stride-2 conv, `repeats` 3x3 convs), BatchNorm + ReLU, global average pool, linear.

    With the defaults (widths 32-64-128-256, repeats 1-1-1-0) a 64x64 image costs about 43 M
    multiply-adds (0.09 GFLOP counting multiply and add separately) and gives 256 features.
    """

    def __init__(self, num_outputs=9, widths=(32, 64, 128, 256), repeats=(1, 1, 1, 0), in_channels=3):
        super().__init__()
        widths, repeats = [int(w) for w in widths], [int(r) for r in repeats]
        if not widths or len(widths) != len(repeats) or min(widths) < 1 or min(repeats) < 0:
            raise ConfigError(
                f"widths and repeats need one entry per stage (widths >= 1, repeats >= 0), got {widths} and {repeats}"
            )
        if int(num_outputs) < 1 or int(in_channels) < 1:
            raise ConfigError(f"num_outputs and in_channels must be >= 1, got {num_outputs} and {in_channels}")
        self.init_kwargs = {
            "num_outputs": int(num_outputs),
            "widths": widths,
            "repeats": repeats,
            "in_channels": int(in_channels),
        }
        layers, cin = [], int(in_channels)
        for w, r in zip(widths, repeats):
            layers.append(_conv(cin, w, 2))
            layers.extend(_conv(w, w, 1) for _ in range(r))
            cin = w
        self.body = nn.Sequential(*layers)
        self.num_features = cin
        self.head = nn.Linear(cin, int(num_outputs))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def features(self, x):
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x):
        return self.head(self.features(x))

    def multiply_adds(self, resolution=RESOLUTION):
        """Multiply-adds of one forward pass on a resolution x resolution image (convolutions and the head)."""
        total, size = 0, int(resolution)
        for m in self.body.modules():
            if isinstance(m, nn.Conv2d):
                size = (size + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
                total += size * size * m.out_channels * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        return total + self.head.in_features * self.head.out_features


# ---------------------------------------------------------------------------------------- classifier


class ToyFacesClassifier(AttributeClassifier):
    """images [N, 3, H, W] in [-1, 1] -> scores [N, 9] (see `SCORE_MEANING`); a `ToyFacesNet` inside.

    Images are moved to the network's device; the scores come back there. `features(images)`
    gives the penultimate features [N, F]; `binary(images)` the 0/1 attributes by `binarize`'s
    rules; `values(images)` the scores in attribute units.
    """

    def __init__(self, net=None, names=ATTRIBUTES, preprocess=None, arch=None, report=None):
        names = check_names(names)
        super().__init__(names, default_preprocess() if preprocess is None else preprocess)
        if net is None:
            net = ToyFacesNet(num_outputs=len(names), **(arch or {}))
        if net.head.out_features != len(names):
            raise ConfigError(f"the network has {net.head.out_features} outputs for {len(names)} names")
        self.net = net
        self.score_kinds = {n: SCORE_KINDS.get(n, "logit") for n in names}
        self.report = report or {}
        self.eval()

    @property
    def num_features(self):
        return self.net.num_features

    def _device(self):
        return next(self.net.parameters()).device

    def classify(self, x):
        return self.net(x.to(self._device()))

    def _batched(self, fn, images, batch_size):
        if batch_size is None or images.shape[0] <= batch_size:
            return fn(images)
        return torch.cat([fn(part) for part in images.split(int(batch_size))], dim=0)

    def features(self, images, batch_size=None):
        """Penultimate features [N, F] float32 (global average pool of the last stage)."""

        def one(x):
            return self.net.features(self.preprocess(x).to(self._device())).float()

        return self._batched(one, images, batch_size)

    def scores(self, images, batch_size=None):
        """`self(images)` in batches of `batch_size` (None: all at once)."""
        return self._batched(self, images, batch_size)

    def binary(self, images, batch_size=None):
        """0/1 per attribute [N, A] (int64), by `binarize`'s rules (score > 0)."""
        return scores_to_binary(self.scores(images, batch_size))

    def values(self, images, batch_size=None):
        """Scores in attribute units (see `values`)."""
        return values(self.scores(images, batch_size), self.names)

    def probabilities(self, images, batch_size=None):
        """sigmoid(score) for every attribute: P(present) for the binary ones, a squashed score for the rest."""
        return torch.sigmoid(self.scores(images, batch_size))

    # ------------------------------------------------------------------------------- files

    def metadata(self):
        return {
            "format": FORMAT,
            "version": str(VERSION),
            "arch": json.dumps(self.net.init_kwargs),
            "names": json.dumps(list(self.names)),
            "score_kinds": json.dumps(self.score_kinds),
            "score_meaning": json.dumps({n: SCORE_MEANING.get(n, "") for n in self.names}),
            "preprocess": json.dumps(self.preprocess.to_dict()),
            "report": json.dumps(self.report, default=str),
        }

    def save(self, path):
        """Write the classifier atomically to `path` (.safetensors: tensors + JSON metadata, no pickle)."""
        from safetensors.torch import save_file

        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in self.net.state_dict().items()}
        with atomic_path(path, ".safetensors") as tmp:
            save_file(tensors, tmp, metadata=self.metadata())
        return os.fspath(path)

    @classmethod
    def from_file(cls, path, device="cpu"):
        """Load a file written by `save`; CheckpointError naming the file and the problem otherwise.

        Read and loaded by `latentlab.checkpoints.state_dicts` (safetensors only, sizes checked; exact
        keys, shapes, floating-point and finite values).
        """
        from ..checkpoints.state_dicts import load_state_dict_strict, read_state_dict

        path = os.fspath(path)
        state, meta = read_state_dict(path, what="toyfaces classifier", allow_pickle=False)
        if meta.get("format") != FORMAT:
            raise CheckpointError(
                f"{path}: a safetensors file, but not a toyfaces classifier (no '{FORMAT}' format tag)"
            )
        require_keys(meta, ("arch", "names", "preprocess"), f"{path}: metadata", error=CheckpointError)

        def field(key, schema, default="{}"):
            return loads_json(
                meta.get(key, default),
                f"{path}: damaged toyfaces classifier metadata '{key}'",
                schema,
                error=CheckpointError,
            )

        try:
            version = int(meta.get("version", "0"))
            arch = field("arch", ARCH_SCHEMA)
            names = field("names", NAMES_SCHEMA)
            pre = Preprocess.from_dict(field("preprocess", Map(Anything())))
            report = field("report", Anything())
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{path}: damaged toyfaces classifier metadata ({type(e).__name__}: {e})") from None
        if version > VERSION or version < 1:
            raise CheckpointError(
                f"{path}: toyfaces classifier format version {version}; this latentlab reads up to {VERSION}"
            )
        from ..checkpoints.state_dicts import check_state_dict

        what = "the toyfaces classifier its metadata describes"
        try:
            with torch.device("meta"):  # the metadata's network, without memory: its shapes must be the file's
                check_state_dict(ToyFacesNet(**arch).state_dict(), state, path, what)
            net = ToyFacesNet(**arch)
            clf = cls(net, names=names, preprocess=pre, report=report)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: bad toyfaces classifier architecture {arch!r} ({e})") from None
        load_state_dict_strict(net, state, path, "the toyfaces classifier its metadata describes")
        return clf.to(device).eval()

    def extra_repr(self):
        return f"widths={self.net.init_kwargs['widths']}, " + super().extra_repr()


# The metadata of a classifier file, checked before any network is built (`latentlab.utils.safe_json`):
# widths and repeats bounded so that a 1 KB header cannot describe a network of terabytes.
ARCH_SCHEMA = Obj(
    {
        "num_outputs": Int(1, 4096),
        "widths": JsonList(Int(1, 4096), 1, 16),
        "repeats": JsonList(Int(0, 64), 1, 16),
        "in_channels": Int(1, 4),
    },
    extra=False,
)
NAMES_SCHEMA = JsonList(Str(256), 1, 4096)


_TRAINING = (
    "ToyFacesTrainingResult",
    "evaluate_scores",
    "load_toyfaces_images",
    "report_path",
    "train_toyfaces_classifier",
)


def __getattr__(name):
    """Training lives in toyfaces_training.py; old imports of its names from this module keep working."""
    if name in _TRAINING:
        from . import toyfaces_training

        return getattr(toyfaces_training, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
