"""Image datasets: a folder or a zip of square images, as the official dataset tool writes them.

Images anywhere inside the folder/zip, read in sorted path order, and an optional
`dataset.json` with `{"labels": [[relative_path, label], ...]}` (int class or a float vector)
for conditional models. With `xflip` every image appears twice, once mirrored, which doubles
the dataset exactly as the official x-flip option does. Used by training (`latentlab.train`)
and by the metrics that need a dataset's images or labels (e.g. PPL's labels).
"""

import io
import os
import warnings
import zipfile

import numpy as np
from PIL import Image

from ..errors import ConfigError
from ..utils.limits import (
    MAX_CLASSES,
    MAX_DATASET_JSON_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_LABEL_DIM,
    MAX_ZIP_MEMBER_BYTES,
    MAX_ZIP_RATIO,
)
from ..utils.safe_json import AnyOf, Anything, Int, List, Num, Obj, Str, check, loads_json

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm")

# Limits checked before any image is decoded (a dataset is often a download: a small file must not cost
# gigabytes); why each is where it is: latentlab.utils.limits.

LABELS_SCHEMA = Obj({"labels": AnyOf(None, List(List(Anything(), 2, 2)))}, required=["labels"])
CLASS_INDEX = Int(0, MAX_CLASSES - 1)
LABEL_VECTOR = List(Num(), 1, MAX_LABEL_DIM)


def check_zip(zf, path, members, max_ratio=MAX_ZIP_RATIO, max_member=MAX_ZIP_MEMBER_BYTES):
    """Refuse a zip whose `members` (names) inflate beyond `max_ratio` (each, and all together) or beyond
    `max_member` bytes each, before anything is extracted; ConfigError naming the archive and the member."""
    total = packed = 0
    for name in members:
        info = zf.getinfo(name)
        if info.file_size > max_member:
            raise ConfigError(f"{path}: {name!r} inflates to {info.file_size} bytes (at most {max_member} per file)")
        if info.file_size > (1 << 20) and info.file_size > max_ratio * max(info.compress_size, 1):
            raise ConfigError(
                f"{path}: {name!r} inflates {info.file_size // max(info.compress_size, 1)}x "
                f"(at most {max_ratio}x: a zip bomb?)"
            )
        total += info.file_size
        packed += info.compress_size
    if total > (1 << 20) and total > max_ratio * max(packed, 1):
        raise ConfigError(
            f"{path}: members inflate {total // max(packed, 1)}x in all (at most {max_ratio}x: a zip bomb?)"
        )


def open_image(data, source, max_pixels=MAX_IMAGE_PIXELS):
    """A PIL image from encoded bytes (or a file), its size checked from the header before decoding:
    ConfigError naming `source` for an unreadable file or one claiming more than `max_pixels` (PIL's
    DecompressionBombError/Warning included)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data)
            w, h = img.size
            if w * h > max_pixels:
                raise ConfigError(f"{source}: header claims {w}x{h} pixels (at most {max_pixels} decoded)")
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ConfigError(f"{source}: refused as a decompression bomb ({e})") from None
    except (OSError, ValueError, SyntaxError) as e:  # PIL's UnidentifiedImageError is an OSError
        raise ConfigError(f"{source}: cannot read image ({e})") from None
    return img


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
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError, ValueError) as e:
                raise ConfigError(f"{self.path}: damaged zip file ({e})") from None
            names = [n for n in self._zip.namelist() if n.lower().endswith(IMAGE_EXTENSIONS)]
            check_zip(self._zip, self.path, names + [n for n in self._zip.namelist() if n == "dataset.json"])
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
            try:
                return self._zip.read(name)
            except (zipfile.BadZipFile, EOFError, NotImplementedError) as e:  # CRC, truncated, unknown method
                raise ConfigError(f"{self.path}: damaged zip member {name!r} ({e})") from None
        with open(os.path.join(self.path, name), "rb") as f:
            return f.read()

    def _read_labels(self):
        try:
            raw = self._read_bytes("dataset.json")
        except (OSError, KeyError):
            raise ConfigError(f"{self.path}: labels requested but there is no dataset.json") from None
        source = f"{self.path}: dataset.json"
        doc = loads_json(raw, source, LABELS_SCHEMA, max_bytes=MAX_DATASET_JSON_BYTES)
        if doc["labels"] is None:
            raise ConfigError(f"{source}: labels is null (an unconditional dataset), but labels were requested")
        for i, (name, label) in enumerate(doc["labels"]):
            check(name, Str(4096), source, path=f"labels[{i}][0]")
            check(
                label,
                CLASS_INDEX if isinstance(label, int) else LABEL_VECTOR if isinstance(label, list) else Num(),
                source,
                path=f"labels[{i}][1]",
            )
        table = dict(doc["labels"])
        missing = [n for n in self.names if n not in table]
        if missing:
            raise ConfigError(f"{self.path}: dataset.json has no label for {missing[0]!r} ({len(missing)} images)")
        values = [table[n] for n in self.names]
        if any(isinstance(v, int) for v in values) and not all(isinstance(v, int) for v in values):
            raise ConfigError(f"{source}: labels must all be class indices or all be vectors of numbers")
        if len({len(v) if isinstance(v, list) else 1 for v in values}) > 1:
            raise ConfigError(f"{source}: label vectors of different lengths {sorted({len(v) for v in values})[:5]}")
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
            data = self._read_bytes(name)
        except (OSError, zipfile.BadZipFile) as e:
            raise ConfigError(f"{self.path}: cannot read image {name!r} ({e})") from None
        img = open_image(data, f"{self.path}: image {name!r}")
        try:
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
