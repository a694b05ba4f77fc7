"""Latent-space studies: attribute linearity (more to come: correlations, PPL)."""
from .als import als, als_from_logits, bootstrap_ci, path_logits

__all__ = ["als", "als_from_logits", "bootstrap_ci", "path_logits"]
