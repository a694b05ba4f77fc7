"""End-to-end `latentlab edit / mix / interpolate` runs on the official fixtures, and their error paths."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import latentlab
from conftest import fixture_path, run_cli
from latentlab.latents import LatentCodes

ADA = fixture_path("sg2ada_skip32.pkl")
SG1 = fixture_path("sg1_32.pkl")


@pytest.fixture
def boundaries(tmp_path):
    """A user boundary folder with two planted directions in W (64-d) and an index."""
    folder = tmp_path / "bounds"
    folder.mkdir()
    rng = np.random.RandomState(0)
    for name in ("smile", "age"):
        v = rng.randn(1, 64)
        np.save(folder / f"{name}.npy", v / np.linalg.norm(v))
    (folder / "index.json").write_text(
        json.dumps(
            {"attributes": {"smile": {"file": "smile.npy", "space": "w"}, "age": {"file": "age.npy", "space": "w"}}}
        )
    )
    return folder


def test_edit_writes_grid_images_record_and_latents(capsys, tmp_path, boundaries):
    out = tmp_path / "edit"
    code, _, err = run_cli(
        capsys,
        "edit",
        "--model",
        ADA,
        "--attr",
        "smile",
        "--boundaries",
        boundaries,
        "--condition",
        "age",
        "--alpha",
        "-2,0,2",
        "--seeds",
        "1-2",
        "--trunc",
        "0.7",
        "--out",
        out,
    )
    assert code == 0, err
    files = sorted(os.listdir(out))
    assert "grid.png" in files and "edit.json" in files and "latents.npz" in files
    assert "seed0001_alpha+2.00.png" in files and len([f for f in files if f.startswith("seed")]) == 6
    rec = json.loads((out / "edit.json").read_text())
    assert rec["alphas"] == [-2.0, 0.0, 2.0] and rec["seeds"] == [1, 2] and rec["space"] == "w"
    assert rec["direction"]["conditions"] == ["age"] and len(rec["direction"]["sha256"]) == 64
    # the recorded codes reproduce the images: edited - original = alpha * (smile orthogonalised to age)
    G = latentlab.load_generator(ADA)
    orig = LatentCodes.load(out / "latents.npz", prefix="original_")
    edited = LatentCodes.load(out / "latents.npz", prefix="edited_")
    smile, age = np.load(boundaries / "smile.npy")[0], np.load(boundaries / "age.npy")[0]
    n = smile - (smile @ age) * age
    n /= np.linalg.norm(n)
    diff = edited.data.reshape(2, 3, -1) - orig.data[:, None]
    np.testing.assert_allclose(
        diff.numpy(), np.broadcast_to(np.array([-2, 0, 2])[None, :, None] * n[None, None], (2, 3, 64)), atol=1e-5
    )
    with torch.no_grad():
        ws = G.mapping(latentlab.z_from_seeds([2], 64), None, truncation_psi=0.7)
        img = G.synthesis(ws + 2 * torch.from_numpy(n).float())
    expected = (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    got = np.asarray(Image.open(out / "seed0002_alpha+2.00.png"))
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_edit_in_wplus_layers_and_s_channels(capsys, tmp_path, boundaries):
    code, _, err = run_cli(
        capsys,
        "edit",
        "--model",
        ADA,
        "--boundary",
        boundaries / "smile.npy",
        "--space",
        "w+",
        "--layers",
        "coarse",
        "--alpha",
        "3",
        "--seeds",
        "0",
        "--out",
        tmp_path / "wp",
    )
    assert code == 0, err
    lat = np.load(tmp_path / "wp" / "latents.npz")
    assert lat["alphas"].tolist() == [0.0, 3.0]  # the unedited image is added as the first column
    diff = lat["edited_codes"] - lat["original_codes"]
    assert np.abs(diff[0]).max() == 0
    assert np.abs(diff[1, 3:]).max() == 0 and np.abs(diff[1, :3]).max() > 0  # coarse = ws 0-2 at 32 px
    code, _, err = run_cli(
        capsys,
        "edit",
        "--model",
        ADA,
        "--space",
        "s",
        "--channels",
        "b8.conv0:5",
        "--alpha",
        "-4,4",
        "--seeds",
        "0",
        "--out",
        tmp_path / "s",
    )
    assert code == 0, err
    lat = np.load(tmp_path / "s" / "latents.npz")
    assert np.count_nonzero(lat["edited_codes"][1] - lat["original_codes"][0]) == 1


def test_edit_on_a_stylegan1_model(capsys, tmp_path):
    v = np.random.RandomState(1).randn(1, 32)
    np.save(tmp_path / "d.npy", v / np.linalg.norm(v))
    code, _, err = run_cli(
        capsys,
        "edit",
        "--model",
        SG1,
        "--boundary",
        tmp_path / "d.npy",
        "--alpha",
        "-1:1:3",
        "--seeds",
        "0-1",
        "--out",
        tmp_path / "v1",
    )
    assert code == 0, err and os.path.exists(tmp_path / "v1" / "grid.png")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--attr", "smile"], "no attribute directions are registered"),
        (["--attr", "frown", "--boundaries", "{b}"], "unknown attribute 'frown'; available for this model: age, smile"),
        (["--attr", "smile", "--boundaries", "{b}", "--space", "z"], "belongs to the w space, not z"),
        (["--boundary", "{b}/smile.npy", "--layers", "0-2"], "--layers needs --space w+"),
        (["--boundary", "{b}/smile.npy", "--space", "w+", "--layers", "7-12"], "ws layers 0-7"),
        (["--boundary", "{b}/smile.npy", "--alpha", "x"], "bad alpha"),
        (["--boundary", "/no/such.npy"], "no such direction file"),
        ([], "say what to edit"),
    ],
)
def test_edit_errors(capsys, tmp_path, boundaries, args, message):
    args = [a.replace("{b}", str(boundaries)) for a in args]
    code, _, err = run_cli(capsys, "edit", "--model", ADA, *args, "--seeds", "0", "--out", tmp_path / "x")
    assert code != 0 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not os.path.exists(tmp_path / "x" / "grid.png")


def test_interfacegan_boundary_size_mismatch_is_refused(capsys, tmp_path):
    b = os.path.join(
        os.path.dirname(__file__),
        "..",
        "..",
        "shared",
        "data",
        "interfacegan",
        "boundaries",
        "stylegan_ffhq_smile_w_boundary.npy",
    )
    if not os.path.exists(b):
        pytest.skip("official InterFaceGAN boundaries not available")
    code, _, err = run_cli(capsys, "edit", "--model", SG1, "--boundary", b, "--out", tmp_path / "x")
    assert code == 1 and "has 512 entries but the w space of this model has 32" in err


def test_mix_grid_copies_the_layers(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "mix", "--model", ADA, "--rows", "0-1", "--cols", "5-7", "--layers", "0-3", "--out", tmp_path / "m"
    )
    assert code == 0, err
    grid = np.asarray(Image.open(tmp_path / "m" / "grid.png"))  # labels left and on top; 32 px cells x4
    top, left = grid.shape[0] - (3 * 128 + 2 * 2), grid.shape[1] - (4 * 128 + 3 * 2)
    assert top > 0 and left > 0
    mixed = np.asarray(Image.open(tmp_path / "m" / "mix_0001_0006.png"))
    y, x = top + 2 * 130, left + 2 * 130  # row 2 (seed 1; row 0 holds the sources), column 2 (seed 6)
    np.testing.assert_array_equal(grid[y : y + 128, x : x + 128], mixed.repeat(4, axis=0).repeat(4, axis=1))
    G = latentlab.load_generator(ADA)
    with torch.no_grad():
        wr = G.mapping(latentlab.z_from_seeds([1], 64), None)
        wc = G.mapping(latentlab.z_from_seeds([6], 64), None)
        wr[:, :4] = wc[:, :4]
        img = G.synthesis(wr)
    expected = (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    got = np.asarray(Image.open(tmp_path / "m" / "mix_0001_0006.png"))
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize("space", ["z", "w"])
def test_interpolate_frames(capsys, tmp_path, space):
    code, _, err = run_cli(
        capsys,
        "interpolate",
        "--model",
        ADA,
        "--seeds",
        "0,3,4",
        "--steps",
        "5",
        "--space",
        space,
        "--out",
        tmp_path / "i",
    )
    assert code == 0, err
    assert len([f for f in os.listdir(tmp_path / "i") if f.startswith("pair")]) == 10
    path = np.load(tmp_path / "i" / "path.npz")
    codes = path["codes"].reshape(2, 5, -1)
    G = latentlab.load_generator(ADA)
    z = latentlab.z_from_seeds([0, 3], 64)
    ends = z if space == "z" else G.mapping(z, None)[:, 0].detach()
    np.testing.assert_allclose(codes[0, 0], ends[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(codes[0, -1], ends[1].numpy(), atol=1e-5)


def test_truncate_grid_and_reusable_clusters(capsys, tmp_path):
    out = tmp_path / "t"
    code, _, err = run_cli(
        capsys,
        "truncate",
        "--model",
        ADA,
        "--seeds",
        "0-3",
        "--variant",
        "none",
        "--variant",
        "w:0",
        "--variant",
        "clusters:k=2,psi=0",
        "--fit-samples",
        "200",
        "--save-fitted",
        "--out",
        out,
    )
    assert code == 0, err
    rec = json.loads((out / "truncate.json").read_text())
    assert [v["spec"] for v in rec["variants"]] == ["none", "w:0", "clusters:k=2,psi=0"]
    w, h = Image.open(out / "grid.png").size  # 3 x 4 cells of 32 px x4 (auto), variant and seed labels
    assert w > 4 * 128 + 3 * 2 and h > 3 * 128 + 2 * 2
    # psi=0 in W renders w_avg for every seed: all four images of that row are identical
    row = np.asarray(Image.open(out / "variant1.png"))
    tiles = [row[:, k * 34 : k * 34 + 32] for k in range(4)]
    assert all(np.array_equal(tiles[0], t) for t in tiles[1:])
    # the saved clusters load again and give the same row
    code, _, err = run_cli(
        capsys,
        "truncate",
        "--model",
        ADA,
        "--seeds",
        "0-3",
        "--variant",
        "none",
        "--clusters",
        out / "variant2.npz",
        "--out",
        tmp_path / "t2",
    )
    assert code == 0, err
    assert np.array_equal(
        np.asarray(Image.open(tmp_path / "t2" / "variant1.png")), np.asarray(Image.open(out / "variant2.png"))
    )


def test_truncate_bad_spec_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "truncate", "--model", ADA, "--variant", "w:abc", "--out", tmp_path / "t")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "bad truncation spec 'w:abc'" in err


def test_edit_to_target_distances(capsys, tmp_path, boundaries):
    code, _, err = run_cli(
        capsys,
        "edit",
        "--model",
        ADA,
        "--boundary",
        boundaries / "smile.npy",
        "--to-distance",
        "--alpha",
        "-3,3",
        "--seeds",
        "0-1",
        "--out",
        tmp_path / "d",
    )
    assert code == 0, err
    lat = np.load(tmp_path / "d" / "latents.npz")
    n = np.load(boundaries / "smile.npy")[0]
    dist = (lat["edited_codes"] @ n).reshape(2, 3)  # columns: unedited, then the target distances
    np.testing.assert_allclose(dist[:, 1:], [[-3, 3], [-3, 3]], atol=1e-4)
    np.testing.assert_array_equal(lat["edited_codes"].reshape(2, 3, -1)[:, 0], lat["original_codes"])
    assert np.isnan(lat["alphas"][0]) and lat["alphas"][1:].tolist() == [-3.0, 3.0]
    assert json.loads((tmp_path / "d" / "edit.json").read_text())["alphas"] == [None, -3.0, 3.0]
    assert os.path.exists(tmp_path / "d" / "seed0001_original.png")
