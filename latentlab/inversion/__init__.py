"""Real images into the latent space: optimisation-based projection (the StyleGAN2-ADA projector) and GH-Feat's
hierarchical encoder (`encoder`, trained by `encoder_training`)."""

from .encoder import (
    HierarchicalEncoder,
    check_encoder_for,
    encode,
    encode_images,
    level_features,
    load_encoder,
    save_encoder,
)
from .encoder_training import train_encoder
from .files import PROJECTION_FORMATS, check_projection_format, load_targets, write_projection
from .projector import (
    ProjectionResult,
    lr_at,
    noise_regularization,
    project,
    renormalize_noise_,
    s_noise,
    w_noise_scale,
    w_stats,
)
from .video import ProjectionVideo

__all__ = [
    "PROJECTION_FORMATS",
    "HierarchicalEncoder",
    "ProjectionResult",
    "ProjectionVideo",
    "check_encoder_for",
    "check_projection_format",
    "encode",
    "encode_images",
    "level_features",
    "load_encoder",
    "load_targets",
    "lr_at",
    "noise_regularization",
    "project",
    "renormalize_noise_",
    "s_noise",
    "save_encoder",
    "train_encoder",
    "w_noise_scale",
    "w_stats",
    "write_projection",
]
