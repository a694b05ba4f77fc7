"""Widen a trained StyleGAN2 generator or discriminator: more channels per block, the same function.

A network trained at a small width can keep training at a larger one without starting over (the embedded
toyfaces model, issue 21). `widen` builds the network again with a larger `channel_base` / `channel_max`, copies
every trained weight into the top-left corner of its new tensor and initialises the rest so that the new
channels change nothing until training moves them:

- Generator: new output channels get the usual random weights, but every old layer reads them with zero weights.
  They cannot be silenced at the source instead, because noise and bias are added after the modulated
  convolution. Zero reading weights also leave the demodulation of the old channels unchanged (it sums the
  squares of a row's weights). Gradients reach the reading weights at once (the new channels are active),
  and the new channels' own weights once those move.
- Discriminator: new output channels get zero weights (and zero bias), so they are exactly 0 after the
  activation; the reading weights keep their random init and carry gradients back to them. The other way round
  would change the minibatch standard deviation, which averages over every channel of the 4x4 features; zero
  channels add sqrt(1e-8) = 1e-4 each to it, which the reading weight's rescaling cannot absorb exactly (the
  3x3 conv sees zero padding at the borders), so D's output moves by about 1e-4 x that weight.
- Equalised learning rate: a layer scales its stored weights by 1/sqrt(fan_in) at run time, so where fan_in grows
  the copied weights are multiplied by sqrt(new fan_in / old fan_in). Modulated convolutions that demodulate are
  scale-free and copied as they are.

The result is checked: both networks run on the same random inputs, and a difference above the tolerance raises
ConfigError (a layer type this file does not know would show up there).
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from ..errors import ConfigError
from .discriminator import Discriminator, DiscriminatorEpilogue
from .generator import Generator

# Largest difference `widen` accepts between the old and the widened network on the same inputs, relative to the
# old output's largest magnitude (or 1). G is exact up to float round-off; D moves by ~1e-4 (module docstring).
GENERATOR_TOLERANCE = 1e-5
DISCRIMINATOR_TOLERANCE = 1e-3


def widen(
    net: nn.Module,
    channel_base: Optional[int] = None,  # New channel_base (blocks of resolution r get min(base // r, max)).
    channel_max: Optional[int] = None,  # New channel_max.
    seed: int = 0,  # Seeds the random weights of the new channels (G and G_ema widened alike get the same ones).
    check: bool = True,  # Run both networks on random inputs and refuse a result that differs.
) -> nn.Module:
    """A copy of a StyleGAN2 `Generator` or `Discriminator` with at least as many channels in every block,
    computing the same function (module docstring). ConfigError for other networks, for a narrower block, or
    for a discriminator with more than one minibatch-stddev channel (its channel groups would be reshuffled)."""
    if not isinstance(net, (Generator, Discriminator)):
        raise ConfigError(f"widening supports StyleGAN2 generators and discriminators, not {type(net).__name__}")
    kwargs: Dict[str, Any] = copy.deepcopy(net.init_kwargs)
    where: Dict[str, Any] = kwargs["synthesis_kwargs"] if isinstance(net, Generator) else kwargs
    old_base, old_max = where.get("channel_base", 32768), where.get("channel_max", 512)
    where["channel_base"] = old_base if channel_base is None else int(channel_base)
    where["channel_max"] = old_max if channel_max is None else int(channel_max)
    if isinstance(net, Discriminator):
        if int((kwargs.get("epilogue_kwargs") or {}).get("mbstd_num_channels", 1)) > 1:
            raise ConfigError("widening a discriminator with more than one minibatch-stddev channel is not supported")
        if net.c_dim > 0:  # the label embedding's width defaults to the 4x4 width: keep it
            kwargs["cmap_dim"] = net.b4.cmap_dim
    _check_not_narrower(net, where["channel_base"], where["channel_max"], old_base, old_max)
    device = next(net.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wide = type(net)(**kwargs)
    wide.to(device).train(net.training)
    silent_rows = isinstance(net, Discriminator)
    old_modules = dict(net.named_modules())
    in_maps = _input_maps(net, wide)
    with torch.no_grad():
        for name, module in wide.named_modules():
            old = old_modules[name]
            gain = getattr(old, "weight_gain", 1.0) / getattr(module, "weight_gain", 1.0)
            tensors = dict(module.named_parameters(recurse=False), **dict(module.named_buffers(recurse=False)))
            for key, new_t in tensors.items():
                old_t = getattr(old, key)
                if new_t is None or old_t is None:
                    continue
                if key == "weight" and new_t.ndim >= 2:
                    _copy_weight(new_t, old_t, gain, in_maps.get(name), silent_rows)
                elif new_t.shape == old_t.shape:
                    new_t.copy_(old_t)
                elif new_t.ndim >= 1 and new_t.shape[1:] == old_t.shape[1:]:
                    new_t[: old_t.shape[0]] = old_t  # biases, the const input: new entries keep their init
                    if silent_rows:
                        new_t[old_t.shape[0] :] = 0
                else:
                    raise ConfigError(f"cannot widen {name}.{key}: {tuple(old_t.shape)} -> {tuple(new_t.shape)}")
    if check:
        _check_same_function(net, wide)
    return wide


def _check_not_narrower(
    net: Union[Generator, Discriminator], base: int, cmax: int, old_base: int, old_max: int
) -> None:
    resolutions = [2**i for i in range(2, int(net.img_resolution).bit_length())]
    for res in resolutions:
        old, new = min(old_base // res, old_max), min(base // res, cmax)
        if new < old:
            raise ConfigError(
                f"channel_base {base} / channel_max {cmax} gives {new} channels at {res} px where the network has "
                f"{old}: widening cannot remove channels"
            )


def _input_maps(net: nn.Module, wide: nn.Module) -> Dict[str, Tuple[List[int], List[float]]]:
    """For layers whose input channels are not simply the old ones first: where each old input goes, and a factor
    for its weights beyond the fan-in gain.

    The discriminator's 4x4 conv reads [features, minibatch stddev]: the stddev channel moves behind the new
    features, and its weights grow by new / old channels, since the stddev is averaged over more channels now
    (the new ones, zero, add ~1e-4 each). Its dense layer reads the 4x4 features flattened channel-major.
    """
    maps: Dict[str, Tuple[List[int], List[float]]] = {}
    for name, module in net.named_modules():
        if not isinstance(module, DiscriminatorEpilogue):
            continue
        new_module = wide.get_submodule(name)
        assert isinstance(new_module, DiscriminatorEpilogue)
        c_old, c_new = module.in_channels, new_module.in_channels
        mb = module.conv.in_channels - c_old
        maps[f"{name}.conv"] = (
            list(range(c_old)) + [c_new + j for j in range(mb)],
            [1.0] * c_old + [c_new / c_old] * mb,
        )
        area = module.resolution**2
        maps[f"{name}.fc"] = ([c * area + p for c in range(c_old) for p in range(area)], [1.0] * (c_old * area))
    return maps


def _copy_weight(
    new_t: torch.Tensor,
    old_t: torch.Tensor,
    gain: float,
    in_map: Optional[Tuple[List[int], List[float]]],
    silent_rows: bool,
) -> None:
    """Old weights into the new tensor, scaled by the fan-in gain ratio; then old rows read nothing new (G), or
    new rows produce nothing (D)."""
    rows, cols = old_t.shape[0], old_t.shape[1]
    index, factor = in_map if in_map is not None else (list(range(cols)), [1.0] * cols)
    idx = torch.tensor(index, device=new_t.device, dtype=torch.long)
    scale = torch.tensor(factor, device=new_t.device, dtype=old_t.dtype) * gain
    if silent_rows:
        new_t[rows:] = 0
    else:
        new_t[:rows] = 0
    new_t[:rows].index_copy_(1, idx, old_t * scale.view([1, cols] + [1] * (old_t.ndim - 2)))  # a view: in place


def _check_same_function(net: Union[Generator, Discriminator], wide: nn.Module) -> None:
    device = next(net.parameters()).device
    g = torch.Generator(device="cpu").manual_seed(0)
    c = torch.zeros([4, net.c_dim], device=device)
    if net.c_dim > 0:
        c[:, 0] = 1  # one class for conditional networks
    with torch.no_grad():
        if isinstance(net, Generator):
            z = torch.randn([4, net.z_dim], generator=g).to(device)
            a, b = net(z, c, noise_mode="const"), wide(z, c, noise_mode="const")
            tol = GENERATOR_TOLERANCE
        else:  # four images: one minibatch-stddev group
            img = torch.randn([4, net.img_channels, net.img_resolution, net.img_resolution], generator=g).to(device)
            a, b = net(img, c if net.c_dim else None), wide(img, c if net.c_dim else None)
            tol = DISCRIMINATOR_TOLERANCE
    diff = float((a - b).abs().max()) / max(1.0, float(a.abs().max()))
    if not diff <= tol:
        raise ConfigError(f"widening changed the {type(net).__name__}'s output by {diff:.3g} (tolerance {tol:g})")
