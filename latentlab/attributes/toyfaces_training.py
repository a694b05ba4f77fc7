"""Training of the toyfaces attribute classifier (`ToyFacesClassifier`, toyfaces.py) on a toyfaces folder.

    from latentlab.attributes.toyfaces_training import train_toyfaces_classifier
    res = train_toyfaces_classifier("data/toyfaces", "out/toyclf/classifier.safetensors", epochs=14)
    res.classifier, res.report, res.path, res.report_path

The network, the score space the targets live in (`label_targets`, `SCORE_KINDS`) and the file
format are the classifier module's; this module loads the images, trains (BCE on the binary
attributes + MSE on the regressed scores, see `train_toyfaces_classifier`), evaluates on the
held-out rows (`evaluate_scores`) and writes the classifier with its report.
"""

import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..datasets.images import open_image
from ..datasets.toyfaces import ATTRIBUTES, POSITIVE
from ..errors import ConfigError
from ..utils.atomic import write_text
from ..utils.limits import MAX_RESOLUTION
from ..utils.safe_json import Int, Obj, Str, load_json
from .toyfaces import FORMAT, RESOLUTION, SCORE_KINDS, ToyFacesClassifier, ToyFacesNet, label_targets

__all__ = [
    "ToyFacesTrainingResult",
    "dataset_info",
    "evaluate_scores",
    "load_toyfaces_images",
    "report_path",
    "train_toyfaces_classifier",
]


# The fields of a toyfaces folder's dataset.json the report records (`latentlab.utils.safe_json` checks them;
# other fields are ignored).
DATASET_INFO_SCHEMA = Obj(
    {
        "format": Str(200),
        "version": Int(0, 1_000_000),
        "n": Int(1, 1 << 40),
        "seed": Int(-(1 << 63), (1 << 64) - 1),
        "resolution": Int(1, MAX_RESOLUTION),
    }
)


def dataset_info(data_dir):
    """The fields of `data_dir`/dataset.json the report records ({} without the file), checked against
    `DATASET_INFO_SCHEMA` first: a hostile or broken file is one ConfigError naming it."""
    info_path = os.path.join(data_dir, "dataset.json")
    if not os.path.exists(info_path):
        return {}
    doc = load_json(info_path, DATASET_INFO_SCHEMA)
    return {k: v for k, v in doc.items() if k in DATASET_INFO_SCHEMA.fields}


def report_path(out):
    """The JSON report beside a classifier file: same name, .json."""
    return os.path.splitext(os.fspath(out))[0] + ".json"


def load_toyfaces_images(data_dir, table, progress=True):
    """The images listed in `table['file']` as one uint8 tensor [N, 3, H, W] (decoded once, kept in memory).

    Each image's size is checked from its header before decoding (`datasets.images.open_image`): a file
    claiming more than `MAX_IMAGE_PIXELS` (a decompression bomb) is refused in one line naming it."""
    from ..utils.progress import progress_bar

    files = list(table["file"]) if "file" in table.columns else None
    if files is None:
        raise ConfigError(f"{data_dir}/labels.csv has no 'file' column (write the dataset with `latentlab toyfaces`)")
    out = None
    for i, rel in enumerate(progress_bar(files, desc="loading images", unit="img", enabled=progress, what="images")):
        path = os.path.join(data_dir, rel)
        try:
            with open(path, "rb") as fh, open_image(fh, path) as im:  # header checked before decoding
                arr = np.array(im.convert("RGB"), dtype=np.uint8)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: image listed in labels.csv is missing") from None
        except OSError as e:
            raise ConfigError(f"{path}: unreadable image ({e})") from None
        if out is None:
            out = torch.empty((len(files), 3, arr.shape[0], arr.shape[1]), dtype=torch.uint8)
        if arr.shape[:2] != tuple(out.shape[2:]):
            raise ConfigError(
                f"{path}: {arr.shape[1]}x{arr.shape[0]} image, the others are {out.shape[3]}x{out.shape[2]}"
            )
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
        x = torch.stack([pad[i, :, dy[i] : dy[i] + H, dx[i] : dx[i] + W] for i in range(n)])
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
        row = {
            "kind": kind,
            "accuracy": float((pred == truth).mean()) if len(truth) else float("nan"),
            "majority_baseline": max(rate, 1 - rate),
            "positive_rate": rate,
        }
        if kind != "logit":
            resid = s[:, j] - t[:, j]
            ss_tot = float(((t[:, j] - t[:, j].mean()) ** 2).sum())
            row["r2"] = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
            row["rmse"] = float(np.sqrt((resid**2).mean()))
        out[name] = row
    return out


@torch.no_grad()
def _predict(net, images, device, batch_size):
    net.eval()
    parts = []
    for i in range(0, images.shape[0], batch_size):
        parts.append(net(_to_float(images[i : i + batch_size]).to(device)).float().cpu())
    return torch.cat(parts) if parts else torch.zeros((0, net.head.out_features))


