"""The cross-cutting helpers, one place each: rendering to uint8, torchrun, versions, validators, optional packages."""

import ast
import importlib
import os
import re
import sys

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _by_hand(G, ws, noise_mode="const", **kw):
    """uint8 [N, H, W, C] of one G.synthesis call, rounded as the official scripts: clamp(x * 127.5 + 128)."""
    with torch.no_grad():
        x = G.synthesis(ws, noise_mode=noise_mode, **kw)
    return (x.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


class Counter:
    def __init__(self):
        self.n, self.calls = 0, 0

    def update(self, n):
        self.n, self.calls = self.n + n, self.calls + 1


# ---------------------------------------------------------------------------------------------- render
def test_render_uint8_is_synthesis_rounded_in_batches(tiny_generator):
    from latentlab.utils.render import render_batches, render_uint8

    G = tiny_generator
    with torch.no_grad():
        ws = G.mapping(torch.randn(5, G.z_dim, generator=torch.Generator().manual_seed(1)), None)
    bar = Counter()
    got = render_uint8(G, ws, batch_size=2, progress=bar)
    assert got.dtype == np.uint8 and got.shape == (5, 16, 16, 3)
    assert (bar.n, bar.calls) == (5, 3)  # batches of 2, 2, 1
    expected = _by_hand(G, ws)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # batching changes at most the last bit
    np.testing.assert_array_equal(got[2:4], _by_hand(G, ws[2:4]))  # the same batch: bit for bit
    # one w per image is broadcast to every layer; packed styles render through styles=
    np.testing.assert_array_equal(render_uint8(G, ws[:, 0], batch_size=5), render_uint8(G, ws, batch_size=5))
    styles = G.synthesis.pack_styles(G.synthesis.compute_styles(ws))
    np.testing.assert_array_equal(render_uint8(G, styles=styles, batch_size=5), render_uint8(G, ws, batch_size=5))
    floats = list(render_batches(G, ws, batch_size=3))
    assert [x.shape[0] for x in floats] == [3, 2] and not any(x.requires_grad for x in floats)
    assert render_uint8(G, ws[:0]).shape == (0, 16, 16, 3)
    with pytest.raises(ValueError, match="either ws or styles"):
        render_uint8(G, ws, styles=styles)
    with pytest.raises(ValueError, match="batch_size"):
        render_uint8(G, ws, batch_size=0)


def test_every_render_path_gives_the_same_pixels(tiny_generator):
    """LatentCodes.render_uint8, edits.pipeline.render_codes and generate_images all go through the helper."""
    from latentlab.edits.pipeline import render_codes, start_codes
    from latentlab.generate import generate_images
    from latentlab.latents import LatentCodes

    G = tiny_generator
    seeds = [3, 8, 11]
    z = LatentCodes.from_seeds(G, seeds)
    with torch.no_grad():
        ws = G.mapping(z.data, None, truncation_psi=0.6)
    expected = _by_hand(G, ws)
    w = start_codes(G, seeds, "w", 0.6)
    for got in (
        w.render_uint8(G, batch_size=3),
        render_codes(G, z, 0.6, batch_size=3),
        np.stack([img for _, img in generate_images(G, seeds, 0.6, batch_size=3)]),
    ):
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    np.testing.assert_array_equal(w.render_uint8(G, batch_size=3), render_codes(G, w, batch_size=3))
    s = w.to("s", G)
    np.testing.assert_array_equal(s.render_uint8(G, batch_size=3), w.render_uint8(G, batch_size=3))


def test_no_render_loop_left_outside_the_helper():
    """The loops that rendered codes to uint8 by hand now call latentlab.utils.render."""
    for path in (
        "cli/edit_commands.py",
        "cli/commands.py",
        "latentlab/generate.py",
        "latentlab/edits/pipeline.py",
        "latentlab/edits/mixing.py",
        "latentlab/studies/reports.py",
        "latentlab/latents/codes.py",
    ):
        tree = ast.parse(open(os.path.join(ROOT, path), encoding="utf-8").read())
        calls = [
            n.lineno
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "synthesis"
        ]
        assert not calls, f"{path}: G.synthesis called at lines {calls}"


# ---------------------------------------------------------------------------------------------- torchrun
def test_one_torchrun_module(monkeypatch):
    from latentlab.utils import distributed

    for gone in ("latentlab.sampling.distributed", "latentlab.studies.parallel"):
        sys.modules.pop(gone, None)
        with pytest.raises(ImportError):
            importlib.import_module(gone)
    import latentlab.sampling as sampling

    assert sampling.init_from_env is distributed.init_from_env and sampling.rank_device is distributed.rank_device
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert distributed.join("cpu") == ("cpu", 0, 1) and not distributed.is_active()
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert distributed.join("auto") == (expected, 0, 1)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device cuda:1: CUDA is not available"):
            distributed.join("cuda:1")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two' is not an integer"):
        distributed.join("cpu")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="inconsistent process ranks"):
        distributed.env_ranks()


