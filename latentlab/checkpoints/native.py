"""latentlab's own checkpoint format: weights in safetensors, architecture as JSON metadata."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
from safetensors.torch import save_file

from ..errors import CheckpointError
from ..utils.atomic import atomic_path
from ..utils.limits import MAX_JSON_DEPTH
from ..utils.safe_json import Anything, Map, Obj, Str, json_depth, loads_json
from .state_dicts import read_state_dict
from .tags import FORMAT_LATENTLAB

MAGIC = "latentlab-checkpoint"
VERSION = 1

# The 'networks' metadata of a latentlab checkpoint: {net name: {"class_name", "init_kwargs"}} (`save_native`),
# checked by `latentlab.utils.safe_json` before use; the kwargs' values are range-checked by `budget.check_kwargs`
# before any network is built.
NETWORKS_SCHEMA = Map(
    Obj(
        {"class_name": Str(100), "init_kwargs": Map(Anything(), max_items=256)}, required=["class_name", "init_kwargs"]
    ),
    max_items=16,
)


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
    except ValueError as e:
        raise CheckpointError(f"{path}: not a readable {what} (damaged metadata: version {str(e)[:200]})") from None
    if "networks" not in meta:
        raise CheckpointError(f"{path}: not a readable {what} (no 'networks' metadata)")
    texts = {"networks": meta["networks"], "extras": meta.get("extras", "{}")}
    for key, text in texts.items():  # depth before parsing (json recurses); then size, syntax and shape
        depth = json_depth(text)
        if depth > MAX_JSON_DEPTH:
            raise CheckpointError(
                f"{path}: not a readable {what} (metadata nested {depth} levels deep in {key!r}, "
                f"at most {MAX_JSON_DEPTH})"
            )
    nets = loads_json(texts["networks"], f"{path}: metadata 'networks'", NETWORKS_SCHEMA, error=CheckpointError)
    extras = loads_json(texts["extras"], f"{path}: metadata 'extras'", Map(Anything()), error=CheckpointError)
    specs = {name: (spec["class_name"], spec["init_kwargs"]) for name, spec in nets.items()}
    out = {}
    for name, (class_name, init_kwargs) in specs.items():
        prefix = name + "/"
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        out[name] = (class_name, init_kwargs, state)
    return meta.get("source_format", FORMAT_LATENTLAB), out, extras
