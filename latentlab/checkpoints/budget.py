"""What a network described by a checkpoint would cost, checked before anything is built.

A checkpoint's constructor kwargs decide how large a network latentlab builds: `img_resolution=2**20`
means noise buffers of 10**12 pixels, `num_layers=10**9` a billion modules, `channel_base=0` a division
by zero. `check_kwargs` range-checks every kwarg latentlab's networks take against `utils.limits`, with
the checks the networks themselves run on Python callers' arguments (`models.arguments`); `plan_network`
then builds the network on PyTorch's 'meta' device, which records shapes but allocates no memory, and
counts its parameters and buffers against `limits.MAX_PARAMS`. Only a network that
passes both, and whose tensors match the file's (`state_dicts.check_state_dict`), is built for real.
Every failure is one CheckpointError naming the file and the network.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Mapping

import torch

from ..errors import CheckpointError, ConfigError
from ..models.arguments import MAPPING_RANGES, check_arguments, check_channel_base
from ..utils import limits

__all__ = ["check_kwargs", "plan_network", "count_elements"]


def check_kwargs(where: str, class_name: str, kwargs: Mapping[str, Any]) -> None:
    """Range-check the constructor kwargs of a `class_name` network read from a file (before building it).

    The checks are the networks' own (`models.arguments.check_arguments`: known sizes in their `limits`
    ranges, resolutions powers of two up to MAX_RESOLUTION, finite numbers, short filters with a non-zero
    sum), plus, for StyleGAN2 networks, at least one channel per block (channel_base >= img_resolution).
    where: 'file: network NAME', named first in the message; CheckpointError otherwise.
    """
    try:
        check_arguments(where, kwargs, MAPPING_RANGES if class_name in ("Generator", "StyleGAN3Generator") else None)
        if class_name in ("Generator", "Discriminator"):
            sub = kwargs.get("synthesis_kwargs") if class_name == "Generator" else kwargs
            base = sub.get("channel_base", 32768) if isinstance(sub, Mapping) else 32768
            check_channel_base(where, base, kwargs.get("img_resolution"))
    except ConfigError as e:
        raise CheckpointError(str(e)) from None


def count_elements(module: torch.nn.Module) -> int:
    """Elements of all parameters and buffers of `module` (persistent or not)."""
    return sum(t.numel() for t in itertools.chain(module.parameters(), module.buffers()))


def plan_network(where: str, factory: Callable[..., torch.nn.Module], kwargs: Mapping[str, Any]) -> torch.nn.Module:
    """`factory(**kwargs)` built on the meta device (no memory), after `check_kwargs`; CheckpointError when
    the kwargs are refused by the constructor or describe more than `limits.MAX_PARAMS` elements."""
    check_kwargs(where, getattr(factory, "__name__", "network"), kwargs)
    try:
        with torch.device("meta"):
            net = factory(**kwargs)
    except (MemoryError, RecursionError):
        raise CheckpointError(f"{where}: constructor arguments describe a network too large to build") from None
    except Exception as e:  # TypeError/ValueError/ZeroDivisionError/RuntimeError...: kwargs the class cannot take
        msg = str(e).splitlines()[0][:200] if str(e) else ""
        raise CheckpointError(
            f"{where}: unsupported constructor arguments ({type(e).__name__}{': ' + msg if msg else ''})"
        ) from None
    n = count_elements(net)
    if n > limits.MAX_PARAMS:
        raise CheckpointError(
            f"{where}: constructor arguments describe a network of {n:,} parameters and buffers "
            f"(more than the limit of {limits.MAX_PARAMS:,})"
        )
    return net
