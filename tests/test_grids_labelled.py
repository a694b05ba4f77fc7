"""Grids people can read (issue 21): every grid.png labels its rows and columns and upscales small images by pixel
replication (`--grid-scale`, auto: cells of at least 128 px), within the grid memory limit; the per-image PNGs
stay at the model's resolution."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import fixture_path, run_cli

ADA = fixture_path("sg2ada_skip32.pkl")  # 32 px: auto scale 4, 128 px cells
PAD = 2


def _images(n, h=20, w=20, c=3, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, h, w, c)).astype(np.uint8)


def _up(img, s):
    """An image upscaled s times, computed independently of the helper: each pixel an s x s block."""
    return np.kron(img, np.ones((s, s, 1), dtype=np.uint8))


def _png(path):
    a = np.asarray(Image.open(path))
    return a[..., None] if a.ndim == 2 else a


def body_cells(grid, rows, cols, cell, band=0):
    """The cells of a labelled grid whose margins sit left and on top: the body (rows x cols cells of `cell` px,
    `band` px captions above each, PAD between) is the bottom-right of the picture. Returns (top, left, cells)."""
    h, w = grid.shape[:2]
    left = w - (cols * (cell + PAD) - PAD)
    top = h - (rows * (band + cell + PAD) - PAD)
    assert left >= 0 and top >= 0, (grid.shape, rows, cols, cell)
    cells = [
        [
            grid[
                top + r * (band + cell + PAD) + band : top + r * (band + cell + PAD) + band + cell,
                left + q * (cell + PAD) : left + q * (cell + PAD) + cell,
            ]
            for q in range(cols)
        ]
        for r in range(rows)
    ]
    return top, left, cells


def ink(region):
    """Whether a region holds drawn (non-white) pixels."""
    return bool((np.asarray(region) < 200).any())


# ---------------------------------------------------------------------------------------------- the scale rule
def test_auto_scale_is_the_smallest_that_makes_a_cell_128_px():
    from latentlab.utils.grids import auto_grid_scale

    assert [auto_grid_scale(r) for r in (16, 32, 64, 100, 128, 256, 1024)] == [8, 4, 2, 2, 1, 1, 1]


def test_parse_grid_scale():
    from latentlab.errors import ConfigError
    from latentlab.utils.grids import parse_grid_scale
    from latentlab.utils.limits import MAX_GRID_SCALE

    assert parse_grid_scale("auto") is None and parse_grid_scale(None) is None and parse_grid_scale("AUTO") is None
    assert parse_grid_scale("3") == 3 and parse_grid_scale(MAX_GRID_SCALE) == MAX_GRID_SCALE == 16
    for bad in (0, -1, 17, 1000, "x", "2.5", 2.5, True, ""):
        with pytest.raises(ConfigError, match=r"^--grid-scale: .* whole number from 1 to 16"):
            parse_grid_scale(bad, "--grid-scale")


def test_auto_scale_shrinks_to_fit_and_a_given_scale_too_large_is_refused():
    import types

    from latentlab.errors import ConfigError
    from latentlab.utils.grids import check_grid, grid_bytes, grid_scale_for

    assert grid_bytes(2, 3, 64, 3, 2) == 2 * 3 * 128 * 128 * 3
    assert grid_scale_for(8, 7, 64) == 2  # small: the 128-px rule
    assert grid_scale_for(200, 200, 64) == 1  # 4 x 10^4 images would pass 1 GiB at x2: auto keeps them at 64 px
    assert grid_scale_for(200, 200, 64, scale=3) == 3  # a given scale is the caller's (checked by check_grid)
    G = types.SimpleNamespace(img_resolution=64, img_channels=3)
    assert check_grid(200, 200, G, "--seeds x --alpha") == grid_bytes(200, 200, 64)  # allowed, unscaled
    with pytest.raises(ConfigError, match=r"^--seeds x --alpha at --grid-scale 3: a grid of 200 x 200 images at 64x64"):
        check_grid(200, 200, G, "--seeds x --alpha", scale=3)


# ---------------------------------------------------------------------------------------------- the helper
def test_cells_are_exact_pixel_replicas_between_label_margins():
    from latentlab.utils.images import labelled_grid

    imgs = _images(6, 20, 24)
    s = 3
    grid = labelled_grid(
        imgs, cols=3, row_labels=["seed 0", "seed 1"], col_labels=["a", "b", "c"], corner="smile", scale=s
    )
    h, w = grid.shape[:2]
    top, left = h - (2 * 60 + PAD), w - (3 * 72 + 2 * PAD)  # body: 2 x 3 cells of 60 x 72 px, 2 px apart
    assert top > 0 and left > 0
    for i in range(6):
        r, q = divmod(i, 3)
        y, x = top + r * (60 + PAD), left + q * (72 + PAD)
        np.testing.assert_array_equal(grid[y : y + 60, x : x + 72], _up(imgs[i], s))
        np.testing.assert_array_equal(grid[y : y + 60, x : x + 72], imgs[i].repeat(s, 0).repeat(s, 1))
    assert (grid[top + 60 : top + 60 + PAD, left:] == 255).all()  # the padding is white
    for r in range(2):  # each row label in the left margin, beside its row
        assert ink(grid[top + r * 62 : top + r * 62 + 60, :left])
    for q in range(3):  # each column label in the top margin, above its column
        assert ink(grid[:top, left + q * 74 : left + q * 74 + 72])
    assert ink(grid[:top, :left])  # the corner label


def test_no_labels_no_margins():
    from latentlab.utils.images import labelled_grid, make_grid

    imgs = _images(5, 16, 16)
    np.testing.assert_array_equal(labelled_grid(imgs, cols=3, scale=1), make_grid(imgs, cols=3))
    up = labelled_grid(imgs, cols=3, scale=2)
    np.testing.assert_array_equal(up, make_grid(np.stack([_up(x, 2) for x in imgs]), cols=3))
    assert labelled_grid(imgs).shape == make_grid(np.stack([_up(x, 8) for x in imgs])).shape  # auto: 16 px -> x8


def test_only_the_margins_asked_for():
    from latentlab.utils.images import labelled_grid

    imgs = _images(4, 32, 32)
    rows_only = labelled_grid(imgs, cols=2, row_labels=["r0", "r1"], scale=4)
    assert rows_only.shape[0] == 2 * 128 + PAD and rows_only.shape[1] > 2 * 128 + PAD
    cols_only = labelled_grid(imgs, cols=2, col_labels=["c0", "c1"], scale=4)
    assert cols_only.shape[1] == 2 * 128 + PAD and cols_only.shape[0] > 2 * 128 + PAD


def test_grayscale_grids_are_labelled_too():
    from latentlab.utils.images import labelled_grid, to_pil

    imgs = _images(4, 32, 32, c=1)
    grid = labelled_grid(imgs, cols=2, row_labels=["x", "y"], col_labels=["t=0", "t=1"], scale=2)
    assert grid.ndim == 3 and grid.shape[-1] == 1 and to_pil(grid).mode == "L"
    top, left, cells = body_cells(grid, 2, 2, 64)
    np.testing.assert_array_equal(cells[1][1], _up(imgs[3], 2))
    assert ink(grid[:top, left:]) and ink(grid[top:, :left])


def test_long_labels_are_never_clipped():
    from latentlab.utils.images import labelled_grid

    imgs = _images(4, 32, 32)
    long_row = "a rather long latent name -> another long one"
    grid = labelled_grid(imgs, cols=2, row_labels=[long_row, "b"], col_labels=["x" * 80, "y"], scale=4)
    top, left, _ = body_cells(grid, 2, 2, 128)
    margin = grid[top:, :left]
    assert left > 128  # the left margin grew to the label's width
    assert not ink(margin[:, :2]) and not ink(margin[:, -2:])  # white on both sides of the widest label
    strip = grid[:top, left:]
    assert ink(strip[:, :128]) and not ink(strip[:, 128:130])  # the long column label stays over its own cell


def test_captions_above_each_cell():
    from latentlab.utils.images import labelled_grid

    imgs = _images(5, 32, 32)
    grid = labelled_grid(imgs, cell_labels=[f"seed {i}" for i in range(5)], scale=4)  # 3 columns, 2 rows
    assert grid.shape[1] == 3 * 128 + 2 * PAD  # no left margin
    band = (grid.shape[0] + PAD) // 2 - 128 - PAD
    assert band > 0
    _, _, cells = body_cells(grid, 2, 3, 128, band)
    for i in range(5):
        np.testing.assert_array_equal(cells[i // 3][i % 3], _up(imgs[i], 4))
        y = (i // 3) * (band + 128 + PAD)
        x = (i % 3) * (128 + PAD)
        assert ink(grid[y : y + band, x : x + 128])  # its caption
    assert not ink(grid[band + 128 + PAD :, 2 * 130 :])  # no sixth image, no caption


def test_helper_refusals():
    from latentlab.errors import ConfigError
    from latentlab.utils.images import labelled_grid

    imgs = _images(4, 16, 16)
    with pytest.raises(ConfigError, match="row_labels: 3 labels for 2 rows"):
        labelled_grid(imgs, cols=2, row_labels=["a", "b", "c"])
    with pytest.raises(ConfigError, match="col_labels: 1 labels for 2 columns"):
        labelled_grid(imgs, cols=2, col_labels=["a"])
    with pytest.raises(ConfigError, match="corner label needs"):
        labelled_grid(imgs, cols=2, col_labels=["a", "b"], corner="c")
    with pytest.raises(ConfigError, match="scale: 0 is not a grid scale"):
        labelled_grid(imgs, scale=0)
    big = np.zeros((2, 1024, 1024, 3), np.uint8)  # x16: 2 x 768 MiB, refused before the grid is allocated
    with pytest.raises(ConfigError, match=r"^grid scale 16: a grid of 1 x 2 images .* more than 1024 MiB"):
        labelled_grid(big, cols=2, scale=16)


def test_font_falls_back_to_the_bitmap_font(monkeypatch):
    """Pillow before 10.1 (no size argument) or without FreeType: the built-in bitmap font still labels."""
    from PIL import ImageFont

    from latentlab.utils import images

    real = ImageFont.load_default

    def old_pillow(*args, **kw):
        if kw or args:
            raise TypeError("load_default() got an unexpected keyword argument 'size'")
        return real()

    images.label_font.cache_clear()
    monkeypatch.setattr(ImageFont, "load_default", old_pillow)
    try:
        grid = images.labelled_grid(_images(2, 32, 32), cols=2, row_labels=["seed 1"], col_labels=["a", "b"], scale=4)
        top, left, _ = body_cells(grid, 1, 2, 128)
        assert ink(grid[top:, :left]) and ink(grid[:top, left:])
    finally:
        images.label_font.cache_clear()  # later tests get the scalable font again


# ---------------------------------------------------------------------------------------------- the commands
def test_generate_grid_captions_seeds_and_keeps_the_seed_pngs(capsys, tmp_path):
    code, _, err = run_cli(capsys, "generate", "--model", ADA, "--seeds", "3-5", "--out", tmp_path / "g")
    assert code == 0, err
    grid = _png(tmp_path / "g" / "grid.png")
    assert grid.shape[1] == 2 * 128 + PAD  # 3 images: 2 columns, 2 rows; captions, no margins
    band = (grid.shape[0] + PAD) // 2 - 128 - PAD
    _, _, cells = body_cells(grid, 2, 2, 128, band)
    for i, s in enumerate((3, 4, 5)):
        seed_png = _png(tmp_path / "g" / f"seed{s:04d}.png")
        assert seed_png.shape == (32, 32, 3)
        np.testing.assert_array_equal(cells[i // 2][i % 2], _up(seed_png, 4))
    code, _, err = run_cli(
        capsys, "generate", "--model", ADA, "--seeds", "3-5", "--grid-scale", "1", "--out", tmp_path / "g1"
    )
    assert code == 0, err
    assert _png(tmp_path / "g1" / "grid.png").shape[1] == 2 * 32 + PAD
    assert json.loads((tmp_path / "g" / "generate.json").read_text())["grid_scale"] == 4  # auto, 32 px
    assert json.loads((tmp_path / "g1" / "generate.json").read_text())["grid_scale"] == 1
    for s in (3, 4, 5):  # only grid.png depends on the scale
        name = f"seed{s:04d}.png"
        assert (tmp_path / "g" / name).read_bytes() == (tmp_path / "g1" / name).read_bytes()


def test_edit_grid_rows_seeds_columns_alphas(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "edit", "--attr", "smile", "--alpha", "-2,2", "--seeds", "4,9", "--out", tmp_path / "e"
    )
    assert code == 0, err
    rec = json.loads((tmp_path / "e" / "edit.json").read_text())
    assert rec["alphas"] == [0.0, -2.0, 2.0]  # the unedited column first
    grid = _png(tmp_path / "e" / "grid.png")
    top, left, cells = body_cells(grid, 2, 3, 128)  # the embedded model's 64 px, x2
    assert top > 0 and left > 0
    for r, seed in enumerate((4, 9)):
        for q, name in enumerate(("alpha+0.00", "alpha-2.00", "alpha+2.00")):
            native = _png(tmp_path / "e" / f"seed{seed:04d}_{name}.png")
            assert native.shape == (64, 64, 3)
            np.testing.assert_array_equal(cells[r][q], _up(native, 2))
        assert ink(grid[top + r * 130 : top + r * 130 + 128, :left])  # "seed 4", "seed 9"
    for q in range(3):
        assert ink(grid[:top, left + q * 130 : left + q * 130 + 128])  # "alpha 0", "alpha -2", "alpha 2"
    assert ink(grid[:top, :left])  # the direction's name


def test_edit_per_image_pngs_do_not_depend_on_the_grid_scale(capsys, tmp_path):
    for scale in ("1", "5"):
        code, _, err = run_cli(
            capsys,
            "edit",
            "--attr",
            "smile",
            "--alpha",
            "2",
            "--seeds",
            "1",
            "--grid-scale",
            scale,
            "--out",
            tmp_path / scale,
        )
        assert code == 0, err
    for name in ("seed0001_alpha+0.00.png", "seed0001_alpha+2.00.png", "latents.npz"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "5" / name).read_bytes(), name
    _, _, cells = body_cells(_png(tmp_path / "5" / "grid.png"), 1, 2, 320)
    np.testing.assert_array_equal(cells[0][1], _up(_png(tmp_path / "5" / "seed0001_alpha+2.00.png"), 5))
    _, _, cells = body_cells(_png(tmp_path / "1" / "grid.png"), 1, 2, 64)
    np.testing.assert_array_equal(cells[0][0], _png(tmp_path / "1" / "seed0001_alpha+0.00.png"))


def test_mix_grid_sources_in_the_first_row_and_column(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "mix", "--model", ADA, "--rows", "0-1", "--cols", "5-6", "--layers", "0-3", "--out", tmp_path / "m"
    )
    assert code == 0, err
    grid = _png(tmp_path / "m" / "grid.png")
    top, left, cells = body_cells(grid, 3, 3, 128)
    assert (cells[0][0] == 255).all()  # the blank corner cell
    for i, r in enumerate((0, 1)):
        for j, c in enumerate((5, 6)):
            np.testing.assert_array_equal(
                cells[i + 1][j + 1], _up(_png(tmp_path / "m" / f"mix_{r:04d}_{c:04d}.png"), 4)
            )
    assert not ink(grid[top : top + 128, :left])  # the sources' row has no row label ...
    assert ink(grid[top + 130 : top + 258, :left]) and ink(grid[top + 260 :, :left])  # ... the mixed rows have
    assert not ink(grid[:top, left : left + 128]) and ink(grid[:top, left + 130 : left + 258])
    assert ink(grid[:top, :left])  # "layers 0-3"


def test_interpolate_grid_rows_pairs_columns_t(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "interpolate", "--model", ADA, "--seeds", "0,3,4", "--frames", "3", "--out", tmp_path / "i"
    )
    assert code == 0, err
    grid = _png(tmp_path / "i" / "grid.png")
    top, left, cells = body_cells(grid, 2, 3, 128)
    for p in range(2):
        for f in range(3):
            np.testing.assert_array_equal(cells[p][f], _up(_png(tmp_path / "i" / f"pair{p:02d}_frame{f:03d}.png"), 4))
        assert ink(grid[top + p * 130 : top + p * 130 + 128, :left])  # "0 -> 3", "3 -> 4"
    assert all(ink(grid[:top, left + f * 130 : left + f * 130 + 128]) for f in range(3))  # t=0, t=0.5, t=1


def test_truncate_grid_rows_variants_columns_seeds(capsys, tmp_path):
    code, _, err = run_cli(
        capsys,
        "truncate",
        "--model",
        ADA,
        "--seeds",
        "0-2",
        "--variant",
        "none",
        "--variant",
        "w:0",
        "--grid-scale",
        "2",
        "--out",
        tmp_path / "t",
    )
    assert code == 0, err
    grid = _png(tmp_path / "t" / "grid.png")
    top, left, cells = body_cells(grid, 2, 3, 64)
    for r in range(2):
        row = _png(tmp_path / "t" / f"variant{r}.png")  # a row strip at the model's resolution, as before
        assert row.shape == (32, 3 * 32 + 2 * PAD, 3)
        for q in range(3):
            np.testing.assert_array_equal(cells[r][q], _up(row[:, q * 34 : q * 34 + 32], 2))
        assert ink(grid[top + r * 66 : top + r * 66 + 64, :left])  # "none", "w psi=0"
    assert all(ink(grid[:top, left + q * 66 : left + q * 66 + 64]) for q in range(3))


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "--seeds", "0"],
        ["edit", "--attr", "smile", "--seeds", "0"],
        ["mix", "--rows", "0", "--cols", "1"],
        ["interpolate", "--seeds", "0,1"],
        ["truncate", "--seeds", "0", "--variant", "none"],
    ],
)
@pytest.mark.parametrize("bad", ["0", "1000", "big"])
def test_a_bad_grid_scale_is_one_line_before_any_work(capsys, tmp_path, args, bad):
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, *args, "--grid-scale", bad, "--out", out)
    assert code != 0 and stdout == "", err
    assert err.startswith("latentlab: error: --grid-scale") and len(err.strip().splitlines()) == 1, err
    assert "1 to 16" in err and not out.exists()


@pytest.mark.parametrize(
    "args, options",
    [
        (["edit", "--attr", "smile", "--seeds", "0-99", "--alpha", "-3:3:100"], "--seeds x --alpha"),
        (["mix", "--rows", "0-99", "--cols", "0-99"], "--rows x --cols"),
        (["interpolate", "--seeds", "0-99", "--frames", "100"], "--seeds x --frames"),
        (["truncate", "--seeds", "0-999", "--variant", "none"], "--variant x --seeds"),
    ],
)
def test_a_grid_scale_that_makes_the_grid_too_large_is_refused(capsys, tmp_path, args, options):
    """Each of these fits unscaled (auto keeps it so); x16 would need gigabytes: one line, nothing written."""
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, *args, "--grid-scale", "16", "--out", out)
    lines = [ln for ln in err.splitlines() if ln.startswith("latentlab: error:")]
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith(f"latentlab: error: {options} at --grid-scale 16: a grid of ") and "MiB" in lines[0]
    assert not out.exists() or os.listdir(out) == []


def test_generate_refuses_a_scale_too_large_for_one_image():
    import types

    from latentlab.errors import ConfigError
    from latentlab.generate import generate_grid_layout

    G = types.SimpleNamespace(img_resolution=4096, img_channels=3)
    assert generate_grid_layout(G, 10**6) == (21, 1)  # auto: unscaled, as many as fit
    assert generate_grid_layout(types.SimpleNamespace(img_resolution=64, img_channels=3), 5) == (5, 2)
    assert generate_grid_layout(types.SimpleNamespace(img_resolution=1024, img_channels=3), 9, 16) == (1, 16)
    with pytest.raises(ConfigError, match=r"^--grid-scale 16: one 4096x4096 px image upscaled 16 times"):
        generate_grid_layout(G, 1, 16)


def test_grid_scale_is_one_shared_option_with_its_bound_in_help():
    import click

    from latentlab.cli import options
    from latentlab.cli.main import app
    from latentlab.cli.types import GridScaleType

    found = []
    for name in ("generate", "edit", "mix", "interpolate", "truncate"):
        cmd = app.commands[name]
        (p,) = [p for p in cmd.params if "--grid-scale" in getattr(p, "opts", ())]
        assert isinstance(p.type, GridScaleType) and p.default == "auto"
        text = " ".join(p.get_help_record(click.Context(cmd, info_name=name))[1].split())
        assert "at most 16" in text and "128 px" in text, text
        found.append(p.help)
    assert len(set(found)) == 1 and callable(options.grid_scale)
