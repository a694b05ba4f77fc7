"""Latent codes: seeds, spaces, conversions and layer selections."""
from .codes import SPACES, LatentCodes, space_dim
from .layers import level_layers, parse_layers, ws_resolutions
from .seeds import parse_seeds, z_from_seeds

__all__ = ["LatentCodes", "SPACES", "level_layers", "parse_layers", "parse_seeds", "space_dim", "ws_resolutions", "z_from_seeds"]
