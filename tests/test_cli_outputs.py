"""Output folders (default numbered folders, --out/--force, resumable folders), the unedited column of
edit grids, and what `generate` records (settings, latents in our, W+ and NVIDIA's layouts)."""

import json
import os
import threading

import click
import numpy as np
import pytest
import torch
from PIL import Image

import latentlab
from conftest import fixture_path, run_cli
from latentlab.utils import outdir

ADA = fixture_path("sg2ada_skip32.pkl")


# ---- the library helper -----------------------------------------------------------------------------------------
def test_new_run_dir_counts_up_and_never_reuses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert outdir.new_run_dir("edit") == os.path.join("latentlab-out", "edit", "001")
    assert outdir.new_run_dir("edit") == os.path.join("latentlab-out", "edit", "002")
    assert outdir.new_run_dir("train-gan") == os.path.join("latentlab-out", "train-gan", "001")
    os.mkdir("latentlab-out/edit/007")
    os.mkdir("latentlab-out/edit/notes")  # not a number: ignored
    os.rmdir("latentlab-out/edit/001")  # a deleted run's number is not handed out again
    assert outdir.new_run_dir("edit") == os.path.join("latentlab-out", "edit", "008")
    for k in range(9, 1000):
        os.mkdir(f"latentlab-out/edit/{k:03d}")
    assert outdir.new_run_dir("edit") == os.path.join("latentlab-out", "edit", "1000")


def test_new_run_dir_skips_a_number_taken_meanwhile(tmp_path, monkeypatch):
    """Another process creating 001 between our listing and our mkdir: we take 002, never share 001."""
    monkeypatch.chdir(tmp_path)
    os.makedirs("latentlab-out/edit")
    real_listdir = os.listdir

    def stale_listdir(path):
        entries = real_listdir(path)
        if not os.path.exists("latentlab-out/edit/001"):
            os.mkdir("latentlab-out/edit/001")  # the other process wins the race
        return entries

    monkeypatch.setattr(os, "listdir", stale_listdir)
    assert outdir.new_run_dir("edit") == os.path.join("latentlab-out", "edit", "002")


