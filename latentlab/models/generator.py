"""The StyleGAN2 / StyleGAN2-ADA generator: mapping network + synthesis network."""

from __future__ import annotations

import copy
from typing import Any, Mapping, Optional, Union

import torch
from torch import nn

from .arguments import MAPPING_RANGES, check_arguments, check_channel_base
from .mapping import MappingNetwork
from .synthesis import SynthesisNetwork


class Generator(nn.Module):
    """G(z, c) = synthesis(mapping(z, c)).

    Constructor arguments follow stylegan2-ada-pytorch (`synthesis_kwargs` may be
    given as a dict, as ADA pickles do, or flat, as stylegan3-era pickles do). They are
    range-checked before anything is built (`arguments.check_arguments`): ConfigError
    naming the argument for sizes outside `utils.limits` (e.g. z_dim=-1, img_resolution=3).
    """

    generation = 2

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: Optional[Mapping[str, Any]] = None,
        synthesis_kwargs: Optional[Mapping[str, Any]] = None,
        **extra_synthesis_kwargs: Any,
    ) -> None:
        mapping_kwargs = dict(mapping_kwargs or {})
        synthesis_kwargs = {**(synthesis_kwargs or {}), **extra_synthesis_kwargs}
        sizes = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels)
        nested = dict(mapping_kwargs=mapping_kwargs, synthesis_kwargs=synthesis_kwargs)
        check_arguments("Generator", dict(sizes, **nested), MAPPING_RANGES)
        check_channel_base("Generator", synthesis_kwargs.get("channel_base", 32768), img_resolution)
        super().__init__()
        self.init_kwargs = copy.deepcopy(
            dict(
                z_dim=z_dim,
                c_dim=c_dim,
                w_dim=w_dim,
                img_resolution=img_resolution,
                img_channels=img_channels,
                mapping_kwargs=mapping_kwargs,
                synthesis_kwargs=synthesis_kwargs,
            )
        )
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def empty_c(self, n: int, device: Union[torch.device, str, None] = None) -> torch.Tensor:
        return torch.zeros([n, self.c_dim], device=device)

    def forward(
        self,
        z: torch.Tensor,
        c: Optional[torch.Tensor] = None,
        truncation_psi: float = 1,
        truncation_cutoff: Optional[int] = None,
        noise_mode: str = "const",
        **synthesis_kwargs: Any,
    ) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] (None for unconditional) -> images [N, C, R, R] in about [-1, 1]."""
        if c is None and self.c_dim == 0:
            c = self.empty_c(z.shape[0], z.device)
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, "
            f"res={self.img_resolution}, channels={self.img_channels}"
        )
