"""stylegan2-ada-pytorch / stylegan3 pickles: a dict of `torch_utils.persistence` objects.

The layout is described in docs/FORMATS.md (section 1). A generator whose synthesis network holds the
Fourier-feature `input` (and layers named like 'L0_36_512') is a StyleGAN3 generator
(NVlabs/stylegan3's `networks_stylegan3.Generator`): it becomes a 'StyleGAN3Generator' record with the
official, flat constructor kwargs; every other generator is StyleGAN2's.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping

from ..errors import CheckpointError
from .records import NetworkRecord, RawCheckpoint, float_tensor, summarise, to_plain
from .safe_pickle import PersistentObject, short_repr
from .tags import FORMAT_SG2_PYTORCH

# Official positional parameter order, for networks pickled with positional init args.
G_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
D_POSITIONAL = (
    "c_dim",
    "img_resolution",
    "img_channels",
    "architecture",
    "channel_base",
    "channel_max",
    "num_fp16_res",
    "conv_clamp",
    "cmap_dim",
    "block_kwargs",
    "mapping_kwargs",
    "epilogue_kwargs",
)
G_TOP_KWARGS = set(G_POSITIONAL)
# stylegan3's copy of the StyleGAN2 generator takes this run-time switch; it carries no weights.
G_RUNTIME_ONLY = {"fused_modconv_default"}

G_CLASSES = {
    "Generator",
    "MappingNetwork",
    "SynthesisNetwork",
    "SynthesisBlock",
    "SynthesisLayer",
    "ToRGBLayer",
    "FullyConnectedLayer",
    "Conv2dLayer",
}
D_CLASSES = {
    "Discriminator",
    "DiscriminatorBlock",
    "DiscriminatorEpilogue",
    "MinibatchStdLayer",
    "MappingNetwork",
    "FullyConnectedLayer",
    "Conv2dLayer",
}
_SG3_LAYER_NAME = r"L\d+_\d+_\d+"  # StyleGAN3 synthesis layers, e.g. 'L0_36_512'
# NVlabs/stylegan3's networks_stylegan3 classes and where each may stand: a class -> {its submodules' names
# (regex): their class}; nothing else is accepted
G3_TREE = {
    "Generator": {"mapping": "MappingNetwork", "synthesis": "SynthesisNetwork"},
    "MappingNetwork": {r"embed|fc\d+": "FullyConnectedLayer"},
    "SynthesisNetwork": {"input": "SynthesisInput", _SG3_LAYER_NAME: "SynthesisLayer"},
    "SynthesisInput": {"affine": "FullyConnectedLayer"},
    "SynthesisLayer": {"affine": "FullyConnectedLayer"},
    "FullyConnectedLayer": {},
}
G3_CLASSES = set(G3_TREE)
G3_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")
ROLES = (
    ("G", "Generator", G_CLASSES, G_POSITIONAL),
    ("D", "Discriminator", D_CLASSES, D_POSITIONAL),
    ("G_ema", "Generator", G_CLASSES, G_POSITIONAL),
)


def convert(path: str, data: Mapping[Any, Any]) -> RawCheckpoint:
    """An ADA-style pickle's unpickled dict {'G', 'D', 'G_ema', ...} -> RawCheckpoint; other entries become extras."""
    networks: Dict[str, NetworkRecord] = {}
    ignored: Dict[str, Any] = {}
    for key, class_name, classes, positional in ROLES:
        obj = data.get(key)
        if obj is None:
            continue
        networks[key] = _network(path, key, obj, class_name, classes, positional, ignored)
    if not networks:
        raise CheckpointError(f"{path}: not a StyleGAN2 checkpoint (G, D and G_ema are all empty)")
    extras = {str(k): summarise(v) for k, v in data.items() if k not in networks}
    if ignored:
        extras["ignored_kwargs"] = ignored
    return RawCheckpoint(path=path, format=FORMAT_SG2_PYTORCH, networks=networks, extras=extras)


def _network(path, key, obj, class_name, classes, positional, ignored):
    if not isinstance(obj, PersistentObject):
        raise CheckpointError(f"{path}: {key!r} is a {type(obj).__name__}, not a persistent network object")
    if obj.class_name != class_name:
        raise CheckpointError(f"{path}: {key!r} is a {short_repr(obj.class_name)}, expected a {class_name!r}")
    if class_name == "Generator" and _is_stylegan3(obj):
        state: Dict[str, Any] = {}
        _flatten(path, key, obj, "", G3_CLASSES, state, depth=0, generation=3, tree=G3_TREE)
        _check_magnitudes(path, key, state)
        init_args, init_kwargs = _init_kwargs(path, key, obj, G3_POSITIONAL)
        return NetworkRecord("StyleGAN3Generator", init_kwargs=init_kwargs, state=state, init_args=tuple(init_args))
    state = {}
    _flatten(path, key, obj, "", classes, state, depth=0)
    init_args, init_kwargs = _init_kwargs(path, key, obj, positional)
    if class_name == "Generator":
        init_kwargs = _nest_synthesis_kwargs(path, key, init_kwargs, ignored)
    return NetworkRecord(class_name=class_name, init_kwargs=init_kwargs, state=state, init_args=tuple(init_args))


