"""Training batches from an image dataset (`latentlab.datasets.images.ImageDataset`).

Batches are drawn by position: sample p of the run is image `perm_e[p mod N]`
with `perm_e` a fixed permutation for epoch `e = p div N` seeded by (seed, e),
so the data order is a function of (seed, position) alone and a resumed run
reads exactly the images an uninterrupted one would.
"""

import numpy as np
import torch

from ..datasets.images import IMAGE_EXTENSIONS, ImageDataset  # noqa: F401  (the training loop's dataset type)


class PositionSampler:
    """Sample indices as a function of (seed, position): reshuffled every epoch, resumable exactly."""

    def __init__(self, size, seed=0):
        self.size = int(size)
        self.seed = int(seed)
        self._epoch, self._perm = None, None

    def index(self, position):
        epoch, offset = divmod(int(position), self.size)
        if epoch != self._epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.size)
            self._epoch = epoch
        return int(self._perm[offset])


def load_batch(dataset, sampler, start, count, stride=1, device="cpu"):
    """Images [count, C, R, R] float32 in [-1, 1] and labels for positions start, start+stride, ..."""
    imgs, labels = [], []
    for k in range(count):
        img, label = dataset.sample(sampler.index(start + k * stride))
        imgs.append(img)
        labels.append(label)
    x = torch.from_numpy(np.stack(imgs)).to(device=device, dtype=torch.float32) / 127.5 - 1
    c = torch.from_numpy(np.stack(labels)).to(device)
    return x, c
