"""Seeds, alpha lists, layer specs and truncation variants are click parameter types: parsed once, when the
command line is read, by the library's parsers; a refused value is one line naming the option, before any work."""

import os

import click
import pytest

from conftest import fixture_path, run_cli

ADA = fixture_path("sg2ada_skip32.pkl")


def _params(argv):
    from latentlab.cli.main import app

    cmd, words = app, list(argv)
    while isinstance(cmd, click.Group):
        cmd = cmd.commands[words.pop(0)]
    return cmd.make_context(cmd.name, words).params


def test_values_arrive_parsed():
    from latentlab.studies.reports import TruncationRow
    from latentlab.truncation import WTruncation

    p = _params(["generate", "--seeds", "3-5,9"])
    assert p["seeds"] == [3, 4, 5, 9]
    assert _params(["generate"])["seeds"] == list(range(8))  # the default goes through the type too
    p = _params(["edit", "--alpha", "-1:1:3", "--layers", "0-2,fine", "--seeds", "7"])
    assert p["alphas"] == [-1.0, 0.0, 1.0] and p["seeds"] == [7]
    assert p["layers"] == "0-2,fine"  # the form is checked; the indices need the model
    assert _params(["als", "--alpha", "2:2:1"])["edit_alpha"] == 2.0  # one value
    assert _params(["corr", "--alpha", "0.5"])["alphas"] == [0.5]
    p = _params(["mix", "--rows", "1,2", "--cols", "4-5"])
    assert (p["row_seeds"], p["col_seeds"], p["layers"]) == ([1, 2], [4, 5], "coarse")
    p = _params(["truncate", "--variant", "w:0.5@2", "--variant", "none", "--choose", "coarse=3,fine=1"])
    rows = p["variants"]
    assert [type(r) for r in rows] == [TruncationRow, TruncationRow] and [r.spec for r in rows] == ["w:0.5@2", "none"]
    assert (
        isinstance(rows[0].truncation, WTruncation) and rows[0].truncation.psi == 0.5 and rows[0].truncation.cutoff == 2
    )
    assert p["choose"] == {"coarse": 3, "fine": 1}


@pytest.mark.parametrize(
    "argv,message",
    [
        (["generate", "--seeds", "7-3"], "--seeds: bad seed range '7-3': end is before start"),
        (["edit", "--attr", "smile", "--seeds", "a"], "--seeds: bad seed 'a'"),
        (["mix", "--rows", "x"], "--rows: bad seed 'x'"),
        (["mix", "--layers", "coarse,3-1"], "--layers: bad layer range '3-1': end is before start"),
        (["edit", "--attr", "smile", "--space", "w+", "--layers", "top"], "--layers: bad layer spec 'top'"),
        (["edit", "--attr", "smile", "--alpha", "1:x:3"], "--alpha: bad alpha '1:x:3'"),
        (["als", "--alpha", "1,2"], "--alpha 1,2: this command takes one value per run, got 2"),
        (["truncate", "--variant", "w:abc"], "--variant: bad truncation spec 'w:abc'"),
        (["truncate", "--variant", "clusters:/no/such.npz"], "no such file: /no/such.npz"),
        (["truncate", "--choose", "coarse"], "--choose: 'coarse' is not LEVEL=ID"),
    ],
)
def test_refused_values_are_one_line_naming_the_option(capsys, tmp_path, argv, message):
    os.chdir(tmp_path)
    code, out, err = run_cli(capsys, *argv, "--model", ADA, "--out", tmp_path / "o")
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert err.startswith("latentlab: error: ") and message in err, err
    assert not os.listdir(tmp_path)  # refused while reading the command line: no folder, no work


def test_text_is_parsed_once(monkeypatch, capsys, tmp_path):
    """The library gets lists: a seed or alpha text is parsed once, when the command line is read, never again
    inside the command (before, --alpha text was parsed by the option check and again by the library)."""
    import latentlab.edits
    import latentlab.edits.linear
    import latentlab.edits.pipeline
    import latentlab.latents.seeds

    texts = []
    real_seeds, real_alphas = latentlab.latents.seeds.parse_seeds, latentlab.edits.linear.parse_alphas

    def seeds(text):
        texts.append(("seeds", text)) if isinstance(text, str) else None
        return real_seeds(text)

    def alphas(spec):
        texts.append(("alphas", spec)) if isinstance(spec, str) else None
        return real_alphas(spec)

    monkeypatch.setattr(latentlab.latents.seeds, "parse_seeds", seeds)
    for module in (latentlab.edits.linear, latentlab.edits.pipeline, latentlab.edits):
        monkeypatch.setattr(module, "parse_alphas", alphas)
    import numpy as np

    v = np.random.RandomState(0).randn(1, 64)
    np.save(tmp_path / "d.npy", v / np.linalg.norm(v))
    code, _, err = run_cli(
        capsys,
        "edit",
        "--model",
        ADA,
        "--boundary",
        tmp_path / "d.npy",
        "--seeds",
        "1-2",
        "--alpha",
        "-1,1",
        "--out",
        tmp_path / "e",
    )
    assert code == 0, err
    assert sorted(texts) == [("alphas", "-1,1"), ("seeds", "1-2")]
    texts.clear()
    code, _, err = run_cli(capsys, "mix", "--model", ADA, "--rows", "0", "--cols", "1", "--out", tmp_path / "m")
    assert code == 0, err
    assert sorted(texts) == [("seeds", "0"), ("seeds", "1")]


def test_check_layer_spec_needs_no_model(tiny_generator):
    from latentlab.latents.layers import check_layer_spec, parse_layers

    for spec in ("0-3", "coarse,7", "medium", "all", None, [0, 2]):
        assert check_layer_spec(spec) is spec
    for spec, message in (("x", "bad layer spec 'x'"), ("5-2", "end is before start"), (",", "selects no layer")):
        with pytest.raises(ValueError, match=message):
            check_layer_spec(spec)
    # 16 px, 6 ws: ws 0 feeds the 4 px conv, ws 1-2 the 8 px convs, ws 3-4 the 16 px convs, ws 5 only the last ToRGB
    G = tiny_generator
    assert parse_layers("coarse,5", G) == [0, 1, 2, 5] and parse_layers("1-2,medium", G) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="layer 9 does not exist"):
        parse_layers("9", G)


def test_types_keep_help_instant():
    """Importing the command line imports no torch: every type imports its parser when it converts."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = "import sys, latentlab.cli.main, latentlab.cli.types; print('torch' in sys.modules)"
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=dict(os.environ, PYTHONPATH=root)
    )
    assert p.returncode == 0 and p.stdout.strip() == "False", p.stderr
