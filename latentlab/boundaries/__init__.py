"""Semantic boundaries from scored samples (InterFaceGAN) and the linear separability metric."""
from .separability import SeparabilityResult, conditional_entropy, linear_separability
from .svm import Boundary, split_samples, train_boundaries, train_boundary, write_boundary

__all__ = [
    "Boundary", "SeparabilityResult", "conditional_entropy", "linear_separability", "split_samples",
    "train_boundaries", "train_boundary", "write_boundary",
]
