"""Perceptual distances for inversion (projector, encoder reports), by name.

The published projector compares images with LPIPS-VGG, whose VGG16 ImageNet weights are
downloaded once into torch's cache. The embedded toyfaces model ships its own trained network, the
attribute classifier, so that projecting into it works offline with meaningful results:

    lpips          LPIPS-VGG of the `lpips` package (the published choice)
    lpips-random   the same with an untrained VGG (offline smoke runs only: not meaningful)
    toyfaces       stage features of the embedded classifier (below)

'auto' picks 'toyfaces' for the embedded model and 'lpips' for every other generator.

The toyfaces distance is LPIPS's recipe without learned weights: for every stage of the classifier
(after its stride-2 convolution and repeats), channels are unit-normalised at each position, the
squared difference is summed over channels and averaged over positions, and the stages are summed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, List, Optional

import torch
from torch import nn

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator

DISTANCES = ("auto", "lpips", "lpips-random", "toyfaces")
Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def unit_channels(x: torch.Tensor) -> torch.Tensor:
    """x [N, C, H, W] with the channel vector at every position scaled to unit length (LPIPS's normalisation)."""
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)


class ToyFacesStages(nn.Module):
    """The embedded classifier's stage activations for images in [-1, 1] (its own preprocessing applied)."""

    def __init__(self, path: Optional[str] = None):
        super().__init__()
        from .. import defaults
        from ..attributes.toyfaces import ToyFacesClassifier

        clf = ToyFacesClassifier.from_file(path or defaults.classifier_path())
        self.preprocess = clf.preprocess
        net = clf.net.eval().requires_grad_(False)
        repeats = net.init_kwargs["repeats"]
        blocks = list(net.body.children())
        self.stages = nn.ModuleList()
        start = 0
        for r in repeats:  # a stage: its stride-2 convolution, then r stride-1 convolutions
            self.stages.append(nn.Sequential(*blocks[start : start + 1 + r]))
            start += 1 + r

    def forward(self, images: torch.Tensor) -> List[torch.Tensor]:
        x = self.preprocess(images)
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


class StageDistance(nn.Module):
    """LPIPS without learned weights over `ToyFacesStages`; images in [0, 255], result per image [N]."""

    def __init__(self, stages: ToyFacesStages):
        super().__init__()
        self.stages = stages

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa, fb = self.stages(a / 127.5 - 1), self.stages(b / 127.5 - 1)
        total = a.new_zeros(a.shape[0])
        for x, y in zip(fa, fb):
            total = total + (unit_channels(x) - unit_channels(y)).square().sum(dim=1).mean(dim=(1, 2))
        return total


def _is_embedded(G: Optional[AnyGenerator]) -> bool:
    if G is None:
        return False
    from ..edits.registry import is_default_model

    return bool(is_default_model(G))


def resolve_name(name: str, G: Optional[AnyGenerator] = None) -> str:
    """'auto' -> 'toyfaces' for the embedded model, else 'lpips'; other names are checked."""
    if name not in DISTANCES:
        raise ConfigError(f"unknown distance {name!r}; choose from {', '.join(DISTANCES)}")
    if name == "auto":
        return "toyfaces" if _is_embedded(G) else "lpips"
    return name


def distance_by_name(name: str, G: Optional[AnyGenerator] = None, device: torch.device | str = "cpu") -> Distance:
    """The projector's distance(synth, target) -> [N] on [0, 255] images (grey images repeated to RGB)."""
    name = resolve_name(name, G)
    if name == "toyfaces":
        net: nn.Module = StageDistance(ToyFacesStages())
    else:
        from ..studies.ppl import LPIPSDistance

        net = LPIPSDistance(pretrained_backbone=name == "lpips")
    net = net.to(device).eval()

    def distance(synth: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if synth.shape[1] == 1:
            synth, target = synth.repeat(1, 3, 1, 1), target.repeat(1, 3, 1, 1)
        return net(synth, target)

    distance.__name__ = name
    return distance
