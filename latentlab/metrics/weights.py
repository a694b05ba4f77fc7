"""Pretrained weights of the metrics' feature networks: downloaded once into latentlab's cache, verified,
read without running code.

    path = weights_file(INCEPTION)                 # <cache>/metrics/weights-inception-2015-12-05-6726825d.pth
    state = read_weights(path, net, INCEPTION.description)   # checked against `net`, then loaded into it

Known files (`KNOWN_WEIGHTS`), both plain state dicts:

  * `INCEPTION`: torch-fidelity's Inception-v3, the FID network of the original TensorFlow graph
    (2015-12-05) ported to PyTorch; the file torch-fidelity 0.4 itself downloads.
  * `VGG16`: torchvision's ImageNet VGG16 (`VGG16_Weights.IMAGENET1K_V1`), the file torchvision downloads.

Neither library is allowed to fetch or read them: torch-fidelity's constructors would download through torch.hub
or call `torch.load(weights_only=False)`, which can run code from the file. Here a file is

  * found in `<cache>/metrics/` (cache: $LATENTLAB_CACHE or ~/.cache/latentlab, `weights_dir`), or in torch hub's
    checkpoints folder, where torch-fidelity and torchvision put their own downloads (used in place, never moved);
    else downloaded into `<cache>/metrics/` by `latentlab.checkpoints.download.download` (resumable);
  * verified by sha256 before use. The publishers give the hash only as a prefix in the file name
    ('...-6726825d.pth', 'vgg16-397923af.pth'), the convention of torch.hub: like torch.hub's
    `check_hash`, the file's sha256 must start with that prefix (8 hex digits, 32 bits: it catches a damaged or
    substituted download, not a deliberate collision). A download that fails is removed; a cached file that fails
    is named in the error (delete it to download again);
  * read with `torch.load(path, map_location="cpu", weights_only=True)` (through
    `latentlab.checkpoints.state_dicts.read_state_dict`), so no code from the file runs, and checked against the
    network it goes into: every key, every shape, floating-point and finite values; anything else is a
    CheckpointError naming the file.

Offline, `weights_file` raises MissingWeights in one line naming the URL and the path to place the file at.
Several processes sharing a cache (torchrun) should call it on one rank first, as NVIDIA's metrics do.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from dataclasses import dataclass
from typing import Dict, Optional

import torch

from ..errors import CheckpointError, MissingWeights

__all__ = [
    "MetricWeights",
    "INCEPTION",
    "VGG16",
    "KNOWN_WEIGHTS",
    "weights_dir",
    "hub_checkpoints_dir",
    "hash_prefix_in_name",
    "sha256_of",
    "verify_sha256_prefix",
    "weights_file",
    "read_weights",
]

# torch.hub's convention: '<name>-<first hex digits of the sha256>.<ext>'
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.[A-Za-z0-9]+$")
MAX_WEIGHTS_BYTES = 4 << 30  # the files here are 95 MB and 528 MB
_CHUNK = 1 << 20


@dataclass(frozen=True)
class MetricWeights:
    """A published weights file: its URL, the sha256 prefix its name carries, and what it holds."""

    key: str
    url: str
    sha256_prefix: str
    description: str

    @property
    def filename(self) -> str:
        return os.path.basename(urllib.parse.urlparse(self.url).path)


INCEPTION = MetricWeights(
    "inception",
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
    "6726825d",
    "torch-fidelity's Inception-v3 (the TensorFlow FID graph of 2015-12-05)",
)
VGG16 = MetricWeights(
    "vgg16",
    "https://download.pytorch.org/models/vgg16-397923af.pth",
    "397923af",
    "torchvision's ImageNet VGG16 (IMAGENET1K_V1)",
)
KNOWN_WEIGHTS: Dict[str, MetricWeights] = {w.key: w for w in (INCEPTION, VGG16)}


def weights_dir() -> str:
    """<cache>/metrics: where the feature networks' weights are downloaded."""
    from ..checkpoints.download import cache_dir

    return os.path.join(cache_dir(), "metrics")


def hub_checkpoints_dir() -> str:
    """torch hub's checkpoints folder, where torch-fidelity and torchvision keep their own downloads."""
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def hash_prefix_in_name(name: str) -> Optional[str]:
    """The sha256 prefix a torch.hub-style file name carries ('vgg16-397923af.pth' -> '397923af'), else None."""
    found = _HASH_IN_NAME.search(os.path.basename(name))
    return found.group(1) if found else None


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256_prefix(path: str, prefix: str, where: Optional[str] = None) -> None:
    """CheckpointError unless the sha256 of `path` starts with `prefix` (torch.hub's `check_hash` rule).

    where: what to name in the message instead of the path (e.g. the URL of a download). The whole file is hashed
    on every call (about a second for the 528 MB VGG16), so a file changed since it was last used is caught."""
    digest = sha256_of(path)
    if not digest.startswith(prefix.lower()):
        raise CheckpointError(
            f"{where or path}: sha256 {digest[:16]}... does not start with {prefix}, the hash prefix of the "
            "published file: a damaged or different file"
        )


def _reason(e: CheckpointError) -> str:
    msg = str(e).split(": ", 1)[-1]
    found = re.fullmatch(r"download failed \((.*)\)", msg)
    return found.group(1) if found else msg


def weights_file(weights: MetricWeights, progress: bool = True) -> str:
    """Local path of a known weights file, verified: cached, torch hub's copy, or downloaded now (see the module doc).

    Raises MissingWeights when it cannot be downloaded (one line: the URL and where to place the file),
    CheckpointError when a file fails the sha256 check (a failed download is removed).
    """
    dest = os.path.join(weights_dir(), weights.filename)
    for candidate in (dest, os.path.join(hub_checkpoints_dir(), weights.filename)):
        if os.path.isfile(candidate):
            try:
                verify_sha256_prefix(candidate, weights.sha256_prefix)
            except CheckpointError as e:
                raise CheckpointError(f"{e}; delete it to download {weights.url} again") from None
            return candidate
    from ..checkpoints.download import download

    try:
        download(weights.url, dest, None, progress)  # no full sha256 is published: the prefix is checked below
    except CheckpointError as e:
        raise MissingWeights(
            f"{weights.filename} ({weights.description}) could not be downloaded ({_reason(e)}): download "
            f"{weights.url} elsewhere and place it at {dest}"
        ) from None
    try:
        verify_sha256_prefix(dest, weights.sha256_prefix, where=weights.url)
    except CheckpointError as e:
        os.unlink(dest)
        raise CheckpointError(f"{e}; the download was removed") from None
    return dest


def read_weights(path: str, module: torch.nn.Module, what: str) -> torch.nn.Module:
    """Read a state dict with `torch.load(weights_only=True)` and load it into `module`, strictly; return `module`.

    CheckpointError naming `path` for a file that is not a plain state dict (a pickle that would run code, a
    damaged file) or whose keys, shapes or values do not fit `module` ('... for {what}').
    """
    from ..checkpoints.state_dicts import load_state_dict_strict, read_state_dict

    state, _ = read_state_dict(path, what=f"state dict of {what}", max_bytes=MAX_WEIGHTS_BYTES)
    return load_state_dict_strict(module, state, path, what)
