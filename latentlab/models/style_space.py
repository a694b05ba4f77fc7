"""S space (per-layer styles) shared by every synthesis network, whatever its generation."""
from collections import OrderedDict

import torch


class StyleSpaceMixin:
    """Needs `style_layers()` -> [(name, layer, w_index)], each layer with `.style(w)` and `.style_dim`,
    plus `num_ws` and `w_dim`."""

    @property
    def style_dims(self):
        """OrderedDict name -> number of style channels."""
        return OrderedDict((name, layer.style_dim) for name, layer, _ in self.style_layers())

    def compute_styles(self, ws):
        """ws [N, num_ws, w_dim] -> OrderedDict name -> styles [N, C] (affine outputs)."""
        self._check_ws(ws)
        return OrderedDict((name, layer.style(ws[:, i])) for name, layer, i in self.style_layers())

    def pack_styles(self, styles):
        """Dict of per-layer styles -> one flat [N, sum(C)] tensor (the S-space vector)."""
        return torch.cat([styles[name] for name in self.style_dims], dim=1)

    def unpack_styles(self, flat):
        """Inverse of `pack_styles`."""
        dims = self.style_dims
        if flat.ndim != 2 or flat.shape[1] != sum(dims.values()):
            raise ValueError(f"flat styles must be [N, {sum(dims.values())}], got {tuple(flat.shape)}")
        return OrderedDict(zip(dims, flat.split(list(dims.values()), dim=1)))

    def _check_ws(self, ws):
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")

    def _normalise_inputs(self, ws, styles):
        """Validate (ws, styles) for forward(); returns (ws as float32 or None, styles dict or None)."""
        if ws is None and styles is None:
            raise ValueError("synthesis needs ws or styles")
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
                raise ValueError(f"unknown style layers {sorted(unknown)}; expected names like {list(dims)[:3]}")
            if ws is None and len(styles) != len(dims):
                raise ValueError("styles without ws must name every layer")
        return ws, styles

    @staticmethod
    def _block_styles(styles, resolution):
        """The entries of `styles` that belong to block b{resolution}, keyed by layer name within it."""
        if styles is None:
            return None
        prefix = f"b{resolution}."
        return {k[len(prefix):]: v for k, v in styles.items() if k.startswith(prefix)}
