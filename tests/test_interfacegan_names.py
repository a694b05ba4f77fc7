"""InterFaceGAN's released boundary files, recognised by name: `--boundaries DIR --attr smile` picks the
file of the model at hand (space, conditions), or says which files exist for which models."""

import json
import os
import shlex

import numpy as np
import pytest
import torch

from conftest import fixture_path, run_cli
from latentlab.checkpoints import download as dl
from latentlab.edits import load_direction, orthogonalize
from latentlab.edits.registry import (
    interfacegan_files,
    is_interfacegan_folder,
    parse_interfacegan_name,
    pick_interfacegan,
    resolve_attribute,
    resolve_direction,
)
from latentlab.latents import LatentCodes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shared_boundaries():
    """InterFaceGAN's released boundaries/ folder when this checkout has it beside it (../shared/data), else None."""
    for root in (
        os.environ.get("LATENTLAB_INTERFACEGAN_DIR"),
        os.path.join(REPO, "..", "shared", "data", "interfacegan"),
        os.path.join(REPO, "shared", "data", "interfacegan"),
    ):
        if root and os.path.isfile(os.path.join(root, "boundaries", "stylegan_ffhq_smile_w_boundary.npy")):
            return os.path.join(root, "boundaries")
    return None


def test_names_are_parsed_as_interfacegan_writes_them():
    cases = {
        "stylegan_ffhq_smile_w_boundary.npy": ("stylegan_ffhq", "smile", "w", ()),
        "stylegan_ffhq_smile_boundary.npy": ("stylegan_ffhq", "smile", "z", ()),
        "stylegan_celebahq_eyeglasses_w_boundary.npy": ("stylegan_celebahq", "eyeglasses", "w", ()),
        "pggan_celebahq_age_c_gender_eyeglasses_boundary.npy": ("pggan_celebahq", "age", "z", ("gender", "eyeglasses")),
        "stylegan_ffhq_eyeglasses_c_age_boundary.npy": ("stylegan_ffhq", "eyeglasses", "z", ("age",)),
        "stylegan_celebahq_age_conditioned_on_gender_boundary.npy": ("stylegan_celebahq", "age", "z", ("gender",)),
        "stylegan_ffhq_age_w_c_gender_boundary.npy": ("stylegan_ffhq", "age", "w", ("gender",)),
        "stylegan_ffhq_age_c_gender_w_boundary.npy": ("stylegan_ffhq", "age", "w", ("gender",)),
        "stylegan2_ffhq_mouth_open_w_boundary.npy": ("stylegan2_ffhq", "mouth_open", "w", ()),
    }
    for name, (model, attr, space, conds) in cases.items():
        f = parse_interfacegan_name(os.path.join("some", "dir", name))
        assert (f.model, f.attr, f.space, f.conditions) == (model, attr, space, conds), name
        assert f.file == os.path.join("some", "dir", name)
    for name in (
        "smile.npy",
        "smile_w.npy",
        "stylegan_ffhq_boundary.npy",
        "stylegan_ffhq_smile_w_boundary.npz",
        "Stylegan_FFHQ_smile_boundary.npy",
        "index.json",
    ):
        assert parse_interfacegan_name(name) is None, name


def unit(rng, d):
    v = rng.standard_normal(d)
    return v / np.linalg.norm(v)


@pytest.fixture
def folder(tmp_path):
    """Synthetic files following InterFaceGAN's naming: planted unit vectors (8-d) per model, attribute, space."""
    rng = np.random.default_rng(0)
    root = tmp_path / "interfacegan" / "boundaries"
    root.mkdir(parents=True)
    vecs = {}
    names = [
        "stylegan_ffhq_smile_w",
        "stylegan_ffhq_smile",
        "stylegan_ffhq_age_w",
        "stylegan_ffhq_age",
        "stylegan_ffhq_gender_w",
        "stylegan_ffhq_gender",
        "stylegan_ffhq_age_c_gender",
        "stylegan_celebahq_smile_w",
        "pggan_celebahq_quality",
        "pggan_celebahq_smile",
    ]
    for n in names:
        vecs[n] = unit(rng, 8)  # the conditioned file too: a vector of its own, so that a test sees it was read
        np.save(root / f"{n}_boundary.npy", vecs[n][None])
    (root / "LICENSE").write_text("MIT")
    return root, vecs


