"""The embedded toyfaces model: shipped files, defaults of every command, and edits that mean something."""

import json
import os

import numpy as np
import pytest
import torch

from conftest import run_cli
from latentlab import defaults, load_generator
from latentlab.attributes import load_classifier
from latentlab.datasets.toyfaces import ATTRIBUTES
from latentlab.edits.registry import available_attributes, is_default_model, resolve_attribute
from latentlab.latents import z_from_seeds

# W validation accuracy of each boundary (model card): 0.9 for every attribute but yaw (a few pixels of feature shift
# at 64 px: 0.89 on v2, whose turns vary more and less linearly than v1's 0.95)
CLEAR = [a for a in ATTRIBUTES if a != "yaw"]


@pytest.fixture(scope="module")
def model():
    return load_generator(defaults.NAME)


@pytest.fixture(scope="module")
def classifier():
    return load_classifier(defaults.classifier_spec()).eval()


def test_shipped_files_are_small_and_registered(model):
    files = [defaults.model_path(), defaults.classifier_path()]
    assert all(os.path.isfile(f) for f in files)
    total = sum(os.path.getsize(f) for f in files)
    assert total < 12 * 2**20  # "a few MB in total": v4 (128 channels at 4-16 px) with its D is 9.3 MB
    assert model.img_resolution == 64 and model.c_dim == 0
    folder, attrs = available_attributes(model, defaults.NAME)
    assert folder == defaults.w_boundaries_dir() and set(ATTRIBUTES) <= set(attrs)
    assert is_default_model(model) and is_default_model(model, defaults.model_path())
    z_attrs = sorted(f[:-4] for f in os.listdir(defaults.z_boundaries_dir()) if f.endswith(".npy"))
    assert set(ATTRIBUTES) <= set(z_attrs)
    card = open(os.path.join(os.path.dirname(defaults.model_path()), "README.md")).read()
    assert "latentlab train gan" in card and "latentlab boundary" in card


def test_boundaries_separate_the_clear_attributes():
    with open(os.path.join(defaults.w_boundaries_dir(), "index.json")) as f:
        index = json.load(f)["attributes"]
    for attr in ATTRIBUTES:
        assert index[attr]["val_accuracy"] >= (0.9 if attr in CLEAR else 0.85), (attr, index[attr]["val_accuracy"])


@torch.no_grad()
def test_smile_edit_raises_smile_and_leaves_the_rest(model, classifier):
    direction = resolve_attribute("smile", model, defaults.NAME)
    n = torch.as_tensor(direction.vector, dtype=torch.float32)
    z = z_from_seeds(range(48), model.z_dim)
    w = model.mapping(z, None)
    before = classifier(model.synthesis(w, noise_mode="const"))
    after = classifier(model.synthesis(w + 2 * n, noise_mode="const"))
    names = list(classifier.names)
    s = names.index("smile")
    delta = (after - before).numpy()
    assert (delta[:, s] > 0).mean() >= 0.85 and delta[:, s].mean() > 0.03
    # The others stay put: their present/absent decision flips for few faces, and the regressed
    # scores (smile, age, yaw, skin, warmth all span about [-1, 1]) barely move.
    flips = ((after > 0) != (before > 0)).float().mean(dim=0).numpy()
    for i, a in enumerate(names):
        if a != "smile":
            assert flips[i] <= 0.15, (a, flips[i])
    for a in ("age", "yaw", "skin", "background"):
        assert np.abs(delta[:, names.index(a)]).mean() < 0.15, a


@pytest.mark.slow
def test_edit_and_als_work_with_no_model_option(tmp_path, capsys):
    code, out, err = run_cli(
        capsys, "edit", "--attr", "smile", "--alpha", "0,2", "--seeds", "0-1", "--out", tmp_path / "e"
    )
    assert code == 0, err
    assert "embedded toyfaces model" in err and (tmp_path / "e" / "grid.png").exists()
    code, out, err = run_cli(capsys, "als")
    assert code == 0, err
    assert "mean ALS" in out and all(a in out for a in ("smile", "eyeglasses", "background"))


def test_classifier_default_only_for_the_embedded_model(tmp_path, capsys):
    from conftest import fixture_path

    code, _, err = run_cli(capsys, "als", "--model", fixture_path("sg2ada_skip32.pkl"), "--pairs", 2)
    assert code == 2 and "--classifier is required for models other than the embedded toyfaces model" in err


@pytest.mark.slow
def test_corr_defaults_to_the_renderer_reference(tmp_path, capsys):
    code, out, err = run_cli(capsys, "corr", "--seeds", "0-5", "--alpha", "-2:2:3", "--out", tmp_path / "c")
    assert code == 0, err
    ref = (tmp_path / "c" / "corr_reference.csv").read_text()
    assert "eyeglasses" in ref and "smile" in out


def test_info_and_generate_default_to_the_embedded_model(tmp_path, capsys):
    code, out, err = run_cli(capsys, "info")
    assert code == 0, err
    assert "toyfaces" in out and "64x64" in out
    code, out, err = run_cli(capsys, "generate", "--seeds", "0-1", "--out", tmp_path / "g")
    assert code == 0, err
    assert (tmp_path / "g" / "seed0001.png").exists()