def test_concurrent_runs_get_distinct_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got, barrier = [], threading.Barrier(8)

    def worker():
        barrier.wait()
        got.append(outdir.new_run_dir("edit"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [os.path.join("latentlab-out", "edit", f"{k:03d}") for k in range(1, 9)]


def test_check_out_dir_and_check_resume_dir(tmp_path):
    assert outdir.check_out_dir(tmp_path / "new") == str(tmp_path / "new") and not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".tmp-123.txt").write_text("")  # a killed writer's temporary is not content
    outdir.check_out_dir(tmp_path / "empty")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a.png").write_text("")
    with pytest.raises(ValueError, match=r"--out .*full: the folder is not empty \(a.png\).*--force"):
        outdir.check_out_dir(tmp_path / "full")
    outdir.check_out_dir(tmp_path / "full", force=True)
    (tmp_path / "f.txt").write_text("")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        outdir.check_out_dir(tmp_path / "f.txt", force=True)
    with pytest.raises(ValueError, match=r"holds no sample folder \(no manifest.json\)"):
        outdir.check_resume_dir(tmp_path / "full", ["manifest.json"], "sample folder")
    (tmp_path / "full" / "manifest.json").write_text("{}")
    outdir.check_resume_dir(tmp_path / "full", ["manifest.json"], "sample folder")  # the run decides


def test_remove_if_empty_removes_only_empty_run_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = outdir.new_run_dir("edit"), outdir.new_run_dir("edit")
    open(os.path.join(a, "grid.png"), "w").close()
    assert outdir.remove_if_empty(b) and not os.path.exists(b)
    assert not outdir.remove_if_empty(a) and os.path.exists(a)
    c = outdir.new_run_dir("mix")
    assert outdir.remove_if_empty(c) and not os.path.exists("latentlab-out/mix") and os.path.exists("latentlab-out")


# ---- the CLI options --------------------------------------------------------------------------------------------
def _leaves(group, prefix=()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _leaves(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


RESUMABLE = {
    ("sample",),
    ("toyfaces",),
    ("train", "gan"),
    ("train", "hsr"),
    ("train", "clusters"),
    ("train", "encoder"),
    ("sweep",),
}
PRINT_ONLY = {("als",), ("ppl",), ("separability",)}  # print their result; files only with --out
# convert: SRC DST files, --force is about DST; explore: a server, its exports download in the browser
NO_OUT = {("info",), ("models",), ("convert",), ("explore",)}


def test_every_writing_command_has_a_folder_out_with_the_right_default():
    from latentlab.cli.main import app

    seen = set()
    for path, cmd in _leaves(app):
        params = {p.name: p for p in cmd.params}
        if path in NO_OUT:
            assert "out_dir" not in params, path
            continue
        seen.add(path)
        out = params.get("out_dir")
        assert out is not None and out.opts == ["--out"] and out.metavar == "DIR" and not out.required, path
        ctx, group = click.Context(app, info_name="latentlab"), app
        for name in path:  # the context chain of `latentlab train gan --help`
            group = group.commands[name]
            ctx = click.Context(group, info_name=name, parent=ctx)
        help_text = cmd.get_help(ctx)
        flat = "".join(help_text.split())  # click wraps lines, also after a hyphen
        if path in PRINT_ONLY:
            assert "nofilesarewritten" in flat, path
        else:
            assert f"latentlab-out/{'-'.join(path)}/NNN" in flat, path
        assert ("force" in params) == (path not in RESUMABLE), path  # resumable runs resume, never overwrite
    assert RESUMABLE | PRINT_ONLY <= seen and {("generate",), ("edit",), ("boundary",), ("train-classifier",)} <= seen


@pytest.mark.parametrize(
    "args",
    [
        ("generate", "--model", ADA, "--seeds", "0"),
        ("mix", "--model", ADA, "--rows", "0", "--cols", "1"),
        ("truncate", "--model", ADA, "--seeds", "0", "--variant", "none"),
    ],
)
def test_default_folders_for_each_writing_command(capsys, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    for k in (1, 2):
        code, out, err = run_cli(capsys, *args)
        assert code == 0, err
        folder = os.path.join("latentlab-out", args[0], f"{k:03d}")
        assert out.strip().splitlines()[-1].endswith(f"to {folder}") and "grid.png" in os.listdir(folder)
    assert sorted(os.listdir(tmp_path)) == ["latentlab-out"]


def test_out_rules(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ("generate", "--model", ADA, "--seeds", "0")
    code, _, err = run_cli(capsys, *base, "--out", "run")
    assert code == 0, err
    first = (tmp_path / "run" / "seed0000.png").read_bytes()
    (tmp_path / "run" / "mine.txt").write_text("x")
    code, out, err = run_cli(capsys, *base, "--out", "run")  # not empty: refused before any work
    assert code == 1 and out == "" and err.count("\n") == 1 and "--out run: the folder is not empty" in err
    code, _, err = run_cli(capsys, *base, "--seeds", "1", "--out", "run", "--force")
    assert code == 0, err
    assert (tmp_path / "run" / "mine.txt").read_text() == "x" and (tmp_path / "run" / "seed0001.png").exists()
    assert json.loads((tmp_path / "run" / "generate.json").read_text())["seeds"] == [1]  # fixed names overwritten
    assert (tmp_path / "run" / "seed0000.png").read_bytes() == first
    for bad, message in (("grid.png", "--out takes a folder"), ("run/seed0000.png", "--out takes a folder")):
        code, _, err = run_cli(capsys, *base, "--out", bad)
        assert code == 1 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "latentlab-out").exists()


def test_a_failed_run_leaves_no_numbered_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "generate", "--model", ADA, "--seeds", "0", "--class", "3")
    assert code == 1 and "unconditional" in err
    assert not (tmp_path / "latentlab-out").exists()
    code, _, err = run_cli(capsys, "generate", "--model", ADA, "--seeds", "0")
    assert code == 0 and os.listdir(tmp_path / "latentlab-out" / "generate") == ["001"]


def test_torchrun_without_out_is_refused(capsys, tmp_path, monkeypatch):
    """Every process would pick its own number: under torchrun the folder must be named."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, _, err = run_cli(capsys, "generate", "--model", ADA, "--seeds", "0")
    assert code == 2 and "under torchrun give --out DIR" in err and err.count("\n") == 1
    assert not (tmp_path / "latentlab-out").exists()


def test_resumable_command_default_folder_resume_and_refusal(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ("toyfaces", "--n", "3", "--resolution", "16", "--workers", "1")
    code, out, err = run_cli(capsys, *args)
    folder = os.path.join("latentlab-out", "toyfaces", "001")
    assert code == 0 and f"writing to {folder} (rerun with --out {folder} to resume)" in err, err
    assert len(os.listdir(os.path.join(folder, "images"))) == 3
    code, out, err = run_cli(capsys, *args, "--out", folder)  # same settings: resumes, no --force needed
    assert code == 0 and "kept 3 images" in out, err
    code, out, err = run_cli(capsys, "toyfaces", "--n", "4", "--resolution", "16", "--out", folder)
    assert code == 1 and "n=3" in err  # other settings: refused by the dataset writer, as before
    code, _, err = run_cli(capsys, *args, "--out", os.path.join("latentlab-out", "toyfaces"))  # not a dataset
    assert code == 1 and "holds no toyfaces dataset" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, *args, "--out", folder, "--force")
    assert code == 2 and "--force" in err  # resumable commands never overwrite


def test_sample_refuses_a_folder_of_another_kind(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "generate", "--model", ADA, "--seeds", "0", "--out", "g")
    assert code == 0, err
    code, _, err = run_cli(capsys, "sample", "--model", ADA, "--n", "2", "--classifier", "x", "--out", "g")
    assert code == 1 and "holds no sample folder (no manifest.json)" in err and err.count("\n") == 1


# ---- edit: the unedited column ----------------------------------------------------------------------------------
def test_edit_alphas():
    from latentlab.edits.pipeline import edit_alphas

    assert edit_alphas("2") == [0.0, 2.0]
    assert edit_alphas("-2,0,2") == [-2.0, 0.0, 2.0]  # asked for: kept where the user put it, not doubled
    assert edit_alphas("2,-0") == [2.0, -0.0]
    assert edit_alphas("-3:3:4") == [0.0, -3.0, -1.0, 1.0, 3.0]
    assert edit_alphas("2", original=False) == [2.0]
    assert edit_alphas("-1,0", to_distance=True) == [None, -1.0, 0.0]  # distance 0 is not the original
    assert edit_alphas("-1,0", original=False, to_distance=True) == [-1.0, 0.0]


def test_run_edit_first_column_is_the_unedited_image():
    from latentlab.edits import Direction
    from latentlab.edits.pipeline import render_codes, run_edit, start_codes

    G = latentlab.load_generator(ADA)
    n = np.random.RandomState(0).randn(G.w_dim)
    d = Direction(n / np.linalg.norm(n), name="d", space="w")
    codes, edited, images = run_edit(G, [0, 3], d, "2", "w")
    assert edited.meta["alphas"] == [0.0, 2.0] and images.shape[0] == 4
    plain = render_codes(G, start_codes(G, [0, 3], "w"))
    np.testing.assert_array_equal(images[0::2], plain)  # column 1 = the generated image, bit for bit
    assert np.abs(images[1::2].astype(int) - plain.astype(int)).max() > 0
    _, edited, images = run_edit(G, [0, 3], d, "2", "w", original=False)
    assert edited.meta["alphas"] == [2.0] and images.shape[0] == 2
    codes, edited, images = run_edit(G, [0, 3], d, "-1,1", "w", to_distance=True)
    assert edited.meta["alphas"] == [None, -1.0, 1.0] and edited.seeds == [0, 0, 0, 3, 3, 3]
    data = edited.data.reshape(2, 3, -1)
    torch.testing.assert_close(data[:, 0], codes.data, rtol=0, atol=0)
    torch.testing.assert_close(
        data[:, 1:] @ torch.from_numpy(d.vector).float(), torch.tensor([[-1.0, 1.0]] * 2), rtol=0, atol=1e-4
    )
    np.testing.assert_array_equal(images[0::3], plain)


def test_edit_no_original(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "edit", "--attr", "smile", "--alpha", "2", "--seeds", "0-1", "--no-original", "--out", tmp_path / "e"
    )
    assert code == 0, err
    assert json.loads((tmp_path / "e" / "edit.json").read_text())["alphas"] == [2.0]
    grid = np.asarray(Image.open(tmp_path / "e" / "grid.png"))  # one column: 64 px images x2, under its label
    top, left = grid.shape[0] - (2 * 128 + 2), grid.shape[1] - 128
    assert top > 0 and left > 0  # the label margins
    edited = np.asarray(Image.open(tmp_path / "e" / "seed0001_alpha+2.00.png"))
    np.testing.assert_array_equal(grid[top + 130 :, left:], edited.repeat(2, axis=0).repeat(2, axis=1))
    code, _, err = run_cli(capsys, "edit", "--attr", "smile", "--alpha", "2,0", "--seeds", "0", "--out", tmp_path / "f")
    assert json.loads((tmp_path / "f" / "edit.json").read_text())["alphas"] == [2.0, 0.0]  # 0 asked for: not added


# ---- generate: settings and latents -----------------------------------------------------------------------------
def _png(path):
    return np.asarray(Image.open(path))


def test_generate_records_settings_and_latents(capsys, tmp_path):
    out = tmp_path / "g"
    code, stdout, err = run_cli(
        capsys, "generate", "--seeds", "3,7", "--trunc", "0.6", "--noise-mode", "none", "--out", out
    )
    assert code == 0 and stdout.strip().endswith(f"to {out}"), err
    rec = json.loads((out / "generate.json").read_text())
    assert rec["model"] == "toyfaces" and rec["seeds"] == [3, 7] and rec["truncation"] == {"psi": 0.6, "cutoff": None}
    assert rec["noise_mode"] == "none" and rec["class_idx"] is None and rec["latents_format"] == "latentlab"
    assert {"latentlab", "torch", "numpy", "python"} <= set(rec["versions"])
    assert set(rec["files"]) == {"seed0003.png", "seed0007.png", "grid.png", "latents.npz"}
    G = latentlab.load_generator("toyfaces")
    lat = np.load(out / "latents.npz")
    z = np.stack([np.random.RandomState(s).randn(G.z_dim) for s in (3, 7)]).astype(np.float32)
    np.testing.assert_array_equal(lat["z"], z)  # NVIDIA's seed convention
    with torch.no_grad():
        w = G.mapping(torch.from_numpy(z), None, truncation_psi=0.6)
    assert lat["w"].shape == (2, G.w_dim) and str(lat["space"]) == "w"
    np.testing.assert_allclose(lat["w"], w[:, 0].numpy(), rtol=0, atol=1e-6)
    from latentlab.latents import LatentCodes

    codes = LatentCodes.load_for(out / "latents.npz", G)  # what `ppl --latents` and scripts read
    assert codes.space == "w" and codes.seeds == [3, 7]
    img = codes.render(G, noise_mode="none")
    for k, s in enumerate((3, 7)):
        got = (img[k].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
        assert np.abs(got.astype(int) - _png(out / f"seed{s:04d}.png").astype(int)).max() <= 1


def test_generate_nvidia_layout_renders_the_generated_images(capsys, tmp_path):
    """projected_w.npz read back as stylegan2-ada-pytorch's generate.py --projected-w reads it gives the same images."""
    out = tmp_path / "g"
    code, _, err = run_cli(
        capsys,
        "generate",
        "--model",
        ADA,
        "--seeds",
        "0-2",
        "--trunc",
        "0.7",
        "--trunc-cutoff",
        "2",
        "--latents-format",
        "nvidia",
        "--out",
        out,
    )
    assert code == 0, err
    G = latentlab.load_generator(ADA)
    with np.load(out / "projected_w.npz") as f:
        assert list(f.keys()) == ["w"]
        ws = torch.tensor(f["w"])
    assert ws.dtype == torch.float32 and ws.shape == (3, G.num_ws, G.w_dim)
    assert not torch.equal(ws[:, 0], ws[:, -1])  # the cutoff made the layers differ: truly per layer
    for idx, w in enumerate(ws):  # NVIDIA's loop, one image at a time
        with torch.no_grad():
            img = G.synthesis(w.unsqueeze(0), noise_mode="const")
        img = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()
        assert np.abs(img.astype(int) - _png(out / f"seed{idx:04d}.png").astype(int)).max() <= 1
    lat = np.load(out / "latents.npz")
    assert str(lat["space"]) == "w+" and lat["w"].shape == (3, G.num_ws, G.w_dim)  # a cutoff: W+ in ours too
    np.testing.assert_array_equal(lat["w"], ws.numpy())
    assert json.loads((out / "generate.json").read_text())["files"][-2:] == ["latents.npz", "projected_w.npz"]


def test_generate_wplus_layout(capsys, tmp_path):
    out = tmp_path / "g"
    code, _, err = run_cli(
        capsys, "generate", "--model", ADA, "--seeds", "0-3", "--latents-format", "wplus", "--out", out
    )
    assert code == 0, err
    G = latentlab.load_generator(ADA)
    lat = np.load(out / "latents.npz")
    assert str(lat["space"]) == "w+" and lat["codes"].shape == (4, G.num_ws, G.w_dim) and lat["z"].shape == (4, G.z_dim)
    with torch.no_grad():
        w = G.mapping(torch.from_numpy(lat["z"]), None)
    np.testing.assert_allclose(lat["codes"], w.numpy(), rtol=0, atol=1e-6)
    assert not (out / "projected_w.npz").exists()


def test_generate_latents_format_is_checked():
    from latentlab.generate import generation_latents, save_generation_latents

    G = latentlab.load_generator(ADA)
    z, w = generation_latents(G, [0])
    with pytest.raises(ValueError, match="unknown latents format 'npz'"):
        save_generation_latents(".", z, w, G, "npz")


# ---- files for --out: the deprecated spellings ------------------------------------------------------------------
def test_train_classifier_out_folder_and_old_file_spelling(capsys, tmp_path):
    from latentlab.attributes import load_classifier
    from latentlab.datasets import toyfaces as tf

    data = tmp_path / "data"
    tf.write_dataset(data, 20, seed=1, resolution=64, workers=1, progress=False)
    common = ("train-classifier", "--toyfaces", data, "--epochs", "1", "--batch", "10", "--device", "cpu")
    code, out, err = run_cli(capsys, *common, "--out", tmp_path / "old.safetensors")
    assert code == 0, err
    assert [ln for ln in err.splitlines() if "deprecated" in ln and "old.safetensors" in ln]
    assert (tmp_path / "old.safetensors").exists() and (tmp_path / "old.json").exists()
    code, out, err = run_cli(capsys, *common, "--out", tmp_path / "new")
    assert code == 0 and "deprecated" not in err, err
    assert sorted(os.listdir(tmp_path / "new")) == ["classifier.json", "classifier.safetensors"]
    a = load_classifier(f"toyfaces:{tmp_path / 'old.safetensors'}")
    b = load_classifier(f"toyfaces:{tmp_path / 'new' / 'classifier.safetensors'}")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))  # the same training, only the file names differ


def test_generation_latents_of_a_conditional_model(tmp_path):
    """The label goes into w (and into latents.npz as `c`); rendering w gives the images generate_images gives."""
    from latentlab import Generator
    from latentlab.generate import generate_images, generation_latents, save_generation_latents
    from latentlab.latents import LatentCodes

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
    z, w = generation_latents(G, [4, 5], truncation_psi=0.5, class_idx=2)
    onehot = torch.tensor([[0.0, 0.0, 1.0]] * 2)
    with torch.no_grad():
        expected = G.mapping(z.data, onehot, truncation_psi=0.5)[:, 0]
        other = G.mapping(z.data, torch.tensor([[1.0, 0.0, 0.0]] * 2), truncation_psi=0.5)[:, 0]
    torch.testing.assert_close(w.data, expected, rtol=0, atol=0)
    assert not torch.allclose(w.data, other)
    assert save_generation_latents(tmp_path, z, w, G, "latentlab") == ["latents.npz"]
    codes = LatentCodes.load_for(tmp_path / "latents.npz", G)
    torch.testing.assert_close(codes.c, onehot)
    images = dict(generate_images(G, [4, 5], 0.5, None, "const", 2))
    rendered = (codes.render(G).permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    for k, s in enumerate((4, 5)):
        assert np.abs(rendered[k].astype(int) - images[s].astype(int)).max() <= 1
