"""`latentlab boundary` and `latentlab separability` on a sample folder made by the sampling library."""

import json
import math
import os
import shutil

import numpy as np
import pytest
import torch

from conftest import make_tiny_generator, run_cli


class ColourClassifier(torch.nn.Module):
    """Logits = mean of each RGB channel (and their negative sum): planted, image-dependent attributes."""

    names = ["red", "green", "dark"]

    def forward(self, images):
        m = images.mean(dim=[2, 3])
        return torch.stack([m[:, 0], m[:, 1], -m.sum(1)], dim=1) * 10


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from latentlab.sampling import sample

    G = make_tiny_generator()
    out = tmp_path_factory.mktemp("samples")
    sample(G, ColourClassifier(), out, n=600, chunk_size=200, batch_size=100, progress=False)
    return out


@pytest.fixture(scope="module")
def wplus_samples(tmp_path_factory):
    """Samples with per-layer codes: a truncation cutoff makes the ws layers differ, so wplus [N, 6, 16] is stored."""
    from latentlab.sampling import sample

    G = make_tiny_generator()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    assert G.num_ws == 6
    out = tmp_path_factory.mktemp("wplus")
    sample(
        G,
        ColourClassifier(),
        out,
        n=200,
        chunk_size=200,
        batch_size=100,
        progress=False,
        truncation_psi=0.5,
        truncation_cutoff=3,
    )
    return out


def test_boundary_writes_npy_report_and_index(capsys, tmp_path, samples):
    from latentlab.boundaries import train_boundary
    from latentlab.sampling import SampleTable

    out = tmp_path / "b"  # --out is a folder: red.npy, red.json and index.json go inside
    code, stdout, err = run_cli(
        capsys, "boundary", "--samples", samples, "--attr", "red", "--ratio", "0.2", "--out", out
    )
    assert code == 0, err
    assert sorted(os.listdir(out)) == ["index.json", "red.json", "red.npy"] and f"to {out}" in stdout
    normal = np.load(out / "red.npy")
    assert normal.shape == (1, 16)
    report = json.loads((tmp_path / "b" / "red.json").read_text())
    assert report["seed_range"] == [0, 599] and report["n_samples"] == 600 and report["space"] == "w"
    assert len(report["model_id"]) == 16 and report["val_accuracy"] is not None
    data = SampleTable(samples).load(fields=("w", "scores"))
    expected = train_boundary(data["w"], data["scores"][:, 0], ratio=0.2).normal  # same procedure through the API
    np.testing.assert_allclose(normal[0], expected, atol=1e-10)
    assert json.loads((tmp_path / "b" / "index.json").read_text())["attributes"]["red"]["space"] == "w"


def test_conditional_and_all(capsys, tmp_path, samples):
    code, _, err = run_cli(
        capsys,
        "boundary",
        "--samples",
        samples,
        "--attr",
        "red",
        "--condition",
        "green",
        "--ratio",
        "0.2",
        "--out",
        tmp_path / "rc",
    )
    assert code == 0, err
    code, _, err = run_cli(
        capsys, "boundary", "--samples", samples, "--attr", "green", "--ratio", "0.2", "--out", tmp_path / "g"
    )
    assert abs(np.load(tmp_path / "rc" / "red_c_green.npy")[0] @ np.load(tmp_path / "g" / "green.npy")[0]) < 1e-8
    code, _, err = run_cli(
        capsys,
        "boundary",
        "--samples",
        samples,
        "--attr",
        "all",
        "--ratio",
        "0.2",
        "--space",
        "z",
        "--out",
        tmp_path / "all",
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "all").glob("*.npy")) == ["dark.npy", "green.npy", "red.npy"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--attr", "blue"], "unknown attribute 'blue'"),
        (["--attr", "red", "--space", "s"], "no field 'styles'"),
    ],
)
def test_boundary_errors(capsys, tmp_path, samples, args, message):
    code, _, err = run_cli(capsys, "boundary", "--samples", samples, *args, "--out", tmp_path / "x")
    assert code != 0 and len(err.strip().splitlines()) == 1 and message in err, err


