"""Command-line sizes (issue 16): `generate` streams its images a batch at a time (a million seeds must not mean
a million images in memory), grid commands refuse a grid too large for memory before rendering, and every option
bounded by `latentlab.utils.limits` says its bound in --help."""

import os
import types

import click
import numpy as np
import pytest
import torch
from hostile import assert_no_leftovers, assert_one_line_error, run_capped
from PIL import Image

from conftest import make_tiny_generator, run_cli


# ---------------------------------------------------------------------------------------------- generate streams
def _old_generation(G, seeds, psi, noise_mode, batch_size):
    """What write_generation wrote before it streamed: every image rendered at once (render_uint8 of all w's),
    and the grid of them all (captioned with the seeds, 16 px images x8: auto scale)."""
    from latentlab.generate import generation_latents
    from latentlab.utils.images import labelled_grid
    from latentlab.utils.render import render_uint8

    _, w = generation_latents(G, seeds, psi)
    images = render_uint8(G, w.wplus(G), batch_size, noise_mode)
    return w, images, labelled_grid(np.stack(images), cell_labels=[f"seed {s}" for s in seeds], scale=8)


def _png_bytes(arr, folder, name):
    from latentlab.utils.images import save_png, to_pil

    path = os.path.join(folder, name)
    save_png(to_pil(arr), path)
    return open(path, "rb").read()


@pytest.mark.parametrize("noise_mode", ["const", "random"])
def test_write_generation_output_is_byte_identical_to_rendering_all_at_once(tmp_path, noise_mode):
    from latentlab.generate import write_generation
    from latentlab.latents import LatentCodes

    G = make_tiny_generator()
    seeds = [3, 1, 4, 15, 9, 2, 6]
    torch.manual_seed(7)  # 'random' noise: the same draws if the batches are the same, in the same order
    w_old, old, grid_old = _old_generation(G, seeds, 0.7, noise_mode, 2)
    torch.manual_seed(7)
    record = write_generation(G, seeds, tmp_path / "new", 0.7, noise_mode=noise_mode, batch_size=2)
    ref = tmp_path / "ref"
    ref.mkdir()
    for k, s in enumerate(seeds):
        name = f"seed{s:04d}.png"
        assert (tmp_path / "new" / name).read_bytes() == _png_bytes(old[k], ref, name), name
    assert (tmp_path / "new" / "grid.png").read_bytes() == _png_bytes(grid_old, ref, "grid.png")
    codes = LatentCodes.load_for(tmp_path / "new" / "latents.npz", G)
    assert codes.seeds == seeds and codes.space == "w" and codes.meta["truncation"]["psi"] == 0.7
    assert torch.equal(codes.data, w_old.data)
    assert record["files"][-2:] == ["grid.png", "latents.npz"] and len(record["files"]) == len(seeds) + 2
    assert sorted(os.listdir(tmp_path / "new")) == sorted(record["files"] + ["generate.json"])


def test_write_generation_holds_one_batch_of_images_at_a_time(tmp_path, monkeypatch):
    """Each batch's images are on disk before the next batch is rendered, latents are mapped a chunk at a time,
    and the grid shows the first images only."""
    import latentlab.generate as gen
    from latentlab.latents import LatentCodes
    from latentlab.utils.images import labelled_grid

    G = make_tiny_generator()
    events, mapped = [], []
    real_render, real_save, real_latents = gen.render_batches, gen.save_png, gen.generation_latents

    def render(G_, ws, batch_size, *args, **kw):
        for x in real_render(G_, ws, batch_size, *args, **kw):
            events.append(("batch", len(x)))
            yield x

    def save(image, path):
        events.append(("png", os.path.basename(path)))
        real_save(image, path)

    def latents(G_, part, *args, **kw):
        mapped.append(len(part))
        return real_latents(G_, part, *args, **kw)

    monkeypatch.setattr(gen, "render_batches", render)
    monkeypatch.setattr(gen, "save_png", save)
    monkeypatch.setattr(gen, "generation_latents", latents)
    monkeypatch.setattr(gen, "SEED_CHUNK", 5)  # rounded up to whole batches of 3: 6 seeds per chunk
    monkeypatch.setattr(gen, "MAX_GENERATE_GRID", 4)
    seeds = list(range(20, 33))  # 13 seeds: batches 3,3 | 3,3 | 1
    gen.write_generation(G, seeds, tmp_path, batch_size=3, noise_mode="none")

    assert mapped == [6, 6, 1]
    held, largest = 0, 0
    for kind, n in events:  # images rendered but not yet written
        held = held + n if kind == "batch" else held - (n != "grid.png")
        largest = max(largest, held)
    assert largest == 3 and held == 0
    assert [n for kind, n in events if kind == "batch"] == [3, 3, 3, 3, 1]
    assert events[-1] == ("png", "grid.png")

    codes = LatentCodes.load_for(tmp_path / "latents.npz", G)
    assert codes.seeds == seeds
    _, w_all = real_latents(G, seeds)
    torch.testing.assert_close(codes.data, w_all.data, rtol=0, atol=1e-6)  # chunked mapping: the same w's
    images = codes.render_uint8(G, noise_mode="none", batch_size=3)
    for k, s in enumerate(seeds):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f"seed{s:04d}.png")), images[k])
    first = labelled_grid(images[:4], cell_labels=[f"seed {s}" for s in seeds[:4]], scale=8)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "grid.png")), first)
    assert_no_leftovers(tmp_path)  # the latents gathered on disk are gone


