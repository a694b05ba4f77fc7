"""Latent-space studies: attribute linearity, perceptual path length (correlation study to come)."""

from .als import als, als_from_logits, bootstrap_ci, path_logits
from .ppl import LPIPSDistance, PPLResult, perceptual_path_length, prepare_images, slerp_unit

__all__ = [
    "LPIPSDistance",
    "PPLResult",
    "als",
    "als_from_logits",
    "bootstrap_ci",
    "path_logits",
    "perceptual_path_length",
    "prepare_images",
    "slerp_unit",
]
