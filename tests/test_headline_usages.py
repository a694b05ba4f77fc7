"""The headline usages exactly as a new user types them: `latentlab ...` in a subprocess, from an empty
folder, offline, with the embedded model (no --model, no --out)."""

import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TILE, SCALE, PAD = 64, 2, 2  # the embedded model's image side; grid.png's auto upscaling (128 px cells); padding


def latentlab(cwd, *args, timeout=300):
    """Run `latentlab ARGS` (the console script's entry point) in `cwd`; offline, one thread, empty cache."""
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        LATENTLAB_CACHE=str(cwd / ".cache"),
        NO_PROXY="*",
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
    )
    env.pop("WORLD_SIZE", None)
    p = subprocess.run(
        [sys.executable, "-m", "latentlab.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return p.returncode, p.stdout, p.stderr


def printed_folder(stdout):
    """The folder of the last line, `wrote ... to DIR`."""
    m = re.search(r" to (\S+)\s*$", stdout.strip().splitlines()[-1])
    assert m, stdout
    return m.group(1)


def tiles(grid, rows, cols):
    """The images of grid.png at the model's resolution: its cells (below the column labels, right of the row
    labels) are the images upscaled SCALE times by pixel replication."""
    a = np.asarray(grid)
    cell = TILE * SCALE
    top, left = a.shape[0] - (rows * (cell + PAD) - PAD), a.shape[1] - (cols * (cell + PAD) - PAD)
    assert top > 0 and left > 0 and a.shape[2] == 3, a.shape  # the label margins
    out = []
    for r in range(rows):
        row = []
        for c in range(cols):
            y, x = top + r * (cell + PAD), left + c * (cell + PAD)
            big = a[y : y + cell, x : x + cell]
            small = big[::SCALE, ::SCALE]
            assert np.array_equal(big, small.repeat(SCALE, axis=0).repeat(SCALE, axis=1))  # exact replication
            row.append(small)
        out.append(row)
    return out


@pytest.fixture(scope="module")
def toyfaces():
    import latentlab
    from latentlab import defaults

    G = latentlab.load_generator(defaults.NAME)
    smile = np.load(os.path.join(defaults.w_boundaries_dir(), "smile.npy"))[0]
    return G, torch.from_numpy(smile).float()


def uint8(img):
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


@pytest.mark.slow
def test_edit_attr_smile_alpha_2_as_typed(tmp_path, toyfaces):
    """`latentlab edit --attr smile --alpha 2`: a default folder, a grid of the original beside the edit."""
    G, smile = toyfaces
    code, out, err = latentlab(tmp_path, "edit", "--attr", "smile", "--alpha", "2")
    assert code == 0, err
    folder = printed_folder(out)
    assert folder == os.path.join("latentlab-out", "edit", "001") and (tmp_path / folder / "grid.png").is_file()
    rec = json.loads((tmp_path / folder / "edit.json").read_text())
    assert rec["alphas"] == [0.0, 2.0] and rec["seeds"] == list(range(8)) and rec["space"] == "w"
    grid = tiles(Image.open(tmp_path / folder / "grid.png"), 8, 2)  # default seeds 0-7; original + edited
    with torch.no_grad():
        z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in (0, 5)])).float()
        w = G.mapping(z, None)
        original, edited = uint8(G.synthesis(w)), uint8(G.synthesis(w + 2 * smile))
    for k, row in enumerate((0, 5)):
        assert np.abs(grid[row][0].astype(int) - original[k].astype(int)).max() <= 1  # column 1: unedited
        assert np.abs(grid[row][1].astype(int) - edited[k].astype(int)).max() <= 1  # column 2: alpha 2
        assert np.abs(original[k].astype(int) - edited[k].astype(int)).max() > 10  # and the edit is visible

    code, out, err = latentlab(tmp_path, "edit", "--attr", "smile", "--alpha", "2", "--seeds", "0")
    assert code == 0, err
    assert printed_folder(out) == os.path.join("latentlab-out", "edit", "002")  # never over the first run
    assert len(os.listdir(tmp_path / folder)) == 2 * 8 + 3  # the first run is untouched


@pytest.mark.slow
def test_out_existing_folder_needs_force(tmp_path):
    taken = tmp_path / "mine"
    taken.mkdir()
    (taken / "notes.txt").write_text("keep me")
    code, out, err = latentlab(tmp_path, "edit", "--attr", "smile", "--alpha", "2", "--seeds", "0", "--out", "mine")
    assert code == 1 and out == ""
    assert err.strip().count("\n") == 0 and err.startswith("latentlab: error: --out mine: the folder is not empty")
    assert "--force" in err and os.listdir(taken) == ["notes.txt"]
    code, out, err = latentlab(
        tmp_path, "edit", "--attr", "smile", "--alpha", "2", "--seeds", "0", "--out", "mine", "--force"
    )
    assert code == 0, err
    assert (
        printed_folder(out) == "mine"
        and (taken / "grid.png").is_file()
        and (taken / "notes.txt").read_text() == "keep me"
    )
    assert not (tmp_path / "latentlab-out").exists()


def readme_first_command():
    """The `latentlab ...` part of the README's first command (the set-up line)."""
    text = open(os.path.join(ROOT, "README.md")).read()
    for line in text.splitlines():
        if "latentlab " in line and not line.startswith("#") and not line.startswith("latentlab is"):
            if "&&" in line or line.lstrip().startswith("latentlab "):
                return shlex.split(line.split("&&")[-1].split("#")[0])
    raise AssertionError("no latentlab command in README.md")


def test_readme_first_command(tmp_path):
    args = readme_first_command()
    assert args[0] == "latentlab"
    code, out, err = latentlab(tmp_path, *args[1:])
    assert code == 0, err
    folder = tmp_path / printed_folder(out)
    rec = json.loads((folder / "edit.json").read_text())
    grid = Image.open(folder / "grid.png")
    tiles(grid, len(rec["seeds"]), len(rec["alphas"]))
    assert 0.0 in rec["alphas"] or None in rec["alphas"]  # the unedited image is in the grid
