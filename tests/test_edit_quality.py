"""edit_quality: InterFaceGAN's sample -> boundary -> edit recipe, measured on planted generators."""

import numpy as np
import pytest
import torch

from latentlab.errors import ConfigError
from latentlab.studies.edit_quality import edit_quality

D = 8


class _Mapping(torch.nn.Module):
    """w = z (every layer), with the keyword arguments the project's map_z passes."""

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_w_avg=False):
        return z[:, None, :].repeat(1, 2, 1)


class _Synthesis(torch.nn.Module):
    """A 2x2 image whose channel k is w . dirs[k] everywhere (so a channel-mean classifier reads it exactly)."""

    def __init__(self, dirs):
        super().__init__()
        self.register_buffer("dirs", torch.as_tensor(np.asarray(dirs), dtype=torch.float32))

    def forward(self, ws, noise_mode="const"):
        v = ws[:, 0] @ self.dirs.T  # [N, K]
        return v[:, :, None, None].expand(-1, -1, 2, 2)


class PlantedG(torch.nn.Module):
    z_dim, w_dim, c_dim, num_ws = D, D, 0, 2

    def __init__(self, dirs):
        super().__init__()
        self.mapping, self.synthesis = _Mapping(), _Synthesis(dirs)
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # the study finds the device from the parameters


class ChannelMeans:
    def __init__(self, names):
        self.names = names

    def __call__(self, images):
        return images.mean(dim=(2, 3))


def _unit(i):
    e = np.zeros(D)
    e[i] = 1
    return e


def test_a_planted_independent_attribute_is_found_and_edited_cleanly():
    smile, age = _unit(0), _unit(1)  # age reads a direction orthogonal to smile's
    r = edit_quality(
        PlantedG([smile, age]), ChannelMeans(["smile", "age"]), "smile", n_samples=2000, edit_seeds=range(40)
    )
    assert r["raised"] == 1.0 and r["val_accuracy"] == 1.0
    # the boundary is the planted direction: the smile score (w . e0) moves by alpha * n[0] ~ 2 for every face
    assert abs(r["mean_change"] - 2.0) < 0.1
    assert r["max_flip_attribute"] == "age" and r["max_flip"] <= 0.05
    assert r["max_move_attribute"] == "age" and r["max_move"] < 0.1  # age's score stays put
    assert abs(r["w_std_along"] - 1.0) < 0.1  # w = z ~ N(0, I) along a unit direction


def test_an_entangled_attribute_flips_with_the_edit():
    """age reads smile's direction too: the edit moves age by alpha / sqrt(2) ~ 1.41, so every face with an age
    score in (-1.41, 0) crosses zero: about 42 % of N(0, 1) (planted: the measure must see it)."""
    smile, age = _unit(0), (_unit(0) + _unit(1)) / np.sqrt(2)
    r = edit_quality(
        PlantedG([smile, age]), ChannelMeans(["smile", "age"]), "smile", n_samples=2000, edit_seeds=range(200)
    )
    assert r["raised"] == 1.0
    assert r["max_flip_attribute"] == "age" and 0.3 < r["max_flip"] < 0.55
    # ... and every face's age score moves by alpha * (n . age direction) = 2 / sqrt(2)
    assert r["max_move_attribute"] == "age" and abs(r["max_move"] - np.sqrt(2)) < 0.1
    assert r["moves"] == {"age": r["max_move"]}
    # a negative alpha lowers the attribute for every face
    r = edit_quality(PlantedG([smile, age]), ChannelMeans(["smile", "age"]), "smile", n_samples=2000, alpha=-1)
    assert r["raised"] == 0.0 and r["mean_change"] < -0.9


def test_refusals():
    G, clf = PlantedG([_unit(0)]), ChannelMeans(["smile"])
    with pytest.raises(ConfigError, match="'beard' is not one of the classifier's: smile"):
        edit_quality(G, clf, "beard")
    with pytest.raises(ConfigError, match="edit_seeds is empty"):
        edit_quality(G, clf, "smile", n_samples=200, edit_seeds=[])


def test_moves_are_taken_over_the_chosen_attributes_only():
    """A logit-like attribute that swings with the edit does not count when `moved` leaves it out."""
    smile, loud, calm = _unit(0), 5 * _unit(0), _unit(2)
    clf = ChannelMeans(["smile", "loud", "calm"])
    r = edit_quality(PlantedG([smile, loud, calm]), clf, "smile", n_samples=1000, edit_seeds=range(20))
    assert r["max_move_attribute"] == "loud" and abs(r["max_move"] - 10) < 0.5  # 5 x alpha
    r = edit_quality(PlantedG([smile, loud, calm]), clf, "smile", n_samples=1000, edit_seeds=range(20), moved=["calm"])
    assert r["max_move_attribute"] == "calm" and r["max_move"] < 0.1
    with pytest.raises(ConfigError, match=r"moved: smile, nope: not among the other attributes \(loud, calm\)"):
        edit_quality(PlantedG([smile, loud, calm]), clf, "smile", n_samples=100, moved=["smile", "nope"])


def test_a_given_direction_is_edited_along_without_sampling():
    """direction=: the edit along exactly that vector. A direction between smile and age, (e0 + e1) / sqrt(2),
    moves the smile score by alpha / sqrt(2) for every face (hand value), and the age score by the same."""
    smile, age = _unit(0), _unit(1)
    G, clf = PlantedG([smile, age]), ChannelMeans(["smile", "age"])
    r = edit_quality(G, clf, "smile", edit_seeds=range(30), direction=(smile + age) * 3)  # normalised on load
    assert r["n_samples"] == 0 and r["w_std_along"] is None and r["val_accuracy"] is None
    assert r["raised"] == 1.0 and abs(r["mean_change"] - np.sqrt(2)) < 1e-5
    assert abs(r["moves"]["age"] - np.sqrt(2)) < 1e-5
    # the boundary the study fits, passed back in, gives the same edit, and its accuracy is carried over
    from latentlab.boundaries.svm import train_boundary
    from latentlab.studies.edit_quality import _w_and_scores

    ws, scores = _w_and_scores(G, clf, range(2000), 64)
    b = train_boundary(ws[:, 0].double().numpy(), scores[:, 0], ratio=0.05, seed=0, meta={"attribute": "smile"})
    fitted = edit_quality(G, clf, "smile", n_samples=2000, edit_seeds=range(30))
    given = edit_quality(G, clf, "smile", edit_seeds=range(30), direction=b.direction(space="w"))
    assert given["mean_change"] == pytest.approx(fitted["mean_change"], abs=1e-6)
    assert given["val_accuracy"] == fitted["val_accuracy"] == 1.0
    with pytest.raises(ConfigError, match="has 3 entries but the W space of this model has 8"):
        edit_quality(G, clf, "smile", direction=np.ones(3))
    with pytest.raises(ConfigError, match="is in z space; edit_quality edits in W"):
        edit_quality(G, clf, "smile", direction=b.direction(space="z"))