@dataclass
class ToyFacesTrainingResult:
    classifier: ToyFacesClassifier
    report: dict
    path: str
    report_path: str


def _check_int(name, value, low):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def train_toyfaces_classifier(
    data_dir,
    out_path,
    epochs=12,
    batch_size=128,
    lr=2e-3,
    val_fraction=0.1,
    seed=0,
    device="cpu",
    progress=True,
    max_images=None,
    widths=(32, 64, 128, 256),
    repeats=(1, 1, 1, 0),
    weight_decay=1e-4,
    value_weight=4.0,
    augment=True,
    threads=None,
):
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
        raise ConfigError(f"{out_path}: the classifier file must not end in .json (the report goes there)")
    if os.path.isdir(out_path):
        raise ConfigError(f"{out_path}: is a folder; give the .safetensors file to write")
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 2)
    if max_images is not None:
        max_images = _check_int("max_images", max_images, 2)
    for name, value in (
        ("lr", lr),
        ("val_fraction", val_fraction),
        ("weight_decay", weight_decay),
        ("value_weight", value_weight),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    if lr <= 0:
        raise ConfigError(f"lr must be positive, got {lr!r}")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if threads is not None:
        threads = _check_int("threads", threads, 1)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"{data_dir}: no such toyfaces folder")
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(
            data_dir,
            out_path,
            epochs,
            batch_size,
            lr,
            val_fraction,
            seed,
            device,
            progress,
            max_images,
            widths,
            repeats,
            weight_decay,
            value_weight,
            augment,
        )
    finally:
        torch.set_num_threads(old_threads)


def _train(
    data_dir,
    out_path,
    epochs,
    batch_size,
    lr,
    val_fraction,
    seed,
    device,
    progress,
    max_images,
    widths,
    repeats,
    weight_decay,
    value_weight,
    augment,
):
    from tqdm import tqdm

    from ..datasets.toyfaces import load_labels
    from ..utils.progress import progress_bar

    table = load_labels(data_dir)
    missing = [c for c in ("file",) + ATTRIBUTES if c not in table.columns]
    if missing:
        raise ConfigError(f"{data_dir}/labels.csv lacks column(s) {', '.join(missing)}: not a toyfaces dataset")
    if max_images is not None:
        table = table.iloc[:max_images]
    n = len(table)
    n_val = max(1, round(n * val_fraction))
    if n - n_val < 2:
        raise ConfigError(f"{data_dir}: {n} images are too few to train and hold out {val_fraction:.0%}")
    info = dataset_info(data_dir)

    t_start = time.perf_counter()
    targets = torch.from_numpy(label_targets(table))
    images = load_toyfaces_images(data_dir, table, progress=progress)
    if images.shape[1:] != (3, RESOLUTION, RESOLUTION):
        raise ConfigError(
            f"{data_dir}: images are {images.shape[3]}x{images.shape[2]}; the toyfaces classifier "
            f"trains at {RESOLUTION}x{RESOLUTION} (render the dataset with --resolution {RESOLUTION})"
        )
    load_seconds = time.perf_counter() - t_start
    train_x, val_x = images[: n - n_val], images[n - n_val :]
    train_y, val_y = targets[: n - n_val], targets[n - n_val :]

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
        bar = progress_bar(
            range(steps_per_epoch),
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="batch",
            enabled=progress,
            what=f"batches in epoch 1 of {epochs}",
            hint="use --epochs or --max-images to reduce",
            large=60 / epochs if epoch == 0 else float("inf"),
        )
        for b in bar:
            idx = order[b * batch_size : (b + 1) * batch_size]
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
        entry = {
            "epoch": epoch + 1,
            "train_loss": total / max(count, 1),
            "val_loss": val_loss,
            "val_mean_accuracy": float(np.mean([m["accuracy"] for m in metrics.values()])),
            "val_accuracy": {k: round(m["accuracy"], 5) for k, m in metrics.items()},
            "val_r2": {k: round(m["r2"], 5) for k, m in metrics.items() if "r2" in m},
            "seconds": time.perf_counter() - t0,
        }
        history.append(entry)
        if progress:
            acc = " ".join(f"{k}={v:.3f}" for k, v in entry["val_accuracy"].items())
            r2 = " ".join(f"{k}={v:.3f}" for k, v in entry["val_r2"].items())
            tqdm.write(
                f"epoch {epoch + 1}: train loss {entry['train_loss']:.4f}, held-out loss {val_loss:.4f}; "
                f"accuracy {acc}; R^2 {r2}"
            )

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
        "augment": (
            "shift <= 2 px (edge padding), brightness offset <= 0.04, pixel noise 0.02; no flips" if augment else "none"
        ),
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
