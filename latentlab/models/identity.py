"""A stable identity for a network's weights (recorded with saved latents and edits)."""

from __future__ import annotations

import hashlib

import numpy as np
from torch import nn


def model_hash(net: nn.Module, length: int = 16) -> str:
    """sha256 over the sorted parameter/buffer names, shapes and float32 bytes; first `length` hex digits.

    Computed once per module and cached (weights are not expected to change under it;
    call with a fresh module after training).
    """
    cached = getattr(net, "_latentlab_hash", None)
    if cached is not None:
        return cached[:length]
    h = hashlib.sha256()
    for name, t in sorted(net.state_dict().items()):
        arr = t.detach().to("cpu").float().contiguous().numpy()
        h.update(name.encode())
        h.update(np.asarray(arr.shape, dtype=np.int64).tobytes())
        h.update(arr.tobytes())
    digest = h.hexdigest()
    object.__setattr__(net, "_latentlab_hash", digest)
    return digest[:length]