def test_pick_follows_model_space_and_conditions(folder):
    root, vecs = folder
    root = str(root)
    assert is_interfacegan_folder(root) and len(interfacegan_files(root)) == 10
    pick = lambda *a, **k: pick_interfacegan(root, *a, **k)  # noqa: E731
    d = pick("smile", "stylegan1-ffhq-1024")  # default: W when there is a W file
    assert d.space == "w" and d.source.endswith("stylegan_ffhq_smile_w_boundary.npy")
    np.testing.assert_allclose(d.vector, vecs["stylegan_ffhq_smile_w"], atol=1e-12)
    assert pick("smile", "karras2019stylegan-ffhq-1024x1024.pkl", space="w+").source == d.source
    assert pick("Smile", "stylegan1-ffhq-1024", space="z").source.endswith("stylegan_ffhq_smile_boundary.npy")
    assert pick("smile", "stylegan1-celebahq-1024").source.endswith("stylegan_celebahq_smile_w_boundary.npy")
    # the released conditioned file, read as it is
    c = pick("age", "stylegan1-ffhq-1024", space="z", conditions=["gender"])
    assert c.source.endswith("stylegan_ffhq_age_c_gender_boundary.npy") and c.space == "z" and c.name == "age_c_gender"
    np.testing.assert_allclose(c.vector, vecs["stylegan_ffhq_age_c_gender"], atol=1e-12)
    # no conditioned W file: W age orthogonalised to W gender, computed here by hand
    a, g = vecs["stylegan_ffhq_age_w"], vecs["stylegan_ffhq_gender_w"]
    want = a - (a @ g) * g
    cw = pick("age", "stylegan1-ffhq-1024", conditions=["gender"])
    assert cw.space == "w" and abs(cw.vector @ g) < 1e-12
    np.testing.assert_allclose(cw.vector, want / np.linalg.norm(want), atol=1e-12)
    # two conditions with no file for the pair: the projection onto the complement of both
    cz = pick("smile", "stylegan1-ffhq-1024", space="z", conditions=["age", "gender"])
    basis = np.linalg.qr(np.stack([vecs["stylegan_ffhq_age"], vecs["stylegan_ffhq_gender"]], 1))[0]
    s = vecs["stylegan_ffhq_smile"]
    ref = s - basis @ (basis.T @ s)
    np.testing.assert_allclose(cz.vector, ref / np.linalg.norm(ref), atol=1e-12)
    # an explicit model name works for models without a registry entry
    assert pick("quality", model="pggan_celebahq").space == "z"


def test_pick_says_which_files_exist_for_which_models(folder):
    root = str(folder[0])
    for spec in (None, "ffhq", fixture_path("sg2ada_skip32.pkl")):
        with pytest.raises(ValueError) as e:
            pick_interfacegan(root, "smile", spec)
        msg = str(e.value)
        assert "\n" not in msg and "not one of InterFaceGAN's" in msg
        assert "stylegan_ffhq (--model stylegan1-ffhq-1024): age, gender, smile" in msg
        assert "stylegan_celebahq (--model stylegan1-celebahq-1024): smile" in msg
        assert "pggan_celebahq (no registry model): quality, smile" in msg and "--boundary" in msg
    with pytest.raises(ValueError, match="no 'pose' boundary for stylegan_ffhq; it has: age, gender, smile"):
        pick_interfacegan(root, "pose", "stylegan1-ffhq-1024")
    with pytest.raises(ValueError, match="stylegan_celebahq has no Z-space 'smile' boundary .*only W.*pass --space w"):
        pick_interfacegan(root, "smile", "stylegan1-celebahq-1024", space="z")
    with pytest.raises(ValueError, match="Z or W directions, not s"):
        pick_interfacegan(root, "smile", "stylegan1-ffhq-1024", space="s")
    with pytest.raises(ValueError, match="--condition pose: stylegan_ffhq has no W-space 'pose' boundary"):
        pick_interfacegan(root, "smile", "stylegan1-ffhq-1024", conditions=["pose"])


