"""The common interface of every truncation variant, plus shared helpers (validation, sampling, files).

A variant maps z to ws [N, num_ws, w_dim] (`__call__`) and, when it acts on W,
also rewrites given ws (`transform_ws`). Variants that need statistics of the
generator (`requires_fit`) learn them in `fit`. Parameters and fitted state
serialise to plain JSON-able dicts or to an .npz file without pickle.
"""
import json
import math
import os

import numpy as np
import torch

from ..utils.atomic import save_npz

_KINDS = {}  # kind -> class, filled by Truncation.__init_subclass__


class NotFittedError(RuntimeError):
    """A variant that needs fit() was used before fitting."""


class Truncation:
    """Base class. Subclasses set `kind`, implement `transform_ws` (or `__call__`) and `get_params`."""

    kind = None
    requires_fit = False  # True where __call__ needs statistics learned by fit()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("kind"):
            _KINDS[cls.kind] = cls

    # --- behaviour ---------------------------------------------------------------
    @property
    def name(self):
        """Short label for figures and tables."""
        return self.kind

    @property
    def is_fitted(self):
        return True

    def fit(self, G, n_samples=10000, seed=0, batch_size=1000, progress=False):
        """Learn what the variant needs from G; stateless variants have nothing to learn."""
        return self

    def __call__(self, G, z, c=None):
        """z [N, z_dim] -> truncated ws [N, num_ws, w_dim]; deterministic for a given z."""
        return self.transform_ws(G, map_z(G, z, c))

    def transform_ws(self, G, ws):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # --- serialisation ---------------------------------------------------------
    def get_params(self):
        """Constructor arguments (JSON-able values or NumPy arrays)."""
        return {}

    def get_state(self):
        """Fitted state (JSON-able values or NumPy arrays); empty for stateless variants."""
        return {}

    def set_state(self, state):
        if state:
            raise ValueError(f"{type(self).__name__} has no fitted state to restore")

    def to_dict(self):
        """{'kind', 'params', 'state'} with arrays as nested lists: ready for json.dump."""
        return {"kind": self.kind, "params": _to_lists(self.get_params()), "state": _to_lists(self.get_state())}

    @classmethod
    def from_dict(cls, d):
        kind = d.get("kind") if isinstance(d, dict) else None
        target = _KINDS.get(kind)
        if target is None:
            raise ValueError(f"unknown truncation kind {kind!r}; known: {', '.join(sorted(_KINDS))}")
        if cls is not Truncation and not issubclass(target, cls):
            raise ValueError(f"this is a {target.__name__}, not a {cls.__name__}")
        obj = target(**d.get("params", {}))
        obj.set_state(d.get("state", {}))
        return obj

    def save(self, path):
        """Write an .npz (arrays stored natively, the rest as JSON); atomic, so readers never see half a file."""
        arrays = {}
        meta = {"params": _pull_arrays(self.get_params(), arrays), "state": _pull_arrays(self.get_state(), arrays)}
        arrays["kind"] = np.array(self.kind)
        arrays["meta"] = np.array(json.dumps(meta))
        path = os.fspath(path)
        save_npz(path, arrays)
        return path

    @classmethod
    def load(cls, path):
        with np.load(os.fspath(path), allow_pickle=False) as f:
            if "kind" not in f.files or "meta" not in f.files:
                raise ValueError(f"{path} is not a saved truncation (no 'kind'/'meta' entries)")
            entries = {k: f[k] for k in f.files}
        meta = json.loads(str(entries["meta"]))
        d = {"kind": str(entries["kind"]), "params": _push_arrays(meta["params"], entries),
             "state": _push_arrays(meta["state"], entries)}
        return cls.from_dict(d)


# --- helpers shared by the variants ---------------------------------------------
def map_z(G, z, c=None):
    """G.mapping without truncation; never updates w_avg (a mapping left in train mode would)."""
    kwargs = {"update_w_avg": False} if G.mapping.training else {}
    return G.mapping(z, c, truncation_psi=1, truncation_cutoff=None, **kwargs)


def check_ws(G, ws):
    if not torch.is_tensor(ws) or ws.ndim != 3:
        raise ValueError(f"ws must be a tensor [N, num_ws, w_dim], got {getattr(ws, 'shape', type(ws))}")
    if G is not None and (ws.shape[1] != G.num_ws or ws.shape[2] != G.w_dim):
        raise ValueError(f"ws has shape {tuple(ws.shape)} but this generator takes [N, {G.num_ws}, {G.w_dim}]")
    return ws


def check_number(name, value, lo=-math.inf, hi=math.inf, lo_open=False):
    """A finite real in [lo, hi] ((lo, hi] with lo_open), returned as float."""
    if torch.is_tensor(value) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < lo or value > hi or (lo_open and value == lo):
        bounds = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise ValueError(f"{name} must be a finite number in {bounds}, got {value!r}")
    return value


def check_int(name, value, lo=0):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def w_avg(G, like):
    if not hasattr(G.mapping, "w_avg"):
        raise ValueError("this generator's mapping network has no w_avg; give a center explicitly")
    return G.mapping.w_avg.to(device=like.device, dtype=like.dtype)


def generator_device(G):
    p = next(iter(G.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def sample_ws(G, n_samples, seed=0, batch_size=1000, progress=False, desc="sampling ws"):
    """Yield (start, ws) batches for n_samples seeded z; only one batch is in memory at a time.

    z comes from one NumPy RandomState(seed) stream, so the sample does not
    depend on batch_size. Conditional generators get uniformly random one-hot labels.
    """
    n_samples = check_int("n_samples", n_samples, lo=1)
    batch_size = check_int("batch_size", batch_size, lo=1)
    rs = np.random.RandomState(seed)
    device = generator_device(G)
    from ..utils.progress import progress_bar

    with torch.no_grad(), progress_bar(total=n_samples, desc=desc, enabled=progress, unit="w",
                                       what="samples") as bar:
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
