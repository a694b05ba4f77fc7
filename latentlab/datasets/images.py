"""Image datasets: a folder or a zip of square images, as the official dataset tool writes them.

Images anywhere inside the folder/zip, read in sorted path order, and an optional
`dataset.json` with `{"labels": [[relative_path, label], ...]}` (int class or a float vector)
for conditional models. With `xflip` every image appears twice, once mirrored, which doubles
the dataset exactly as the official x-flip option does. Used by training (`latentlab.train`)
and by the metrics that need a dataset's images or labels (e.g. PPL's labels).
"""

import io
import json
import os
import zipfile

import numpy as np
from PIL import Image

from ..errors import ConfigError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm")


class ImageDataset:
    """Square RGB (or grayscale) images as uint8 arrays [C, R, R], optional labels.

    path: folder or .zip. resolution: images of another size are resized
    (Lanczos) on load, so a folder of 128 px images can train a 64 px model.
    max_images: keep only the first N (sorted). cache: hold decoded images in
    memory (default: when they fit in `cache_bytes`).
    """

    def __init__(
        self,
        path,
        resolution,
        channels=3,
        xflip=False,
        max_images=None,
        use_labels=False,
        cache=None,
        cache_bytes=4 << 30,
    ):
        self.path = os.fspath(path)
        self.resolution = int(resolution)
        self.channels = int(channels)
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels}")
        self.xflip = bool(xflip)
        if os.path.isdir(self.path):
            self._zip = None
            names = []
            for root, _, files in os.walk(self.path):
                for f in files:
                    if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."):
                        names.append(os.path.relpath(os.path.join(root, f), self.path).replace(os.sep, "/"))
        elif os.path.isfile(self.path) and zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            names = [n for n in self._zip.namelist() if n.lower().endswith(IMAGE_EXTENSIONS)]
        else:
            raise ConfigError(f"{self.path}: not a folder or a zip file of images")
        names.sort()
        if max_images is not None:
            names = names[: int(max_images)]
        if not names:
            raise ConfigError(f"{self.path}: no images found ({', '.join(IMAGE_EXTENSIONS)})")
        self.names = names
        self.labels = self._read_labels() if use_labels else None
        self.label_dim = 0 if self.labels is None else self.labels.shape[1]
        nbytes = len(names) * self.channels * self.resolution**2
        self._cache = {} if (cache if cache is not None else nbytes <= cache_bytes) else None

    def __len__(self):
        """Number of distinct samples (twice the images with xflip)."""
        return len(self.names) * (2 if self.xflip else 1)

    @property
    def num_images(self):
        return len(self.names)

    def _read_bytes(self, name):
        if self._zip is not None:
            return self._zip.read(name)
        with open(os.path.join(self.path, name), "rb") as f:
            return f.read()

    def _read_labels(self):
        try:
            raw = self._read_bytes("dataset.json")
        except (OSError, KeyError):
            raise ConfigError(f"{self.path}: labels requested but there is no dataset.json") from None
        try:
            table = dict(json.loads(raw)["labels"])
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{self.path}: malformed dataset.json ({e})") from None
        missing = [n for n in self.names if n not in table]
        if missing:
            raise ConfigError(f"{self.path}: dataset.json has no label for {missing[0]!r} ({len(missing)} images)")
        values = [table[n] for n in self.names]
        if all(isinstance(v, int) for v in values):  # class indices -> one-hot
            out = np.zeros([len(values), max(values) + 1], dtype=np.float32)
            out[np.arange(len(values)), values] = 1
            return out
        return np.asarray(values, dtype=np.float32).reshape(len(values), -1)

    def image(self, i):
        """Image i (0 <= i < num_images) as uint8 [C, R, R]."""
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        name = self.names[i]
        try:
            img = Image.open(io.BytesIO(self._read_bytes(name)))
            img = img.convert("RGB" if self.channels == 3 else "L")
        except (OSError, ValueError) as e:
            raise ConfigError(f"{self.path}: cannot read image {name!r} ({e})") from None
        if img.width != img.height:
            raise ConfigError(f"{self.path}: image {name!r} is {img.width}x{img.height}, not square")
        if img.width != self.resolution:
            img = img.resize((self.resolution, self.resolution), Image.LANCZOS)
        arr = np.asarray(img, dtype=np.uint8)
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        arr = np.ascontiguousarray(arr)
        if self._cache is not None:
            self._cache[i] = arr
        return arr

    def sample(self, j):
        """Sample j (0 <= j < len(self)): (uint8 image [C, R, R], label float32 [label_dim])."""
        i, flip = j % self.num_images, j >= self.num_images
        img = self.image(i)
        if flip:
            img = img[:, :, ::-1]
        label = self.labels[i] if self.labels is not None else np.zeros([0], dtype=np.float32)
        return img, label
