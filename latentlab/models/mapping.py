"""Mapping network: z (and an optional label c) -> intermediate latent w, broadcast to W+."""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from ..errors import ConfigError
from ..utils import limits
from .arguments import MAPPING_RANGES, check_arguments, check_size
from .layers import FullyConnectedLayer, HookPoint, normalize_2nd_moment

# A mapping network takes z, a label c, or both (a discriminator's label mapping has z_dim=0), through
# at least one layer.
_RANGES = {"z_dim": (0, limits.MAX_DIM), **MAPPING_RANGES}


def truncate(ws: torch.Tensor, center: torch.Tensor, psi: float = 1.0, cutoff: Optional[int] = None) -> torch.Tensor:
    """Move ws [N, num_ws, w_dim] toward `center` by psi on the first `cutoff` layers (all if None)."""
    if psi == 1:
        return ws
    if cutoff is None:
        return center.lerp(ws, psi)
    ws = ws.clone()
    ws[:, :cutoff] = center.lerp(ws[:, :cutoff], psi)
    return ws


class MappingNetwork(nn.Module):
    """An MLP with equalised learning rate (lr multiplier 0.01 by default) and a running mean of w.

    z_dim and/or a label (z_dim=0: a label-only mapping), num_layers >= 1; ConfigError for
    arguments outside `utils.limits` (`arguments.check_arguments`), before anything is built.
    """

    w_avg: torch.Tensor  # buffer (only with num_ws and w_avg_beta)

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: Optional[int],
        num_layers: int = 8,
        embed_features: Optional[int] = None,
        layer_features: Optional[int] = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: Optional[float] = 0.995,
    ) -> None:
        args: Dict[str, object] = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=num_layers)
        args.update(embed_features=embed_features, layer_features=layer_features, activation=activation)
        check_arguments("MappingNetwork", dict(args, lr_multiplier=lr_multiplier, w_avg_beta=w_avg_beta), _RANGES)
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0 and embed_features < 1:
            raise ConfigError(
                f"MappingNetwork: constructor argument 'embed_features' = {embed_features}; expected at least 1 "
                "for a conditional network (c_dim > 0)"
            )
        if features[0] < 1:
            raise ConfigError(
                f"MappingNetwork: constructor arguments give the first layer no inputs (z_dim = {z_dim}, "
                f"c_dim = {c_dim}, embed_features = {embed_features}); expected z, a label c, or both"
            )
        check_size("MappingNetwork", c_dim * embed_features + sum(a * b for a, b in zip(features, features[1:])))
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            layer = FullyConnectedLayer(
                features[i], features[i + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{i}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))
        self.hook_z = HookPoint()  # normalised z (and embedded c), input of fc0
        self.hook_w = HookPoint()  # w before broadcasting and truncation

    def forward(
        self,
        z: Optional[torch.Tensor],
        c: Optional[torch.Tensor] = None,
        truncation_psi: float = 1,
        truncation_cutoff: Optional[int] = None,
        update_w_avg: Optional[bool] = None,
        skip_w_avg_update: bool = False,
    ) -> torch.Tensor:
        """Return ws [N, num_ws, w_dim] (or w [N, w_dim] when num_ws is None).

        The running mean `w_avg` is updated in training mode unless update_w_avg=False
        (or skip_w_avg_update=True, the official spelling).
        """
        x = None
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ConfigError(f"z must be [N, {self.z_dim}], got {None if z is None else tuple(z.shape)}")
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ConfigError(
                    f"c must be [N, {self.c_dim}] for this conditional network, got {None if c is None else tuple(c.shape)}"
                )
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        x = self.hook_z(x)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        x = self.hook_w(x)

        if update_w_avg is None:
            update_w_avg = self.training and not skip_w_avg_update
        if update_w_avg and self.w_avg_beta is not None and hasattr(self, "w_avg"):
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is None:
            if truncation_psi != 1:
                raise ConfigError("truncation needs a mapping network with num_ws and w_avg")
            return x
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        return truncate(x, self.w_avg, truncation_psi, truncation_cutoff)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, layers={self.num_layers}"
