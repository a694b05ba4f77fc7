"""latentlab's own checkpoint format: weights in safetensors, architecture as JSON metadata."""
import json
import os

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError
from ..utils.atomic import atomic_path

MAGIC = "latentlab-checkpoint"
VERSION = 1


def is_safetensors(path) -> bool:
    """A safetensors file starts with an 8-byte header length followed by a JSON object."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < os.path.getsize(path)


def save_native(path, networks, source_format, extras=None):
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
            tensors[f"{name}/{key}"] = value.detach().to("cpu").contiguous().clone()  # own storage: nets may share tensors
    meta = {
        "format": MAGIC,
        "version": str(VERSION),
        "source_format": source_format,
        "networks": json.dumps(nets),
        "extras": json.dumps(extras or {}, default=str),
    }
    with atomic_path(path, ".safetensors") as tmp:
        save_file(tensors, tmp, metadata=meta)


def read_native(path):
    """Return (source_format, {net: (class_name, init_kwargs, state)}, extras)."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != MAGIC:
            raise CheckpointError(f"{path}: a safetensors file, but not a latentlab checkpoint (no '{MAGIC}' metadata)")
        if int(meta.get("version", "0")) > VERSION:
            raise CheckpointError(f"{path}: written by a newer latentlab (format version {meta['version']})")
        nets = json.loads(meta["networks"])
        extras = json.loads(meta.get("extras", "{}"))
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: unreadable latentlab checkpoint ({e})") from None
    out = {}
    for name, spec in nets.items():
        prefix = name + "/"
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        out[name] = (spec["class_name"], spec["init_kwargs"], state)
    return meta.get("source_format", "latentlab"), out, extras