def test_boundary_out_file_is_deprecated_but_works(capsys, tmp_path, samples):
    """--out ATTR.npy (the old spelling): one note on stderr, the file written as before; several attributes refused."""
    code, _, err = run_cli(
        capsys, "boundary", "--samples", samples, "--attr", "red", "--ratio", "0.2", "--out", tmp_path / "r.npy"
    )
    assert code == 0, err
    assert [ln for ln in err.splitlines() if "--out" in ln and "deprecated" in ln]
    assert sorted(os.listdir(tmp_path)) == ["index.json", "r.json", "r.npy"]
    code, _, err = run_cli(
        capsys, "boundary", "--samples", samples, "--attr", "red", "--ratio", "0.2", "--out", tmp_path / "f"
    )
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), np.load(tmp_path / "f" / "red.npy"))
    code, _, err = run_cli(
        capsys, "boundary", "--samples", samples, "--attr", "red", "--attr", "green", "--out", tmp_path / "x.npy"
    )
    assert code == 1 and "several attributes go to a folder" in err.strip().splitlines()[-1]


def test_separability_command(capsys, tmp_path, samples):
    from latentlab.boundaries import linear_separability
    from latentlab.sampling import SampleTable

    code, out, err = run_cli(capsys, "separability", "--samples", samples, "--space", "w", "--out", tmp_path / "s")
    assert code == 0, err
    assert os.listdir(tmp_path / "s") == ["separability.json"]
    res = json.loads((tmp_path / "s" / "separability.json").read_text())
    assert set(res["entropies"]) == {"red", "green", "dark"} and 1.0 <= res["score"] <= 8.0
    assert res["kept"] == 300 and "separability (w, 3 attributes, 300 samples kept, official ranking)" in out
    assert res["unit"] == "bits" and res["ranking"] == "official"
    data = SampleTable(samples).load(fields=("w", "scores"))
    api = linear_separability(data["w"], data["scores"], names=["red", "green", "dark"])
    assert res["score"] == pytest.approx(api.score, rel=1e-12) and res["score"] == pytest.approx(
        2 ** sum(res["entropies"].values())
    )
    for name, h in api.entropies.items():
        assert f"{name:<24} H = {h:.4f} bits" in out
        assert res["entropies_nats"][name] == pytest.approx(h * math.log(2))
    assert f"2^(sum H) = {api.score:.4f}" in out

    code, out, err = run_cli(
        capsys,
        "separability",
        "--samples",
        samples,
        "--attrs",
        "Red",
        "--ranking",
        "exact",
        "--out",
        tmp_path / "e.json",
    )  # the old spelling (a file): still written, with a note
    assert code == 0 and "deprecated" in err, err
    exact = linear_separability(data["w"], data["scores"][:, :1], names=["red"], ranking="exact")
    assert json.loads((tmp_path / "e.json").read_text())["score"] == pytest.approx(exact.score, rel=1e-12)
    assert "exact ranking" in out


@pytest.mark.parametrize(
    "args,message,rc",
    [
        (["--ranking", "float64"], "'float64' is not one of 'official', 'exact'", 2),
        (["--keep", "0"], "--keep", 2),
        (["--attrs", "red,Red"], "--attrs names attribute 'red' twice", 1),
        (["--attrs", "red,blue"], "--attrs blue: unknown attribute 'blue'", 1),
    ],
)
def test_separability_errors(capsys, samples, args, message, rc):
    code, _, err = run_cli(capsys, "separability", "--samples", samples, *args)
    assert code == rc and len(err.strip().splitlines()) == 1 and message in err, err


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--attr", "red", "--condition", "red"],
            "--attr red --condition red: an attribute cannot be conditioned on itself",
        ),
        (
            ["--attr", "Red", "--condition", "green", "--condition", "RED"],
            "an attribute cannot be conditioned on itself",
        ),
        (["--attr", "red", "--attr", "green", "--condition", "green"], "an attribute cannot be conditioned on itself"),
        (
            ["--attr", "red", "--condition", "green", "--condition", "Green"],
            "--condition names attribute 'green' twice",
        ),
        (["--attr", "red", "--attr", "red"], "--attr names attribute 'red' twice"),
        (["--attr", "all", "--attr", "red"], "--attr all cannot be combined with other attributes"),
        (["--attr", "red", "--condition", "blue"], "--condition blue: unknown attribute 'blue'"),
        (
            ["--attr", "all", "--condition", "red", "--condition", "green", "--condition", "dark"],
            "none is left to train",
        ),
    ],
)
def test_boundary_refuses_bad_conditions(capsys, tmp_path, samples, args, message):
    code, _, err = run_cli(capsys, "boundary", "--samples", samples, *args, "--out", tmp_path / "x")
    assert code == 1 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not list(tmp_path.iterdir())


