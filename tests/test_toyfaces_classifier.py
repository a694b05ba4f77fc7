"""The toyfaces attribute classifier (score space, network, training, file format, CLI) and Frechet distances."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import run_cli
from latentlab.attributes import load_classifier
from latentlab.attributes import toyfaces as tfc
from latentlab.attributes import toyfaces_training as tft
from latentlab.datasets import toyfaces as tf
from latentlab.errors import CheckpointError
from latentlab.studies import frechet as fd

# ------------------------------------------------------------------------------------------ score space


def test_label_targets_hand_values():
    table = pd.DataFrame(
        {
            "smile": [0.5, -1.0, 0.0],
            "age": [0.25, 1.0, 0.5],
            "eyeglasses": [1.0, 0.0, 1.0],
            "male": [0.0, 1.0, 1.0],
            "beard": [0.0, 1.0, 0.0],
            "yaw": [-0.4, 0.9, 0.0],
            "bangs": [1.0, 0.0, 0.0],
            "skin": [0.75, 0.0, 1.0],
            "background": [0.5, 0.0, 0.25],
            "nuisance_brightness": [1.0, 0.9, 1.1],
        }
    )
    t = tfc.label_targets(table)
    assert t.dtype == np.float32 and t.shape == (3, 9)
    expected = np.array(
        [
            [0.5, -0.5, 1, 0, 0, -0.4, 1, 0.5, -1.0],  # hue 0.5 (cyan): warmth -1
            [-1.0, 1.0, 0, 1, 1, 0.9, 0, -1.0, 1.0],  # hue 0 (red): warmth 1
            [0.0, 0.0, 1, 1, 0, 0.0, 0, 1.0, 0.0],  # hue 0.25: warmth 0
        ]
    )
    np.testing.assert_allclose(t, expected, atol=1e-6)
    ref = tfc.reference_scores(table)
    assert list(ref.columns) == list(tf.ATTRIBUTES) and (ref.dtypes == np.float64).all()
    np.testing.assert_allclose(ref.to_numpy(), expected, atol=1e-12)
    # hue is circular: 0.9 and -0.1 are the same colour
    assert tfc.label_targets(dict(table.iloc[:1].assign(background=0.9)))[0, 8] == pytest.approx(
        math.cos(2 * math.pi * 0.9)
    )
    assert set(tfc.SCORE_MEANING) == set(tf.ATTRIBUTES) == set(tfc.SCORE_KINDS)
    with pytest.raises(ValueError, match="no column 'skin'"):
        tfc.label_targets(table.drop(columns="skin"))


def test_scores_follow_binarize_and_values_invert():
    table = tf.sample_attributes(3000, seed=5)
    ref = tfc.reference_scores(table)
    np.testing.assert_array_equal(tfc.scores_to_binary(ref.to_numpy()), tf.binarize(table).to_numpy())
    v = tfc.values(ref.to_numpy())
    for name in ("smile", "age", "yaw", "skin"):
        j = tf.ATTRIBUTES.index(name)
        np.testing.assert_allclose(v[:, j], table[name], atol=1e-12)
    binary = [tf.ATTRIBUTES.index(n) for n in ("eyeglasses", "male", "beard", "bangs")]
    assert np.isclose(tfc.values(np.zeros((1, 9)))[0, binary], 0.5).all()  # logit 0 = probability 1/2


def test_network_shape_and_cost():
    net = tfc.ToyFacesNet()
    assert net.multiply_adds(64) < 50e6  # < 0.1 GFLOP counting multiplies and adds separately
    clf = tfc.ToyFacesClassifier(net)
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    assert clf(x).shape == (3, 9) and clf.names == list(tf.ATTRIBUTES)
    assert clf.features(x).shape == (3, 256) and clf.num_features == 256
    assert clf(torch.rand(2, 3, 128, 128) * 2 - 1).shape == (2, 9)  # resized by its Preprocess
    assert clf.preprocess.resize == (64, 64) and clf.preprocess.input_range == (-1.0, 1.0)
    torch.testing.assert_close(clf.scores(x, batch_size=2), clf(x))
    torch.testing.assert_close(clf.features(x, batch_size=2), clf.features(x))
    assert clf.binary(x).dtype == torch.int64
    with pytest.raises(ValueError, match="widths and repeats"):
        tfc.ToyFacesNet(widths=(8, 16), repeats=(1,))


# ---------------------------------------------------------------------------------------------- training

N_FACES = 1500


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toyfaces") / "data"
    tf.write_dataset(folder, N_FACES, seed=1, workers=1, progress=False)
    return folder


@pytest.fixture(scope="module")
def trained(faces, tmp_path_factory):
    out = tmp_path_factory.mktemp("clf") / "toy.safetensors"
    res = tft.train_toyfaces_classifier(faces, out, epochs=6, batch_size=32, lr=3e-3, seed=0, progress=False, threads=1)
    return res


@pytest.mark.slow
def test_training_learns_the_attributes(trained, faces):
    r = trained.report
    assert r["n_train"] == N_FACES - 150 and r["n_val"] == 150 and len(r["history"]) == 6
    val = r["val"]
    assert set(val) == set(tf.ATTRIBUTES)
    # clearly better than always answering the majority class
    assert val["male"]["accuracy"] > val["male"]["majority_baseline"] + 0.15, val["male"]
    assert val["eyeglasses"]["accuracy"] > val["eyeglasses"]["majority_baseline"] + 0.08, val["eyeglasses"]
    for name in ("age", "skin", "background"):
        assert val[name]["r2"] > 0.3, (name, val[name])
    assert "r2" not in val["male"] and "r2" in val["smile"]
    # the report is beside the file and in its metadata
    assert trained.report_path == os.path.splitext(trained.path)[0] + ".json"
    on_disk = json.loads(Path(trained.report_path).read_text())
    assert on_disk["val"]["male"]["accuracy"] == pytest.approx(val["male"]["accuracy"])
    assert tfc.ToyFacesClassifier.from_file(trained.path).report["n_val"] == 150

    # the classifier interface (generator-range floats through its Preprocess) gives the training's held-out numbers
    table = tf.load_labels(faces).iloc[N_FACES - 150 :]
    images = torch.from_numpy(tf.render_batch(table, 64)).permute(0, 3, 1, 2).float() / 127.5 - 1
    clf = trained.classifier
    with torch.no_grad():
        scores = clf.scores(images, batch_size=64)
    again = tft.evaluate_scores(scores.numpy(), tfc.label_targets(table))
    for name in tf.ATTRIBUTES:
        assert again[name]["accuracy"] == pytest.approx(val[name]["accuracy"], abs=1e-6)


def test_save_load_round_trip(trained, tmp_path):
    clf = trained.classifier
    loaded = load_classifier("toyfaces:" + str(trained.path))
    assert isinstance(loaded, tfc.ToyFacesClassifier) and loaded.names == list(tf.ATTRIBUTES)
    assert loaded.preprocess == clf.preprocess and loaded.score_kinds == tfc.SCORE_KINDS
    x = torch.rand(5, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(loaded(x), clf(x), rtol=0, atol=0)
    torch.testing.assert_close(loaded.features(x), clf.features(x), rtol=0, atol=0)
    # exact names win over the CelebA aliases ('age' is otherwise 'Young' negated)
    torch.testing.assert_close(loaded.select(["age", "smile"])(x), loaded(x)[:, [1, 0]])
    copy = tmp_path / "copy.safetensors"
    loaded.save(copy)
    torch.testing.assert_close(tfc.ToyFacesClassifier.from_file(copy)(x), clf(x), rtol=0, atol=0)


def _tamper(src, dst, **changes):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
    tensors = load_file(str(src))
    tensors.update(changes.pop("tensors", {}))
    meta.update(changes)
    save_file(tensors, str(dst), metadata=meta)
    return dst


def test_bad_files(trained, tmp_path):
    good = trained.path
    data = Path(good).read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "garbage": b"\x00\x01not a safetensors file at all" * 10,
        "empty": b"",
    }
    for name, blob in cases.items():
        p = tmp_path / f"{name}.safetensors"
        p.write_bytes(blob)
        with pytest.raises(CheckpointError) as e:
            tfc.ToyFacesClassifier.from_file(p)
        assert str(p) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="not a toyfaces classifier"):
        tfc.ToyFacesClassifier.from_file(_tamper(good, tmp_path / "tag.safetensors", format="latentlab-checkpoint"))
    with pytest.raises(CheckpointError, match="version 99"):
        tfc.ToyFacesClassifier.from_file(_tamper(good, tmp_path / "v.safetensors", version="99"))
    with pytest.raises(CheckpointError, match="damaged toyfaces classifier metadata"):
        tfc.ToyFacesClassifier.from_file(_tamper(good, tmp_path / "meta.safetensors", arch="{not json"))
    with pytest.raises(CheckpointError, match="head.weight"):
        tfc.ToyFacesClassifier.from_file(
            _tamper(good, tmp_path / "shape.safetensors", tensors={"head.weight": torch.zeros(9, 3)})
        )
    with pytest.raises(FileNotFoundError):
        load_classifier("toyfaces:" + str(tmp_path / "missing.safetensors"))


# ----------------------------------------------------------------------------------------------- Frechet


def test_frechet_one_dimensional_and_diagonal():
    for m1, s1, m2, s2 in ((0.0, 1.0, 0.0, 1.0), (1.0, 2.0, -0.5, 0.5), (3.0, 0.1, 3.0, 4.0)):
        assert fd.frechet_distance(m1, s1**2, m2, s2**2) == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, abs=1e-12)
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert fd.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, abs=1e-10)
    # a singular covariance is fine (PSD, not PD)
    assert fd.frechet_distance(mu1, np.diag([1.0, 0.0, 0.0]), mu1, np.diag([0.0, 0.0, 4.0])) == pytest.approx(1 + 4)
    with pytest.raises(ValueError, match="different feature sizes"):
        fd.frechet_distance(mu1, np.diag(a), mu2[:2], np.diag(b[:2]))
    with pytest.raises(ValueError, match="not symmetric"):
        fd.frechet_distance(mu1, np.triu(np.ones((3, 3))), mu2, np.diag(b))


def test_frechet_full_covariances_and_stats():
    rng = np.random.default_rng(0)
    f1 = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    f2 = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.5
    mu1, s1 = fd.feature_stats(f1)
    mu2, s2 = fd.feature_stats(f2)
    np.testing.assert_allclose(mu1, f1.mean(0))
    np.testing.assert_allclose(s1, np.cov(f1, rowvar=False))
    assert fd.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-6)
    assert fd.frechet_distance(*fd.feature_stats(torch.from_numpy(f1).float()), mu1, s1) < 1e-3
    got = fd.frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(fd.frechet_distance(mu2, s2, mu1, s1), rel=1e-9)  # symmetric
    # against the textbook formula with a general matrix square root
    w, v = np.linalg.eig(s1 @ s2)
    covmean = (v * np.sqrt(w.astype(complex))) @ np.linalg.inv(v)
    reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real
    assert got == pytest.approx(reference, rel=1e-8)
    with pytest.raises(ValueError, match="at least 2"):
        fd.feature_stats(np.zeros((1, 3)))


def test_classifier_frechet_distance(tiny_generator):
    def mean_colour(x):
        return x.mean(dim=(2, 3))

    g = torch.Generator().manual_seed(0)
    a = torch.rand(64, 3, 8, 8, generator=g) * 2 - 1
    assert fd.classifier_frechet_distance(mean_colour, a, a, batch_size=10) == pytest.approx(0.0, abs=1e-6)
    b = a + 0.5  # every feature moves by 0.5, covariance unchanged
    assert fd.classifier_frechet_distance(mean_colour, a, b, batch_size=16) == pytest.approx(3 * 0.25, abs=1e-5)
    u8 = ((a.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()  # NHWC uint8
    assert fd.classifier_frechet_distance(mean_colour, u8, a) < 1e-3
    res = fd.generator_frechet_distance(tiny_generator, mean_colour, a, n=20, batch_size=8)
    assert res.n_generated == 20 and res.n_real == 64 and math.isfinite(res.distance) and res.distance >= 0
    clf = tfc.ToyFacesClassifier()
    assert fd.extract_features(clf, a, batch_size=16).shape == (64, 256)


# --------------------------------------------------------------------------------------------------- CLI


def test_cli_train_toyfaces(tmp_path, capsys):
    small = tmp_path / "small"
    tf.write_dataset(small, 40, seed=2, workers=1, progress=False)
    out = tmp_path / "clf"  # a folder: classifier.safetensors and classifier.json inside
    code, stdout, stderr = run_cli(
        capsys,
        "train-classifier",
        "--toyfaces",
        small,
        "--out",
        out,
        "--epochs",
        "1",
        "--batch",
        "16",
        "--device",
        "cpu",
        "--threads",
        "1",
    )
    assert code == 0, stderr
    assert "held out 4 images" in stdout and "eyeglasses" in stdout
    assert sorted(os.listdir(out)) == ["classifier.json", "classifier.safetensors"]
    assert load_classifier(f"toyfaces:{out / 'classifier.safetensors'}").report["n_train"] == 36
    out = tmp_path / "fresh"

    code, stdout, _ = run_cli(capsys, "train-classifier", "--help")
    assert code == 0 and "Example:" in stdout and "--toyfaces" in stdout
    for args, message in (
        (("--out", out), "exactly one of --celeba"),
        (("--celeba", small, "--toyfaces", small, "--out", out), "exactly one of --celeba"),
        (("--toyfaces", tmp_path / "nothing", "--out", out), "no such toyfaces folder"),
        (("--toyfaces", small, "--out", out, "--arch", "resnet50"), "--arch: CelebA only"),
        (("--toyfaces", small, "--out", tmp_path / "x.json"), "--out takes a folder"),
        (("--toyfaces", small, "--out", tmp_path / "clf"), "the folder is not empty"),
        (("--toyfaces", tmp_path, "--out", out), "labels.csv"),
    ):
        code, _, stderr = run_cli(capsys, "train-classifier", *args)
        assert code == 1 and message in stderr and stderr.strip().count("\n") == 0, (args, stderr)