def test_lookup_entry_points_use_the_naming(folder):
    root, vecs = folder
    d = resolve_attribute("smile", None, "stylegan1-ffhq-1024", str(root))
    assert d.source.endswith("stylegan_ffhq_smile_w_boundary.npy")
    # a file's own stem still names it, for any model
    stem = resolve_attribute("pggan_celebahq_smile_boundary", None, "ffhq", str(root))
    np.testing.assert_allclose(stem.vector, vecs["pggan_celebahq_smile"], atol=1e-12)
    c = resolve_direction("age", None, "stylegan1-ffhq-1024", str(root), "z", ["gender"])
    assert c.source.endswith("stylegan_ffhq_age_c_gender_boundary.npy")
    # a condition given as a file is applied by projection (no released file can match it)
    other = root.parent / "mine.npy"
    np.save(other, vecs["stylegan_ffhq_gender"][None])
    p = resolve_direction("age", None, "stylegan1-ffhq-1024", str(root), "z", [str(other)])
    a, g = vecs["stylegan_ffhq_age"], vecs["stylegan_ffhq_gender"]
    np.testing.assert_allclose(p.vector, (a - (a @ g) * g) / np.linalg.norm(a - (a @ g) * g), atol=1e-12)


def stand_in(cache, dim):
    """A small generator with z, w of `dim` entries standing in for the registry's stylegan1-ffhq-1024 (in the cache)."""
    from latentlab import Generator
    from latentlab.checkpoints.native import save_native

    torch.manual_seed(0)
    G = Generator(
        z_dim=dim,
        c_dim=0,
        w_dim=dim,
        img_resolution=16,
        img_channels=3,
        mapping_kwargs=dict(num_layers=1),
        synthesis_kwargs=dict(channel_base=64, channel_max=4),
    ).eval()
    path = dl.cached_path("stylegan1-ffhq-1024")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_native(path, {"G_ema": G}, "test")
    return path


def edit_shift(out):
    """(edited - original) codes of an edit folder, [seeds, alphas, d], and its edit.json."""
    rec = json.loads((out / "edit.json").read_text())
    orig = LatentCodes.load(out / "latents.npz", prefix="original_")
    edited = LatentCodes.load(out / "latents.npz", prefix="edited_")
    n_alpha = len(rec["alphas"])
    flat = lambda c: c.data.reshape(c.data.shape[0], -1)  # noqa: E731
    return (flat(edited).reshape(-1, n_alpha, flat(orig).shape[1]) - flat(orig)[:, None]).numpy(), rec


def test_cli_edit_picks_the_models_file(folder, tmp_path, monkeypatch, capsys):
    root, vecs = folder
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    stand_in(tmp_path / "cache", 8)
    out = tmp_path / "smile"
    code, _, err = run_cli(
        capsys,
        "edit",
        "--model",
        "stylegan1-ffhq-1024",
        "--boundaries",
        root,
        "--attr",
        "smile",
        "--alpha",
        "0,2",
        "--seeds",
        "0-1",
        "--device",
        "cpu",
        "--out",
        out,
    )
    assert code == 0, err
    shift, rec = edit_shift(out)
    assert rec["space"] == "w" and rec["direction"]["source"].endswith("stylegan_ffhq_smile_w_boundary.npy")
    alphas = np.asarray(rec["alphas"])
    # the mapped w repeats over the layers; every layer moves by alpha * n
    shift = shift.reshape(shift.shape[0], shift.shape[1], -1, 8)
    np.testing.assert_allclose(
        shift, np.broadcast_to(alphas[None, :, None, None] * vecs["stylegan_ffhq_smile_w"], shift.shape), atol=1e-5
    )
    code, _, err = run_cli(
        capsys,
        "edit",
        "--model",
        fixture_path("sg2ada_skip32.pkl"),
        "--boundaries",
        root,
        "--attr",
        "smile",
        "--device",
        "cpu",
        "--out",
        tmp_path / "bad",
    )
    assert code == 1 and "stylegan_ffhq (--model stylegan1-ffhq-1024)" in err and "pggan_celebahq" in err