def test_rank_items_and_gather_without_a_process_group():
    from latentlab.utils.distributed import gather_frames, gather_rows, rank_items

    assert rank_items(7) == list(range(7))
    assert rank_items(7, rank=1, world_size=3) == [1, 4] and rank_items(7, rank=2, world_size=3) == [2, 5]
    parts = [rank_items(10, r, 3) for r in range(3)]
    assert sorted(i for p in parts for i in p) == list(range(10))  # every item once
    rows = np.arange(12.0).reshape(6, 2)
    order = [4, 0, 5, 1, 3, 2]
    np.testing.assert_array_equal(gather_rows(order, rows, 6), rows[np.argsort(order)])
    frame = object()
    assert gather_frames(frame) is frame


def test_every_command_joins_torchrun_the_same_way():
    for path in ("cli/study_commands.py", "cli/sample_commands.py", "cli/train_commands.py"):
        text = open(os.path.join(ROOT, path), encoding="utf-8").read()
        assert "join(device" in text or "join(kw.pop" in text, path
        assert "init_from_env" not in text and "rank_device" not in text, path


# ---------------------------------------------------------------------------------------------- versions
def test_one_versions_function():
    from latentlab.utils.versions import versions

    v = versions()
    import latentlab

    assert v == {
        "latentlab": latentlab.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": ".".join(map(str, sys.version_info[:3])),
    }
    defs = []
    for folder, _, files in os.walk(os.path.join(ROOT, "latentlab")):
        for f in files:
            if f.endswith(".py") and "def versions(" in open(os.path.join(folder, f), encoding="utf-8").read():
                defs.append(os.path.relpath(os.path.join(folder, f), ROOT))
    assert defs == [os.path.join("latentlab", "utils", "versions.py")]


# ---------------------------------------------------------------------------------------------- validators
def test_check_int_and_check_number():
    from latentlab.utils.validate import check_int, check_number

    assert check_int("n", 3) == 3 and type(check_int("n", np.int64(3))) is int
    assert check_int("k", 5, lo=1, hi=5) == 5 and check_int("t", torch.tensor(4)) == 4
    for bad, message in (
        (True, "n must be an integer >= 0, got True"),
        (2.0, "got 2.0"),
        ("3", "got '3'"),
        (-1, "n must be an integer >= 0, got -1"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            check_int("n", bad)
    with pytest.raises(ValueError, match=re.escape("rank must be an integer in 0..3, got 4")):
        check_int("rank", 4, 0, 3)
    assert check_number("psi", 2) == 2.0 and check_number("psi", np.float32(0.5)) == 0.5
    assert check_number("psi", torch.tensor(0.25)) == 0.25
    with pytest.raises(ValueError, match=re.escape("p must be a finite number in (0, 100], got 0.0")):
        check_number("p", 0, 0, 100, lo_open=True)
    for bad in (float("nan"), float("inf"), False, "1", None):
        with pytest.raises(ValueError, match="psi must be"):
            check_number("psi", bad)


def test_the_validators_have_one_home():
    import latentlab.truncation.base as base
    from latentlab.utils import validate

    assert base.check_int is validate.check_int and base.check_number is validate.check_number
    from latentlab.sampling import sample

    with pytest.raises(ValueError, match=re.escape("rank must be an integer in 0..1, got 2")):
        sample(None, None, "x", 4, rank=2, world_size=2)


# ---------------------------------------------------------------------------------------------- optional packages
def test_require_names_the_package_and_the_extra():
    from latentlab.errors import LatentlabError, MissingDependency
    from latentlab.utils.optional import available, require

    assert require("json") is importlib.import_module("json") and available("json")
    assert not available("no_such_module_x")
    with pytest.raises(MissingDependency) as e:
        require("no_such_module_x", "open_clip_torch", "ClipZeroShotClassifier")
    assert str(e.value) == (
        "ClipZeroShotClassifier needs the optional package 'open_clip_torch': pip install "
        "open_clip_torch (or pip install 'latentlab[clip]')"
    )
    assert isinstance(e.value, (LatentlabError, ImportError, ValueError))
    with pytest.raises(
        MissingDependency,
        match=r"^no_such_module_x needs the optional package 'no_such_module_x': "
        r"pip install no_such_module_x$",
    ):
        require("no_such_module_x")


def test_extras_table_matches_pyproject():
    from latentlab.utils.optional import EXTRAS

    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    for package, extra in EXTRAS.items():
        names = [re.split(r"[<>=!~\[ ;]", req)[0].lower() for req in extras.get(extra, [])]
        assert package.lower() in names, (package, extra, extras.get(extra))


def test_optional_imports_go_through_the_helper():
    """No module of these packages catches ImportError itself (the helper words the message)."""
    for folder in ("latentlab/sampling", "latentlab/studies", "analyses", "cli"):
        for f in os.listdir(os.path.join(ROOT, folder)):
            if f.endswith(".py") and f != "sample_commands.py":  # its one catch is pinned by tests/test_sampling.py
                text = open(os.path.join(ROOT, folder, f), encoding="utf-8").read()
                assert "except ImportError" not in text and "except ModuleNotFoundError" not in text, f"{folder}/{f}"
