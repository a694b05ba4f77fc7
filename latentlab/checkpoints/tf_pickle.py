"""StyleGAN2 TensorFlow pickles (NVlabs/stylegan2, stylegan2-ada TF): a tuple (G, D, Gs) of Network states.

Kwargs are translated to stylegan2-ada-pytorch constructor kwargs, variables to
the official PyTorch names and layouts:
  conv [kh, kw, in, out] -> [out, in, kh, kw]; dense [in, out] -> [out, in];
  mod_weight -> affine.weight (transposed); mod_bias + 1 -> affine.bias;
  generator Conv0_up / Skip kernels are flipped spatially (TF upsampling runs a
  transposed convolution, PyTorch applies them as a flipped correlation);
  discriminator kernels are not flipped (both sides use plain correlation);
  const [1, C, 4, 4] -> [C, 4, 4]; noise{k} [1, 1, R, R] -> the k-th conv layer's noise_const;
  dlatent_avg -> mapping.w_avg; resample_filter buffers are generated.
The file layout is described in docs/FORMATS.md (section 2).
"""

from __future__ import annotations

import math
from typing import List, Sequence, Union

import torch

from ..errors import CheckpointError
from .records import NetworkRecord, RawCheckpoint, to_plain
from .safe_pickle import TFNetwork
from .tags import FORMAT_SG2_TF
from .tf_common import collect_variables, convert_variables, drop_lod, static_kwargs, tf_error

DEFAULT_KERNEL = [1, 3, 3, 1]

# Build-function defaults (docs/FORMATS.md, section 2); real files often store only what differed.
G_DEFAULTS = dict(
    latent_size=512,
    label_size=0,
    dlatent_size=512,
    resolution=1024,
    num_channels=3,
    mapping_layers=8,
    mapping_fmaps=None,
    mapping_lrmul=0.01,
    mapping_nonlinearity="lrelu",
    label_fmaps=None,
    dlatent_avg_beta=0.995,
    w_avg_beta=0.995,
    normalize_latents=True,
    fmap_base=16384,
    fmap_max=512,
    fmap_min=1,
    fmap_decay=1,
    fmap_const=None,
    architecture="skip",
    nonlinearity="lrelu",
    resample_kernel=DEFAULT_KERNEL,
    use_noise=True,
    conv_clamp=None,
    num_fp16_res=0,
)
# Run-time or training-only switches: no weights, no effect on the PyTorch architecture.
G_NO_WEIGHTS = {
    "truncation_psi",
    "truncation_cutoff",
    "truncation_psi_val",
    "truncation_cutoff_val",
    "style_mixing_prob",
    "structure",
    "randomize_noise",
    "fused_modconv",
    "dtype",
    "dlatent_broadcast",
    "is_template_graph",
    "force_clean_graph",
    "is_training",
    "is_validation",
    "return_dlatents",
    "mapping_func",
    "synthesis_func",
}
D_DEFAULTS = dict(
    label_size=0,
    resolution=1024,
    num_channels=3,
    fmap_base=16384,
    fmap_max=512,
    fmap_min=1,
    fmap_decay=1,
    architecture="resnet",
    nonlinearity="lrelu",
    mbstd_group_size=4,
    mbstd_num_features=1,
    mapping_layers=0,
    mapping_fmaps=None,
    mapping_lrmul=0.1,
    resample_kernel=DEFAULT_KERNEL,
    num_fp16_res=0,
    conv_clamp=None,
    freeze_layers=0,
    use_pagan=False,
    score_size=1,
    score_max=1,
    use_spectral_norm=False,
)
D_NO_WEIGHTS = {
    "structure",
    "dtype",
    "is_template_graph",
    "augment_strength",
    "adaptive_dropout",
    "pagan_num",
    "pagan_fade",
}

_CANNOT = "which stylegan2-ada-pytorch cannot express"


