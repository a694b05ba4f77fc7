"""Named directions per model: `checkpoints/boundaries/<model-id>/` (shipped), a folder of the user's,
or InterFaceGAN's released boundary files.

Layout of a boundary folder:
    index.json   {"attributes": {"smile": {"file": "smile.npy", "space": "w", ...report fields}}}
    smile.npy    InterFaceGAN layout, float64 (1, d), unit norm
A folder without index.json is read as bare `<attr>.npy` files.
`checkpoints/boundaries/models.json` says which model each folder belongs to:
    {"<model-id>": {"names": ["ffhq"], "model_hashes": ["<latentlab model hash>"]}}

InterFaceGAN's own files (github.com/genforce/interfacegan, `boundaries/`) are recognised by their
names, `<model>_<attr>_[w_]boundary.npy` with conditioned variants `<model>_<attr>_c_<a>[_<b>]_boundary.npy`
(also spelt `_conditioned_on_`): `<model>` is InterFaceGAN's model name (stylegan_ffhq,
stylegan_celebahq, pggan_celebahq), `_w_` marks a W-space boundary (else Z), and a conditioned
file is the attribute's boundary orthogonalised to the others'. A registry model names its
InterFaceGAN counterpart (`"interfacegan": "stylegan_ffhq"` in checkpoints/registry.json), so that
`--boundaries DIR --attr smile` picks the file of the model at hand, in the space asked for.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from ..errors import ConfigError
from ..latents.directions import INDEX_SCHEMA
from ..models.identity import model_hash
from ..utils.safe_json import List as JsonList
from ..utils.safe_json import Map, Obj, Str, inside_folder, load_json
from .directions import Direction, load_direction, orthogonalize

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator


def shipped_root() -> str:
    from .. import defaults

    return defaults.shipped_path("boundaries")


# checkpoints/boundaries/models.json: which model each shipped boundary folder belongs to.
MODELS_SCHEMA = Map(Obj({"names": JsonList(Str()), "model_hashes": JsonList(Str())}))


def _read_json(path, default, schema):
    """The checked JSON of `path` (`latentlab.utils.safe_json`), `default` when there is no such file."""
    if not os.path.exists(path):
        return default
    return load_json(path, schema)


def model_id_for(
    G: AnyGenerator, model_spec: Union[str, os.PathLike, None] = None, root: Optional[str] = None
) -> Optional[str]:
    """The registry id of a generator: by registry name (e.g. 'ffhq') or by the hash of its weights; None if unknown."""
    root = root or shipped_root()
    models = _read_json(os.path.join(root, "models.json"), {}, MODELS_SCHEMA)
    digest = model_hash(G)
    name = os.path.basename(os.fspath(model_spec)) if model_spec is not None else None
    for model_id, entry in models.items():
        if digest in entry.get("model_hashes", []) or (model_spec is not None and model_spec in entry.get("names", [])):
            return model_id
    if model_spec is not None and name is not None and name in models and not os.path.exists(os.fspath(model_spec)):
        return name
    return None


def is_default_model(G: Optional[AnyGenerator], spec: Union[str, os.PathLike, None] = None) -> bool:
    """Whether G is the embedded model (`latentlab.defaults.NAME`): `spec` stands for its registry entry
    (its name or its shipped file), or the hash of G's weights is the embedded model's. G may be None."""
    from .. import defaults
    from ..checkpoints.download import entry_for

    found = entry_for(spec) if spec is not None else None
    if found is not None and found[0] == defaults.NAME:
        return True
    return G is not None and model_id_for(G, spec) == defaults.NAME


def attributes_in(folder: str) -> Dict[str, Dict[str, Any]]:
    """attr -> {'file': path, 'space': ..., ...} for a boundary folder."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such boundary folder")
    index_path = os.path.join(folder, "index.json")
    index = _read_json(index_path, None, INDEX_SCHEMA)
    out = {}
    if index is not None:  # entries may only name files inside the folder
        for attr, entry in index.get("attributes", {}).items():
            out[attr] = dict(entry, file=inside_folder(entry["file"], folder, index_path, f"attributes.{attr}.file"))
        return out
    for name in sorted(os.listdir(folder)):
        if name.endswith(".npy"):
            out[name[:-4]] = {"file": os.path.join(folder, name)}
    return out


