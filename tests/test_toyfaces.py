"""The procedural toyfaces dataset: sampling, drawing, correlations, writing and the CLI."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from latentlab.datasets import toyfaces as tf

RES = 64


def draw(**attrs):
    return tf.render_face(tf.neutral_attributes(**attrs), RES).astype(np.int64)


def changed(a, b):
    return np.abs(a - b).sum(-1) > 0


def luminance(img):
    return img @ np.array([0.299, 0.587, 0.114])


def saturation(img):
    img = img.astype(float)
    mx, mn = img.max(-1), img.min(-1)
    return (mx - mn) / np.maximum(mx, 1)


# ---------------------------------------------------------------------------------------- sampling


def test_table_columns_and_determinism():
    t = tf.sample_attributes(300, seed=3)
    assert tf.ATTRIBUTES == ("smile", "age", "eyeglasses", "male", "beard", "yaw", "bangs", "skin", "background")
    assert list(t.columns) == list(tf.ATTRIBUTES) + list(tf.NUISANCE)
    assert all(c.startswith("nuisance_") for c in tf.NUISANCE)
    assert set(tf.DESCRIPTIONS) >= set(tf.COLUMNS) and set(tf.POSITIVE) == set(tf.ATTRIBUTES)
    assert all(t[c].dtype == np.float64 for c in t.columns)
    pd.testing.assert_frame_equal(t, tf.sample_attributes(300, seed=3))
    assert not t.equals(tf.sample_attributes(300, seed=4))
    pd.testing.assert_frame_equal(t.iloc[:40], tf.sample_attributes(40, seed=3))  # prefix-stable

    a = tf.render_batch(t.iloc[:6], RES)
    assert a.shape == (6, RES, RES, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, tf.render_batch(tf.sample_attributes(6, seed=3), RES))
    b = tf.render_batch(tf.sample_attributes(6, seed=4), RES)
    assert all((a[i] != b[i]).any() for i in range(6))
    np.testing.assert_array_equal(tf.render_face(t.iloc[2], RES), tf.render_face(t.iloc[2].to_dict(), RES))


def test_resolutions():
    row = tf.sample_attributes(1, 0).iloc[0]
    for r in (8, 32, 128):
        assert tf.render_face(row, r).shape == (r, r, 3)
    for bad in (0, 4, 48, 100):
        with pytest.raises(ValueError, match="power of two"):
            tf.render_face(row, bad)


def test_sampled_correlations_and_marginals():
    t = tf.sample_attributes(5000, seed=0)
    for name in ("eyeglasses", "male", "beard", "bangs"):
        assert set(np.unique(t[name])) == {0.0, 1.0}
        assert 0.1 < t[name].mean() < 0.9, name
    for name in ("smile", "age", "yaw", "skin", "background"):
        assert t[name].std() > 0.2, name
    assert t.smile.between(-1, 1).all() and t.yaw.between(-1, 1).all()
    assert t.age.between(0, 1).all() and t.skin.between(0, 1).all()
    assert ((t.background >= 0) & (t.background < 1)).all()

    assert (t.male[t.beard == 1] == 1).all()  # beard only with male (short hair)
    male = t[t.male == 1]
    assert 0.3 < male.beard.mean() < 0.55
    assert male[male.age > 0.5].beard.mean() > male[male.age < 0.5].beard.mean() + 0.15
    assert t[t.male == 0].bangs.mean() > male.bangs.mean() + 0.2
    assert np.corrcoef(t.eyeglasses, t.age)[0, 1] > 0.1
    assert t[t.age > 0.8].eyeglasses.mean() > 2 * t[t.age < 0.2].eyeglasses.mean()
    assert np.corrcoef(t.smile, t.age)[0, 1] < -0.05
    assert abs(np.corrcoef(t.yaw, t.skin)[0, 1]) < 0.05

    ref = tf.reference_correlation(n=5000, seed=0)
    assert list(ref.index) == list(tf.ATTRIBUTES) == list(ref.columns)
    np.testing.assert_allclose(ref.values, ref.values.T)
    np.testing.assert_allclose(np.diag(ref.values), 1.0)
    assert ref.loc["age", "eyeglasses"] == pytest.approx(np.corrcoef(t.eyeglasses, t.age)[0, 1])
    assert tf.reference_correlation(n=2000, binary=True).loc["male", "beard"] > 0.3


def test_binarize_rules():
    t = pd.DataFrame(
        [
            tf.neutral_attributes(smile=0.1, age=0.6, yaw=-0.2, skin=0.4, background=0.9, male=1, beard=1),
            tf.neutral_attributes(smile=-0.1, age=0.4, yaw=0.3, skin=0.7, background=0.5, eyeglasses=1),
        ]
    )
    b = tf.binarize(t)
    assert list(b.columns) == list(tf.ATTRIBUTES)
    assert b.iloc[0].to_dict() == dict(
        smile=1, age=1, eyeglasses=0, male=1, beard=1, yaw=0, bangs=0, skin=0, background=1
    )
    assert b.iloc[1].to_dict() == dict(
        smile=0, age=0, eyeglasses=1, male=0, beard=0, yaw=1, bangs=0, skin=1, background=0
    )
    with pytest.raises(ValueError, match="unknown"):
        tf.neutral_attributes(smiling=1)


# ----------------------------------------------------------------------------------------- drawing


def test_smile_changes_only_the_mouth():
    frown, smile = draw(smile=-0.8), draw(smile=0.9)
    ys, xs = np.nonzero(changed(frown, smile))
    assert len(ys) > 30
    assert ys.min() >= 0.5 * RES and ys.max() <= 0.72 * RES  # below the eyes, above the chin
    assert xs.min() >= 0.3 * RES and xs.max() <= 0.7 * RES
    # a big smile opens the mouth: teeth make it brighter in the mouth's centre than a closed frown
    mouth = (slice(int(0.5 * RES), int(0.72 * RES)), slice(int(0.3 * RES), int(0.7 * RES)))
    assert (draw(smile=1.0)[mouth].min(-1) > 175).any() and not (frown[mouth].min(-1) > 175).any()


def test_eyeglasses_darken_the_eye_band():
    base, glasses = draw(), draw(eyeglasses=1)
    m = changed(base, glasses)
    ys, xs = np.nonzero(m)
    assert len(ys) > 40
    assert ys.min() >= 0.3 * RES and ys.max() <= 0.55 * RES
    assert xs.min() < 0.4 * RES and xs.max() > 0.6 * RES  # both eyes
    assert luminance(glasses[m]).mean() < luminance(base[m]).mean() - 40


def test_age_greys_the_hair():
    young, old = draw(age=0.0), draw(age=1.0)
    m = changed(young, old)
    top = m.copy()
    top[int(0.25 * RES) :] = False  # the hair on top of the head
    assert top.sum() > 20
    assert saturation(old[top]).mean() < saturation(young[top]).mean() - 0.2
    np.testing.assert_array_equal(draw(age=0.0), draw(age=0.2))  # no change before greying starts
    # wrinkles appear above 0.5: the forehead gets darker lines
    forehead = (slice(int(0.3 * RES), int(0.37 * RES)), slice(int(0.42 * RES), int(0.58 * RES)))
    assert luminance(draw(age=1.0)[forehead]).min() < luminance(draw(age=0.45)[forehead]).min() - 30


def test_background_changes_the_corners_only():
    red, cyan = draw(background=0.0), draw(background=0.5)
    for y, x in ((0, 0), (0, RES - 1), (RES - 1, 0), (RES - 1, RES - 1)):
        assert (red[y, x] != cyan[y, x]).any()
        assert red[y, x, 0] > red[y, x, 1] + 40 and cyan[y, x, 2] > cyan[y, x, 0] + 40
    face = (slice(int(0.3 * RES), int(0.7 * RES)), slice(int(0.38 * RES), int(0.62 * RES)))
    np.testing.assert_array_equal(red[face], cyan[face])
    assert luminance(red[:4]).mean() > luminance(red[-4:, :4]).mean()  # lighter at the top


def centroid_x(mask):
    return np.nonzero(mask)[1].mean()


def test_yaw_shifts_the_features():
    mouth, eyes = [], []
    for yaw in (-0.8, 0.0, 0.8):
        mouth.append(centroid_x(changed(draw(yaw=yaw, smile=-0.8), draw(yaw=yaw, smile=0.9))))
        eyes.append(centroid_x(changed(draw(yaw=yaw, nuisance_eye_size=0.8), draw(yaw=yaw, nuisance_eye_size=1.2))))
    assert abs(mouth[1] - (RES - 1) / 2) < 1.0 and abs(eyes[1] - (RES - 1) / 2) < 1.0  # symmetric at yaw 0
    assert mouth[0] < mouth[1] - 2 and mouth[2] > mouth[1] + 2
    assert eyes[0] < eyes[1] - 1.5 and eyes[2] > eyes[1] + 1.5
    # the face narrows as it turns: fewer skin-coloured pixels on the face's row
    skin = draw()[int(0.5 * RES), int(0.5 * RES)]

    def width(img):
        return (np.abs(img[int(0.5 * RES)] - skin).sum(-1) < 12).sum()

    assert width(draw(yaw=0.9)) < width(draw())


def test_hair_beard_bangs_skin():
    female, male = draw(male=0), draw(male=1)
    hair = female[int(0.16 * RES), RES // 2]  # top of the head

    def hair_pixels(img, rows):
        return (np.abs(img[rows] - hair).sum(-1) < 10).sum()

    low = slice(int(0.72 * RES), RES)  # beside the neck, down to the shoulders
    assert hair_pixels(female, low) > 40 and hair_pixels(male, low) == 0

    beard = draw(male=1, beard=1)
    m = changed(male, beard)
    ys, _ = np.nonzero(m)
    assert m.sum() > 100 and ys.min() >= 0.35 * RES and ys.max() <= 0.75 * RES
    assert luminance(beard[m]).mean() < luminance(male[m]).mean() - 40  # brown beard on light skin

    bangs = draw(bangs=1)
    m = changed(female, bangs)
    ys, _ = np.nonzero(m)
    assert m.sum() > 50 and ys.min() >= 0.2 * RES and ys.max() < 0.42 * RES  # the upper forehead only

    light, dark = draw(skin=0.0), draw(skin=1.0)
    m = changed(light, dark)
    assert m.sum() > 400
    assert luminance(dark[m]).mean() < luminance(light[m]).mean() - 60
    np.testing.assert_array_equal(light[:3], dark[:3])  # background untouched


# ------------------------------------------------------------------------------------------ writing


def test_write_dataset_resume_and_refusal(tmp_path):
    out = tmp_path / "toy"
    rep = tf.write_dataset(out, 12, seed=5, resolution=32, workers=2, progress=False)
    assert rep["rendered"] == 12 and rep["existing"] == 0
    names = sorted(os.listdir(out / "images"))
    assert names == [f"{i:06d}.png" for i in range(12)]
    meta = json.loads((out / "dataset.json").read_text())
    assert (meta["n"], meta["seed"], meta["resolution"], meta["version"]) == (12, 5, 32, tf.VERSION)

    labels = tf.load_labels(out)
    assert list(labels.columns) == ["file", *tf.ATTRIBUTES, *tf.NUISANCE]
    assert list(labels.file) == [f"images/{n}" for n in names]
    pd.testing.assert_frame_equal(labels.drop(columns="file"), tf.sample_attributes(12, 5))  # exact round trip
    from PIL import Image

    for i in (0, 11):
        np.testing.assert_array_equal(np.asarray(Image.open(out / labels.file[i])), tf.render_face(labels.iloc[i], 32))

    # resume: only the missing image comes back, identical; nothing else is rewritten
    victim = out / "images" / "000005.png"
    before = victim.read_bytes()
    victim.unlink()
    others = {
        p: os.stat(p).st_mtime_ns
        for p in [out / "labels.csv", out / "dataset.json", *[out / "images" / n for n in names if n != "000005.png"]]
    }
    rep = tf.write_dataset(out, 12, seed=5, resolution=32, workers=1, progress=False)
    assert rep["rendered"] == 1 and rep["existing"] == 11
    assert victim.read_bytes() == before
    assert {p: os.stat(p).st_mtime_ns for p in others} == others

    for kwargs, what in (
        (dict(n=13, seed=5, resolution=32), "n=12"),
        (dict(n=12, seed=6, resolution=32), "seed=5"),
        (dict(n=12, seed=5, resolution=64), "resolution=32"),
    ):
        with pytest.raises(ValueError, match=what):
            tf.write_dataset(out, progress=False, **kwargs)
    assert {p: os.stat(p).st_mtime_ns for p in others} == others and len(os.listdir(out / "images")) == 12

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "labels.csv").write_text("x\n1\n")
    with pytest.raises(ValueError, match="no dataset.json"):
        tf.write_dataset(foreign, 3, progress=False)
    assert (foreign / "labels.csv").read_text() == "x\n1\n"
    with pytest.raises(ValueError, match="n must be"):
        tf.write_dataset(tmp_path / "zero", 0, progress=False)


def test_cli(capsys, tmp_path):
    out, grid = tmp_path / "cli", tmp_path / "grid.png"
    code, stdout, err = run_cli(
        capsys, "toyfaces", "--n", 10, "--out", out, "--workers", 1, "--resolution", 16, "--grid", grid
    )
    assert code == 0, err
    assert "renders/s" in stdout and len(os.listdir(out / "images")) == 10
    from PIL import Image

    g = np.asarray(Image.open(grid))  # 10 faces, 8 per row, 2 px padding, upscaled 8x (auto: 128 px cells)
    assert g.shape[1] == 8 * 128 + 7 * 2
    band = (g.shape[0] + 2) // 2 - 128 - 2  # each row of cells has its caption band above it
    assert 0 < band < 64
    for i in range(10):
        y, x = (i // 8) * (band + 128 + 2) + band, (i % 8) * 130
        face = np.asarray(Image.open(out / "images" / f"{i:06d}.png"))
        np.testing.assert_array_equal(g[y : y + 128, x : x + 128], np.kron(face, np.ones((8, 8, 1), np.uint8)))
        assert (g[y - band : y, x : x + 128] < 128).any()  # its caption: the file number
    assert (g[band + 128 + 2 :, 2 * 130 :] == 255).all()  # 10 faces: the rest of the second row is blank

    code, _, err = run_cli(  # a scale that cannot fit is refused before anything is rendered
        capsys, "toyfaces", "--n", 64, "--out", tmp_path / "big", "--resolution", 1024, "--grid", grid,
        "--grid-scale", 16,
    )  # fmt: skip
    assert code == 1 and err.startswith("latentlab: error: --grid at --grid-scale 16:") and "MiB" in err, err
    assert not (tmp_path / "big").exists()

    code, stdout, err = run_cli(capsys, "toyfaces", "--n", 10, "--out", out, "--resolution", 16)
    assert code == 0 and "kept 10" in stdout

    code, _, err = run_cli(capsys, "toyfaces", "--n", 11, "--out", out, "--resolution", 16)
    assert code == 1 and err.startswith("latentlab: error:") and "n=10" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "toyfaces", "--n", 5, "--out", tmp_path / "bad", "--resolution", 48)
    assert code == 1 and "power of two" in err and not (tmp_path / "bad").exists()
    code, _, err = run_cli(capsys, "toyfaces", "--n", 0, "--out", tmp_path / "bad")
    assert code != 0 and err.startswith("latentlab: error:")
