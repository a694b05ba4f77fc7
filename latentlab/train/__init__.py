"""Training: the StyleGAN2 loop and its add-on terms (HSR, learned cluster mappings).

- `loop.py`: `Trainer` (train / fine-tune / resume, snapshots, metrics) and `TrainingOptions`.
- `losses.py`: the StyleGAN2 loss terms (logistic, R1, path length).
- `dataset.py`: image folders and zips, resumable sampling.
- `hsr.py`, `extractors.py`: the Hierarchical Semantic Regulariser and its frozen feature extractors.
- `clusters.py`: learned multi-level cluster mappings and their truncation.
- `interrupt.py`: Ctrl-C during a run writes a snapshot and the resume state, then stops.
- `evaluation.py`: metrics during training (`Trainer(evaluators=...)`): the run's metrics-eval.csv.
"""

from .dataset import ImageDataset, PositionSampler
from .loop import Trainer, TrainingOptions, scratch_networks
from .losses import StyleGAN2Loss

__all__ = ["ImageDataset", "PositionSampler", "StyleGAN2Loss", "Trainer", "TrainingOptions", "scratch_networks"]
