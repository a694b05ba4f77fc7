"""Load any supported checkpoint into latentlab networks, without executing code from the file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import torch

from ..errors import CheckpointError, ConfigError
from ..models import Discriminator, Generator
from ..models.stylegan1 import StyleGAN1Discriminator, StyleGAN1Generator
from ..models.stylegan3 import StyleGAN3Generator
from .budget import plan_network
from .formats import read_checkpoint
from .native import read_native, save_native
from .safe_pickle import short_repr
from .state_dicts import check_state_dict, is_safetensors, load_state_dict_strict, nonfinite_counts
from .tags import FORMAT_LATENTLAB

NETWORK_CLASSES = {
    cls.__name__: cls
    for cls in (Generator, Discriminator, StyleGAN1Generator, StyleGAN1Discriminator, StyleGAN3Generator)
}


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns. Absent networks are None."""

    path: str
    format: str  # a tag of .tags.ALL_FORMATS; for FORMAT_LATENTLAB, extras['source_format'] is the original one
    G: Optional[torch.nn.Module] = None
    D: Optional[torch.nn.Module] = None
    G_ema: Optional[torch.nn.Module] = None
    kwargs: dict = field(default_factory=dict)  # net name -> original constructor kwargs
    extras: dict = field(default_factory=dict)
    nonfinite: dict = field(default_factory=dict)  # net name -> {tensor name: NaN/inf count} (allow_nonfinite only)

    @property
    def generator(self) -> Optional[torch.nn.Module]:
        """The generator meant for inference: G_ema when present, else G."""
        return self.G_ema if self.G_ema is not None else self.G

    def networks(self) -> Dict[str, torch.nn.Module]:
        return {k: v for k, v in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)) if v is not None}


def build_network(
    path: str,
    name: str,
    class_name: str,
    init_kwargs: Mapping[str, Any],
    state: Mapping[str, torch.Tensor],
    allow_nonfinite: bool = False,
) -> torch.nn.Module:
    """Instantiate one network and load `state` with `state_dicts.load_state_dict_strict`.

    Before anything is allocated, the kwargs are range-checked and the network is planned on the meta
    device (`budget.plan_network`: parameter count within `limits.MAX_PARAMS`), and `state` is checked
    against the planned state dict: same names, same shapes, floating-point and (unless `allow_nonfinite`)
    finite values. CheckpointError naming the file otherwise.
    """
    cls = NETWORK_CLASSES.get(class_name)
    if cls is None:
        raise CheckpointError(f"{path}: network {name!r} has unsupported class {short_repr(class_name)}")
    where = f"{path}: network {name!r}"
    what = f"the {class_name} its constructor arguments describe"
    planned = plan_network(where, cls, init_kwargs)
    state = check_state_dict(planned.state_dict(), state, where, what, allow_nonfinite=allow_nonfinite)
    try:
        # Built for real (not on the meta device): non-persistent buffers such as blur filters are not in the file.
        net = cls(**init_kwargs)
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{where} has unsupported constructor arguments ({e})") from None
    load_state_dict_strict(net, state, where, what, allow_nonfinite=allow_nonfinite)
    return net.eval().requires_grad_(False)


def _nonfinite(path: str, name: str, state: Mapping[str, Any], allow: bool) -> Dict[str, int]:
    """{key: count} of the NaN/inf values of one network's tensors; refused (one line) unless `allow`."""
    counts = nonfinite_counts(state)
    if counts and not allow:
        first = next(iter(counts))
        more = f"; {len(counts)} tensors, {sum(counts.values())} values in all" if len(counts) > 1 else ""
        raise CheckpointError(
            f"{path}: network {name!r}: key {first!r} holds non-finite values (NaN or inf){more}; "
            "`latentlab info` lists them; `generate`/`edit --allow-nonfinite` (allow_nonfinite=True) load it anyway"
        )
    return counts


