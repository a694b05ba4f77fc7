"""Distances for inversion, by name (the embedded model's offline distance)."""

import pytest
import torch

from latentlab import defaults, load_generator
from latentlab.errors import ConfigError
from latentlab.inversion.distances import ToyFacesStages, distance_by_name, resolve_name

pytestmark = pytest.mark.skipif(not defaults.is_available(), reason="embedded model not installed")


def test_auto_picks_the_embedded_classifier_for_the_embedded_model(tiny_generator):
    assert resolve_name("auto", load_generator("toyfaces")) == "toyfaces"
    assert resolve_name("auto", tiny_generator) == "lpips"
    with pytest.raises(ConfigError, match="unknown distance"):
        resolve_name("l2", tiny_generator)


def test_toyfaces_distance_is_lpips_without_weights():
    """Against an independent computation: unit-normalise each stage over channels, squared difference,
    sum over channels, mean over positions, sum over stages."""
    torch.manual_seed(0)
    a, b = torch.rand(3, 3, 64, 64) * 255, torch.rand(3, 3, 64, 64) * 255
    d = distance_by_name("toyfaces")(a, b)
    stages = ToyFacesStages()
    expect = torch.zeros(3)
    for x, y in zip(stages(a / 127.5 - 1), stages(b / 127.5 - 1)):
        x = x / x.norm(dim=1, keepdim=True)
        y = y / y.norm(dim=1, keepdim=True)
        expect += ((x - y) ** 2).sum(1).flatten(1).mean(1)
    torch.testing.assert_close(d, expect, rtol=1e-4, atol=1e-6)
    assert len(stages.stages) == 4 and (distance_by_name("toyfaces")(a, a) == 0).all()
    grey = distance_by_name("toyfaces")(a[:, :1], b[:, :1])  # grey images are repeated to RGB
    torch.testing.assert_close(
        grey, distance_by_name("toyfaces")(a[:, :1].repeat(1, 3, 1, 1), b[:, :1].repeat(1, 3, 1, 1))
    )