def available_attributes(
    G: AnyGenerator,
    model_spec: Union[str, os.PathLike, None] = None,
    boundaries_dir: Optional[str] = None,
    root: Optional[str] = None,
) -> Tuple[Optional[str], Dict[str, Dict[str, Any]]]:
    """(folder, attr -> entry) for this model: the user's folder if given, else the shipped one."""
    if boundaries_dir is not None:
        return boundaries_dir, attributes_in(boundaries_dir)
    root = root or shipped_root()
    model_id = model_id_for(G, model_spec, root)
    if model_id is None:
        return None, {}
    folder = os.path.join(root, model_id)
    return folder, attributes_in(folder) if os.path.isdir(folder) else {}


# ------------------------------------------------------------------------------ InterFaceGAN's files

_IFG_NAME = re.compile(r"(?P<model>[a-z0-9]+_[a-z0-9]+)_(?P<rest>[a-z0-9_]+?)_boundary\.npy")


@dataclass(frozen=True)
class InterFaceGANFile:
    """One InterFaceGAN boundary file, as its name describes it."""

    file: str
    model: str  # InterFaceGAN's model name, e.g. 'stylegan_ffhq'
    attr: str
    space: str  # 'w' ('_w_' in the name) or 'z'
    conditions: tuple = ()  # attributes it is orthogonal to (conditioned files)


def parse_interfacegan_name(path: Union[str, os.PathLike]) -> Optional[InterFaceGANFile]:
    """InterFaceGANFile for a file named as InterFaceGAN names its boundaries, else None.

    'stylegan_ffhq_smile_w_boundary.npy' -> model stylegan_ffhq, attr smile, space w;
    'pggan_celebahq_age_c_gender_eyeglasses_boundary.npy' -> attr age, z, conditions (gender, eyeglasses);
    'stylegan_celebahq_age_conditioned_on_gender_boundary.npy' -> attr age, z, conditions (gender,).
    Several conditions are joined by '_' (or '_and_'), so condition names hold no '_'.
    """
    m = _IFG_NAME.fullmatch(os.path.basename(os.fspath(path)))
    if m is None:
        return None
    rest = m.group("rest")
    conditions: Tuple[str, ...] = ()
    for sep in ("_conditioned_on_", "_c_"):
        if sep in rest:
            rest, cond = rest.split(sep, 1)
            space_w = cond.endswith("_w")
            if space_w:
                cond, rest = cond[:-2], rest + "_w"
            conditions = tuple(c for c in re.split(r"_and_|_", cond) if c)
            break
    space = "z"
    if rest.endswith("_w"):
        rest, space = rest[:-2], "w"
    if not rest:
        return None
    return InterFaceGANFile(os.fspath(path), m.group("model"), rest, space, conditions)


def interfacegan_files(folder: str) -> List[InterFaceGANFile]:
    """Every InterFaceGAN-named boundary file in `folder` (sorted by name)."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such boundary folder")
    found = (parse_interfacegan_name(os.path.join(folder, n)) for n in sorted(os.listdir(folder)) if n.endswith(".npy"))
    return [f for f in found if f is not None]


def is_interfacegan_folder(folder: str) -> bool:
    """A folder of InterFaceGAN's files: no index.json, and at least one file named as InterFaceGAN names them."""
    return (
        os.path.isdir(folder)
        and not os.path.exists(os.path.join(folder, "index.json"))
        and bool(interfacegan_files(folder))
    )