def _is_stylegan3(obj: PersistentObject) -> bool:
    """A generator whose synthesis network has StyleGAN3's Fourier-feature input or its layer names."""
    modules = obj.state.get("_modules")
    synthesis = modules.get("synthesis") if isinstance(modules, dict) else None
    sub = synthesis.state.get("_modules") if isinstance(synthesis, PersistentObject) else None
    return isinstance(sub, dict) and any(n == "input" or re.fullmatch(_SG3_LAYER_NAME, str(n)) for n in sub)


def _flatten(path, key, obj, prefix, classes, out, depth, generation=2, tree=None, expected=None):
    """Walk `_modules` recursively, collecting `_parameters` and persistent `_buffers` under dotted names.

    tree: {class: {submodule name pattern: class}} (`G3_TREE`): each submodule's name must match a pattern of
    its parent's class, and the module be of the class given there (`expected`); None: any of `classes` anywhere."""
    where = f"network {key!r} at {prefix.rstrip('.') or 'top level'}"
    if depth > 16:
        raise CheckpointError(f"{path}: {where}: module tree nested too deeply")
    st = obj.state
    params, buffers, modules = st.get("_parameters", {}), st.get("_buffers", {}), st.get("_modules", {})
    skip = st.get("_non_persistent_buffers_set") or set()
    if not all(isinstance(d, dict) for d in (params, buffers, modules)) or not isinstance(skip, (set, frozenset)):
        raise CheckpointError(f"{path}: {where}: malformed module state")
    if obj.class_name not in classes:
        raise CheckpointError(
            f"{path}: {where} is a {short_repr(obj.class_name)}, "
            f"which is not a StyleGAN{generation} {'discriminator' if key == 'D' else 'generator'} class"
        )
    if expected is not None and obj.class_name != expected:
        raise CheckpointError(f"{path}: {where} is a {short_repr(obj.class_name)}, expected a {expected!r} there")
    for group, is_buffer in ((params, False), (buffers, True)):
        for name, t in group.items():
            if t is None or (is_buffer and name in skip):
                continue
            _check_name(path, where, name)
            if prefix + name in out:
                raise CheckpointError(f"{path}: {where}: duplicate entry {short_repr(name)}")
            out[prefix + name] = float_tensor(t, path, f"network {key!r} tensor {prefix + name!r}")
    for name, child in modules.items():
        if child is None:
            continue
        _check_name(path, where, name)
        if not isinstance(child, PersistentObject):
            raise CheckpointError(
                f"{path}: {where}: submodule {short_repr(name)} is a {type(child).__name__}, not a module"
            )
        child_class = None
        if tree is not None:
            allowed = tree.get(obj.class_name, {})
            child_class = next((cls for pattern, cls in allowed.items() if re.fullmatch(pattern, name)), None)
            if child_class is None:
                raise CheckpointError(
                    f"{path}: {where}: unexpected submodule {short_repr(name)} in a StyleGAN{generation} {obj.class_name}"
                )
        _flatten(path, key, child, f"{prefix}{name}.", classes, out, depth + 1, generation, tree, child_class)


def _check_magnitudes(path, key, state):
    """StyleGAN3 layers divide their input by sqrt(magnitude_ema), a running mean square: it must be > 0
    (NaN/inf are reported with the other non-finite values)."""
    for name, t in state.items():
        if name.endswith(".magnitude_ema") and bool((t <= 0).any()):
            raise CheckpointError(
                f"{path}: network {key!r} tensor {name!r} holds {t.min().item():g}; expected a mean square > 0"
            )


def _check_name(path, where, name):
    if not isinstance(name, str) or not name or "." in name:
        raise CheckpointError(f"{path}: {where}: invalid member name {short_repr(name)}")


def _init_kwargs(path, key, obj, positional):
    if "_init_kwargs" not in obj.state:
        raise CheckpointError(f"{path}: network {key!r} does not record its constructor arguments")
    args = obj.state.get("_init_args", ())
    if not isinstance(args, (tuple, list)):
        raise CheckpointError(f"{path}: network {key!r} has malformed positional constructor arguments")
    args = to_plain(list(args), path, f"{key}.init_args")
    kwargs = to_plain(obj.state["_init_kwargs"], path, f"{key}.init_kwargs")
    if not isinstance(kwargs, dict):
        raise CheckpointError(f"{path}: network {key!r} has malformed constructor kwargs")
    if len(args) > len(positional):
        raise CheckpointError(
            f"{path}: network {key!r} has {len(args)} positional constructor arguments, at most {len(positional)} expected"
        )
    for name, value in zip(positional, args):
        if name in kwargs:
            raise CheckpointError(f"{path}: network {key!r} gives {name!r} both positionally and by keyword")
        kwargs[name] = value
    return args, kwargs


def _nest_synthesis_kwargs(path, key, kwargs, ignored):
    """stylegan3-era generators pass synthesis kwargs flat; nest them as stylegan2-ada-pytorch does."""
    out = {k: v for k, v in kwargs.items() if k in G_TOP_KWARGS}
    synthesis = dict(out.get("synthesis_kwargs") or {})
    for k, v in kwargs.items():
        if k in G_TOP_KWARGS:
            continue
        if k in G_RUNTIME_ONLY:
            ignored.setdefault(key, {})[k] = v
            continue
        if k in synthesis and synthesis[k] != v:
            raise CheckpointError(
                f"{path}: network {key!r} gives synthesis kwarg {short_repr(k)} twice with different values"
            )
        synthesis[k] = v
    if synthesis or "synthesis_kwargs" in out:
        out["synthesis_kwargs"] = synthesis
    return out
