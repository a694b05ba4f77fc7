"""Datasets: image folders/zips as the official dataset tool writes them (`images`), and procedural faces with
known ground-truth attributes (`toyfaces`)."""

from .images import IMAGE_EXTENSIONS, ImageDataset
from .toyfaces import (
    ATTRIBUTES,
    COLUMNS,
    DESCRIPTIONS,
    NUISANCE,
    POSITIVE,
    binarize,
    load_labels,
    neutral_attributes,
    reference_correlation,
    render_batch,
    render_face,
    sample_attributes,
    write_dataset,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "ATTRIBUTES",
    "COLUMNS",
    "DESCRIPTIONS",
    "NUISANCE",
    "POSITIVE",
    "binarize",
    "load_labels",
    "neutral_attributes",
    "reference_correlation",
    "render_batch",
    "render_face",
    "sample_attributes",
    "write_dataset",
]
