"""The common interface of every truncation variant, plus shared helpers (validation, sampling, files).

A variant maps z to ws [N, num_ws, w_dim] (`__call__`) and, when it acts on W,
also rewrites given ws (`transform_ws`). Variants that need statistics of the
generator (`requires_fit`) learn them in `fit`. Parameters and fitted state
serialise to plain JSON-able dicts or to an .npz file without pickle.

Variants follow scikit-learn's estimator contract: the constructor only checks and stores
its arguments (the parameters, `get_params`); `fit` learns the fitted state and returns
self; fitted attributes end in '_' and do not exist before fitting (or loading a fitted
file); `check_is_fitted(variant)` is the one test of that, raising `NotFittedError`.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional, Tuple, Type, TypeVar, Union

import numpy as np
import torch

from ..errors import ConfigError, LatentlabError
from ..utils.atomic import save_npz
from ..utils.npy import check_kind, load_npz
from ..utils.safe_json import AnyOf, Anything, Int, List, Map, Obj, loads_json
from ..utils.validate import check_int, check_number  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator

_KINDS: Dict[str, Type[Truncation]] = {}  # kind -> class, filled by Truncation.__init_subclass__

V = TypeVar("V", bound="Truncation")


class NotFittedError(LatentlabError, RuntimeError):
    """A variant that needs fit() was used before fitting."""


def check_is_fitted(variant: V) -> V:
    """Raise NotFittedError (naming the class and what to do) unless `variant.is_fitted`; returns the variant."""
    if not variant.is_fitted:
        raise NotFittedError(f"{type(variant).__name__} is not fitted: {variant.not_fitted_hint}")
    return variant


class Truncation:
    """Base class. Subclasses set `kind`, implement `transform_ws` (or `__call__`) and `get_params`."""

    kind: Optional[str] = None
    requires_fit = False  # True where __call__ needs statistics learned by fit()
    not_fitted_hint = "call fit(G) first"  # the second half of check_is_fitted's message

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("kind"):
            _KINDS[cls.kind] = cls

    # --- behaviour ---------------------------------------------------------------
    @property
    def name(self) -> Optional[str]:
        """Short label for figures and tables."""
        return self.kind

    @property
    def is_fitted(self) -> bool:
        """True once the variant can run: always for stateless variants; see `check_is_fitted`."""
        return True

    def fit(
        self: V, G: AnyGenerator, n_samples: int = 10000, seed: int = 0, batch_size: int = 1000, progress: bool = False
    ) -> V:
        """Learn what the variant needs from G; stateless variants have nothing to learn."""
        return self

    def __call__(self, G, z, c=None):
        """z [N, z_dim] -> truncated ws [N, num_ws, w_dim]; deterministic for a given z."""
        return self.transform_ws(G, map_z(G, z, c))

    def transform_ws(self, G: AnyGenerator, ws: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # --- serialisation ---------------------------------------------------------
    def get_params(self) -> Dict[str, Any]:
        """Constructor arguments (JSON-able values or NumPy arrays)."""
        return {}

    def get_state(self) -> Dict[str, Any]:
        """Fitted state (JSON-able values or NumPy arrays); empty for stateless variants."""
        return {}

    def set_state(self, state: Dict[str, Any]) -> None:
        if state:
            raise ConfigError(f"{type(self).__name__} has no fitted state to restore")

    def to_dict(self) -> Dict[str, Any]:
        """{'kind', 'params', 'state'} with arrays as nested lists: ready for json.dump."""
        return {"kind": self.kind, "params": _to_lists(self.get_params()), "state": _to_lists(self.get_state())}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> Truncation:
        """The variant a `to_dict` result describes, of this class or a subclass (ValueError otherwise).

        A class may widen what its `from_dict` / `load` accept with a `load_family` of its own
        (ClusterTruncation reads learned clusters files too: both are "a clusters file").
        """
        kind: Any = d.get("kind") if isinstance(d, dict) else None
        target = _KINDS.get(kind)
        if target is None:
            raise ConfigError(f"unknown truncation kind {kind!r}; known: {', '.join(sorted(_KINDS))}")
        family = cls.__dict__.get("load_family") or cls
        if cls is not Truncation and not issubclass(target, family):
            raise ConfigError(f"this is a {target.__name__}, not a {cls.__name__}")
        obj = target(**d.get("params", {}))
        obj.set_state(d.get("state", {}))
        return obj

    def save(self, path: Union[str, os.PathLike]) -> str:
        """Write an .npz (arrays stored natively, the rest as JSON); atomic, so readers never see half a file."""
        arrays: Dict[str, np.ndarray] = {}
        meta = {"params": _pull_arrays(self.get_params(), arrays), "state": _pull_arrays(self.get_state(), arrays)}
        arrays["kind"] = np.array(self.kind)
        arrays["meta"] = np.array(json.dumps(meta))
        path = os.fspath(path)
        save_npz(path, arrays)
        return path

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> Truncation:
        """The variant saved in `path` by `save`; ConfigError naming the file for anything else (the arrays'
        headers and the JSON's depth, types and sizes are checked before they are read, see
        `latentlab.utils.npy` and `latentlab.utils.safe_json`)."""
        path = os.fspath(path)
        entries = load_npz(path, what="truncation (.npz) file")
        if "kind" not in entries or "meta" not in entries:
            raise ConfigError(f"{path} is not a saved truncation (no 'kind'/'meta' entries)")
        for k in ("kind", "meta"):
            check_kind(entries, k, "U", path, "text")
        meta = loads_json(str(entries["meta"]), f"{path}: meta", SAVED_META_SCHEMA)
        try:
            d = {
                "kind": str(entries["kind"]),
                "params": _push_arrays(meta["params"], entries),
                "state": _push_arrays(meta["state"], entries),
            }
            return cls.from_dict(d)
        except ConfigError as e:
            raise ConfigError(str(e) if path in str(e) else f"{path}: {e}") from None
        except (KeyError, TypeError, IndexError, AttributeError, ValueError, RuntimeError) as e:
            # a hand-made file whose pieces do not fit (a missing array, an unknown parameter, a shape)
            raise ConfigError(f"{path}: not a valid truncation file ({type(e).__name__}: {_clip(str(e))})") from None


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# What `load` accepts in a saved variant's meta: parameters and state of the variant, W+ layer lists bounded.
SAVED_META_SCHEMA = Obj(
    {
        "params": Map(Anything()),
        "state": AnyOf(None, Obj({"layers": Map(List(Int(0, 4095), max_len=4096), max_items=64)})),
    },
    required=["params", "state"],
)


# --- helpers shared by the variants ---------------------------------------------
def map_z(G: AnyGenerator, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
    """G.mapping without truncation; never updates w_avg (a mapping left in train mode would)."""
    kwargs = {"update_w_avg": False} if G.mapping.training else {}
    return G.mapping(z, c, truncation_psi=1, truncation_cutoff=None, **kwargs)


def check_ws(G: Optional[AnyGenerator], ws: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(ws) or ws.ndim != 3:
        raise ConfigError(f"ws must be a tensor [N, num_ws, w_dim], got {getattr(ws, 'shape', type(ws))}")
    if G is not None and (ws.shape[1] != G.num_ws or ws.shape[2] != G.w_dim):
        raise ConfigError(f"ws has shape {tuple(ws.shape)} but this generator takes [N, {G.num_ws}, {G.w_dim}]")
    return ws


def w_avg(G: AnyGenerator, like: torch.Tensor) -> torch.Tensor:
    if not hasattr(G.mapping, "w_avg"):
        raise ConfigError("this generator's mapping network has no w_avg; give a center explicitly")
    return G.mapping.w_avg.to(device=like.device, dtype=like.dtype)


def generator_device(G: torch.nn.Module) -> torch.device:
    p = next(iter(G.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def sample_ws(
    G: AnyGenerator,
    n_samples: int,
    seed: int = 0,
    batch_size: int = 1000,
    progress: bool = False,
    desc: str = "sampling ws",
) -> Iterator[Tuple[int, torch.Tensor]]:
    """Yield (start, ws) batches for n_samples seeded z; only one batch is in memory at a time.

    z comes from one NumPy RandomState(seed) stream, so the sample does not
    depend on batch_size. Conditional generators get uniformly random one-hot labels.
    """
    n_samples = check_int("n_samples", n_samples, lo=1)
    batch_size = check_int("batch_size", batch_size, lo=1)
    rs = np.random.RandomState(seed)
    device = generator_device(G)
    from ..utils.progress import progress_bar

    with torch.no_grad(), progress_bar(total=n_samples, desc=desc, enabled=progress, unit="w", what="samples") as bar:
        for start in range(0, n_samples, batch_size):
            n = min(batch_size, n_samples - start)
            z = torch.from_numpy(rs.standard_normal((n, G.z_dim)).astype(np.float32)).to(device)
            c = None
            if G.c_dim > 0:
                c = torch.zeros([n, G.c_dim], device=device)
                c[torch.arange(n), torch.from_numpy(rs.randint(G.c_dim, size=n)).to(device)] = 1
            yield start, map_z(G, z, c)
            bar.update(n)


# --- serialisation helpers --------------------------------------------------------
def _to_lists(x):
    if isinstance(x, dict):
        return {str(k): _to_lists(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_lists(v) for v in x]
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    if isinstance(x, (np.ndarray, np.generic)):
        return x.tolist()
    return x


def _pull_arrays(x, arrays):
    """Replace arrays in a JSON tree by {'__array__': key} and collect them in `arrays`."""
    if isinstance(x, dict):
        return {str(k): _pull_arrays(v, arrays) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_pull_arrays(v, arrays) for v in x]
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = x
        return {"__array__": key}
    if isinstance(x, np.generic):
        return x.item()
    return x


def _push_arrays(x, arrays):
    if isinstance(x, dict):
        if set(x) == {"__array__"}:
            return arrays[x["__array__"]]
        return {k: _push_arrays(v, arrays) for k, v in x.items()}
    if isinstance(x, list):
        return [_push_arrays(v, arrays) for v in x]
    return x


def _short(v):
    if isinstance(v, np.ndarray):
        return f"array{list(v.shape)}"
    return repr(v)
