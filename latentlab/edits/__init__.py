"""Edits along semantic directions, style mixing and interpolation."""

from ..latents.directions import Direction, load_direction, orthogonalize  # the shared type, re-exported
from .linear import distance, edit, edit_to_distance, parse_alphas, parse_channels, sweep
from .mixing import lerp, slerp, style_mix
from .registry import available_attributes, resolve_attribute

__all__ = [
    "Direction",
    "available_attributes",
    "distance",
    "edit",
    "edit_to_distance",
    "lerp",
    "load_direction",
    "orthogonalize",
    "parse_alphas",
    "parse_channels",
    "resolve_attribute",
    "slerp",
    "style_mix",
    "sweep",
]
