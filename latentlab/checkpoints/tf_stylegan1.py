"""Original StyleGAN (v1) TensorFlow pickles: a tuple (G, D, Gs) of Network states (see docs/SG1_FORMAT.md).

The architecture comes from the static kwargs with the official build functions'
defaults filled in (real files store only resolution, num_channels and label_size);
the expected variables and shapes come from our network built on the meta device,
so every variable is accounted for: converted, or listed as ignored (the
progressive-growing ToRGB/FromRGB layers of lod > 0, which do nothing at lod 0).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Sequence

import torch

from ..errors import CheckpointError
from ..models.stylegan1 import StyleGAN1Discriminator, StyleGAN1Generator
from .records import NetworkRecord, RawCheckpoint, to_plain
from .safe_pickle import TFNetwork
from .tags import FORMAT_SG1_TF
from .tf_common import collect_variables, convert_variables, drop_lod, static_kwargs, tf_error

G_DEFAULTS = dict(  # G_style -> G_mapping / G_synthesis defaults
    latent_size=512,
    label_size=0,
    dlatent_size=512,
    resolution=1024,
    num_channels=3,
    mapping_layers=8,
    mapping_fmaps=512,
    mapping_lrmul=0.01,
    mapping_nonlinearity="lrelu",
    normalize_latents=True,
    fmap_base=8192,
    fmap_decay=1.0,
    fmap_max=512,
    use_styles=True,
    use_noise=True,
    nonlinearity="lrelu",
    use_wscale=True,
    use_pixel_norm=False,
    use_instance_norm=True,
    fused_scale="auto",
    blur_filter=[1, 2, 1],
)
D_DEFAULTS = dict(  # D_basic defaults; note num_channels=1 and resolution=32
    num_channels=1,
    resolution=32,
    label_size=0,
    fmap_base=8192,
    fmap_decay=1.0,
    fmap_max=512,
    nonlinearity="lrelu",
    use_wscale=True,
    mbstd_group_size=4,
    mbstd_num_features=1,
    fused_scale="auto",
    blur_filter=[1, 2, 1],
)
# Kwargs with a fixed required value: anything else changes the network in ways we do not implement.
G_REQUIRED = dict(const_input_layer=True, dtype="float32")
D_REQUIRED = dict(dtype="float32")


def convert(path: str, data: Sequence[TFNetwork]) -> RawCheckpoint:
    """A StyleGAN v1 TF pickle's unpickled (G, D, Gs) tuple -> RawCheckpoint (Gs becomes G_ema)."""
    ignored: List[str] = []
    unused_kwargs: Dict[str, Any] = {}
    records = {}
    for label, key in (("G", "G"), ("D", "D"), ("Gs", "G_ema")):
        net = data[("G", "D", "Gs").index(label)]
        build_func = "D_basic" if label == "D" else "G_style"
        records[key] = convert_network(path, label, net, build_func, ignored, unused_kwargs)
    gs = static_kwargs(path, "Gs", data[2])
    extras = {
        "tf_static_kwargs": {label: static_kwargs(path, label, n) for label, n in zip(("G", "D", "Gs"), data)},
        # what the official Gs.run() applies when not told otherwise
        "truncation_psi": gs.get("truncation_psi", 0.7),
        "truncation_cutoff": gs.get("truncation_cutoff", 8),
    }
    if ignored:
        extras["ignored_tf_variables"] = ignored
    if unused_kwargs:
        extras["ignored_kwargs"] = unused_kwargs
    return RawCheckpoint(path=path, format=FORMAT_SG1_TF, networks=records, extras=extras)


def convert_network(
    path: str, label: str, net: TFNetwork, build_func: str, ignored: List[str], unused_kwargs: Dict[str, Any]
) -> NetworkRecord:
    """One v1 Network state built by `build_func` ('G_style' or 'D_basic') -> NetworkRecord.

    Also used for single-network files (NVIDIA's CelebA-HQ attribute classifiers are
    one D_basic each). Dropped lod > 0 variables are appended to `ignored` as
    'label:name', swallowed kwargs go to `unused_kwargs[label]`.
    """
    if net.state.get("version") not in (2, 3):
        raise tf_error(path, label, f"has pickle version {net.state.get('version')!r}; StyleGAN v1 pickles have 2 or 3")
    func = net.state.get("build_func_name")
    if func != build_func:
        raise tf_error(path, label, f"was built by {func!r}; latentlab implements {build_func!r} for StyleGAN v1")
    is_d = build_func == "D_basic"
    static = static_kwargs(path, label, net)
    defaults, required, cls = (
        (D_DEFAULTS, D_REQUIRED, StyleGAN1Discriminator) if is_d else (G_DEFAULTS, G_REQUIRED, StyleGAN1Generator)
    )
    kwargs = _kwargs(path, label, static, defaults, required, unused_kwargs)
    tf_vars = collect_variables(path, label, net)
    drop_lod(path, label, tf_vars)
    try:
        with torch.device("meta"):
            model = cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise tf_error(path, label, f"has kwargs latentlab cannot build ({e})") from None
    prefix = "" if is_d else "synthesis/"
    rgb = "FromRGB" if is_d else "ToRGB"
    for name in list(tf_vars):  # the lod > 0 RGB layers are dead weight in a fully grown network
        m = re.fullmatch(rf"{prefix}{rgb}_lod(\d+)/(weight|bias)", name)
        if m and int(m.group(1)) > 0:
            tf_vars.pop(name)
            ignored.append(f"{label}:{name}")
    expected = {
        k: (tf_name, how, tuple(v.shape))
        for k, v in model.state_dict().items()
        for tf_name, how in [_tf_name(k, model)]
    }
    kind = "StyleGAN v1 " + ("discriminator" if is_d else "generator")
    state = convert_variables(path, label, kind, tf_vars, expected)
    return NetworkRecord(class_name=cls.__name__, init_kwargs=kwargs, state=state)


