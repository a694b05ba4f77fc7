"""Style-mixing grids, interpolation paths and generate runs as library calls (what `mix`, `interpolate` and
`generate` call), against independent computations."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import fixture_path, run_cli

ADA = fixture_path("sg2ada_skip32.pkl")


def _uint8(x):
    return (x.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


def _ws(G, seeds, psi=1.0, cutoff=None):
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).float()
    with torch.no_grad():
        return G.mapping(z, None, truncation_psi=psi, truncation_cutoff=cutoff)


def test_mix_grid_cells_and_layout(tiny_generator):
    from latentlab.edits.mixing import mix_grid

    G = tiny_generator
    rows, cols = [2, 5], [7, 1, 4]
    res = mix_grid(G, rows, cols, "0-2", truncation_psi=0.8, truncation_cutoff=4, batch_size=4)
    assert res["layers"] == [0, 1, 2] and res["images"].shape == (6, 16, 16, 3)
    wr, wc = _ws(G, rows, 0.8, 4), _ws(G, cols, 0.8, 4)
    for i in range(2):
        for j in range(3):
            w = wr[i : i + 1].clone()
            w[:, :3] = wc[j : j + 1, :3]  # the row image receives the column image's coarse ws
            with torch.no_grad():
                expected = _uint8(G.synthesis(w, noise_mode="const"))[0]
            assert np.abs(res["images"][i * 3 + j].astype(int) - expected.astype(int)).max() <= 1, (i, j)
    grid, pad = res["grid"], 2
    cell = lambda r, c: grid[r * 18 : r * 18 + 16, c * 18 : c * 18 + 16]  # noqa: E731  (16 px + 2 px padding)
    assert grid.shape == (3 * 16 + 2 * pad, 4 * 16 + 3 * pad, 3)
    assert (cell(0, 0) == 255).all()  # the corner is blank
    for j in range(3):
        np.testing.assert_array_equal(cell(0, j + 1), res["images_cols"][j])  # top row: the column sources
    for i in range(2):
        np.testing.assert_array_equal(cell(i + 1, 0), res["images_rows"][i])  # left column: the row sources
        for j in range(3):
            np.testing.assert_array_equal(cell(i + 1, j + 1), res["images"][i * 3 + j])
    with pytest.raises(ValueError, match="layer 9 does not exist"):
        mix_grid(G, rows, cols, "9")


def test_write_mix_and_the_command_agree(capsys, tmp_path):
    import latentlab
    from latentlab.edits.mixing import mix_grid, write_mix

    G = latentlab.load_generator(ADA)
    res = mix_grid(G, [0, 1], [5], "coarse", truncation_psi=0.7)
    record = write_mix(tmp_path / "lib", res, dict(model=ADA))
    assert sorted(os.listdir(tmp_path / "lib")) == ["grid.png", "mix.json", "mix_0000_0005.png", "mix_0001_0005.png"]
    assert record == json.loads((tmp_path / "lib" / "mix.json").read_text())
    assert record["rows"] == [0, 1] and record["cols"] == [5] and record["truncation"] == {"psi": 0.7, "cutoff": None}
    assert record["model"] == ADA and "torch" in record["versions"]
    code, _, err = run_cli(
        capsys, "mix", "--model", ADA, "--rows", "0,1", "--cols", "5", "--trunc", "0.7", "--out", tmp_path / "cli"
    )
    assert code == 0, err
    for name in ("grid.png", "mix_0001_0005.png"):
        assert np.array_equal(
            np.asarray(Image.open(tmp_path / "cli" / name)), np.asarray(Image.open(tmp_path / "lib" / name))
        )
    cli = json.loads((tmp_path / "cli" / "mix.json").read_text())
    assert {k: v for k, v in cli.items() if k != "versions"} == {k: v for k, v in record.items() if k != "versions"}


@pytest.mark.parametrize("space", ["z", "w", "w+"])
def test_interpolation_path_ends_and_frames(tiny_generator, space):
    from latentlab.edits.mixing import interpolation_path, render_interpolation, slerp

    G = tiny_generator
    path = interpolation_path(G, [4, 9, 2], frames=5, space=space)
    codes = path["codes"]
    assert len(codes) == 2 * 5 and codes.space == space and path["t"].tolist() == [0, 0.25, 0.5, 0.75, 1]
    ends = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in (4, 9, 2)])).float()
    if space != "z":
        ends = _ws(G, [4, 9, 2])
        ends = ends[:, 0] if space == "w" else ends
    data = codes.data.reshape(2, 5, *codes.data.shape[1:])
    for p in range(2):
        torch.testing.assert_close(data[p, 0], ends[p], rtol=0, atol=1e-6)
        torch.testing.assert_close(data[p, -1], ends[p + 1], rtol=0, atol=1e-6)
    mid = slerp(ends[:1], ends[1:2], [0.5])[0, 0] if space == "z" else (ends[0] + ends[1]) / 2
    torch.testing.assert_close(data[0, 2], mid, rtol=0, atol=1e-5)
    res = render_interpolation(G, path, batch_size=3)
    assert res["images"].shape == (10, 16, 16, 3)
    ws = codes.to("w+", G).data
    with torch.no_grad():
        expected = _uint8(G.synthesis(ws, noise_mode="const"))
    assert np.abs(res["images"].astype(int) - expected.astype(int)).max() <= 1


def test_interpolation_refusals(tiny_generator):
    from latentlab.edits.mixing import interpolation_path

    G = tiny_generator
    with pytest.raises(ValueError, match="at least two seeds"):
        interpolation_path(G, [1])
    with pytest.raises(ValueError, match="frames must be >= 2"):
        interpolation_path(G, [1, 2], frames=1)
    with pytest.raises(ValueError, match="a truncation cutoff makes the layers differ"):
        interpolation_path(G, [1, 2], space="w", truncation_psi=0.5, truncation_cutoff=2)


def test_write_interpolation_files(tiny_generator, tmp_path):
    from latentlab.edits.mixing import interpolation_path, render_interpolation, write_interpolation

    G = tiny_generator
    res = render_interpolation(G, interpolation_path(G, [0, 1, 2], frames=3, space="w"))
    write_interpolation(tmp_path, res)
    names = sorted(os.listdir(tmp_path))
    assert names == [
        "grid.png",
        "pair00_frame000.png",
        "pair00_frame001.png",
        "pair00_frame002.png",
        "pair01_frame000.png",
        "pair01_frame001.png",
        "pair01_frame002.png",
        "path.npz",
    ]
    with np.load(tmp_path / "path.npz") as f:
        assert str(f["space"]) == "w" and f["seeds"].tolist() == [0, 1, 2] and f["t"].tolist() == [0, 0.5, 1]
        np.testing.assert_array_equal(f["codes"], res["codes"].data.numpy())
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "pair01_frame002.png")), res["images"][5])
    grid = np.asarray(Image.open(tmp_path / "grid.png"))  # pairs x t, labelled; 16 px frames x8 (auto)
    top, left = grid.shape[0] - (2 * 128 + 2), grid.shape[1] - (3 * 128 + 2 * 2)
    assert top > 0 and left > 0
    last = grid[top + 130 :, left + 260 :]  # pair 1, frame 2
    np.testing.assert_array_equal(last, res["images"][5].repeat(8, axis=0).repeat(8, axis=1))
    write_interpolation(tmp_path / "plain", res, grid_scale=1)  # the frames as they are, still labelled
    plain = np.asarray(Image.open(tmp_path / "plain" / "grid.png"))
    np.testing.assert_array_equal(plain[-16:, -16:], res["images"][5])
    assert plain.shape[0] < grid.shape[0] and plain.shape[1] < grid.shape[1]
    assert (tmp_path / "plain" / "pair01_frame002.png").read_bytes() == (tmp_path / "pair01_frame002.png").read_bytes()


def test_write_generation_renders_its_saved_latents(tiny_generator, tmp_path):
    """The PNGs are the rendering of the w's in latents.npz, bit for bit (one mapping, one render path)."""
    from latentlab.generate import check_generation, write_generation
    from latentlab.latents import LatentCodes

    G = tiny_generator
    record = write_generation(G, [3, 1, 4], tmp_path, truncation_psi=0.6, batch_size=2, noise_mode="none", model="tiny")
    assert record["seeds"] == [3, 1, 4] and record["model"] == "tiny" and record["latents_space"] == "w"
    assert set(record["files"]) == {"seed0003.png", "seed0001.png", "seed0004.png", "grid.png", "latents.npz"}
    codes = LatentCodes.load_for(tmp_path / "latents.npz", G)
    images = codes.render_uint8(G, noise_mode="none", batch_size=2)
    for k, s in enumerate((3, 1, 4)):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f"seed{s:04d}.png")), images[k])
    np.testing.assert_allclose(codes.data.numpy(), _ws(G, [3, 1, 4], 0.6)[:, 0].numpy(), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="unconditional"):
        check_generation(G, class_idx=1)
    with pytest.raises(ValueError, match="unknown latents format 'npz'"):
        check_generation(G, latents_format="npz")
    with pytest.raises(ValueError, match="unconditional"):
        write_generation(G, [0], tmp_path / "x", class_idx=0)
    assert not (tmp_path / "x").exists()  # refused before writing


def test_edit_direction_from_files_with_conditions(tiny_generator, tmp_path):
    from latentlab.edits.pipeline import edit_direction

    G = tiny_generator
    rs = np.random.RandomState(3)
    a, b = rs.randn(G.w_dim), rs.randn(G.w_dim)
    np.save(tmp_path / "a.npy", a[None] / np.linalg.norm(a))
    np.save(tmp_path / "b.npy", b[None] / np.linalg.norm(b))
    d = edit_direction(G, boundary=str(tmp_path / "a.npy"), conditions=[str(tmp_path / "b.npy")])
    ub = b / np.linalg.norm(b)
    expected = a - (a @ ub) * ub  # a with its component along b removed, as a unit vector
    np.testing.assert_allclose(d.vector, expected / np.linalg.norm(expected), atol=1e-12)
    plain = edit_direction(G, boundary=str(tmp_path / "a.npy"))
    np.testing.assert_allclose(plain.vector, a / np.linalg.norm(a), atol=1e-12)
    with pytest.raises(ValueError, match="exactly one of an attribute name or a direction file"):
        edit_direction(G)
    with pytest.raises(FileNotFoundError, match="no such direction file"):
        edit_direction(G, boundary=str(tmp_path / "none.npy"))
