"""Helpers shared by the TensorFlow converters (`tf_pickle` for StyleGAN2, `tf_stylegan1` for v1).

Both TF releases pickle a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` states
(read here as `safe_pickle.TFNetwork`): constructor kwargs in `static_kwargs`, the
network's own variables as (name, array) pairs and sub-networks in `components`.
These helpers read those states and turn TF variables into PyTorch tensors; the
layouts are described in docs/FORMATS.md and docs/SG1_FORMAT.md.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import CheckpointError
from .records import to_plain
from .safe_pickle import TFNetwork

__all__ = ["TRANSFORMS", "tf_error", "static_kwargs", "collect_variables", "drop_lod", "convert_variables"]

# How a TF array becomes its PyTorch counterpart (first function), and the TF shape a
# PyTorch shape implies (second): conv kernels [kh, kw, in, out] -> [out, in, kh, kw],
# dense [in, out] -> [out, in], leading singleton axes dropped; 'plus1' for the +1 that
# PyTorch folds into the affine bias; 'conv_flip' also mirrors the kernel spatially.
TRANSFORMS = {
    "id": (lambda a: a, lambda s: s),
    "plus1": (lambda a: a + np.float32(1), lambda s: s),
    "T": (lambda a: a.T, lambda s: s[::-1]),
    "conv": (lambda a: a.transpose(3, 2, 0, 1), lambda s: (s[2], s[3], s[1], s[0])),
    "conv_flip": (lambda a: a[::-1, ::-1].transpose(3, 2, 0, 1), lambda s: (s[2], s[3], s[1], s[0])),
    "lead1": (lambda a: a[0], lambda s: (1,) + s),
    "lead11": (lambda a: a[0, 0], lambda s: (1, 1) + s),
}


def tf_error(path: str, label: str, problem: str) -> CheckpointError:
    """The CheckpointError for a problem with TF network `label` ('G', 'D', 'Gs', ...) of file `path`."""
    return CheckpointError(f"{path}: TensorFlow network {label!r} {problem}")


def static_kwargs(path: str, label: str, net: TFNetwork) -> Dict[str, Any]:
    """A network's constructor kwargs as plain Python data."""
    sk = net.state.get("static_kwargs", {})
    if not isinstance(sk, dict):
        raise tf_error(path, label, "has malformed static_kwargs")
    return to_plain(sk, path, f"{label}.static_kwargs")


def collect_variables(
    path: str, label: str, net: object, prefix: str = "", out: Optional[Dict[str, np.ndarray]] = None, depth: int = 0
) -> Dict[str, np.ndarray]:
    """Variables of a network and its components as {name: float array}, named relative to the top network."""
    out = {} if out is None else out
    if depth > 4 or not isinstance(net, TFNetwork):
        raise tf_error(path, label, f"has a malformed component {prefix!r}")
    variables, components = net.state.get("variables", []), net.state.get("components", {})
    if not isinstance(variables, (list, tuple)) or not isinstance(components, dict):
        raise tf_error(path, label, "has malformed variables/components")
    for item in variables:
        if not isinstance(item, (tuple, list)) or len(item) != 2 or not isinstance(item[0], str):
            raise tf_error(path, label, "has a malformed variable entry")
        name, value = prefix + item[0], item[1]
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise tf_error(path, label, f"variable {name!r} is not a float array")
        if name in out:
            raise tf_error(path, label, f"has variable {name!r} twice")
        out[name] = value
    for cname, comp in components.items():
        collect_variables(path, label, comp, f"{prefix}{cname}/", out, depth + 1)
    return out


def drop_lod(path: str, label: str, tf_vars: Dict[str, np.ndarray]) -> None:
    """Remove the progressive-growing `lod` variables; only lod == 0 (fully grown) has a PyTorch equivalent."""
    for name in [n for n in tf_vars if n == "lod" or n.endswith("/lod")]:
        value = tf_vars.pop(name)
        lod = float(value.reshape(-1)[0]) if value.size == 1 else None
        if lod != 0.0:
            raise tf_error(path, label, f"was saved mid progressive growing ({name}={lod}); only lod 0 is supported")


def convert_variables(
    path: str,
    label: str,
    kind: str,
    tf_vars: Mapping[str, np.ndarray],
    expected: Mapping[str, Tuple[str, str, Sequence[int]]],
) -> Dict[str, torch.Tensor]:
    """The PyTorch state dict for `expected` {pt_name: (tf_name, transform, pt_shape)}.

    Every TF variable must be expected (an unknown one means an architecture we would
    get wrong) and every expected one present with the shape its transform implies.
    `kind` names the network in messages, e.g. 'StyleGAN2 generator'.
    """
    wanted = {tf for tf, _, _ in expected.values()}
    unknown = sorted(set(tf_vars) - wanted)
    if unknown:
        raise tf_error(
            path,
            label,
            f"has unrecognised variable {unknown[0]!r} "
            f"(not part of a {kind} with the architecture its kwargs describe)",
        )
    state = {}
    for pt_name, (tf_name, how, shape) in expected.items():
        if tf_name not in tf_vars:
            raise tf_error(path, label, f"lacks variable {tf_name!r} (needed for {pt_name!r})")
        value = tf_vars[tf_name]
        fn, tf_shape = TRANSFORMS[how]
        want = tf_shape(tuple(shape))
        if tuple(value.shape) != want:
            raise tf_error(path, label, f"variable {tf_name!r} has shape {list(value.shape)}, expected {list(want)}")
        # np.array, not np.ascontiguousarray: the latter turns 0-d arrays into 1-d ones.
        out = torch.from_numpy(np.array(fn(value.astype(np.float32)), dtype=np.float32, order="C"))
        if tuple(out.shape) != tuple(shape):
            raise CheckpointError(f"{path}: internal error converting {tf_name!r} to {pt_name!r}")
        state[pt_name] = out
    return state