def _kwargs(path, label, static, defaults, required, unused):
    for name, value in required.items():
        if name in static and static[name] != value:
            raise tf_error(path, label, f"has {name}={static[name]!r}; only {value!r} is supported")
    kwargs = {k: static.get(k, v) for k, v in defaults.items()}
    # The official build functions swallow unknown kwargs (**_kwargs); so do we, but we say which.
    extra = sorted(set(static) - set(defaults) - set(required))
    if extra:
        unused[label] = {k: static[k] for k in extra}
    if isinstance(kwargs.get("blur_filter"), tuple):
        kwargs["blur_filter"] = list(kwargs["blur_filter"])
    return to_plain(kwargs, path, f"{label}.static_kwargs")


def _g_scope(res, conv):
    if res == 4:
        return "4x4/Const" if conv == 0 else "4x4/Conv"
    return f"{res}x{res}/Conv0_up" if conv == 0 else f"{res}x{res}/Conv1"


_G_LAYER_PARAMS = {
    "conv.weight": ("/weight", "conv"),
    "bias": ("/bias", "id"),
    "noise_strength": ("/Noise/weight", "id"),
    "affine.weight": ("/StyleMod/weight", "T"),
    "affine.bias": ("/StyleMod/bias", "id"),
}


def _tf_name(name, model):
    """(TF variable name, transform) for one of our parameter/buffer names."""
    if isinstance(model, StyleGAN1Generator):
        m = re.fullmatch(r"mapping\.fc(\d+)\.(weight|bias)", name)
        if m:
            return f"mapping/Dense{m.group(1)}/{m.group(2)}", "T" if m.group(2) == "weight" else "id"
        if name == "mapping.embed":
            return "mapping/LabelConcat/weight", "T"
        if name == "mapping.w_avg":
            return "dlatent_avg", "id"
        if name == "synthesis.b4.const":
            return "synthesis/4x4/Const/const", "lead1"
        m = re.fullmatch(r"synthesis\.b(\d+)\.conv([01])\.(.+)", name)
        if m:
            res, conv, param = int(m.group(1)), int(m.group(2)), m.group(3)
            if param == "noise_const":
                layer = 2 * (res.bit_length() - 3) + conv  # layer index: two per resolution from 4x4
                return f"synthesis/noise{layer}", "lead11"
            suffix, how = _G_LAYER_PARAMS[param]
            return f"synthesis/{_g_scope(res, conv)}{suffix}", how
        m = re.fullmatch(r"synthesis\.b\d+\.torgb(\.weight|_bias)", name)
        if m:
            return (
                ("synthesis/ToRGB_lod0/weight", "conv")
                if m.group(1) == ".weight"
                else ("synthesis/ToRGB_lod0/bias", "id")
            )
    else:
        fixed = {
            "fromrgb.weight": ("FromRGB_lod0/weight", "conv"),
            "fromrgb_bias": ("FromRGB_lod0/bias", "id"),
            "conv.weight": ("4x4/Conv/weight", "conv"),
            "conv_bias": ("4x4/Conv/bias", "id"),
            "fc.weight": ("4x4/Dense0/weight", "T"),
            "fc.bias": ("4x4/Dense0/bias", "id"),
            "out.weight": ("4x4/Dense1/weight", "T"),
            "out.bias": ("4x4/Dense1/bias", "id"),
        }
        if name in fixed:
            return fixed[name]
        m = re.fullmatch(r"b(\d+)\.(conv0\.weight|bias0|conv1\.weight|bias1)", name)
        if m:
            r, p = m.group(1), m.group(2)
            scope = f"{r}x{r}/Conv0" if p in ("conv0.weight", "bias0") else f"{r}x{r}/Conv1_down"
            return (f"{scope}/weight", "conv") if p.endswith("weight") else (f"{scope}/bias", "id")
    raise CheckpointError(f"internal error: no TensorFlow name for {name!r}")