def convert(path: str, data: Sequence[TFNetwork]) -> RawCheckpoint:
    """A StyleGAN2 TF pickle's unpickled (G, D, Gs) tuple -> RawCheckpoint (Gs becomes G_ema)."""
    nets = {}
    for i, label in enumerate(("G", "D", "Gs")):
        net = data[i]
        version = net.state.get("version")
        if not isinstance(version, int) or version < 4:
            raise tf_error(path, label, f"has pickle version {version!r}; StyleGAN2 pickles have version 4 or later")
        nets[label] = net
    ignored: List[str] = []
    records = {
        "G": _generator(path, "G", nets["G"], ignored),
        "D": _discriminator(path, "D", nets["D"], ignored),
        "G_ema": _generator(path, "Gs", nets["Gs"], ignored),
    }
    gs_kwargs = static_kwargs(path, "Gs", nets["Gs"])
    extras = {
        "tf_static_kwargs": {label: static_kwargs(path, label, n) for label, n in nets.items()},
        "tf_build_func_names": {label: n.state.get("build_func_name") for label, n in nets.items()},
        "truncation_psi": gs_kwargs.get("truncation_psi", 0.5),  # G_main's default when run
        "truncation_cutoff": gs_kwargs.get("truncation_cutoff"),
    }
    if ignored:
        extras["ignored_tf_variables"] = ignored
    return RawCheckpoint(path=path, format=FORMAT_SG2_TF, networks=records, extras=extras)


