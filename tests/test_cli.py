"""End-to-end runs of the `latentlab` command and its error paths."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import latentlab
from conftest import fixture_path, run_cli
from latentlab.checkpoints.tags import FORMAT_SG2_PYTORCH, FORMAT_SG2_TF

ADA = fixture_path("sg2ada_skip32.pkl")
TF = fixture_path("tf_sg2_16.pkl")


def test_help_lists_commands_with_examples(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    names = (
        "info",
        "generate",
        "convert",
        "models",
        "edit",
        "mix",
        "interpolate",
        "truncate",
        "train-classifier",
        "sample",
        "boundary",
        "separability",
    )
    for name in names:
        assert name in out
    for name in names:
        code, out, _ = run_cli(capsys, name, "--help")
        assert code == 0 and "Example:" in out and "latentlab " + name in out


@pytest.mark.parametrize("path,fmt,res", [(ADA, FORMAT_SG2_PYTORCH, 32), (TF, FORMAT_SG2_TF, 16)])
def test_info(capsys, path, fmt, res):
    code, out, err = run_cli(capsys, "info", path)
    assert code == 0, err
    assert fmt in out and f"{res}x{res}" in out and "num_ws" in out
    code, out, _ = run_cli(capsys, "info", path, "--json")
    s = json.loads(out)
    G = latentlab.load_generator(path)
    assert s["format"] == fmt and s["num_ws"] == G.num_ws and s["z_dim"] == G.z_dim
    assert [b["resolution"] for b in s["blocks"]] == [2**i for i in range(2, res.bit_length())]
    assert s["params"]["total"] == sum(p.numel() for p in G.parameters())
    assert s["params"]["D"] > 0


def test_generate_matches_official_seed_convention(capsys, tmp_path):
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys,
        "generate",
        "--model",
        ADA,
        "--seeds",
        "3-5,9",
        "--trunc",
        "0.7",
        "--trunc-cutoff",
        "2",
        "--out",
        str(out_dir),
    )
    assert code == 0, err
    files = sorted(os.listdir(out_dir))
    assert files == [
        "generate.json",
        "grid.png",
        "latents.npz",
        "seed0003.png",
        "seed0004.png",
        "seed0005.png",
        "seed0009.png",
    ]
    # independent computation: z = RandomState(seed).randn(z_dim), uint8 = clamp(img * 127.5 + 128)
    G = latentlab.load_generator(ADA)
    z = torch.from_numpy(np.random.RandomState(9).randn(1, G.z_dim)).float()
    with torch.no_grad():
        img = G(z, None, truncation_psi=0.7, truncation_cutoff=2, noise_mode="const")
    expected = (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    got = np.asarray(Image.open(out_dir / "seed0009.png"))
    assert got.shape == (32, 32, 3) and np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    grid = np.asarray(Image.open(out_dir / "grid.png"))  # 2 x 2 cells, each captioned with its seed
    band = (grid.shape[0] - 2) // 2 - 128  # 32 px images upscaled 4 times (auto: cells of at least 128 px)
    assert grid.shape[1] == 2 * 128 + 2 and band > 0 and grid.shape[0] == 2 * (band + 128) + 2
    cell = grid[band + 130 + band : band + 130 + band + 128, 130:258]  # row 1, column 1: seed 9
    np.testing.assert_array_equal(cell, got.repeat(4, axis=0).repeat(4, axis=1))


@pytest.mark.slow
def test_convert_then_generate_from_safetensors(capsys, tmp_path):
    dst = tmp_path / "m.safetensors"
    code, out, err = run_cli(capsys, "convert", ADA, str(dst))
    assert code == 0, err and dst.exists()
    code, _, err = run_cli(capsys, "convert", ADA, str(dst))
    assert code == 1 and "--force" in err  # never overwrites silently
    for src, name in ((ADA, "a"), (str(dst), "b")):
        assert run_cli(capsys, "generate", "--model", src, "--seeds", "0", "--out", str(tmp_path / name))[0] == 0
    a = np.asarray(Image.open(tmp_path / "a" / "seed0000.png"))
    b = np.asarray(Image.open(tmp_path / "b" / "seed0000.png"))
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "args,message",
    [
        (["info", "/nonexistent/model.pkl"], "not a known checkpoint name"),
        (["generate", "--model", ADA, "--seeds", "7-3", "--out", "x"], "bad seed range"),
        (["generate", "--model", ADA, "--seeds", "a-b", "--out", "x"], "bad seed"),
        (["generate", "--model", ADA, "--seeds", "0", "--class", "1", "--out", "x"], "unconditional"),
        (["generate", "--model", ADA, "--seeds", "0", "--trunc-cutoff", "99", "--out", "x"], "exceeds num_ws"),
        (["generate", "--model", ADA, "--seeds", "0", "--out", "x.png"], "--out takes a folder"),
        (["convert", ADA, "out.npz"], "must end in .safetensors"),
        (["convert", fixture_path("sg1_32.pkl"), "v1.pkl"], "only StyleGAN2 and StyleGAN3 networks have the pickle"),
    ],
)
def test_errors_are_one_line_and_nonzero(capsys, tmp_path, args, message):
    os.chdir(tmp_path)
    code, out, err = run_cli(capsys, *args)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentlab: error:") and message in lines[0], err
    assert "Traceback" not in err


@pytest.mark.slow
def test_corrupt_file_via_subprocess(tmp_path):
    bad = tmp_path / "corrupt.pkl"
    bad.write_bytes(open(ADA, "rb").read()[:5000])
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run(
        [sys.executable, "-m", "latentlab.cli.main", "info", str(bad)], capture_output=True, text=True, env=env
    )
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and str(bad) in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run(
        [sys.executable, "-m", "latentlab.cli.main", "--debug", "info", str(bad)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode != 0 and "Traceback" in p.stderr


def _all_commands(group, prefix=()):
    import click

    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def test_every_float_option_refuses_non_finite_values():
    """click's FLOAT and FloatRange let nan through every bound; every float option must use FiniteFloat."""
    import click

    from latentlab.cli.main import app
    from latentlab.cli.options import FiniteFloat

    loose = []
    for path, cmd in _all_commands(app):
        for p in cmd.params:
            if isinstance(p.type, (click.types.FloatParamType, click.FloatRange)) and not isinstance(
                p.type, FiniteFloat
            ):
                loose.append(f"{' '.join(path)} {p.opts[0]}")
    assert not loose, f"float options that accept nan/inf: {loose}"
    for text in ("nan", "inf", "-inf", "NaN"):
        with pytest.raises(click.BadParameter, match="finite"):
            FiniteFloat(0, 1).convert(text, None, None)
    assert FiniteFloat(0, 1).convert("0.5", None, None) == 0.5


@pytest.mark.parametrize(
    "args",
    [
        ("edit", "--alpha", "nan"),
        ("edit", "--alpha", "0,inf"),
        ("edit", "--alpha", "-inf:1:3"),
        ("generate", "--trunc", "nan"),
        ("generate", "--trunc", "inf"),
        ("truncate", "--variant", "w:nan"),
    ],
)
def test_non_finite_numbers_are_refused_in_one_line(capsys, tmp_path, args):
    code, out, err = run_cli(capsys, *args, "--seeds", "0", "--out", tmp_path / "o")
    assert code != 0 and "finite" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()  # nothing written
