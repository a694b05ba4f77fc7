"""The explorer's sliders: one per attribute direction of the model's boundary folders (or of given files), and the
`Direction` each one moves along, looked up exactly as `latentlab edit` looks it up (`edit_direction`).

A slider knows, per latent space, where its direction comes from: an attribute name in a boundary folder (`--attr
NAME [--boundaries DIR]`) or a file (`--boundary FILE`). W directions serve the W and W+ spaces (and S codes, moved
as `w + alpha n` moves the styles); Z directions the Z space. The embedded model has both: its registered W folder
and the Z folder it ships for the correlation study.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..latents.directions import Direction
    from ..models.aliases import AnyGenerator


@dataclass(frozen=True)
class Source:
    """Where one slider's direction of one space comes from: `attr` in `folder` (None: the model's registered
    folder), or the file `path`."""

    attr: Optional[str] = None
    folder: Optional[str] = None
    path: Optional[str] = None

    def condition(self) -> str:
        """How a condition on this direction is named to `edit_direction` / `--condition`: the name or the file."""
        return self.path if self.path is not None else str(self.attr)


@dataclass
class Slider:
    name: str
    sources: Dict[str, Source] = field(default_factory=dict)  # 'w' and/or 'z'

    @property
    def spaces(self) -> List[str]:
        out = []
        if "z" in self.sources:
            out.append("z")
        if "w" in self.sources:
            out += ["w", "w+"]
        return out


def _kind(space: str) -> str:
    """The direction kind an edit space takes: Z directions for z, W directions for w, w+ and s."""
    return "z" if space == "z" else "w"


def _folder_sliders(G: AnyGenerator, folder: str, model: Optional[str], given: bool) -> Dict[str, Dict[str, Source]]:
    """name -> {kind: Source} for a boundary folder (latentlab's layout, or InterFaceGAN's files)."""
    from ..edits.registry import attributes_in, interfacegan_files, interfacegan_model_for, is_interfacegan_folder
    from ..latents.directions import load_direction

    where = folder if given else None
    out: Dict[str, Dict[str, Source]] = {}
    if is_interfacegan_folder(folder):
        ifg = interfacegan_model_for(model)
        mine = [f for f in interfacegan_files(folder) if f.model == ifg and not f.conditions]
        if not mine:
            raise ConfigError(
                f"--boundaries {folder}: none of its InterFaceGAN boundary files belongs to this model "
                "(pass --model with the model they were made for, or --boundary FILE.npy)"
            )
        for f in mine:
            out.setdefault(f.attr, {})[f.space] = Source(attr=f.attr, folder=where)
        return out
    for name, entry in attributes_in(folder).items():
        space = entry.get("space")
        if space is None:  # a bare .npy folder: the vector's size says which space
            size = load_direction(entry["file"]).dim
            space = "w" if size == G.w_dim else "z" if size == G.z_dim else None
        if space in ("w", "z"):
            out.setdefault(name, {})[space] = Source(attr=name, folder=where)
    return out


def find_sliders(
    G: AnyGenerator,
    model: Optional[str] = None,
    boundaries_dir: Optional[str] = None,
    boundary_files: Sequence[str] = (),
    z_boundaries_dir: Optional[str] = None,
) -> Dict[str, Slider]:
    """The sliders for G: the attributes of `boundaries_dir` (else the model's registered folder), of
    `z_boundaries_dir` (else, for the embedded model, its shipped Z folder), and one per file of `boundary_files`
    (named by the file's stem; W or Z by its size). ConfigError (one line) for a file that fits neither space."""
    from .. import defaults
    from ..edits.registry import available_attributes, is_default_model
    from ..latents.directions import load_direction

    found: Dict[str, Dict[str, Source]] = {}
    if boundaries_dir is not None:
        parts = [(boundaries_dir, True)]
    else:
        folder, _ = available_attributes(G, model)
        parts = [(folder, False)] if folder is not None and os.path.isdir(folder) else []
    if z_boundaries_dir is not None:
        parts.append((z_boundaries_dir, True))
    elif is_default_model(G, model) and os.path.isdir(defaults.z_boundaries_dir()):
        parts.append((defaults.z_boundaries_dir(), True))
    for folder, given in parts:
        for name, sources in _folder_sliders(G, folder, model, given).items():
            for space, src in sources.items():
                found.setdefault(name, {}).setdefault(space, src)
    for path in boundary_files:
        d = load_direction(path)
        kind: Optional[str] = d.space if d.space in ("w", "z") else None
        if kind is None:
            kind = "w" if d.dim == G.w_dim else "z" if d.dim == G.z_dim else None
        if kind is None:
            raise ConfigError(
                f"--boundary {path}: a {d.dim}-d direction fits neither W ({G.w_dim}) nor Z ({G.z_dim}) of this model"
            )
        name = os.path.splitext(os.path.basename(path))[0]
        if name in found:
            name = os.fspath(path)
        found.setdefault(name, {})[kind] = Source(path=os.path.abspath(path))
    return {name: Slider(name, sources) for name, sources in found.items()}


class Directions:
    """The directions of the sliders, looked up as `latentlab edit` does and cached (name, conditions, space)."""

    def __init__(self, G: AnyGenerator, model: Optional[str], sliders: Dict[str, Slider]):
        self.G, self.model, self.sliders = G, model, sliders
        self._cache: Dict[Tuple[str, Tuple[str, ...], str], Direction] = {}

    def source(self, name: str, space: str) -> Source:
        from .state import BadRequest

        src = self.sliders[name].sources.get(_kind(space))
        if src is None:
            raise BadRequest(f"attribute {name!r} has no {_kind(space).upper()} direction")
        return src

    def folder(self, name: str, space: str, conditions: Sequence[str]) -> Optional[str]:
        """The `--boundaries` folder an edit of `name` with `conditions` names (None: the model's own)."""
        for n in [name, *conditions]:
            src = self.source(n, space)
            if src.path is None:
                return src.folder
        return None

    def conditions_for(self, name: str, conditions: Sequence[str]) -> List[str]:
        return [c for c in conditions if c != name]

    def get(self, name: str, conditions: Sequence[str], space: str) -> Direction:
        """`name`'s direction for an edit in `space` ('z', 'w', 'w+' or 's'), orthogonal to `conditions`."""
        from ..edits.pipeline import edit_direction

        conds = tuple(self.conditions_for(name, conditions))
        key = (name, conds, space)
        if key not in self._cache:
            src = self.source(name, space)
            specs = [self.source(c, space).condition() for c in conds]
            folder = self.folder(name, space, conds)
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = edit_direction(self.G, self.model, src.attr, src.path, folder, specs, space)
        return self._cache[key]
