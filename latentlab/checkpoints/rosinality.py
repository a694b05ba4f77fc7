"""rosinality/stylegan2-pytorch checkpoints (`.pt`): train.py, convert_weight.py and pSp/e4e-style files.

The files are read by `torch_save.read_torch_save`; this module turns the plain dict into latentlab's
(stylegan2-ada-pytorch's) StyleGAN2 networks. The format, the key table and why the tensors are copied
unchanged are in docs/ROSINALITY_FORMAT.md; in short:

- train.py: `g_ema` -> G_ema, `g` -> G, `d` -> D; `args` is a hint only (SWAGAN is refused).
- convert_weight.py: `g_ema` -> G_ema and `latent_avg` -> `mapping.w_avg`.
- pSp / e4e (and other projects that save a wrapper around their `Generator` as `decoder`): the
  `decoder.` keys of `state_dict` -> G_ema and `latent_avg` (whose rows must agree) -> `mapping.w_avg`;
  the other sub-networks (`encoder.*`, ...) are recorded in the extras, not loaded.

Every hyperparameter comes from the tensor shapes: style_dim, n_mlp, size, and a channel table that must
be `min(channel_base // res, channel_max)` at every resolution (the only tables latentlab's networks can
express). Generator: 'skip' architecture, mapping lr multiplier 0.01, no conv clamp, no fp16.
Discriminator: 'resnet', minibatch-stddev group 4 with 1 feature. The stored blur kernels must be the
[1, 3, 3, 1] kernel. Without a `latent_avg`, `mapping.w_avg` is estimated deterministically: the mean of
mapping(z) over `W_AVG_SAMPLES` z drawn from `np.random.RandomState(W_AVG_SEED)` (the z the projector's
`w_stats` uses); the extras say which source each network's w_avg has.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError
from ..models.mapping import MappingNetwork
from ..utils import limits
from .records import NetworkRecord, RawCheckpoint, float_tensor, summarise
from .safe_pickle import short_repr
from .state_dicts import load_state_dict_strict
from .tags import FORMAT_ROSINALITY

__all__ = ["detect", "convert", "W_AVG_SAMPLES", "W_AVG_SEED"]

MAPPING_LR = 0.01  # their `lr_mlp` default; no script changes it and no file records it
MBSTD_GROUP = 4  # their Discriminator's stddev_group
W_AVG_SAMPLES = 10_000
W_AVG_SEED = 123
_BLUR = torch.tensor([1.0, 3.0, 3.0, 1.0])
_K = torch.outer(_BLUR, _BLUR) / torch.outer(_BLUR, _BLUR).sum()  # their make_kernel([1, 3, 3, 1]); sum 1
_KERNEL_TOLERANCE = 1e-6
_LATENT_AVG_TOLERANCE = 1e-6  # relative: pSp/e4e repeat one row, so the rows are equal
_NOISE_SEED = 0  # buffers of pre-2020 generators, which had none

PRODUCER_TRAIN = "train.py"
PRODUCER_CONVERT = "convert_weight.py"
PRODUCER_PSP = "pSp/e4e"
ROLES = (("G_ema", "g_ema", "Generator"), ("G", "g", "Generator"), ("D", "d", "Discriminator"))
_INDEX = r"(\d{1,4})"  # layer indices; longer digit strings are refused as unexpected keys


class _Entry(NamedTuple):
    shape: Tuple[int, ...]  # shape in the rosinality file
    target: Optional[str]  # latentlab name; None for a checked-then-dropped blur kernel
    target_shape: Tuple[int, ...]  # the same values reshaped (only leading/trailing 1s change)
    kernel: Optional[torch.Tensor] = None  # the value a blur kernel must have


def detect(obj: object) -> bool:
    """True for the dict of a rosinality-style file: state dicts under g_ema/g/d, or a pSp/e4e state_dict
    with `decoder.` keys."""
    if not isinstance(obj, dict):
        return False
    if any(isinstance(obj.get(k), dict) for _, k, _ in ROLES):
        return True
    sd = obj.get("state_dict")
    return isinstance(sd, dict) and any(isinstance(k, str) and k.startswith("decoder.") for k in sd)


def convert(path: str, data: Mapping[Any, Any]) -> RawCheckpoint:
    """The plain dict of a rosinality-style `.pt` file -> RawCheckpoint (networks under NVIDIA names)."""
    if not detect(data):
        raise CheckpointError(f"{path}: not a rosinality stylegan2-pytorch checkpoint")
    arch = data["args"].get("arch") if isinstance(data.get("args"), dict) else None  # train.py's args: a hint
    if arch is not None and arch != "stylegan2":
        raise CheckpointError(
            f"{path}: args.arch is {short_repr(arch)}; only rosinality 'stylegan2' networks are supported "
            "(SWAGAN's wavelet generator is a different network)"
        )
    networks: Dict[str, NetworkRecord] = {}
    info: Dict[str, Any] = {"networks": {}, "w_avg": {}}
    extras: Dict[str, Any] = {}
    sd = data.get("state_dict")
    if not any(isinstance(data.get(k), dict) for _, k, _ in ROLES) and isinstance(sd, dict):
        info["producer"] = PRODUCER_PSP
        decoder = {k[len("decoder.") :]: v for k, v in sd.items() if isinstance(k, str) and k.startswith("decoder.")}
        others: Dict[str, int] = {}
        for k in sd:
            if not (isinstance(k, str) and k.startswith("decoder.")):
                head = str(k).split(".", 1)[0]
                others[head] = others.get(head, 0) + 1
        if others:
            info["not_loaded"] = {f"{h}.*": f"{n} tensors" for h, n in others.items()}
        where = f"{path}: network 'G_ema' (state_dict 'decoder.*')"
        networks["G_ema"] = _generator(path, where, "decoder.", decoder, data.get("latent_avg"), info, "G_ema")
        info["networks"]["G_ema"] = "state_dict decoder.*"
        used = {"state_dict", "latent_avg"}
    else:
        info["producer"] = PRODUCER_CONVERT if "latent_avg" in data else PRODUCER_TRAIN
        used = {"latent_avg"}
        for name, key, class_name in ROLES:
            value = data.get(key)
            if value is None:
                continue
            used.add(key)
            if not isinstance(value, dict):
                raise CheckpointError(f"{path}: {key!r} is a {type(value).__name__}, not a state dict")
            where = f"{path}: network {name!r} ({key!r})"
            if class_name == "Generator":
                latent_avg = data.get("latent_avg") if name == "G_ema" else None
                networks[name] = _generator(path, where, "", value, latent_avg, info, name)
            else:
                networks[name] = _discriminator(path, where, value)
            info["networks"][name] = key
    if not networks:
        raise CheckpointError(f"{path}: the rosinality checkpoint holds no network")
    for k, v in data.items():
        if k not in used:
            extras[str(k)] = _summary(v)
    extras["rosinality"] = info  # what was read, and where each w_avg comes from
    return RawCheckpoint(path=path, format=FORMAT_ROSINALITY, networks=networks, extras=extras)


def _summary(value: Any) -> Any:
    """Extras: small values kept; containers of tensors (optimiser states, other networks) described."""
    n = _count_tensors(value, 0)
    if n == 0 or torch.is_tensor(value):
        return summarise(value)
    return f"<{type(value).__name__} holding {n} tensors; not loaded>"


def _count_tensors(value: Any, depth: int) -> int:
    if torch.is_tensor(value):
        return 1
    if depth > 50:
        return 0
    if isinstance(value, dict):
        return sum(_count_tensors(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_count_tensors(v, depth + 1) for v in value)
    return 0


# --------------------------------------------------------------------------------------------
# Shared checks


def _state(where: str, prefix: str, sd: Mapping[Any, Any]) -> Dict[str, Any]:
    for k in sd:
        if not isinstance(k, str):
            raise CheckpointError(f"{where}: has a non-string key {short_repr(k)}")
    for k in sd:
        if k.endswith((".ll", ".lh", ".hl", ".hh")) or k.startswith(("iwt.", "dwt.", "from_rgbs.")):
            raise CheckpointError(
                f"{where}: key {prefix + k!r} belongs to a SWAGAN network (wavelet transforms); "
                "only rosinality 'stylegan2' networks are supported"
            )
        if k.endswith("_orig"):
            raise CheckpointError(
                f"{where}: key {prefix + k!r} is from rosinality code before December 2019 (an older key layout); "
                "not supported"
            )
    return dict(sd)


def _shape_of(where: str, prefix: str, sd: Mapping[str, Any], key: str, ndim: int) -> Tuple[int, ...]:
    value = sd.get(key)
    if value is None:
        raise CheckpointError(f"{where}: key {prefix + key!r} is missing")
    if not torch.is_tensor(value):
        raise CheckpointError(f"{where}: key {prefix + key!r} holds a {type(value).__name__}, not a tensor")
    if value.ndim != ndim:
        raise CheckpointError(
            f"{where}: key {prefix + key!r} has shape {list(value.shape)}, expected {ndim} dimensions"
        )
    return tuple(value.shape)


def _indices(sd: Mapping[str, Any], pattern: str) -> List[int]:
    found = set()
    for k in sd:
        m = re.match(pattern, k)
        if m:
            found.add(int(m.group(1)))
    return sorted(found)


def _log2_size(where: str, count: int, what: str) -> int:
    """log2 of the resolution from the number of blocks; within limits.MAX_RESOLUTION."""
    log2 = count + 2
    if 2**log2 > limits.MAX_RESOLUTION:
        raise CheckpointError(
            f"{where}: {what} describe a network of resolution 2^{log2}, more than the limit of {limits.MAX_RESOLUTION}"
        )
    return log2


def _channel_table(where: str, prefix: str, channels: Dict[int, int], keys: Dict[int, str]) -> Tuple[int, int]:
    """(channel_base, channel_max) with min(channel_base // r, channel_max) == channels[r] for every r."""
    size = max(channels)
    for r, c in channels.items():
        if c < 1:
            raise CheckpointError(f"{where}: key {prefix + keys[r]!r} gives resolution {r} {c} channels")
    channel_max, channel_base = channels[4], channels[size] * size
    for r in sorted(channels):
        expected = min(channel_base // r, channel_max)
        if channels[r] != expected:
            table = ", ".join(f"{res}: {channels[res]}" for res in sorted(channels))
            raise CheckpointError(
                f"{where}: key {prefix + keys[r]!r} gives resolution {r} {channels[r]} channels, but the channel "
                f"table {{{table}}} is not min(channel_base // res, channel_max) for any channel_base and "
                f"channel_max ({expected} expected with channel_base={channel_base}, channel_max={channel_max}); "
                "latentlab's StyleGAN2 cannot express it"
            )
    return channel_base, channel_max


def _convert(
    where: str, prefix: str, sd: Dict[str, Any], spec: Dict[str, _Entry], optional: Tuple[str, ...] = ()
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Check `sd` against `spec` (keys, shapes, blur kernels) and return (state under the target names,
    the keys of `optional` that are absent)."""
    unexpected = [k for k in sd if k not in spec]
    if unexpected:
        more = f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""
        raise CheckpointError(
            f"{where}: unexpected key {short_repr(prefix + unexpected[0])}{more} "
            "(not part of the rosinality StyleGAN2 network its other keys describe)"
        )
    absent = [k for k in spec if k not in sd]
    skipped = [k for k in absent if k.startswith(optional)] if optional else []
    if skipped and len(skipped) != sum(1 for k in spec if k.startswith(optional)):
        skipped = []  # only a complete set may be absent
    missing = [k for k in absent if k not in skipped]
    if missing:
        more = f" ({len(missing)} keys missing)" if len(missing) > 1 else ""
        raise CheckpointError(f"{where}: key {prefix + missing[0]!r} is missing{more}")
    out: Dict[str, torch.Tensor] = {}
    for key, entry in spec.items():
        if key in skipped:
            continue
        value = sd[key]
        if not torch.is_tensor(value) or not value.is_floating_point():
            kind = f"a {value.dtype} tensor" if torch.is_tensor(value) else f"a {type(value).__name__}"
            raise CheckpointError(f"{where}: key {prefix + key!r} holds {kind}, not a floating-point tensor")
        t = value.detach().to(device="cpu", dtype=torch.float32).contiguous().clone()
        if tuple(t.shape) != entry.shape:
            raise CheckpointError(
                f"{where}: key {prefix + key!r} has shape {list(t.shape)}, expected {list(entry.shape)}"
            )
        if entry.kernel is not None:
            if not bool((t - entry.kernel).abs().max() <= _KERNEL_TOLERANCE):
                raise CheckpointError(
                    f"{where}: key {prefix + key!r} is not the [1, 3, 3, 1] blur kernel "
                    f"(found {short_repr(t.flatten().tolist())}); other blur kernels are not supported"
                )
            continue
        assert entry.target is not None
        out[entry.target] = t.reshape(entry.target_shape)
    return out, skipped


def _filter() -> torch.Tensor:
    return _K.clone()


# --------------------------------------------------------------------------------------------
# Generator


def _generator(
    path: str, where: str, prefix: str, sd: Mapping[Any, Any], latent_avg: Any, info: Dict[str, Any], name: str
) -> NetworkRecord:
    sd = _state(where, prefix, sd)
    s_dim = _shape_of(where, prefix, sd, "style.1.weight", 2)[1]
    n_mlp = max(_indices(sd, rf"style\.{_INDEX}\.weight$"), default=0)
    if not 1 <= s_dim <= limits.MAX_DIM or not 1 <= n_mlp <= limits.MAX_MAPPING_LAYERS:
        raise CheckpointError(
            f"{where}: describes a mapping network of {n_mlp} layers of width {s_dim} (limits: "
            f"{limits.MAX_MAPPING_LAYERS} layers, width {limits.MAX_DIM})"
        )
    rgbs = _indices(sd, rf"to_rgbs\.{_INDEX}\.")
    log2 = _log2_size(where, rgbs[-1] + 1 if rgbs else 0, "its 'to_rgbs' layers")
    size = 2**log2
    channels = {4: _shape_of(where, prefix, sd, "input.input", 4)[1]}
    keys = {4: "input.input"}
    for j in range(log2 - 2):
        r, keys[2 ** (j + 3)] = 2 ** (j + 3), f"convs.{2 * j}.conv.weight"
        channels[r] = _shape_of(where, prefix, sd, keys[r], 5)[1]
    channel_base, channel_max = _channel_table(where, prefix, channels, keys)
    spec = _generator_spec(s_dim, n_mlp, log2, channels)
    state, skipped = _convert(where, prefix, sd, spec, optional=("noises.",))
    if skipped:  # generators from before rosinality commit f79322a (January 2020) have no noise buffers
        gen = torch.Generator().manual_seed(_NOISE_SEED)
        for key in skipped:  # in spec order: noise_0, noise_1, ...
            target = spec[key].target
            assert target is not None
            state[target] = torch.randn(spec[key].target_shape, generator=gen)
        note = f"absent from the file (rosinality code before 2020); drawn from N(0, 1) with torch seed {_NOISE_SEED}"
        info.setdefault("noise_const", {})[name] = note
        warnings.warn(f"{where}: the noise buffers {prefix}noises.* are {note}", stacklevel=2)
    for r in channels:
        state[f"synthesis.b{r}.resample_filter"] = _filter()
        for layer in ("conv1",) if r == 4 else ("conv0", "conv1"):
            state[f"synthesis.b{r}.{layer}.resample_filter"] = _filter()
    if latent_avg is not None:
        state["mapping.w_avg"] = _w_avg_from_latent_avg(path, where, latent_avg, s_dim)
        info["w_avg"][name] = "latent_avg"
    else:
        state["mapping.w_avg"], info["w_avg"][name] = _estimate_w_avg(where, state, s_dim, n_mlp)
    init_kwargs = dict(
        z_dim=s_dim,
        c_dim=0,
        w_dim=s_dim,
        img_resolution=size,
        img_channels=3,
        mapping_kwargs=dict(num_layers=n_mlp, lr_multiplier=MAPPING_LR),
        synthesis_kwargs=dict(
            channel_base=channel_base, channel_max=channel_max, architecture="skip", conv_clamp=None, num_fp16_res=0
        ),
    )
    return NetworkRecord(class_name="Generator", init_kwargs=init_kwargs, state=state)


def _generator_spec(s_dim: int, n_mlp: int, log2: int, ch: Dict[int, int]) -> Dict[str, _Entry]:
    spec: Dict[str, _Entry] = {}

    def add(key, shape, target, target_shape=None, kernel=None):
        spec[key] = _Entry(tuple(shape), target, tuple(shape if target_shape is None else target_shape), kernel)

    for i in range(1, n_mlp + 1):
        add(f"style.{i}.weight", (s_dim, s_dim), f"mapping.fc{i - 1}.weight")
        add(f"style.{i}.bias", (s_dim,), f"mapping.fc{i - 1}.bias")
    add("input.input", (1, ch[4], 4, 4), "synthesis.b4.const", (ch[4], 4, 4))

    def styled(key, target, c_in, c_out, r, noise):
        add(f"{key}.conv.weight", (1, c_out, c_in, 3, 3), f"{target}.weight", (c_out, c_in, 3, 3))
        add(f"{key}.conv.modulation.weight", (c_in, s_dim), f"{target}.affine.weight")
        add(f"{key}.conv.modulation.bias", (c_in,), f"{target}.affine.bias")
        add(f"{key}.noise.weight", (1,), f"{target}.noise_strength", ())
        add(f"{key}.activate.bias", (c_out,), f"{target}.bias")
        add(f"noises.noise_{noise}", (1, 1, r, r), f"{target}.noise_const", (r, r))

    def to_rgb(key, target, c_in):
        add(f"{key}.conv.weight", (1, 3, c_in, 1, 1), f"{target}.weight", (3, c_in, 1, 1))
        add(f"{key}.conv.modulation.weight", (c_in, s_dim), f"{target}.affine.weight")
        add(f"{key}.conv.modulation.bias", (c_in,), f"{target}.affine.bias")
        add(f"{key}.bias", (1, 3, 1, 1), f"{target}.bias", (3,))

    styled("conv1", "synthesis.b4.conv1", ch[4], ch[4], 4, 0)
    to_rgb("to_rgb1", "synthesis.b4.torgb", ch[4])
    for j in range(log2 - 2):
        r = 2 ** (j + 3)
        b = f"synthesis.b{r}"
        # the up-sampling conv: the kernel is used unflipped on both sides (docs/ROSINALITY_FORMAT.md, section 4)
        styled(f"convs.{2 * j}", f"{b}.conv0", ch[r // 2], ch[r], r, 2 * j + 1)
        add(f"convs.{2 * j}.conv.blur.kernel", (4, 4), None, kernel=4 * _K)
        styled(f"convs.{2 * j + 1}", f"{b}.conv1", ch[r], ch[r], r, 2 * j + 2)
        to_rgb(f"to_rgbs.{j}", f"{b}.torgb", ch[r])
        add(f"to_rgbs.{j}.upsample.kernel", (4, 4), None, kernel=4 * _K)
    return spec


def _w_avg_from_latent_avg(path: str, where: str, value: Any, s_dim: int) -> torch.Tensor:
    t = float_tensor(value, path, "'latent_avg'")
    rows = t[None] if t.ndim == 1 else t
    if rows.ndim != 2 or rows.shape[0] < 1 or rows.shape[1] != s_dim:
        raise CheckpointError(
            f"{where}: 'latent_avg' has shape {list(t.shape)}, expected [{s_dim}] or [n, {s_dim}] for style_dim {s_dim}"
        )
    diff = float((rows - rows[0]).abs().max())
    if diff > _LATENT_AVG_TOLERANCE * max(1.0, float(rows[0].abs().max())):
        raise CheckpointError(
            f"{where}: the {rows.shape[0]} rows of 'latent_avg' differ (by up to {diff:.3g}); "
            "one average w is needed as w_avg"
        )
    return rows[0].clone()


def _estimate_w_avg(where: str, state: Mapping[str, torch.Tensor], s_dim: int, n_mlp: int) -> Tuple[torch.Tensor, str]:
    """mapping.w_avg for a generator whose file has none: the mean of mapping(z) over W_AVG_SAMPLES seeded z,
    or zeros (recorded) when the mapping network is too large to run that many times at load time."""
    weights = n_mlp * s_dim * s_dim
    if weights > limits.MAX_W_AVG_ESTIMATE_WEIGHTS:
        return torch.zeros([s_dim]), (
            f"absent from the file and not estimated (mapping network of {weights} weights, more than "
            f"{limits.MAX_W_AVG_ESTIMATE_WEIGHTS}): zeros; truncation needs a center, e.g. "
            "latentlab.inversion.projector.w_stats(G)[0]"
        )
    try:
        mapping = MappingNetwork(
            z_dim=s_dim, c_dim=0, w_dim=s_dim, num_ws=None, num_layers=n_mlp, lr_multiplier=MAPPING_LR, w_avg_beta=None
        )
    except ConfigError as e:
        raise CheckpointError(f"{where}: {e}") from None
    fc = {k[len("mapping.") :]: v for k, v in state.items() if k.startswith("mapping.fc")}
    load_state_dict_strict(mapping, fc, where, "mapping network (for w_avg)")
    z = torch.from_numpy(np.random.RandomState(W_AVG_SEED).randn(W_AVG_SAMPLES, s_dim)).float()
    total = torch.zeros([s_dim], dtype=torch.float64)
    with torch.no_grad():
        for chunk in z.split(1000):
            total += mapping.eval()(chunk, None).double().sum(dim=0)
    return (total / W_AVG_SAMPLES).float(), (
        f"estimated: mean of mapping(z) over {W_AVG_SAMPLES} z from np.random.RandomState({W_AVG_SEED}).randn"
    )


# --------------------------------------------------------------------------------------------
# Discriminator


def _discriminator(path: str, where: str, sd: Mapping[Any, Any]) -> NetworkRecord:
    sd = _state(where, "", sd)
    blocks = _indices(sd, rf"convs\.{_INDEX}\.")
    log2 = _log2_size(where, blocks[-1] if blocks else 0, "its 'convs' blocks")
    size = 2**log2
    channels = {size: _shape_of(where, "", sd, "convs.0.0.weight", 4)[0]}
    keys = {size: "convs.0.0.weight"}
    for i in range(2, log2 - 1):  # ResBlock i works at resolution size / 2^(i-1); block 1's width is C_size
        r = size >> (i - 1)
        keys[r] = f"convs.{i}.conv1.0.weight"
        channels[r] = _shape_of(where, "", sd, keys[r], 4)[0]
    channels[4], keys[4] = _shape_of(where, "", sd, "final_conv.0.weight", 4)[0], "final_conv.0.weight"
    channel_base, channel_max = _channel_table(where, "", channels, keys)
    state, _ = _convert(where, "", sd, _discriminator_spec(log2, channels))
    state[f"b{size}.fromrgb.resample_filter"] = _filter()
    for r in channels:
        if r > 4:
            for layer in ("", "conv0.", "conv1.", "skip."):
                state[f"b{r}.{layer}resample_filter"] = _filter()
    state["b4.conv.resample_filter"] = _filter()
    init_kwargs = dict(
        c_dim=0,
        img_resolution=size,
        img_channels=3,
        architecture="resnet",
        channel_base=channel_base,
        channel_max=channel_max,
        conv_clamp=None,
        num_fp16_res=0,
        epilogue_kwargs=dict(mbstd_group_size=MBSTD_GROUP, mbstd_num_channels=1),
    )
    return NetworkRecord(class_name="Discriminator", init_kwargs=init_kwargs, state=state)


def _discriminator_spec(log2: int, ch: Dict[int, int]) -> Dict[str, _Entry]:
    size = 2**log2
    spec: Dict[str, _Entry] = {}

    def add(key, shape, target, kernel=None):
        spec[key] = _Entry(tuple(shape), target, tuple(shape), kernel)

    add("convs.0.0.weight", (ch[size], 3, 1, 1), f"b{size}.fromrgb.weight")
    add("convs.0.1.bias", (ch[size],), f"b{size}.fromrgb.bias")
    for i in range(1, log2 - 1):
        r = size >> (i - 1)
        c, c_out = ch[r], ch[r // 2]
        add(f"convs.{i}.conv1.0.weight", (c, c, 3, 3), f"b{r}.conv0.weight")
        add(f"convs.{i}.conv1.1.bias", (c,), f"b{r}.conv0.bias")
        add(f"convs.{i}.conv2.0.kernel", (4, 4), None, kernel=_K)
        add(f"convs.{i}.conv2.1.weight", (c_out, c, 3, 3), f"b{r}.conv1.weight")
        add(f"convs.{i}.conv2.2.bias", (c_out,), f"b{r}.conv1.bias")
        add(f"convs.{i}.skip.0.kernel", (4, 4), None, kernel=_K)
        add(f"convs.{i}.skip.1.weight", (c_out, c, 1, 1), f"b{r}.skip.weight")
    c4 = ch[4]
    add("final_conv.0.weight", (c4, c4 + 1, 3, 3), "b4.conv.weight")
    add("final_conv.1.bias", (c4,), "b4.conv.bias")
    add("final_linear.0.weight", (c4, 16 * c4), "b4.fc.weight")
    add("final_linear.0.bias", (c4,), "b4.fc.bias")
    add("final_linear.1.weight", (1, c4), "b4.out.weight")
    add("final_linear.1.bias", (1,), "b4.out.bias")
    return spec
