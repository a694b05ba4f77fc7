"""Semantic boundaries from scored samples (InterFaceGAN) and the linear separability metric."""

from .labels import MINORITY_WARN, ImbalancedLabelsWarning
from .separability import (
    RANKINGS,
    SeparabilityResult,
    conditional_entropy,
    conditional_entropy_from_table,
    joint_table,
    linear_separability,
    official_probabilities,
    rank,
)
from .svm import Boundary, split_samples, train_boundaries, train_boundary, write_boundary

__all__ = [
    "Boundary",
    "ImbalancedLabelsWarning",
    "MINORITY_WARN",
    "RANKINGS",
    "SeparabilityResult",
    "conditional_entropy",
    "conditional_entropy_from_table",
    "joint_table",
    "linear_separability",
    "official_probabilities",
    "rank",
    "split_samples",
    "train_boundaries",
    "train_boundary",
    "write_boundary",
]