@pytest.mark.skipif(shared_boundaries() is None, reason="InterFaceGAN's boundaries are not beside this checkout")
def test_readme_interfacegan_example_runs_as_written_with_the_released_files(tmp_path, monkeypatch, capsys):
    """The README's commands, word for word, from a folder holding interfacegan/boundaries (the released
    files) with a 512-d stand-in for the StyleGAN v1 FFHQ model in the cache."""
    released = shared_boundaries()
    work = tmp_path / "work"
    (work / "interfacegan").mkdir(parents=True)
    os.symlink(released, work / "interfacegan" / "boundaries")
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(work)
    stand_in(tmp_path / "cache", 512)
    readme = open(os.path.join(REPO, "README.md")).read()
    block = readme.split("<!-- interfacegan:run -->", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line) for line in block.strip().splitlines()]
    assert len(commands) == 2 and all(c[:2] == ["latentlab", "edit"] for c in commands)
    for argv in commands:
        code, _, err = run_cli(capsys, *argv[1:], "--device", "cpu")
        assert code == 0, (argv, err)
    smile, rec = edit_shift(work / "out" / "smile")
    assert rec["direction"]["source"].endswith("stylegan_ffhq_smile_w_boundary.npy") and rec["space"] == "w"
    n = load_direction(os.path.join(released, "stylegan_ffhq_smile_w_boundary.npy")).vector
    smile = smile.reshape(smile.shape[0], smile.shape[1], -1, 512)
    np.testing.assert_allclose(
        smile, np.broadcast_to(np.asarray(rec["alphas"])[None, :, None, None] * n, smile.shape), atol=1e-4
    )
    age, rec = edit_shift(work / "out" / "age_c_gender")
    assert rec["direction"]["source"].endswith("stylegan_ffhq_age_c_gender_boundary.npy") and rec["space"] == "z"
    # the released conditioned file is InterFaceGAN's projection of age off gender, to float64 precision
    by_hand = orthogonalize(
        load_direction(os.path.join(released, "stylegan_ffhq_age_boundary.npy")),
        [load_direction(os.path.join(released, "stylegan_ffhq_gender_boundary.npy"))],
    )
    np.testing.assert_allclose(load_direction(rec["direction"]["source"]).vector, by_hand.vector, atol=1e-12)
    np.testing.assert_allclose(
        age, np.broadcast_to(np.asarray(rec["alphas"])[None, :, None] * by_hand.vector, age.shape), atol=1e-4
    )


@pytest.mark.skipif(shared_boundaries() is None, reason="InterFaceGAN's boundaries are not beside this checkout")
def test_every_released_file_is_recognised():
    released = shared_boundaries()
    npy = sorted(n for n in os.listdir(released) if n.endswith(".npy"))
    files = interfacegan_files(released)
    assert len(files) == len(npy) and {f.model for f in files} == {
        "stylegan_ffhq",
        "stylegan_celebahq",
        "pggan_celebahq",
    }
    for f in files:  # every conditioned file is its attribute's boundary projected off its conditions
        if f.conditions:
            base = pick_interfacegan(released, f.attr, model=f.model, space=f.space)
            conds = [pick_interfacegan(released, c, model=f.model, space=f.space) for c in f.conditions]
            np.testing.assert_allclose(load_direction(f.file).vector, orthogonalize(base, conds).vector, atol=1e-12)
