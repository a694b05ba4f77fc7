"""Choosing between the compiled CUDA kernels and the pure-PyTorch reference path."""

from __future__ import annotations

import os
from typing import Optional

import torch

from ..errors import ConfigError

_IMPLS = ("ref", "cuda")


def choose_impl(x: torch.Tensor, impl: Optional[str] = None, op: str = "") -> str:
    """Return 'cuda' when `x` lives on a GPU and our kernels load, else 'ref'.

    `impl` forces a path ('ref' or 'cuda'); the environment variable
    LATENTLAB_OPS=ref forces the reference path everywhere.
    """
    if impl is not None and impl not in _IMPLS:
        raise ConfigError(f"impl must be one of {_IMPLS} or None, got {impl!r}")
    if impl == "ref" or os.environ.get("LATENTLAB_OPS", "").lower() == "ref":
        return "ref"
    if not x.is_cuda:
        if impl == "cuda":
            raise ConfigError(f"{op}: impl='cuda' needs a CUDA tensor")
        return "ref"
    from . import cuda  # deferred: importing it never compiles anything

    if cuda.load_extension(op) is None:
        return "ref"
    return "cuda"
