"""Real images into the latent space: optimisation-based projection (the StyleGAN2-ADA projector)."""

from .files import load_targets, write_projection
from .projector import (
    ProjectionResult,
    lr_at,
    noise_regularization,
    project,
    renormalize_noise_,
    w_noise_scale,
    w_stats,
)

__all__ = [
    "ProjectionResult",
    "load_targets",
    "lr_at",
    "noise_regularization",
    "project",
    "renormalize_noise_",
    "w_noise_scale",
    "w_stats",
    "write_projection",
]
