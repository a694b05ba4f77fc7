"""Latent codes: seeds, spaces, conversions, layer selections and directions."""

from .codes import SPACES, LatentCodes, space_dim
from .directions import Direction, load_direction, orthogonalize
from .layers import level_layers, parse_layers, ws_resolutions
from .seeds import parse_seeds, z_from_seeds

__all__ = [
    "Direction",
    "LatentCodes",
    "SPACES",
    "level_layers",
    "load_direction",
    "orthogonalize",
    "parse_layers",
    "parse_seeds",
    "space_dim",
    "ws_resolutions",
    "z_from_seeds",
]