def interfacegan_model_for(model_spec: Union[str, os.PathLike, None]) -> Optional[str]:
    """InterFaceGAN's name of the model `model_spec` stands for (registry name, official file name or URL,
    cached file; the registry's `interfacegan` field), else None."""
    if model_spec is None:
        return None
    from ..checkpoints.download import entry_for

    found = entry_for(model_spec)
    return found[1].get("interfacegan") if found is not None else None


def _registry_names_by_interfacegan():
    from ..checkpoints.download import registry

    out = {}
    for name, entry in registry().items():
        if entry.get("interfacegan"):
            out.setdefault(entry["interfacegan"], []).append(name)
    return out


def _models_listing(files):
    """'stylegan_ffhq (--model stylegan1-ffhq-1024): age, smile; pggan_celebahq (no latentlab model): ...'."""
    names = _registry_names_by_interfacegan()
    by_model = {}
    for f in files:
        by_model.setdefault(f.model, set()).add(f.attr)
    parts = []
    for model in sorted(by_model):
        who = f"--model {' or '.join(names[model])}" if model in names else "no registry model"
        parts.append(f"{model} ({who}): {', '.join(sorted(by_model[model]))}")
    return "; ".join(parts)


def _norm(name):
    return re.sub(r"[\s\-]+", "_", str(name).strip()).lower()


def pick_interfacegan(
    folder: str,
    attr: str,
    model_spec: Union[str, os.PathLike, None] = None,
    space: Optional[str] = None,
    conditions: Sequence[Union[str, os.PathLike]] = (),
    model: Optional[str] = None,
) -> Direction:
    """The Direction of InterFaceGAN's `attr` boundary for this model from `folder`.

    model: InterFaceGAN's model name; default: the registry's for `model_spec`. space: 'w' (also for
    'w+': a W direction applied to the chosen layers) or 'z'; default: W when the model has a W file
    for `attr`, else Z. conditions: attribute names to stay orthogonal to: the released conditioned
    file when there is one for this space, else the attribute's boundary orthogonalised to the
    conditions' boundaries (the same vector: InterFaceGAN's conditioned files are exactly that).
    ValueError, saying which files exist for which models, when nothing fits.
    """
    files = interfacegan_files(folder)
    model = model or interfacegan_model_for(model_spec)
    mine = [f for f in files if f.model == model]
    if not mine:
        what = (
            "this model is not one of InterFaceGAN's (its registry entry names none)"
            if model is None
            else f"it has none of {model}"
        )
        raise ConfigError(
            f"--boundaries {folder}: InterFaceGAN's boundary files belong to particular models and {what}; "
            f"the folder has {_models_listing(files)}. Use the model they belong to, or pass "
            f"--boundary {os.path.join(folder, '<file>.npy')} to apply one anyway"
        )
    key = _norm(attr)
    candidates = [f for f in mine if f.attr == key]
    if not candidates:
        raise ConfigError(
            f"--boundaries {folder}: no {attr!r} boundary for {model}; it has: "
            f"{', '.join(sorted({f.attr for f in mine}))}"
        )
    if space in ("w", "w+"):
        want = "w"
    elif space == "z":
        want = "z"
    elif space is None:
        want = "w" if any(f.space == "w" for f in candidates) else "z"
    else:
        raise ConfigError(f"InterFaceGAN's boundaries are Z or W directions, not {space}: pass --space z, w or w+")
    in_space = [f for f in candidates if f.space == want]
    if not in_space:
        have = sorted({f.space for f in candidates})
        raise ConfigError(
            f"--boundaries {folder}: {model} has no {want.upper()}-space {attr!r} boundary (only "
            f"{', '.join(h.upper() for h in have)}); pass --space {have[0]}"
        )
    conds = [os.fspath(c) for c in conditions]
    named = [_norm(c) for c in conds if not (os.path.exists(c) or c.endswith(".npy"))]
    if len(named) == len(conds):  # an official conditioned file applies only when every condition is a name
        for f in in_space:
            if f.conditions and sorted(f.conditions) == sorted(named) and len(set(named)) == len(named):
                return load_direction(f.file, name=f"{key}_c_{'_'.join(named)}", space=want)
    plain = [f for f in in_space if not f.conditions]
    if not plain:
        raise ConfigError(f"--boundaries {folder}: {model} has no unconditioned {want.upper()}-space {attr!r} boundary")
    d = load_direction(plain[0].file, name=key, space=want)
    if not conds:
        return d
    others = []
    for c in conds:
        if os.path.exists(c) or c.endswith(".npy"):
            others.append(load_direction(c))
            continue
        match = [f for f in mine if f.attr == _norm(c) and f.space == want and not f.conditions]
        if not match:
            raise ConfigError(
                f"--condition {c}: {model} has no {want.upper()}-space {c!r} boundary in {folder}; it has: "
                f"{', '.join(sorted({f.attr for f in mine if f.space == want and not f.conditions}))}"
            )
        others.append(load_direction(match[0].file, name=_norm(c), space=want))
    return orthogonalize(d, others)