def test_generate_grid_count_and_the_latents_of_every_format(tmp_path):
    from latentlab import Generator
    from latentlab.generate import generate_grid_count, write_generation
    from latentlab.latents import LatentCodes
    from latentlab.utils.limits import MAX_GENERATE_GRID, MAX_GRID_BYTES

    big = types.SimpleNamespace(img_resolution=4096, img_channels=3)
    assert generate_grid_count(big, 10**6) == 21  # 2**30 // (4096 * 4096 * 3)
    assert generate_grid_count(types.SimpleNamespace(img_resolution=16, img_channels=3), 10**6) == MAX_GENERATE_GRID
    assert generate_grid_count(types.SimpleNamespace(img_resolution=16, img_channels=3), 5) == 5
    assert MAX_GRID_BYTES == 1 << 30 and MAX_GENERATE_GRID == 256

    torch.manual_seed(0)
    G = Generator(
        z_dim=8,
        c_dim=3,
        w_dim=8,
        img_resolution=8,
        img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=64, channel_max=8),
    ).eval()
    write_generation(G, [4, 5, 6], tmp_path / "n", 0.5, 2, class_idx=2, batch_size=2, latents_format="nvidia")
    codes = LatentCodes.load_for(tmp_path / "n" / "latents.npz", G)
    assert codes.space == "w+" and codes.data.shape == (3, G.num_ws, 8)  # a cutoff makes the layers differ
    torch.testing.assert_close(codes.c, torch.tensor([[0.0, 0.0, 1.0]] * 3), rtol=0, atol=0)
    with torch.no_grad():
        z = LatentCodes.from_seeds(G, [4, 5, 6]).data
        expected = G.mapping(z, codes.c, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(codes.data, expected, rtol=0, atol=1e-6)
    with np.load(tmp_path / "n" / "latents.npz") as f:
        np.testing.assert_array_equal(f["z"], z.numpy())
        np.testing.assert_array_equal(f["w"], f["codes"])
    with np.load(tmp_path / "n" / "projected_w.npz") as f:
        assert f["w"].dtype == np.float32
        np.testing.assert_array_equal(f["w"], codes.data.numpy())

    write_generation(G, [4, 5, 6], tmp_path / "p", class_idx=0, batch_size=2, latents_format="wplus")
    codes = LatentCodes.load_for(tmp_path / "p" / "latents.npz", G)
    assert codes.space == "w+" and torch.equal(codes.data[:, 0], codes.data[:, -1])
    assert_no_leftovers(tmp_path)


def test_an_interrupted_generate_leaves_no_settings_and_no_temporaries(tmp_path, monkeypatch):
    import latentlab.generate as gen

    real_save, saved = gen.save_png, []

    def save(image, path):
        if len(saved) == 3:
            raise OSError(28, "No space left on device", path)
        saved.append(path)
        real_save(image, path)

    monkeypatch.setattr(gen, "save_png", save)
    with pytest.raises(OSError, match="seed0003.png"):
        gen.write_generation(make_tiny_generator(), range(8), tmp_path, batch_size=2)
    assert sorted(os.listdir(tmp_path)) == ["seed0000.png", "seed0001.png", "seed0002.png"]  # no generate.json


# ---------------------------------------------------------------------------------------------- grids in memory
def test_check_grid_counts_rows_columns_and_pixels():
    from latentlab.utils.grids import check_grid, grid_bytes

    G = types.SimpleNamespace(img_resolution=1024, img_channels=3)
    assert grid_bytes(8, 7, 1024) == 8 * 7 * 1024 * 1024 * 3
    assert check_grid(18, 18, G, "--seeds x --alpha") == 18 * 18 * 3 << 20  # 972 MiB: allowed
    with pytest.raises(
        ValueError, match=r"^--seeds x --alpha: a grid of 19 x 18 images at 1024x1024 px needs 1,026 MiB"
    ):
        check_grid(19, 18, G, "--seeds x --alpha")


@pytest.mark.parametrize(
    "args, options",
    [
        (["edit", "--attr", "smile", "--seeds", "0-99999", "--alpha", "-3:3:100"], "--seeds x --alpha"),
        (["mix", "--rows", "0-9999", "--cols", "0-9999"], "--rows x --cols"),
        (["interpolate", "--seeds", "0-999", "--frames", "10000"], "--seeds x --frames"),
        (["truncate", "--seeds", "0-999999", "--variant", "none", "--variant", "w:0.7"], "--variant x --seeds"),
    ],
)
def test_grid_commands_refuse_a_grid_too_large_for_memory(capsys, tmp_path, args, options):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, *args, "--out", out)
    lines = [ln for ln in err.splitlines() if ln.startswith("latentlab: error:")]
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith(f"latentlab: error: {options}: a grid of ") and "more than 1024 MiB" in lines[0]
    assert not out.exists() or os.listdir(out) == []  # refused before anything was written


