"""Procedural datasets with known ground-truth attributes (see `latentlab.datasets.toyfaces`)."""
from .toyfaces import (ATTRIBUTES, COLUMNS, DESCRIPTIONS, NUISANCE, POSITIVE, binarize, load_labels, neutral_attributes,
                       reference_correlation, render_batch, render_face, sample_attributes, write_dataset)

__all__ = [
    "ATTRIBUTES", "COLUMNS", "DESCRIPTIONS", "NUISANCE", "POSITIVE", "binarize", "load_labels", "neutral_attributes",
    "reference_correlation", "render_batch", "render_face", "sample_attributes", "write_dataset",
]