# ------------------------------------------------------------------------------------------- lookup


def resolve_attribute(
    attr: str,
    G: AnyGenerator,
    model_spec: Union[str, os.PathLike, None] = None,
    boundaries_dir: Optional[str] = None,
    root: Optional[str] = None,
    space: Optional[str] = None,
) -> Direction:
    """The Direction registered as `attr` for this model; ValueError listing what exists otherwise.

    A `boundaries_dir` of InterFaceGAN's files (`is_interfacegan_folder`) is searched by InterFaceGAN's
    naming for this model and `space` (`pick_interfacegan`); a file's own name (without .npy) also works.
    """
    if boundaries_dir is not None and is_interfacegan_folder(boundaries_dir):
        stem = os.path.join(boundaries_dir, f"{attr}.npy")
        if os.path.isfile(stem):
            return load_direction(stem, name=attr)
        return pick_interfacegan(boundaries_dir, attr, model_spec, space)
    folder, attrs = available_attributes(G, model_spec, boundaries_dir, root)
    if attr not in attrs:
        if not attrs:
            where = f"in {folder}" if folder else "for this model"
            raise ConfigError(
                f"no attribute directions are registered {where}; pass --boundary FILE.npy or --boundaries DIR"
            )
        raise ConfigError(f"unknown attribute {attr!r}; available for this model: {', '.join(sorted(attrs))}")
    entry = attrs[attr]
    return load_direction(entry["file"], name=attr, space=entry.get("space"))


def resolve_direction(
    attr: str,
    G: AnyGenerator,
    model_spec: Union[str, os.PathLike, None] = None,
    boundaries_dir: Optional[str] = None,
    space: Optional[str] = None,
    conditions: Sequence[str] = (),
    root: Optional[str] = None,
) -> Direction:
    """`attr`'s direction for this model, orthogonalised to `conditions` (names or .npy files).

    In a folder of InterFaceGAN's files the released conditioned file is used when one fits
    (`pick_interfacegan`); elsewhere each condition is looked up like `attr` (or loaded from its
    file) and `attr`'s direction is orthogonalised to them.
    """
    if (
        boundaries_dir is not None
        and is_interfacegan_folder(boundaries_dir)
        and not os.path.isfile(os.path.join(boundaries_dir, f"{attr}.npy"))
    ):
        return pick_interfacegan(boundaries_dir, attr, model_spec, space, conditions)
    d = resolve_attribute(attr, G, model_spec, boundaries_dir, root, space)
    if not conditions:
        return d
    others = [
        load_direction(c)
        if os.path.exists(os.fspath(c)) or os.fspath(c).endswith(".npy")
        else resolve_attribute(c, G, model_spec, boundaries_dir, root, d.space or space)
        for c in conditions
    ]
    return orthogonalize(d, others)