@pytest.mark.slow
def test_a_huge_edit_grid_is_refused_under_a_memory_cap(tmp_path):
    """10^6 seeds x 10^4 alphas (+ the unedited column): one line in bounded memory, not 10^10 images."""
    proc = run_capped(
        ["edit", "--attr", "smile", "--seeds", "0-999999", "--alpha", "-3:3:10000", "--out", "o"], tmp_path
    )
    assert_one_line_error(proc, "--seeds x --alpha", "1000000 x 10001 images")
    assert not (tmp_path / "o").exists() or os.listdir(tmp_path / "o") == []
    assert_no_leftovers(tmp_path)


# ---------------------------------------------------------------------------------------------- bounds in --help
def _leaves(group, prefix=()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _leaves(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def _help(cmd, path, option):
    ctx = click.Context(cmd, info_name=" ".join(("latentlab",) + path))
    return " ".join(" ".join(option.get_help_record(ctx)).split())


def test_every_bounded_option_states_its_limit_in_help():
    """Options whose values latentlab.utils.limits bounds (found by the type that enforces the bound, not by the
    help text) quote the constant's value; so does --out of the commands that refuse or cut a large grid."""
    from latentlab.cli.main import app
    from latentlab.cli.types import AlphaSpec, LayersType, SeedsType
    from latentlab.utils import limits

    constants = {v for k, v in vars(limits).items() if k.startswith("MAX_") and isinstance(v, int)}
    grid_commands = {("edit",), ("mix",), ("interpolate",), ("truncate",)}
    seen = {}
    for path, cmd in _leaves(app):
        for p in cmd.params:
            if not isinstance(p, click.Option) or p.hidden:
                continue
            t = p.type
            if isinstance(t, SeedsType):
                bound = limits.MAX_SEEDS
            elif isinstance(t, AlphaSpec) and not t.single:
                bound = limits.MAX_ALPHAS
            elif isinstance(t, LayersType):
                bound = limits.MAX_LAYER_INDEX
            elif isinstance(t, click.IntRange) and t.max in constants:
                bound = t.max
            elif p.name == "out_dir" and path in grid_commands:
                bound = f"{limits.MAX_GRID_BYTES >> 20} MiB"
            elif p.name == "out_dir" and path == ("generate",):
                bound = limits.MAX_GENERATE_GRID
            else:
                continue
            text = _help(cmd, path, p)
            assert str(bound) in text, (path, p.opts, text)
            seen.setdefault(bound, []).append((path, p.opts[0]))
    assert len(seen[limits.MAX_SEEDS]) >= 7  # generate, edit, truncate, corr --seeds; mix --rows/--cols; interpolate
    assert (("mix",), "--cols") in seen[limits.MAX_SEEDS]
    assert {(("edit",), "--alpha"), (("corr",), "--alpha")} <= set(seen[limits.MAX_ALPHAS])
    assert {(("edit",), "--layers"), (("mix",), "--layers")} <= set(seen[limits.MAX_LAYER_INDEX])
    assert (("interpolate",), "--frames") in seen[limits.MAX_FRAMES]
    assert len(seen[f"{limits.MAX_GRID_BYTES >> 20} MiB"]) == 4 and seen[limits.MAX_GENERATE_GRID]


def test_bound_text_goes_before_the_full_stop_once():
    from latentlab.cli.types import document_bounds, with_bound

    assert with_bound("Seeds: N or A-B.", "at most 5 seeds") == "Seeds: N or A-B (at most 5 seeds)."
    assert with_bound("Seeds", "at most 5 seeds") == "Seeds (at most 5 seeds)"
    assert with_bound(None, "at most 5 seeds") == "At most 5 seeds."

    from latentlab.cli.types import SEEDS
    from latentlab.utils.limits import MAX_SEEDS

    @click.command()
    @click.option("--seeds", type=SEEDS, help="Seeds.")
    def cmd(seeds):
        pass

    document_bounds(document_bounds(cmd))  # twice: still one bound
    assert cmd.params[0].help == f"Seeds (at most {MAX_SEEDS} seeds)."
