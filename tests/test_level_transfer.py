"""Level transfer: the share of an attribute's change that swapping one level's style codes carries."""

import pytest
import torch

from latentlab.errors import ConfigError
from latentlab.studies.level_transfer import level_transfer, plot_level_transfer


class ChannelMeans:
    """A stand-in classifier: one score per colour channel, the image's mean."""

    names = ["r", "g", "b"]

    def scores(self, images):
        return images.mean(dim=(2, 3))


def test_a_level_that_alone_differs_carries_all_of_the_change(tiny_generator, tmp_path):
    G = tiny_generator
    torch.manual_seed(0)
    with torch.no_grad():
        a = G.synthesis.pack_styles(G.synthesis.compute_styles(G.mapping(torch.randn(6, G.z_dim), None)))
    dim = a.shape[1]
    slices = {"first": slice(0, dim // 3), "second": slice(dim // 3, 2 * dim // 3), "third": slice(2 * dim // 3, dim)}
    b = a.clone()
    b[:, slices["second"]] += torch.randn(6, slices["second"].stop - slices["second"].start)  # only level 2 differs
    table = level_transfer(G, ChannelMeans(), a, b, slices, batch_size=4)
    assert list(table.index) == ["first", "second", "third"] and list(table.columns) == ["r", "g", "b"]
    torch.testing.assert_close(torch.tensor(table.loc["second"].to_numpy()), torch.ones(3, dtype=torch.float64))
    assert (table.loc[["first", "third"]].abs().to_numpy() < 1e-9).all()  # swapping an equal level changes nothing
    assert len(plot_level_transfer(table, str(tmp_path / "t"))) == 2


def test_refuses_codes_of_another_size(tiny_generator):
    a = torch.zeros(3, 5)
    with pytest.raises(ConfigError, match="packed S codes"):
        level_transfer(tiny_generator, ChannelMeans(), a, a, {"x": slice(0, 5)})


def test_generator_samples_follow_the_levels_that_see_w(tiny_generator):
    """A generator whose middle and fine layers ignore w (zero affine weights: the same styles for every sample)
    is controlled by its coarse level alone: share 1 there, 0 elsewhere, for any classifier."""
    import copy

    from latentlab.inversion.encoder import level_slices, style_levels
    from latentlab.studies.level_transfer import generator_level_transfer

    G = copy.deepcopy(tiny_generator)
    levels = style_levels(G)
    assert all(levels.values())  # 16 px, 6 ws: 2 / 2 / 2 layers
    with torch.no_grad():
        for name in levels["middle"] + levels["fine"]:
            G.synthesis.get_submodule(name).affine.weight.zero_()
    slices = level_slices(levels, G.synthesis.style_dims)
    table = generator_level_transfer(G, ChannelMeans(), slices, pairs=6, seed=1, batch_size=4)
    torch.testing.assert_close(torch.tensor(table.loc["coarse"].to_numpy()), torch.ones(3, dtype=torch.float64))
    assert (table.loc[["middle", "fine"]].abs().to_numpy() < 1e-9).all()
    # Untouched, every level has a say in the colour means, and the same seed gives the same table.
    full = generator_level_transfer(tiny_generator, ChannelMeans(), slices, pairs=6, seed=1)
    assert (full.abs().to_numpy() > 1e-3).sum() >= 4
    assert full.equals(generator_level_transfer(tiny_generator, ChannelMeans(), slices, pairs=6, seed=1))
    with pytest.raises(ConfigError, match="at least 2 pairs"):
        generator_level_transfer(tiny_generator, ChannelMeans(), slices, pairs=1)
