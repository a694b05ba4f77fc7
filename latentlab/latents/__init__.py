"""Latent codes: seeds, spaces and conversions."""
from .seeds import parse_seeds, z_from_seeds

__all__ = ["parse_seeds", "z_from_seeds"]
