"""The images a distribution metric compares: a generator's, and a dataset's, as uint8 [B, 3, R, R] batches.

    for x in generator_images(G, 50000, seed=0, batch_size=64):            # uint8 [B, 3, R, R] on G's device
        feats = extractor(x)
    for x in dataset_images("ffhq.zip", G.img_resolution, max_items=50000):  # uint8 [B, 3, R, R] on the CPU
        ...

Generated images as NVIDIA's metrics make them (`metric_utils.compute_feature_stats_for_generator`):
z ~ N(0, I); c, for conditional models, the label of a uniformly drawn dataset item; noise_mode 'random' (the
default of NVIDIA's G_kwargs: fresh noise per image); uint8 = (x * 127.5 + 128).clamp(0, 255), truncated toward
zero by the cast; grayscale repeated to 3 channels. `truncation` (a latentlab Truncation or a spec string such as
'w:0.7' or 'clusters:FILE.npz', `latentlab.truncation`) replaces the untruncated mapping when given.

Reproducible, unlike NVIDIA's global generators: image i's z, label and noise seed come from one
torch.Generator seeded with `seed` (on the CPU), drawn in blocks of `Z_BLOCK` images, and its noise maps from
torch.Generator(noise seed) (`latentlab.models.noise.draw_noise`). So image i is the same whatever the batch size,
the device's random state, the number of images asked for (the first n of a longer run are the same n) or the
torchrun rank that renders it (`indices`: the images this rank makes).

Dataset images: `latentlab.datasets.images.ImageDataset` (a folder or a zip, sorted paths, the training
loop's reader), the first `max_items` in that order (NVIDIA's order too), never x-flipped; every image must
already be at the generator's resolution (ImageDataset would resize it: a metric must not compare resampled
images silently), which is checked from each image's header before it is decoded.
`dataset_fingerprint` hashes a dataset's content cheaply for caches: a zip's member names, sizes and CRC-32s
(read from its directory), or a folder's file names, sizes and SHA-256 of the bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import ConfigError
from ..utils.validate import check_int

__all__ = [
    "Z_BLOCK",
    "to_metric_uint8",
    "to_rgb",
    "ImageDraws",
    "generator_images",
    "open_dataset",
    "dataset_images",
    "check_dataset_resolution",
    "dataset_fingerprint",
    "check_image_channels",
]

Z_BLOCK = 1024  # images per block of the random stream (fixed: image i must not depend on the batch size)
_NOISE_SEED_HIGH = 1 << 62


def to_metric_uint8(img: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] in about [-1, 1] -> uint8 [N, C, H, W] as NVIDIA's metrics convert: (x * 127.5 + 128) clamped
    to [0, 255], then cast (which truncates toward zero)."""
    return (img.to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 1 or 3, H, W] -> [N, 3, H, W]: grayscale repeated to 3 channels (as NVIDIA's metrics do)."""
    if x.shape[1] == 1:
        return x.repeat([1, 3, 1, 1])
    if x.shape[1] != 3:
        raise ConfigError(f"metrics compare 1- or 3-channel images, got {x.shape[1]} channels")
    return x


def check_image_channels(G) -> int:
    """The generator's channel count, refused in one line unless 1 or 3 (what a feature extractor can take)."""
    ch = int(getattr(G, "img_channels", 3))
    if ch not in (1, 3):
        raise ConfigError(f"metrics compare RGB or grayscale images; this generator makes {ch}-channel images")
    return ch


class ImageDraws:
    """z [z_dim], a label index and a noise seed for every image index, from one seeded CPU torch.Generator
    drawn in blocks of `Z_BLOCK` images (per block: z, then label indices when `num_labels`, then noise seeds).

    Indices may come in any order; increasing ones (a run, or one rank's share) draw each block once.
    """

    def __init__(self, z_dim: int, seed: int = 0, num_labels: int = 0):
        self.z_dim, self.seed, self.num_labels = int(z_dim), int(seed), int(num_labels)
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be in 0..2**63-1, got {seed}")
        self._restart()

    def _restart(self):
        self._gen = torch.Generator().manual_seed(self.seed)
        self._next = 0  # the next block the generator will draw
        self._cache: dict = {}

    def _block(self, b: int):
        if b in self._cache:
            return self._cache[b]
        if b < self._next:
            self._restart()
        while self._next <= b:
            z = torch.randn([Z_BLOCK, self.z_dim], generator=self._gen)
            lab = torch.randint(self.num_labels, [Z_BLOCK], generator=self._gen) if self.num_labels else None
            ns = torch.randint(0, _NOISE_SEED_HIGH, [Z_BLOCK], generator=self._gen, dtype=torch.int64)
            self._cache = {self._next: (z, lab, ns)}  # only the latest block is kept
            self._next += 1
        return self._cache[b]

    def take(self, indices: Sequence[int]) -> Tuple[torch.Tensor, Optional[np.ndarray], List[int]]:
        """(z [B, z_dim] float32 on the CPU, label indices [B] or None, noise seeds [B]) of these images."""
        zs, labs, seeds = [], [], []
        for i in indices:
            i = int(i)
            if i < 0:
                raise ConfigError(f"image index {i} is negative")
            z, lab, ns = self._block(i // Z_BLOCK)
            j = i % Z_BLOCK
            zs.append(z[j])
            labs.append(int(lab[j]) if lab is not None else 0)
            seeds.append(int(ns[j]))
        z = torch.stack(zs) if zs else torch.zeros([0, self.z_dim])
        return z, (np.asarray(labs, dtype=np.int64) if self.num_labels else None), seeds


def _truncation(truncation):
    if truncation is None:
        return None
    from ..truncation import Truncation, check_is_fitted, parse_truncation

    t = truncation
    if hasattr(truncation, "truncation") and hasattr(truncation, "spec"):  # a studies.reports.TruncationRow
        if getattr(truncation, "choose", None):
            raise ConfigError(f"{truncation.spec}: metrics of chosen clusters (choose) are not supported")
        t = truncation.truncation
    t = parse_truncation(t) if not isinstance(t, Truncation) else t
    return check_is_fitted(t)


def _label_table(G, labels):
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim == 0:
        return None
    if labels is None:
        raise ConfigError(
            f"a conditional generator (c_dim {c_dim}) draws its labels from the dataset's (as NVIDIA's metrics do): "
            "give the dataset's labels (a dataset with dataset.json)"
        )
    table = np.asarray(labels, dtype=np.float32)
    if table.ndim != 2 or table.shape[1] != c_dim or len(table) == 0:
        raise ConfigError(f"label table must be [M, {c_dim}] for this generator, got shape {table.shape}")
    return table


def generator_images(
    G,
    n: int,
    seed: int = 0,
    batch_size: int = 64,
    truncation=None,
    noise_mode: str = "random",
    labels=None,
    indices: Optional[Sequence[int]] = None,
    device=None,
    progress=None,
) -> Iterator[torch.Tensor]:
    """Yield uint8 [B, 3, R, R] batches of G's images 0 .. n - 1 (or only `indices`, in the order given),
    `batch_size` at a time, on `device` (default: G's). See the module docstring.

    truncation: None, a `latentlab.truncation.Truncation` (fitted) or a spec string. noise_mode: 'random'
    (per-image seeded noise, NVIDIA's default), 'const' or 'none'. labels: a conditional model's label table
    [M, c_dim] (the dataset's: a row drawn uniformly per image). progress: anything with update(n).
    With noise_mode 'random' the noise buffers of G.synthesis are swapped while a batch renders
    (`models.noise.noise_override`): one G must not render from two threads at once.
    """
    from ..models.noise import draw_noise, noise_override
    from ..truncation.base import generator_device, map_z

    n = check_int("n", n, lo=0)
    batch_size = check_int("batch_size", batch_size, lo=1)
    if noise_mode not in ("random", "const", "none"):
        raise ConfigError(f"noise_mode must be random, const or none, got {noise_mode!r}")
    check_image_channels(G)
    t = _truncation(truncation)
    table = _label_table(G, labels)
    device = torch.device(device) if device is not None else generator_device(G)
    idx = list(range(n)) if indices is None else [int(i) for i in indices]
    if any(i < 0 or i >= n for i in idx):
        raise ConfigError(f"image indices must be in 0..{n - 1}")
    draws = ImageDraws(G.z_dim, seed, 0 if table is None else len(table))
    for start in range(0, len(idx), batch_size):
        part = idx[start : start + batch_size]
        z, lab, noise_seeds = draws.take(part)
        z = z.to(device)
        c = torch.from_numpy(table[lab]).to(device) if table is not None else None
        with torch.no_grad():
            ws = t(G, z, c) if t is not None else map_z(G, z, c)
            if noise_mode == "random":
                with noise_override(G.synthesis, draw_noise(G.synthesis, noise_seeds, device)):
                    img = G.synthesis(ws, noise_mode="const")
            else:
                img = G.synthesis(ws, noise_mode=noise_mode)
        yield to_rgb(to_metric_uint8(img))
        if progress is not None:
            progress.update(len(part))


# ---- datasets ----------------------------------------------------------------------------------------------------
def open_dataset(path, resolution: int, channels: int = 3, use_labels: bool = False):
    """The `ImageDataset` of a folder or zip, read at `resolution` with `channels` (1: grayscale, 3: RGB), no
    in-memory image cache (a metric reads every image once)."""
    from ..datasets.images import ImageDataset

    return ImageDataset(os.fspath(path), int(resolution), channels=channels, use_labels=use_labels, cache=False)


def _image_size(path, zf, name):
    """(width, height) from an image's header (nothing decoded); None when the header cannot be read (decoding
    the image then reports the problem)."""
    from PIL import Image

    try:
        if zf is not None:
            with zf.open(name) as f, Image.open(f) as img:
                return img.size
        with Image.open(os.path.join(path, name)) as img:
            return img.size
    except Exception:  # noqa: BLE001  (any unreadable header: ImageDataset's decode names the problem)
        return None


def _check_size(ds, zf, name, resolution):
    size = _image_size(ds.path, zf, name)
    if size is not None and size != (resolution, resolution):
        raise ConfigError(
            f"{ds.path}: image {name!r} is {size[0]}x{size[1]}, but the generator makes {resolution}x{resolution} "
            "images (metrics compare them at the generator's resolution: resize the dataset first)"
        )


def check_dataset_resolution(data, resolution: int) -> None:
    """Refuse (one line) a dataset whose first image is not resolution x resolution, before any work;
    `dataset_images` checks every image as it reads it."""
    ds = data if hasattr(data, "names") and hasattr(data, "sample") else open_dataset(data, resolution)
    zf = zipfile.ZipFile(ds.path) if not os.path.isdir(ds.path) else None
    try:
        _check_size(ds, zf, ds.names[0], int(resolution))
    finally:
        if zf is not None:
            zf.close()


def dataset_images(
    data,
    resolution: int,
    channels: int = 3,
    max_items: Optional[int] = None,
    batch_size: int = 64,
    indices: Optional[Sequence[int]] = None,
    progress=None,
) -> Iterator[torch.Tensor]:
    """Yield uint8 [B, 3, R, R] CPU batches of a dataset's first `max_items` images (all by default; or only
    `indices` among them, in the order given). data: a folder/zip path or an `ImageDataset`.

    An image whose size is not resolution x resolution is refused in one line naming it (see the module
    docstring). progress: anything with update(n).
    """
    ds = data if hasattr(data, "names") and hasattr(data, "sample") else open_dataset(data, resolution, channels)
    resolution = int(resolution)
    batch_size = check_int("batch_size", batch_size, lo=1)
    count = len(ds.names) if max_items is None else min(len(ds.names), check_int("max_items", max_items, lo=0))
    idx = list(range(count)) if indices is None else [int(i) for i in indices]
    if any(i < 0 or i >= count for i in idx):
        raise ConfigError(f"dataset item indices must be in 0..{count - 1}")
    zf = zipfile.ZipFile(ds.path) if not os.path.isdir(ds.path) else None
    try:
        for start in range(0, len(idx), batch_size):
            part = idx[start : start + batch_size]
            images = []
            for i in part:
                _check_size(ds, zf, ds.names[i], resolution)
                images.append(ds.image(i))
            yield to_rgb(torch.from_numpy(np.stack(images)))
            if progress is not None:
                progress.update(len(part))
    finally:
        if zf is not None:
            zf.close()


_FOLDER_HASHES: dict = {}  # (folder, ((name, size, mtime_ns), ...)) -> digest: one hashing pass per process
_RACY_NS = 2_000_000_000  # files modified less than 2 s before hashing started are hashed again next time


def dataset_fingerprint(data, progress=None) -> str:
    """A SHA-256 hex digest of a dataset's images (those ImageDataset reads, in its order): cheap but content-
    sensitive. A zip: member names, sizes and CRC-32s from its directory (nothing inflated). A folder: file names,
    sizes and the SHA-256 of every file's bytes (one read of the folder, remembered for the rest of the process
    while names, sizes and modification times stay the same; files modified within 2 s before the hashing are
    hashed again every time, since a second change could keep the same timestamp). data: a path or an `ImageDataset`.
    progress: anything with update(n), advanced per image of a folder."""
    ds = data if hasattr(data, "names") and hasattr(data, "sample") else open_dataset(data, 8)
    path = os.path.abspath(ds.path)
    h = hashlib.sha256()
    if not os.path.isdir(path):
        with zipfile.ZipFile(path) as zf:
            rows = []
            for name in ds.names:
                info = zf.getinfo(name)
                rows.append([name, info.file_size, info.CRC])
        h.update(json.dumps(["zip", rows]).encode())
        return h.hexdigest()
    stat_rows = []
    for name in ds.names:
        st = os.stat(os.path.join(path, name))
        stat_rows.append((name, st.st_size, st.st_mtime_ns))
    memo_key = (path, tuple(stat_rows))
    if memo_key in _FOLDER_HASHES:
        return _FOLDER_HASHES[memo_key]
    started = time.time_ns()
    rows = []
    for name, size, _ in stat_rows:
        fh = hashlib.sha256()
        with open(os.path.join(path, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                fh.update(chunk)
        rows.append([name, size, fh.hexdigest()])
        if progress is not None:
            progress.update(1)
    h.update(json.dumps(["folder", rows]).encode())
    digest = h.hexdigest()
    if max(m for _, _, m in stat_rows) < started - _RACY_NS:  # as git: a file changed within the timestamps'
        _FOLDER_HASHES[memo_key] = digest  # granularity of the hashing could keep its mtime; those are not memoized
    return digest
