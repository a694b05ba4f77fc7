"""Fused bias + activation + gain + clamp, the pointwise tail of every StyleGAN2 layer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ._impl import choose_impl


@dataclass(frozen=True)
class Activation:
    name: str
    func: Callable  # (x, alpha) -> y
    def_alpha: float
    def_gain: float


def _selu(x, alpha):
    return F.selu(x)


ACTIVATIONS = {
    a.name: a
    for a in [
        Activation("linear", lambda x, a: x, 0.0, 1.0),
        Activation("relu", lambda x, a: F.relu(x), 0.0, math.sqrt(2)),
        Activation("lrelu", lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2)),
        Activation("tanh", lambda x, a: torch.tanh(x), 0.0, 1.0),
        Activation("sigmoid", lambda x, a: torch.sigmoid(x), 0.0, 1.0),
        Activation("elu", lambda x, a: F.elu(x, a), 1.0, 1.0),
        Activation("selu", _selu, 0.0, 1.0),
        Activation("softplus", lambda x, a: F.softplus(x), 0.0, 1.0),
        Activation("swish", lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2)),
    ]
}


def activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ConfigError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}") from None


def _resolve(act, alpha, gain, clamp):
    spec = activation(act)
    alpha = float(spec.def_alpha if alpha is None else alpha)
    gain = float(spec.def_gain if gain is None else gain)
    clamp = float(-1 if clamp is None else clamp)  # negative = no clamping
    return spec, alpha, gain, clamp


def bias_act_ref(
    x: torch.Tensor,
    b: Optional[torch.Tensor] = None,
    dim: int = 1,
    act: str = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    clamp: Optional[float] = None,
) -> torch.Tensor:
    """Reference path: plain PyTorch ops, differentiable to any order."""
    spec, alpha, gain, clamp = _resolve(act, alpha, gain, clamp)
    dim = dim % x.ndim if x.ndim else 0
    if b is not None:
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ConfigError(f"bias of shape {tuple(b.shape)} does not fit dim {dim} of {tuple(x.shape)}")
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha)
    # Without autograd, work in place on the fresh tensor made above (the caller's x is never touched).
    inplace = not (torch.is_grad_enabled() and x.requires_grad) and (b is not None or spec.name != "linear")
    if gain != 1:
        x = x.mul_(gain) if inplace else x * gain
    if clamp >= 0:
        x = x.clamp_(-clamp, clamp) if inplace else x.clamp(-clamp, clamp)
    return x


def bias_act(
    x: torch.Tensor,
    b: Optional[torch.Tensor] = None,
    dim: int = 1,
    act: str = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    clamp: Optional[float] = None,
    impl: Optional[str] = None,
) -> torch.Tensor:
    """y = clamp(act(x + b) * gain).

    Args:
        x: input tensor of any shape.
        b: optional bias, 1-D with x.shape[dim] entries.
        dim: the axis that `b` runs along.
        act: one of linear, relu, lrelu, tanh, sigmoid, elu, selu, softplus, swish.
        alpha: activation shape parameter (lrelu slope, elu scale); None = default.
        gain: output scale; None = the activation's default (sqrt(2) for relu/lrelu/swish).
        clamp: clamp the output to [-clamp, clamp]; None = no clamping.
        impl: 'ref', 'cuda' or None (automatic).
    """
    if choose_impl(x, impl, "bias_act") == "cuda":
        from .cuda.functions import bias_act_cuda

        return bias_act_cuda(x, b, dim, act, alpha, gain, clamp)
    return bias_act_ref(x, b, dim, act, alpha, gain, clamp)
