"""latentlab's own checkpoint format: weights in safetensors, architecture as JSON metadata."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
from safetensors.torch import save_file

from ..errors import CheckpointError
from ..utils.atomic import atomic_path
from .state_dicts import read_state_dict
from .tags import FORMAT_LATENTLAB

MAGIC = "latentlab-checkpoint"
VERSION = 1


def save_native(
    path: Union[str, os.PathLike],
    networks: Mapping[str, Optional[torch.nn.Module]],
    source_format: str,
    extras: Optional[Mapping[str, Any]] = None,
) -> None:
    """Write networks {'G': module, ...} atomically to `path` (.safetensors).

    Every module must carry `init_kwargs` (our networks do). Tensors are stored
    under '<net>/<param name>'; the architecture goes into the metadata.
    """
    tensors, nets = {}, {}
    for name, net in networks.items():
        if net is None:
            continue
        nets[name] = {"class_name": type(net).__name__, "init_kwargs": net.init_kwargs}
        for key, value in net.state_dict().items():
            tensors[f"{name}/{key}"] = (
                value.detach().to("cpu").contiguous().clone()
            )  # own storage: nets may share tensors
    meta = {
        "format": MAGIC,
        "version": str(VERSION),
        "source_format": source_format,
        "networks": json.dumps(nets),
        "extras": json.dumps(extras or {}, default=str),
    }
    with atomic_path(path, ".safetensors") as tmp:
        save_file(tensors, tmp, metadata=meta)


def read_native(
    path: Union[str, os.PathLike],
) -> Tuple[str, Dict[str, Tuple[str, Dict[str, Any], Dict[str, torch.Tensor]]], Dict[str, Any]]:
    """Return (source_format, {net: (class_name, init_kwargs, state)}, extras).

    The file is read by `state_dicts.read_state_dict` (safetensors only, sizes checked).
    """
    what = "latentlab checkpoint"
    tensors, meta = read_state_dict(path, what=what, allow_pickle=False)
    if meta.get("format") != MAGIC:
        raise CheckpointError(f"{path}: a safetensors file, but not a latentlab checkpoint (no '{MAGIC}' metadata)")
    try:
        if int(meta.get("version", "0")) > VERSION:
            raise CheckpointError(f"{path}: written by a newer latentlab (format version {meta['version']})")
        nets = json.loads(meta["networks"])
        extras = json.loads(meta.get("extras", "{}"))
        specs = {name: (spec["class_name"], spec["init_kwargs"]) for name, spec in nets.items()}
    except RecursionError:
        raise CheckpointError(f"{path}: not a readable {what} (metadata nested too deeply)") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(
            f"{path}: not a readable {what} (damaged metadata: {type(e).__name__}: {str(e)[:200]})"
        ) from None
    out = {}
    for name, (class_name, init_kwargs) in specs.items():
        prefix = name + "/"
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        out[name] = (class_name, init_kwargs, state)
    return meta.get("source_format", FORMAT_LATENTLAB), out, extras
