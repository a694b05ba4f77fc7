"""Named directions per model: `checkpoints/boundaries/<model-id>/` (shipped) or a folder of the user's.

Layout of a boundary folder:
    index.json   {"attributes": {"smile": {"file": "smile.npy", "space": "w", ...report fields}}}
    smile.npy    InterFaceGAN layout, float64 (1, d), unit norm
A folder without index.json is read as bare `<attr>.npy` files.
`checkpoints/boundaries/models.json` says which model each folder belongs to:
    {"<model-id>": {"names": ["ffhq"], "model_hashes": ["<latentlab model hash>"]}}
"""
import json
import os
from importlib import resources

from ..models.identity import model_hash
from .directions import load_direction


def shipped_root():
    return str(resources.files("checkpoints").joinpath("boundaries"))


def _read_json(path, default):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def model_id_for(G, model_spec=None, root=None):
    """The registry id of a generator: by registry name (e.g. 'ffhq') or by the hash of its weights; None if unknown."""
    root = root or shipped_root()
    models = _read_json(os.path.join(root, "models.json"), {})
    digest = model_hash(G)
    name = os.path.basename(os.fspath(model_spec)) if model_spec is not None else None
    for model_id, entry in models.items():
        if digest in entry.get("model_hashes", []) or (model_spec is not None and model_spec in entry.get("names", [])):
            return model_id
    if name is not None and name in models and not os.path.exists(os.fspath(model_spec)):
        return name
    return None


def attributes_in(folder):
    """attr -> {'file': path, 'space': ..., ...} for a boundary folder."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such boundary folder")
    index = _read_json(os.path.join(folder, "index.json"), None)
    out = {}
    if index is not None:
        for attr, entry in index.get("attributes", {}).items():
            out[attr] = dict(entry, file=os.path.join(folder, entry["file"]))
        return out
    for name in sorted(os.listdir(folder)):
        if name.endswith(".npy"):
            out[name[:-4]] = {"file": os.path.join(folder, name)}
    return out


def available_attributes(G, model_spec=None, boundaries_dir=None, root=None):
    """(folder, attr -> entry) for this model: the user's folder if given, else the shipped one."""
    if boundaries_dir is not None:
        return boundaries_dir, attributes_in(boundaries_dir)
    root = root or shipped_root()
    model_id = model_id_for(G, model_spec, root)
    if model_id is None:
        return None, {}
    folder = os.path.join(root, model_id)
    return folder, attributes_in(folder) if os.path.isdir(folder) else {}


def resolve_attribute(attr, G, model_spec=None, boundaries_dir=None, root=None):
    """The Direction registered as `attr` for this model; ValueError listing what exists otherwise."""
    folder, attrs = available_attributes(G, model_spec, boundaries_dir, root)
    if attr not in attrs:
        if not attrs:
            where = f"in {folder}" if folder else "for this model"
            raise ValueError(f"no attribute directions are registered {where}; pass --boundary FILE.npy or --boundaries DIR")
        raise ValueError(f"unknown attribute {attr!r}; available for this model: {', '.join(sorted(attrs))}")
    entry = attrs[attr]
    return load_direction(entry["file"], name=attr, space=entry.get("space"))
