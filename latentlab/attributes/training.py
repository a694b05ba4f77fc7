"""Train the 40-attribute CelebA ResNet classifier on a CelebA folder.

Images are center-cropped to a square and resized to `image_size` when loaded, then
given to the classifier in the generator's range [-1, 1], so training runs through the
very `Preprocess` used later on generator images (range [0, 1], ImageNet mean/std).
"""

import json
import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from ..datasets.images import open_image
from ..errors import ConfigError
from ..utils.atomic import atomic_path, write_text
from .celeba import read_celeba
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from .resnet import ARCHS, ResNetAttributeClassifier

__all__ = ["train_attribute_classifier", "TrainingResult", "CelebAImages", "report_path"]


class CelebAImages(torch.utils.data.Dataset):
    """(image [3, S, S] in [-1, 1], labels [A] in {0, 1}) for rows of `read_celeba`'s table."""

    def __init__(self, table, names, image_size):
        self.paths = list(table["path"])
        self.labels = torch.from_numpy((table[names].to_numpy() > 0).astype(np.float32))
        self.image_size = image_size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

        path = self.paths[i]
        try:  # the size is checked from the header before decoding: a decompression bomb is one line
            with open(path, "rb") as fh, open_image(fh, path) as im:
                im = im.convert("RGB")
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: image listed in list_attr_celeba.txt is missing") from None
        except OSError as e:
            raise ConfigError(f"{path}: unreadable image ({e})") from None
        w, h = im.size
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s)).resize((self.image_size, self.image_size), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(im, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1
        return x, self.labels[i]


@dataclass
class TrainingResult:
    classifier: ResNetAttributeClassifier
    state_dict: dict  # bare torchvision keys, as saved
    report: dict
    path: str
    report_path: str


def report_path(out):
    return os.path.splitext(os.fspath(out))[0] + ".json"


def _evaluate(clf, loader, device):
    clf.eval()
    correct, total, positives = None, 0, None
    with torch.no_grad():
        for x, y in loader:
            pred = (clf(x.to(device)) > 0).float().cpu()
            hit = (pred == y).sum(dim=0)
            correct = hit if correct is None else correct + hit
            positives = y.sum(dim=0) if positives is None else positives + y.sum(dim=0)
            total += len(y)
    return (correct / total).tolist(), (positives / total).tolist()


def train_attribute_classifier(
    celeba_root,
    arch="resnet18",
    epochs=1,
    batch_size=64,
    lr=1e-3,
    image_size=64,
    device="cpu",
    out=None,
    progress=True,
    max_images=None,
    seed=0,
    num_workers=0,
):
    """Train on the train split (partition 0), evaluate on the validation split (1).

    Loss: BCE with logits against the -1/1 labels mapped to 0/1; Adam. `max_images` caps the
    number of images used from each split. Saves (atomically) the network's state dict to
    `out` (loadable with `ResNetAttributeClassifier.from_file`) and a JSON report beside it
    (same name, .json) with the per-attribute validation accuracy, the majority-class
    baseline and the preprocessing. Returns a TrainingResult.
    """
    from ..utils.progress import progress_bar

    if out is None:
        raise ConfigError("out= is required (the .pt file to write)")
    out = os.fspath(out)
    if os.path.splitext(out)[1].lower() == ".json":
        raise ConfigError(f"{out}: the state dict file must not end in .json (the report goes there)")
    if arch not in ARCHS:
        raise ConfigError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("image_size", image_size, 8)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
        raise ConfigError(f"max_images must be a positive integer, got {max_images!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"lr must be a positive number, got {lr!r}")

    table = read_celeba(celeba_root)
    names = table.attrs["names"]
    train, val = table[table["partition"] == 0], table[table["partition"] == 1]
    if max_images is not None:
        train, val = train.iloc[:max_images], val.iloc[:max_images]
    if len(train) == 0 or len(val) == 0:
        raise ConfigError(
            f"{celeba_root}: needs images in the train (0) and validation (1) partitions; "
            f"found {len(train)} and {len(val)}"
        )

    torch.manual_seed(seed)
    preprocess = Preprocess(
        resize=image_size, resize_mode="bilinear", input_range=(0, 1), mean=IMAGENET_MEAN, std=IMAGENET_STD
    )
    clf = ResNetAttributeClassifier(arch=arch, names=names, preprocess=preprocess).to(device)
    gen = torch.Generator().manual_seed(seed)
    train_loader = torch.utils.data.DataLoader(
        CelebAImages(train, names, image_size),
        batch_size=batch_size,
        shuffle=True,
        generator=gen,
        num_workers=num_workers,
    )
    val_loader = torch.utils.data.DataLoader(
        CelebAImages(val, names, image_size), batch_size=batch_size, num_workers=num_workers
    )
    opt = torch.optim.Adam(clf.parameters(), lr=lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    losses = []
    for epoch in range(epochs):
        clf.train()
        total, count = 0.0, 0
        bar = progress_bar(
            train_loader,
            total=len(train_loader),
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="batch",
            enabled=progress,
            what=f"batches in epoch 1 of {epochs}",
            hint="use --epochs or --max-images to reduce",
            large=60 / epochs if epoch == 0 else float("inf"),
        )
        for x, y in bar:
            loss = loss_fn(clf(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, count = total + loss.item() * len(y), count + len(y)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        losses.append(total / count)
    accuracy, positive_rate = _evaluate(clf, val_loader, device)
    clf = clf.cpu().eval()

    report = {
        "kind": "latentlab-attribute-classifier",
        "arch": arch,
        "names": names,
        "preprocess": preprocess.to_dict(),
        "image_size": image_size,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "n_train": len(train),
        "n_val": len(val),
        "train_loss": losses,
        "val_accuracy": dict(zip(names, accuracy)),
        "val_mean_accuracy": float(np.mean(accuracy)),
        # accuracy of always answering the validation split's majority class
        "val_majority_baseline": {n: max(p, 1 - p) for n, p in zip(names, positive_rate)},
        "celeba_root": os.path.abspath(os.fspath(celeba_root)),
    }
    state = {k: v.detach().clone() for k, v in clf.net.state_dict().items()}
    with atomic_path(out, ".pt") as tmp:
        torch.save(state, tmp)
    rpath = report_path(out)
    write_text(rpath, json.dumps(report, indent=1))
    return TrainingResult(classifier=clf, state_dict=state, report=report, path=out, report_path=rpath)
