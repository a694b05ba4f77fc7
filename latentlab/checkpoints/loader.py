"""Load any supported checkpoint into latentlab networks, without executing code from the file."""
import os
from dataclasses import dataclass, field
from typing import Optional

import torch

from ..errors import CheckpointError
from ..models import Discriminator, Generator
from ..models.stylegan1 import StyleGAN1Discriminator, StyleGAN1Generator
from .native import is_safetensors, read_native

NETWORK_CLASSES = {
    cls.__name__: cls for cls in (Generator, Discriminator, StyleGAN1Generator, StyleGAN1Discriminator)
}


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns. Absent networks are None."""

    path: str
    format: str  # 'stylegan2-ada-pytorch', 'stylegan2-tf' or 'latentlab' (+ source format)
    G: Optional[torch.nn.Module] = None
    D: Optional[torch.nn.Module] = None
    G_ema: Optional[torch.nn.Module] = None
    kwargs: dict = field(default_factory=dict)  # net name -> original constructor kwargs
    extras: dict = field(default_factory=dict)

    @property
    def generator(self):
        """The generator meant for inference: G_ema when present, else G."""
        return self.G_ema if self.G_ema is not None else self.G

    def networks(self):
        return {k: v for k, v in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)) if v is not None}


def build_network(path, name, class_name, init_kwargs, state):
    """Instantiate one network and load `state` strictly (same names, same shapes)."""
    cls = NETWORK_CLASSES.get(class_name)
    if cls is None:
        raise CheckpointError(f"{path}: network {name!r} has unsupported class {class_name!r}")
    try:
        # Built for real (not on the meta device): non-persistent buffers such as blur filters are not in the file.
        net = cls(**init_kwargs)
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: network {name!r} has unsupported constructor arguments ({e})") from None
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: network {name!r} does not match its architecture: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{path}: network {name!r} parameter {key!r} has shape {tuple(state[key].shape)}, expected {tuple(ref.shape)}"
            )
        if not state[key].is_floating_point():
            raise CheckpointError(f"{path}: network {name!r} parameter {key!r} has non-float dtype {state[key].dtype}")
    net.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    return net.eval().requires_grad_(False)


def load_checkpoint(path, device="cpu") -> Checkpoint:
    """Read a checkpoint safely and return its networks in eval mode on `device`.

    `path` may also be a registry name (e.g. 'ffhq', see `latentlab models`) or
    an http(s) URL; those are downloaded once into the cache (resumable).
    Supported: stylegan2-ada-pytorch / stylegan3-era pickles of StyleGAN2
    networks, StyleGAN2 TensorFlow pickles, and latentlab .safetensors files.
    Raises `CheckpointError` (naming the file and the problem) for anything else.
    """
    from .download import resolve

    path = resolve(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: not a file")
    if is_safetensors(path):
        source, nets, extras = read_native(path)
        ckpt = Checkpoint(path=path, format="latentlab", extras=dict(extras, source_format=source))
        for name, (cls, kwargs, state) in nets.items():
            if name not in ("G", "D", "G_ema"):
                raise CheckpointError(f"{path}: unknown network name {name!r}")
            setattr(ckpt, name, build_network(path, name, cls, kwargs, state))
            ckpt.kwargs[name] = kwargs
    else:
        from .formats import read_checkpoint

        raw = read_checkpoint(path)
        ckpt = Checkpoint(path=path, format=raw.format, extras=raw.extras)
        for name, rec in raw.networks.items():
            setattr(ckpt, name, build_network(path, name, rec.class_name, rec.init_kwargs, rec.state))
            ckpt.kwargs[name] = rec.init_kwargs
    if ckpt.generator is None:
        raise CheckpointError(f"{path}: the checkpoint holds no generator")
    for name, net in ckpt.networks().items():
        setattr(ckpt, name, net.to(device))
    return ckpt


def load_generator(path, device="cpu"):
    """The inference generator of a checkpoint (G_ema, or Gs for TensorFlow pickles), in eval mode."""
    return load_checkpoint(path, device=device).generator


def convert(src, dst, networks=None):
    """Convert any supported checkpoint into latentlab's .safetensors format.

    networks: names to keep (e.g. ['G_ema']); ValueError if one is absent. Default: all.
    """
    from .native import save_native

    ckpt = load_checkpoint(src)
    nets = ckpt.networks()
    if networks is not None:
        missing = [n for n in networks if n not in nets]
        if missing:
            raise ValueError(f"{src}: has no network {missing[0]!r} (it has {', '.join(sorted(nets))})")
        nets = {n: nets[n] for n in networks}
    save_native(dst, nets, source_format=ckpt.format, extras=ckpt.extras)
    return ckpt
