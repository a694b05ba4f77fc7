"""S space (per-layer styles) shared by every synthesis network, whatever its generation."""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator, List, Mapping, Protocol, Tuple

import torch
from torch import nn

from ..errors import ConfigError


class StyleLayer(Protocol):
    """A style-taking layer (an nn.Module): its affine map from w to S space and that space's width."""

    @property
    def style_dim(self) -> int: ...

    def style(self, w: torch.Tensor) -> torch.Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...


class StyleSpaceMixin:
    """Needs `style_layers()` -> [(name, layer, w_index)], each layer with `.style(w)` and `.style_dim`,
    plus `num_ws` and `w_dim`."""

    num_ws: int
    w_dim: int

    def style_layers(self) -> List[Tuple[str, StyleLayer, int]]:  # provided by the network class
        raise NotImplementedError

    @property
    def style_dims(self) -> OrderedDict[str, int]:
        """OrderedDict name -> number of style channels."""
        return OrderedDict((name, layer.style_dim) for name, layer, _ in self.style_layers())

    def compute_styles(self, ws: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """ws [N, num_ws, w_dim] -> OrderedDict name -> styles [N, C] (affine outputs)."""
        self._check_ws(ws)
        return OrderedDict((name, layer.style(ws[:, i])) for name, layer, i in self.style_layers())

    def pack_styles(self, styles: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Dict of per-layer styles -> one flat [N, sum(C)] tensor (the S-space vector)."""
        return torch.cat([styles[name] for name in self.style_dims], dim=1)

    def unpack_styles(self, flat: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """Inverse of `pack_styles`."""
        dims = self.style_dims
        if flat.ndim != 2 or flat.shape[1] != sum(dims.values()):
            raise ConfigError(f"flat styles must be [N, {sum(dims.values())}], got {tuple(flat.shape)}")
        return OrderedDict(zip(dims, flat.split(list(dims.values()), dim=1)))

    def _check_ws(self, ws):
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ConfigError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")

    def _normalise_inputs(self, ws, styles):
        """Validate (ws, styles) for forward(); returns (ws as float32 or None, styles dict or None)."""
        if ws is None and styles is None:
            raise ConfigError("synthesis needs ws or styles")
        if ws is not None:
            self._check_ws(ws)
            param = next(self.parameters(), None)  # float32 normally; float64 when the user converted the model
            ws = ws.to(torch.float64 if param is not None and param.dtype == torch.float64 else torch.float32)
        if styles is not None and torch.is_tensor(styles):
            styles = self.unpack_styles(styles)
        if styles is not None:
            dims = self.style_dims
            unknown = set(styles) - set(dims)
            if unknown:
                raise ConfigError(f"unknown style layers {sorted(unknown)}; expected names like {list(dims)[:3]}")
            if ws is None and len(styles) != len(dims):
                raise ConfigError("styles without ws must name every layer")
        return ws, styles

    @staticmethod
    def _block_styles(styles, resolution):
        """The entries of `styles` that belong to block b{resolution}, keyed by layer name within it."""
        if styles is None:
            return None
        prefix = f"b{resolution}."
        return {k[len(prefix) :]: v for k, v in styles.items() if k.startswith(prefix)}