def resample_filter(kernel: Union[Sequence[float], Sequence[Sequence[float]], float, None]) -> torch.Tensor:
    """The buffer stylegan2-ada-pytorch's `upfirdn2d.setup_filter` makes from a resample kernel.

    1-D kernels with fewer than 8 taps become the normalised outer product
    (f = outer(k, k) / sum); longer ones stay separable (k / sum).
    """
    f = torch.as_tensor(1.0 if kernel is None else kernel, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim == 1 and f.numel() < 8:
        f = torch.outer(f, f)
    return f / f.sum()


# --------------------------------------------------------------------------------------------


class _Kwargs:
    """static_kwargs with build-function defaults; unknown names are errors (they may change the architecture)."""

    def __init__(self, path, label, static, defaults, no_weights):
        unknown = sorted(set(static) - set(defaults) - no_weights)
        if unknown:
            raise tf_error(path, label, f"has unknown kwarg {unknown[0]!r}")
        self.path, self.label, self.static, self.defaults = path, label, static, defaults

    def get(self, name):
        return self.static.get(name, self.defaults[name])

    def int(self, name, minimum=0, allow_none=False):
        value = self.get(name)
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise CheckpointError(f"{self.path}: TensorFlow network {self.label!r} has invalid {name}={value!r}")
        return value

    def require(self, name, ok, why):
        value = self.get(name)
        if not ok(value):
            raise CheckpointError(f"{self.path}: TensorFlow network {self.label!r} has {name}={value!r}, {why}")
        return value

    def kernel(self):
        k = self.get("resample_kernel")
        return [1, 1] if k is None else k  # TF's None means a box filter of the resampling factor (2)


def _remap_lod_rgb(label, tf_vars, prefix, kind, res_log2, ignored):
    """'orig' networks with progressive growing name their RGB layers {kind}_lod{n}; lod0 is the one used."""
    found = False
    for name in sorted(tf_vars):
        head = f"{prefix}{kind}_lod"
        if not name.startswith(head) or "/" not in name[len(head) :]:
            continue
        n, rest = name[len(head) :].split("/", 1)
        if not n.isdigit():
            continue
        found = True
        value = tf_vars.pop(name)
        if int(n) == 0:
            r = 2**res_log2
            tf_vars[f"{prefix}{r}x{r}/{kind}/{rest}"] = value
        else:
            ignored.append(f"{label}:{name}")  # lower-resolution outputs, unused once fully grown
    return found


def _res_log2(kw):
    res = kw.int("resolution", 4)
    log2 = int(round(math.log2(res)))
    if 2**log2 != res:
        raise CheckpointError(f"{kw.path}: TensorFlow network {kw.label!r} has resolution {res}, not a power of two")
    return res, log2


def _check_fmaps(kw, stages):
    """PyTorch computes channels as min(channel_base // R, channel_max): no fmap_decay, no fmap_min."""
    kw.require("fmap_decay", lambda v: v == 1, _CANNOT)
    base, fmin = kw.int("fmap_base", 1), kw.int("fmap_min", 0)
    if any(int(base / 2.0**s) < fmin for s in stages):
        raise tf_error(kw.path, kw.label, f"has fmap_min={fmin}, {_CANNOT}")
    return base, kw.int("fmap_max", 1)


# --------------------------------------------------------------------------------------------


def _generator(path, label, net, ignored):
    kw = _Kwargs(path, label, static_kwargs(path, label, net), G_DEFAULTS, G_NO_WEIGHTS)
    tf_vars = collect_variables(path, label, net)
    if "mapping/LabelConcat/weight" in tf_vars:
        raise tf_error(path, label, f"is a conditional generator of the original StyleGAN2 (LabelConcat), {_CANNOT}")
    res, log2 = _res_log2(kw)
    base, fmax = _check_fmaps(kw, range(1, log2))
    kw.require("normalize_latents", lambda v: v is True, "but stylegan2-ada-pytorch always normalises latents")
    arch = kw.require("architecture", lambda v: v in ("orig", "skip", "resnet"), "expected 'orig', 'skip' or 'resnet'")
    drop_lod(path, label, tf_vars)
    if _remap_lod_rgb(label, tf_vars, "synthesis/", "ToRGB", log2, ignored):
        arch = "orig"
    z_dim, c_dim, w_dim = kw.int("latent_size"), kw.int("label_size"), kw.int("dlatent_size", 1)
    channels = kw.int("num_channels", 1)
    num_layers = kw.int("mapping_layers")
    use_noise = bool(kw.get("use_noise"))
    kernel = kw.kernel()
    ch = {r: min((2 * base) // r, fmax) for r in (2**i for i in range(2, log2 + 1))}
    fmap_const = kw.get("fmap_const")
    if fmap_const is not None and fmap_const != ch[4]:
        raise tf_error(path, label, f"has fmap_const={fmap_const!r}, {_CANNOT}")

    # Mapping: hidden width from the kwargs, else read off Dense0 (the two TF releases default differently).
    embed = (kw.int("label_fmaps", 1, allow_none=True) or z_dim) if c_dim > 0 else 0
    layer_features = kw.int("mapping_fmaps", 1, allow_none=True)
    dense0 = tf_vars.get("mapping/Dense0/weight")
    if layer_features is None:
        layer_features = int(dense0.shape[1]) if num_layers > 1 and dense0 is not None and dense0.ndim == 2 else w_dim
    beta = kw.get("dlatent_avg_beta") if "dlatent_avg_beta" in kw.static else kw.get("w_avg_beta")

    e = {}
    if c_dim > 0:
        e["mapping.embed.weight"] = ("mapping/LabelEmbed/weight", "T", (embed, c_dim))
        e["mapping.embed.bias"] = ("mapping/LabelEmbed/bias", "id", (embed,))
    features = [z_dim + embed] + [layer_features] * (num_layers - 1) + [w_dim]
    for i in range(num_layers):
        e[f"mapping.fc{i}.weight"] = (f"mapping/Dense{i}/weight", "T", (features[i + 1], features[i]))
        e[f"mapping.fc{i}.bias"] = (f"mapping/Dense{i}/bias", "id", (features[i + 1],))
    e["mapping.w_avg"] = ("dlatent_avg", "id", (w_dim,))

    filters = {}  # buffer name -> kernel it is built from
    for r in ch:
        b, t = f"synthesis.b{r}", f"synthesis/{r}x{r}"
        rl = int(math.log2(r))
        filters[f"{b}.resample_filter"] = kernel
        if r == 4:
            e[f"{b}.const"] = ("synthesis/4x4/Const/const", "lead1", (ch[4], 4, 4))
            layers = [("conv1", f"{t}/Conv", ch[4], "conv", 0, DEFAULT_KERNEL)]
        else:
            layers = [
                ("conv0", f"{t}/Conv0_up", ch[r // 2], "conv_flip", 2 * rl - 5, kernel),
                ("conv1", f"{t}/Conv1", ch[r], "conv", 2 * rl - 4, DEFAULT_KERNEL),
            ]
        for name, src, cin, how, k, layer_kernel in layers:
            p = f"{b}.{name}"
            e[f"{p}.weight"] = (f"{src}/weight", how, (ch[r], cin, 3, 3))
            e[f"{p}.bias"] = (f"{src}/bias", "id", (ch[r],))
            e[f"{p}.affine.weight"] = (f"{src}/mod_weight", "T", (cin, w_dim))
            e[f"{p}.affine.bias"] = (f"{src}/mod_bias", "plus1", (cin,))
            if use_noise:
                e[f"{p}.noise_strength"] = (f"{src}/noise_strength", "id", ())
                e[f"{p}.noise_const"] = (f"synthesis/noise{k}", "lead11", (r, r))
            filters[f"{p}.resample_filter"] = layer_kernel
        if arch == "skip" or r == res:
            e[f"{b}.torgb.weight"] = (f"{t}/ToRGB/weight", "conv", (channels, ch[r], 1, 1))
            e[f"{b}.torgb.bias"] = (f"{t}/ToRGB/bias", "id", (channels,))
            e[f"{b}.torgb.affine.weight"] = (f"{t}/ToRGB/mod_weight", "T", (ch[r], w_dim))
            e[f"{b}.torgb.affine.bias"] = (f"{t}/ToRGB/mod_bias", "plus1", (ch[r],))
        if arch == "resnet" and r > 4:
            e[f"{b}.skip.weight"] = (f"{t}/Skip/weight", "conv_flip", (ch[r], ch[r // 2], 1, 1))
            filters[f"{b}.skip.resample_filter"] = kernel

    state = convert_variables(path, label, "StyleGAN2 generator", tf_vars, e)
    state.update({name: resample_filter(k) for name, k in filters.items()})
    init_kwargs = dict(
        z_dim=z_dim,
        c_dim=c_dim,
        w_dim=w_dim,
        img_resolution=res,
        img_channels=channels,
        mapping_kwargs=dict(
            num_layers=num_layers,
            embed_features=embed if c_dim > 0 else None,
            layer_features=layer_features,
            activation=kw.get("mapping_nonlinearity"),
            lr_multiplier=kw.get("mapping_lrmul"),
            w_avg_beta=1 if beta is None else beta,  # TF keeps dlatent_avg even when not tracking it
        ),
        synthesis_kwargs=dict(
            channel_base=2 * base,
            channel_max=fmax,
            num_fp16_res=kw.int("num_fp16_res"),
            conv_clamp=kw.get("conv_clamp"),
            architecture=arch,
            resample_filter=kernel,
            use_noise=use_noise,
            activation=kw.get("nonlinearity"),
        ),
    )
    return NetworkRecord(
        class_name="Generator", init_kwargs=to_plain(init_kwargs, path, f"{label} kwargs"), state=state
    )


def _discriminator(path, label, net, ignored):
    static = static_kwargs(path, label, net)
    defaults = dict(D_DEFAULTS)
    if net.state.get("build_func_name") == "D_main":
        defaults["mbstd_group_size"] = None  # stylegan2-ada's D_main: None = the whole minibatch
    kw = _Kwargs(path, label, static, defaults, D_NO_WEIGHTS)
    kw.require("use_pagan", lambda v: not v, _CANNOT)
    kw.require("use_spectral_norm", lambda v: not v, _CANNOT)
    kw.require("score_max", lambda v: v == 1, _CANNOT)
    kw.require("score_size", lambda v: v == 1, _CANNOT)
    tf_vars = collect_variables(path, label, net)
    res, log2 = _res_log2(kw)
    base, fmax = _check_fmaps(kw, range(0, log2))
    arch = kw.require("architecture", lambda v: v in ("orig", "skip", "resnet"), "expected 'orig', 'skip' or 'resnet'")
    drop_lod(path, label, tf_vars)
    if _remap_lod_rgb(label, tf_vars, "", "FromRGB", log2, ignored):
        arch = "orig"
    c_dim, channels = kw.int("label_size"), kw.int("num_channels", 1)
    if c_dim > 0 and "LabelEmbed/weight" not in tf_vars:
        raise tf_error(
            path, label, f"is a conditional discriminator of the original StyleGAN2 (no label embedding), {_CANNOT}"
        )
    kernel = kw.kernel()
    ch = {r: min((2 * base) // r, fmax) for r in (2**i for i in range(2, log2 + 1))}
    cmap = (kw.int("mapping_fmaps", 1, allow_none=True) or min(base, fmax)) if c_dim > 0 else 0  # TF: nf(0)
    num_layers = kw.int("mapping_layers")

    # Minibatch stddev: stylegan2 enables it for group size > 1, stylegan2-ada for num_features > 0.
    group = kw.get("mbstd_group_size")
    features = kw.int("mbstd_num_features")
    if group is not None and (isinstance(group, bool) or not isinstance(group, int) or group <= 1):
        features = 0
    mbstd = features

    e, filters = {}, {}
    for r in sorted(ch, reverse=True):
        if r == 4:
            continue
        b, t = f"b{r}", f"{r}x{r}"
        tmp, out = ch[r], ch[r // 2]
        filters[f"{b}.resample_filter"] = kernel
        if r == res or arch == "skip":
            e[f"{b}.fromrgb.weight"] = (f"{t}/FromRGB/weight", "conv", (tmp, channels, 1, 1))
            e[f"{b}.fromrgb.bias"] = (f"{t}/FromRGB/bias", "id", (tmp,))
            filters[f"{b}.fromrgb.resample_filter"] = DEFAULT_KERNEL
        e[f"{b}.conv0.weight"] = (f"{t}/Conv0/weight", "conv", (tmp, tmp, 3, 3))
        e[f"{b}.conv0.bias"] = (f"{t}/Conv0/bias", "id", (tmp,))
        filters[f"{b}.conv0.resample_filter"] = DEFAULT_KERNEL
        e[f"{b}.conv1.weight"] = (f"{t}/Conv1_down/weight", "conv", (out, tmp, 3, 3))
        e[f"{b}.conv1.bias"] = (f"{t}/Conv1_down/bias", "id", (out,))
        filters[f"{b}.conv1.resample_filter"] = kernel
        if arch == "resnet":
            e[f"{b}.skip.weight"] = (f"{t}/Skip/weight", "conv", (out, tmp, 1, 1))
            filters[f"{b}.skip.resample_filter"] = kernel
    if c_dim > 0:
        e["mapping.embed.weight"] = ("LabelEmbed/weight", "T", (cmap, c_dim))
        e["mapping.embed.bias"] = ("LabelEmbed/bias", "id", (cmap,))
        for i in range(num_layers):
            e[f"mapping.fc{i}.weight"] = (f"Mapping{i}/weight", "T", (cmap, cmap))
            e[f"mapping.fc{i}.bias"] = (f"Mapping{i}/bias", "id", (cmap,))
    c4 = ch[4]
    if arch == "skip":
        e["b4.fromrgb.weight"] = ("4x4/FromRGB/weight", "conv", (c4, channels, 1, 1))
        e["b4.fromrgb.bias"] = ("4x4/FromRGB/bias", "id", (c4,))
        filters["b4.fromrgb.resample_filter"] = DEFAULT_KERNEL
    e["b4.conv.weight"] = ("4x4/Conv/weight", "conv", (c4, c4 + mbstd, 3, 3))
    e["b4.conv.bias"] = ("4x4/Conv/bias", "id", (c4,))
    filters["b4.conv.resample_filter"] = DEFAULT_KERNEL
    e["b4.fc.weight"] = ("4x4/Dense0/weight", "T", (c4, c4 * 16))  # both flatten NCHW in the same order
    e["b4.fc.bias"] = ("4x4/Dense0/bias", "id", (c4,))
    e["b4.out.weight"] = ("Output/weight", "T", (cmap or 1, c4))
    e["b4.out.bias"] = ("Output/bias", "id", (cmap or 1,))

    state = convert_variables(path, label, "StyleGAN2 discriminator", tf_vars, e)
    state.update({name: resample_filter(k) for name, k in filters.items()})
    act = kw.get("nonlinearity")
    block_kwargs = dict(activation=act, resample_filter=kernel)
    if kw.get("freeze_layers"):
        block_kwargs["freeze_layers"] = kw.int("freeze_layers")
    init_kwargs = dict(
        c_dim=c_dim,
        img_resolution=res,
        img_channels=channels,
        architecture=arch,
        channel_base=2 * base,
        channel_max=fmax,
        num_fp16_res=kw.int("num_fp16_res"),
        conv_clamp=kw.get("conv_clamp"),
        cmap_dim=cmap if c_dim > 0 else None,
        block_kwargs=block_kwargs,
        mapping_kwargs=dict(
            num_layers=num_layers,
            embed_features=cmap or None,
            layer_features=cmap or None,
            activation=act,
            lr_multiplier=kw.get("mapping_lrmul"),
        ),
        epilogue_kwargs=dict(mbstd_group_size=group, mbstd_num_channels=mbstd, activation=act),
    )
    return NetworkRecord(
        class_name="Discriminator", init_kwargs=to_plain(init_kwargs, path, f"{label} kwargs"), state=state
    )
