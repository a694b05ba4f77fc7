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
`ToyFacesClassifier.from_file`. `train_toyfaces_classifier` trains one on a toyfaces folder.
"""
import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..datasets.toyfaces import ATTRIBUTES, POSITIVE
from ..errors import CheckpointError
from ..utils.atomic import atomic_path, write_text
from .base import AttributeClassifier, check_names
from .preprocess import Preprocess

__all__ = [
    "FORMAT", "VERSION", "SCORE_KINDS", "SCORE_MEANING", "ToyFacesNet", "ToyFacesClassifier",
    "ToyFacesTrainingResult", "default_preprocess", "label_targets", "reference_scores", "values",
    "scores_to_binary", "evaluate_scores", "train_toyfaces_classifier", "load_toyfaces_images", "report_path",
]

FORMAT = "latentlab-toyfaces-classifier"
VERSION = 1
RESOLUTION = 64

# 'logit': BCE on the 0/1 label; 'value': MSE on the value mapped to [-1, 1]; 'warmth': MSE on cos(2 pi hue).
SCORE_KINDS = {
    "smile": "value", "age": "value", "eyeglasses": "logit", "male": "logit", "beard": "logit",
    "yaw": "value", "bangs": "logit", "skin": "value", "background": "warmth",
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
        raise ValueError(f"label table has no column {name!r}; needs {', '.join(ATTRIBUTES)}") from None
    v = np.asarray(col, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"label column {name!r} must be one-dimensional, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"label column {name!r} holds non-finite values")
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
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class ToyFacesNet(nn.Module):
    """Small CNN: stages of (3x3 stride-2 conv, `repeats` 3x3 convs), BatchNorm + ReLU, global average pool, linear.

    With the defaults (widths 32-64-128-256, repeats 1-1-1-0) a 64x64 image costs about 43 M
    multiply-adds (0.09 GFLOP counting multiply and add separately) and gives 256 features.
    """

    def __init__(self, num_outputs=9, widths=(32, 64, 128, 256), repeats=(1, 1, 1, 0), in_channels=3):
        super().__init__()
        widths, repeats = [int(w) for w in widths], [int(r) for r in repeats]
        if not widths or len(widths) != len(repeats) or min(widths) < 1 or min(repeats) < 0:
            raise ValueError(f"widths and repeats need one entry per stage (widths >= 1, repeats >= 0), "
                             f"got {widths} and {repeats}")
        if int(num_outputs) < 1 or int(in_channels) < 1:
            raise ValueError(f"num_outputs and in_channels must be >= 1, got {num_outputs} and {in_channels}")
        self.init_kwargs = {"num_outputs": int(num_outputs), "widths": widths, "repeats": repeats, "in_channels": int(in_channels)}
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
            raise ValueError(f"the network has {net.head.out_features} outputs for {len(names)} names")
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
        """Load a file written by `save`; CheckpointError naming the file and the problem otherwise."""
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such classifier file")
        if os.path.isdir(path):
            raise IsADirectoryError(f"{path}: a folder, expected a toyfaces classifier .safetensors file")
        try:
            with safe_open(path, framework="pt") as f:
                meta = f.metadata() or {}
            state = load_file(path)
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise CheckpointError(f"{path}: not a readable toyfaces classifier (damaged or not a safetensors file: {msg})") from None
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{path}: a safetensors file, but not a toyfaces classifier (no '{FORMAT}' format tag)")
        try:
            version = int(meta.get("version", "0"))
            arch = json.loads(meta["arch"])
            names = json.loads(meta["names"])
            pre = Preprocess.from_dict(json.loads(meta["preprocess"]))
            report = json.loads(meta.get("report", "{}"))
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{path}: damaged toyfaces classifier metadata ({type(e).__name__}: {e})") from None
        if version > VERSION or version < 1:
            raise CheckpointError(f"{path}: toyfaces classifier format version {version}; this latentlab reads up to {VERSION}")
        try:
            net = ToyFacesNet(**arch)
            clf = cls(net, names=names, preprocess=pre, report=report)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: bad toyfaces classifier architecture {arch!r} ({e})") from None
        expected = net.state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        if missing or unexpected:
            what = f"tensor {missing[0]!r} is missing" if missing else f"unexpected tensor {unexpected[0]!r}"
            raise CheckpointError(f"{path}: {what} for the architecture in its metadata")
        for k, ref in expected.items():
            if tuple(state[k].shape) != tuple(ref.shape) or state[k].dtype != ref.dtype:
                raise CheckpointError(f"{path}: tensor {k!r} is {state[k].dtype} {list(state[k].shape)}, "
                                      f"expected {ref.dtype} {list(ref.shape)}")
            if ref.is_floating_point() and not torch.isfinite(state[k]).all():
                raise CheckpointError(f"{path}: tensor {k!r} holds non-finite values")
        net.load_state_dict(state, strict=True)
        return clf.to(device).eval()

    def extra_repr(self):
        return f"widths={self.net.init_kwargs['widths']}, " + super().extra_repr()


# ------------------------------------------------------------------------------------------ training


def report_path(out):
    """The JSON report beside a classifier file: same name, .json."""
    return os.path.splitext(os.fspath(out))[0] + ".json"


def load_toyfaces_images(data_dir, table, progress=True):
    """The images listed in `table['file']` as one uint8 tensor [N, 3, H, W] (decoded once, kept in memory)."""
    from PIL import Image

    from ..utils.progress import progress_bar

    files = list(table["file"]) if "file" in table.columns else None
    if files is None:
        raise ValueError(f"{data_dir}/labels.csv has no 'file' column (write the dataset with `latentlab toyfaces`)")
    out = None
    for i, rel in enumerate(progress_bar(files, desc="loading images", unit="img", enabled=progress, what="images")):
        path = os.path.join(data_dir, rel)
        try:
            with Image.open(path) as im:
                arr = np.array(im.convert("RGB"), dtype=np.uint8)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: image listed in labels.csv is missing") from None
        except OSError as e:
            raise ValueError(f"{path}: unreadable image ({e})") from None
        if out is None:
            out = torch.empty((len(files), 3, arr.shape[0], arr.shape[1]), dtype=torch.uint8)
        if arr.shape[:2] != tuple(out.shape[2:]):
            raise ValueError(f"{path}: {arr.shape[1]}x{arr.shape[0]} image, the others are {out.shape[3]}x{out.shape[2]}")
        out[i] = torch.from_numpy(arr).permute(2, 0, 1)
    return out


def _to_float(x_uint8):
    return x_uint8.float().div_(127.5).sub_(1.0)


def _augment(x, gen, shift=2, brightness=0.04, noise=0.02):
    """Label-preserving jitter: integer shifts up to `shift` px (edge padding), a brightness offset, pixel noise.

    No flips (they would mirror yaw) and no colour changes (skin tone, hair and background hue are labels).
    """
    n = x.shape[0]
    if shift:
        pad = torch.nn.functional.pad(x, (shift,) * 4, mode="replicate")
        dx = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        dy = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        H, W = x.shape[-2:]
        x = torch.stack([pad[i, :, dy[i]:dy[i] + H, dx[i]:dx[i] + W] for i in range(n)])
    if brightness:
        x = x + (torch.rand((n, 1, 1, 1), generator=gen) * 2 - 1) * brightness
    if noise:
        x = x + torch.randn(x.shape, generator=gen) * noise
    return x.clamp_(-1.0, 1.0)


def _loss(scores, targets, logit_mask, value_weight):
    bce = nn.functional.binary_cross_entropy_with_logits(scores[:, logit_mask], targets[:, logit_mask])
    mse = nn.functional.mse_loss(scores[:, ~logit_mask], targets[:, ~logit_mask])
    return bce + value_weight * mse


def evaluate_scores(scores, targets, names=ATTRIBUTES):
    """Per-attribute held-out metrics of scores vs targets (both [N, A] in score space).

    accuracy: sign agreement (`binarize`'s rules, for every attribute); majority_baseline: accuracy
    of always answering the majority class; for regressed scores also r2 and rmse (score units).
    """
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    out = {}
    for j, name in enumerate(names):
        kind = SCORE_KINDS.get(name, "logit")
        truth = t[:, j] >= 0.5 if kind == "logit" else t[:, j] > 0
        pred = s[:, j] > 0
        rate = float(truth.mean()) if len(truth) else float("nan")
        row = {"kind": kind, "accuracy": float((pred == truth).mean()) if len(truth) else float("nan"),
               "majority_baseline": max(rate, 1 - rate), "positive_rate": rate}
        if kind != "logit":
            resid = s[:, j] - t[:, j]
            ss_tot = float(((t[:, j] - t[:, j].mean()) ** 2).sum())
            row["r2"] = 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
            row["rmse"] = float(np.sqrt((resid ** 2).mean()))
        out[name] = row
    return out


@torch.no_grad()
def _predict(net, images, device, batch_size):
    net.eval()
    parts = []
    for i in range(0, images.shape[0], batch_size):
        parts.append(net(_to_float(images[i:i + batch_size]).to(device)).float().cpu())
    return torch.cat(parts) if parts else torch.zeros((0, net.head.out_features))


@dataclass
class ToyFacesTrainingResult:
    classifier: ToyFacesClassifier
    report: dict
    path: str
    report_path: str


def _check_int(name, value, low):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def train_toyfaces_classifier(data_dir, out_path, epochs=12, batch_size=128, lr=2e-3, val_fraction=0.1, seed=0,
                              device="cpu", progress=True, max_images=None, widths=(32, 64, 128, 256),
                              repeats=(1, 1, 1, 0), weight_decay=1e-4, value_weight=4.0, augment=True, threads=None):
    """Train a `ToyFacesClassifier` on a toyfaces folder (labels.csv + images/), write it and its report.

    Split: the last `val_fraction` of the rows (by index; at least one) are held out, the rest
    train. (Toyfaces rows are i.i.d., so this is a random split, and a fixed one.) `max_images`
    uses only the first N rows. Every image is decoded once into memory as uint8.

    Loss: BCE (binary attributes) + `value_weight` x MSE (regressed scores), see `SCORE_MEANING`.
    Adam (weight decay `weight_decay`, L2), learning rate: linear warm-up over the first 3% of steps,
    then cosine to 0. Augmentation (`augment=True`): shifts up to 2 px, brightness offset up to
    0.04, pixel noise 0.02; no flips, no colour jitter (labels would change). Seeded: same data
    and seed, same network (on the same machine and torch version).

    `threads`: torch CPU threads while training (None: leave torch's setting; on a busy machine 1
    can be several times faster than more).

    Writes `out_path` (.safetensors, the report in its metadata) and the report as JSON beside it
    (`report_path(out_path)`), both atomically. Returns a ToyFacesTrainingResult.
    """
    data_dir, out_path = os.fspath(data_dir), os.fspath(out_path)
    if os.path.splitext(out_path)[1].lower() == ".json":
        raise ValueError(f"{out_path}: the classifier file must not end in .json (the report goes there)")
    if os.path.isdir(out_path):
        raise ValueError(f"{out_path}: is a folder; give the .safetensors file to write")
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 2)
    if max_images is not None:
        max_images = _check_int("max_images", max_images, 2)
    for name, value in (("lr", lr), ("val_fraction", val_fraction), ("weight_decay", weight_decay),
                        ("value_weight", value_weight)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if threads is not None:
        threads = _check_int("threads", threads, 1)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"{data_dir}: no such toyfaces folder")
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(data_dir, out_path, epochs, batch_size, lr, val_fraction, seed, device, progress, max_images,
                      widths, repeats, weight_decay, value_weight, augment)
    finally:
        torch.set_num_threads(old_threads)


def _train(data_dir, out_path, epochs, batch_size, lr, val_fraction, seed, device, progress, max_images, widths,
           repeats, weight_decay, value_weight, augment):
    from tqdm import tqdm

    from ..datasets.toyfaces import load_labels
    from ..utils.progress import progress_bar

    table = load_labels(data_dir)
    missing = [c for c in ("file",) + ATTRIBUTES if c not in table.columns]
    if missing:
        raise ValueError(f"{data_dir}/labels.csv lacks column(s) {', '.join(missing)}: not a toyfaces dataset")
    if max_images is not None:
        table = table.iloc[:max_images]
    n = len(table)
    n_val = max(1, round(n * val_fraction))
    if n - n_val < 2:
        raise ValueError(f"{data_dir}: {n} images are too few to train and hold out {val_fraction:.0%}")
    info = {}
    info_path = os.path.join(data_dir, "dataset.json")
    if os.path.exists(info_path):
        try:
            with open(info_path) as f:
                info = {k: v for k, v in json.load(f).items() if k in ("format", "version", "n", "seed", "resolution")}
        except (OSError, ValueError, AttributeError):
            info = {}

    t_start = time.perf_counter()
    targets = torch.from_numpy(label_targets(table))
    images = load_toyfaces_images(data_dir, table, progress=progress)
    if images.shape[1:] != (3, RESOLUTION, RESOLUTION):
        raise ValueError(f"{data_dir}: images are {images.shape[3]}x{images.shape[2]}; the toyfaces classifier "
                         f"trains at {RESOLUTION}x{RESOLUTION} (render the dataset with --resolution {RESOLUTION})")
    load_seconds = time.perf_counter() - t_start
    train_x, val_x = images[: n - n_val], images[n - n_val:]
    train_y, val_y = targets[: n - n_val], targets[n - n_val:]

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    names = list(ATTRIBUTES)
    clf = ToyFacesClassifier(ToyFacesNet(len(names), widths=widths, repeats=repeats), names=names)
    net = clf.net.to(device=device, memory_format=torch.channels_last)  # faster convolutions on CPU
    logit_mask = torch.tensor([SCORE_KINDS[n] == "logit" for n in names], device=device)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, (n - n_val) // batch_size)  # the last incomplete batch is dropped
    total_steps = epochs * steps_per_epoch
    warmup = max(1, int(0.03 * total_steps))

    def lr_at(step):
        if step < warmup:
            return lr * (step + 1) / warmup
        return 0.5 * lr * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    history, step = [], 0
    for epoch in range(epochs):
        net.train()
        t0 = time.perf_counter()
        order = torch.randperm(n - n_val, generator=gen)
        total, count = 0.0, 0
        bar = progress_bar(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{epochs}", unit="batch", enabled=progress,
                           what=f"batches in epoch 1 of {epochs}", hint="use --epochs or --max-images to reduce",
                           large=60 / epochs if epoch == 0 else float("inf"))
        for b in bar:
            idx = order[b * batch_size:(b + 1) * batch_size]
            x = _to_float(train_x[idx])
            if augment:
                x = _augment(x, gen)
            y = train_y[idx].to(device)
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            loss = _loss(net(x.to(device).contiguous(memory_format=torch.channels_last)), y, logit_mask, value_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            total, count = total + loss.item() * len(idx), count + len(idx)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.close()
        pred = _predict(net, val_x, device, max(batch_size, 256))
        val_loss = float(_loss(pred, val_y, logit_mask.cpu(), value_weight))
        metrics = evaluate_scores(pred.numpy(), val_y.numpy(), names)
        entry = {"epoch": epoch + 1, "train_loss": total / max(count, 1), "val_loss": val_loss,
                 "val_mean_accuracy": float(np.mean([m["accuracy"] for m in metrics.values()])),
                 "val_accuracy": {k: round(m["accuracy"], 5) for k, m in metrics.items()},
                 "val_r2": {k: round(m["r2"], 5) for k, m in metrics.items() if "r2" in m},
                 "seconds": time.perf_counter() - t0}
        history.append(entry)
        if progress:
            acc = " ".join(f"{k}={v:.3f}" for k, v in entry["val_accuracy"].items())
            r2 = " ".join(f"{k}={v:.3f}" for k, v in entry["val_r2"].items())
            tqdm.write(f"epoch {epoch + 1}: train loss {entry['train_loss']:.4f}, held-out loss {val_loss:.4f}; "
                       f"accuracy {acc}; R^2 {r2}")

    net = net.to(device="cpu", memory_format=torch.contiguous_format).eval()
    report = {
        "kind": "latentlab-toyfaces-classifier-report",
        "format": FORMAT,
        "data_dir": os.path.abspath(data_dir),
        "dataset": info,
        "names": names,
        "score_kinds": dict(SCORE_KINDS),
        "positive_rules": {k: POSITIVE[k] for k in names},
        "arch": net.init_kwargs,
        "multiply_adds_per_image": net.multiply_adds(RESOLUTION),
        "n_train": n - n_val,
        "n_val": n_val,
        "split": f"held out: the last {n_val} rows (rows {n - n_val}..{n - 1}); trained on rows 0..{n - n_val - 1}",
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "lr_schedule": f"linear warm-up over {warmup} steps, then cosine to 0 over {total_steps} steps",
        "weight_decay": weight_decay,
        "value_weight": value_weight,
        "augment": ("shift <= 2 px (edge padding), brightness offset <= 0.04, pixel noise 0.02; no flips"
                    if augment else "none"),
        "seed": seed,
        "device": str(device),
        "load_seconds": load_seconds,
        "train_seconds": time.perf_counter() - t_start - load_seconds,
        "history": history,
        "val": evaluate_scores(_predict(net, val_x, "cpu", 256).numpy(), val_y.numpy(), names),
    }
    report["val_mean_accuracy"] = float(np.mean([m["accuracy"] for m in report["val"].values()]))
    clf.report = report
    clf.save(out_path)
    rpath = report_path(out_path)
    write_text(rpath, json.dumps(report, indent=1) + "\n")
    return ToyFacesTrainingResult(classifier=clf, report=report, path=out_path, report_path=rpath)