def test_all_with_condition_trains_the_others(capsys, tmp_path, samples):
    code, _, err = run_cli(
        capsys,
        "boundary",
        "--samples",
        samples,
        "--attr",
        "all",
        "--condition",
        "Green",
        "--ratio",
        "0.2",
        "--out",
        tmp_path / "all",
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "all").glob("*.npy")) == ["dark_c_green.npy", "red_c_green.npy"]
    run_cli(capsys, "boundary", "--samples", samples, "--attr", "green", "--ratio", "0.2", "--out", tmp_path / "g")
    green = np.load(tmp_path / "g" / "green.npy")[0]
    for a in ("red", "dark"):
        assert abs(np.load(tmp_path / "all" / f"{a}_c_green.npy")[0] @ green) < 1e-8


@pytest.mark.parametrize("layer", ["3", "99"])
def test_wplus_refused_when_the_samples_do_not_know_num_ws(capsys, tmp_path, samples, layer):
    code, _, err = run_cli(
        capsys,
        "boundary",
        "--samples",
        samples,
        "--attr",
        "red",
        "--space",
        "w+",
        "--layer",
        layer,
        "--ratio",
        "0.2",
        "--out",
        tmp_path / "l",
    )
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert (
        f"--space w+ --layer {layer}" in err and "do not record how many ws layers" in err and "per-layer codes" in err
    )
    assert not (tmp_path / "l").exists()


def test_wplus_layer_range_from_stored_per_layer_codes(capsys, tmp_path, wplus_samples):
    from latentlab.boundaries import train_boundary
    from latentlab.sampling import SampleTable

    for layer in ("6", "99", "-1"):
        code, _, err = run_cli(
            capsys,
            "boundary",
            "--samples",
            wplus_samples,
            "--attr",
            "red",
            "--space",
            "w+",
            "--layer",
            layer,
            "--ratio",
            "0.2",
            "--out",
            tmp_path / "x",
        )
        assert code == 1 and f"--layer {layer} does not exist: the samples have ws layers 0-5" in err, err
    code, _, err = run_cli(
        capsys,
        "boundary",
        "--samples",
        wplus_samples,
        "--attr",
        "red",
        "--space",
        "w+",
        "--layer",
        "5",
        "--ratio",
        "0.2",
        "--out",
        tmp_path / "l5",
    )
    assert code == 0, err
    data = SampleTable(wplus_samples).load(fields=("wplus", "scores"))
    assert not np.allclose(data["wplus"][:, 0], data["wplus"][:, 5])  # the layers really differ
    expected = train_boundary(data["wplus"][:, 5], data["scores"][:, 0], ratio=0.2).normal
    np.testing.assert_allclose(np.load(tmp_path / "l5" / "red.npy")[0], expected, atol=1e-10)
    assert json.loads((tmp_path / "l5" / "red.json").read_text())["layer"] == 5


def test_wplus_on_w_only_samples_when_the_manifest_records_num_ws(capsys, tmp_path, samples):
    folder = tmp_path / "s"
    shutil.copytree(samples, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(dict(manifest, num_ws=6)))
    code, _, err = run_cli(
        capsys,
        "boundary",
        "--samples",
        folder,
        "--attr",
        "red",
        "--space",
        "w+",
        "--layer",
        "6",
        "--ratio",
        "0.2",
        "--out",
        tmp_path / "x",
    )
    assert code == 1 and "--layer 6 does not exist: the samples have ws layers 0-5" in err, err
    code, _, err = run_cli(
        capsys,
        "boundary",
        "--samples",
        folder,
        "--attr",
        "red",
        "--space",
        "w+",
        "--layer",
        "5",
        "--ratio",
        "0.2",
        "--out",
        tmp_path / "l5",
    )
    assert code == 0, err
    run_cli(capsys, "boundary", "--samples", folder, "--attr", "red", "--ratio", "0.2", "--out", tmp_path / "w")
    np.testing.assert_allclose(
        np.load(tmp_path / "l5" / "red.npy"), np.load(tmp_path / "w" / "red.npy")
    )  # every layer is the stored w