def load_checkpoint(
    path: Union[str, os.PathLike], device: Union[torch.device, str] = "cpu", allow_nonfinite: bool = False
) -> Checkpoint:
    """Read a checkpoint safely and return its networks in eval mode on `device`.

    `path` may also be a registry name (e.g. 'ffhq', see `latentlab models`) or
    an http(s) URL; those are downloaded once into the cache (resumable). A file of a Hugging Face Hub
    repository, 'hf://owner/repo/path/to/file.pkl[@revision]', is fetched with huggingface_hub
    (`latentlab[hub]`) into its cache (resumable; a branch, tag or commit pins it; HF_HUB_OFFLINE=1 uses
    the cached copy only) and then read like any other file (`download.resolve`, `hub`).
    Supported (`tags`): stylegan2-ada-pytorch / stylegan3-era pickles of StyleGAN2
    networks, StyleGAN2 and original StyleGAN TensorFlow pickles, rosinality stylegan2-pytorch `.pt`
    files (train.py, convert_weight.py, and pSp/e4e-style files whose `decoder` is its generator; read by
    `torch_save.read_torch_save`, which checks the storages against the file and the limits before torch
    reads them, with `weights_only=True`), and latentlab .safetensors files.
    Raises `CheckpointError` (naming the file and the problem) for anything else, including NaN/inf
    weights unless `allow_nonfinite` (then `Checkpoint.nonfinite` lists them).
    """
    from .download import resolve

    path = resolve(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: not a file")
    specs: Dict[str, Any] = {}
    if is_safetensors(path):
        source, nets, extras = read_native(path)
        ckpt = Checkpoint(path=path, format=FORMAT_LATENTLAB, extras=dict(extras, source_format=source))
        for name, (cls, kwargs, state) in nets.items():
            if name not in ("G", "D", "G_ema"):
                raise CheckpointError(f"{path}: unknown network name {short_repr(name)}")
            specs[name] = (cls, kwargs, state)
    else:
        raw = read_checkpoint(path)
        ckpt = Checkpoint(path=path, format=raw.format, extras=raw.extras)
        specs = {name: (rec.class_name, rec.init_kwargs, rec.state) for name, rec in raw.networks.items()}
    for name, (cls, kwargs, state) in specs.items():
        counts = _nonfinite(path, name, state, allow_nonfinite)
        if counts:
            ckpt.nonfinite[name] = counts
        setattr(ckpt, name, build_network(path, name, cls, kwargs, state, allow_nonfinite=allow_nonfinite))
        ckpt.kwargs[name] = kwargs
    if ckpt.generator is None:
        raise CheckpointError(f"{path}: the checkpoint holds no generator")
    for name, net in ckpt.networks().items():
        setattr(ckpt, name, net.to(device))
    return ckpt


def load_generator(
    path: Union[str, os.PathLike], device: Union[torch.device, str] = "cpu", allow_nonfinite: bool = False
) -> torch.nn.Module:
    """The inference generator of a checkpoint (G_ema, or Gs for TensorFlow pickles), in eval mode.

    allow_nonfinite: load NaN/inf weights instead of refusing them (images will be NaN/black)."""
    generator = load_checkpoint(path, device=device, allow_nonfinite=allow_nonfinite).generator
    assert generator is not None  # load_checkpoint refuses checkpoints without one
    return generator


def convert(
    src: Union[str, os.PathLike],
    dst: Union[str, os.PathLike],
    networks: Optional[Sequence[str]] = None,
    channel_base: Optional[int] = None,
    channel_max: Optional[int] = None,
) -> Checkpoint:
    """Convert any supported checkpoint into latentlab's .safetensors format, or (dst ending in .pkl) into
    NVIDIA's pickle layout (stylegan2-ada-pytorch's for StyleGAN2 networks, stylegan3's for StyleGAN3
    generators; weights and constructor arguments as data, `checkpoints.export`).

    networks: names to keep (e.g. ['G_ema']); ValueError if one is absent. Default: all.
    channel_base, channel_max: widen every network to these (`models.widen`: more channels, the same function;
    ConfigError for networks other than StyleGAN2 generators and discriminators).
    """
    ckpt = load_checkpoint(src)
    nets = ckpt.networks()
    if networks is not None:
        missing = [n for n in networks if n not in nets]
        if missing:
            raise ConfigError(f"{src}: has no network {missing[0]!r} (it has {', '.join(sorted(nets))})")
        nets = {n: nets[n] for n in networks}
    if channel_base is not None or channel_max is not None:
        from ..models.widen import widen

        wide = {}
        for name, net in nets.items():
            try:
                wide[name] = widen(net, channel_base=channel_base, channel_max=channel_max)
            except ConfigError as e:
                raise ConfigError(f"{src}: {name}: {e}") from None
        nets = wide
    if os.fspath(dst).endswith(".pkl"):
        from .export import EXPORTABLE, save_official_pickle

        for name, net in nets.items():
            if type(net).__name__ not in EXPORTABLE:
                raise ConfigError(
                    f"{src}: {name} is a {type(net).__name__}; only StyleGAN2 and StyleGAN3 networks have the pickle "
                    "layout (write .safetensors instead)"
                )
        save_official_pickle(dst, nets)
        return ckpt
    save_native(dst, nets, source_format=ckpt.format, extras=ckpt.extras)
    return ckpt
