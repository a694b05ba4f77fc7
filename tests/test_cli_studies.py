"""`latentlab als` and `latentlab ppl` end to end on the official fixture (offline)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import fixture_path, run_cli

ADA = fixture_path("sg2ada_skip32.pkl")


@pytest.fixture
def classifier(mean_colour_torchscript):
    return mean_colour_torchscript


def test_als_command_writes_tables(capsys, tmp_path, classifier):
    code, out, err = run_cli(
        capsys,
        "als",
        "--model",
        ADA,
        "--classifier",
        f"torchscript:{classifier}",
        "--trust-code",
        "--pairs",
        "5",
        "--steps",
        "4",
        "--batch",
        "3",
        "--out",
        tmp_path / "a",
    )
    assert code == 0, err
    assert "mean ALS (paper, 5 pairs, 4 steps, w)" in out
    table = pd.read_csv(tmp_path / "a" / "als.csv")
    logits = np.load(tmp_path / "a" / "logits.npy")
    assert logits.shape == (5, 5, 3)
    t = np.linspace(0, 1, 5)[None, :, None]
    delta = (logits - ((1 - t) * logits[:, :1] + t * logits[:, -1:])) ** 2
    np.testing.assert_allclose(table.iloc[0, :3].values, delta[:, 1:].sum(1).mean(0) / 4, rtol=1e-6)
    assert len(pd.read_csv(tmp_path / "a" / "per_pair.csv")) == 5


@pytest.mark.slow
def test_ppl_command_offline(capsys, tmp_path):
    pytest.importorskip("lpips")
    code, out, err = run_cli(
        capsys, "ppl", "--model", ADA, "--samples", "6", "--random-backbone", "--batch", "3", "--out", tmp_path / "g"
    )  # a report folder: ppl.json, distances, figures
    assert code == 0, err
    from PIL import Image

    w, h = Image.open(tmp_path / "g" / "ppl_highest.png").size  # 6 pairs < 8, 32 px cells upscaled 4x, labelled
    assert 2 * 128 + 2 < w < 2 * 128 + 2 + 200 and 6 * 128 + 5 * 2 < h < 6 * 128 + 5 * 2 + 60
    res = json.loads((tmp_path / "g" / "ppl.json").read_text())
    assert res["samples"] == 6 and res["mean"] > 0 and sum(res["histogram"]["counts"]) >= 4
    for name in ("ppl_strips_lowest.png", "ppl_strips_highest.png", "ppl_histogram.png", "distances.npy"):
        assert (tmp_path / "g" / name).exists(), name
    # a truncated run overlaid with the first one (--grids: the old name of --out); a cropped run on a latents file
    code, out, err = run_cli(
        capsys,
        "ppl",
        "--model",
        ADA,
        "--samples",
        "6",
        "--random-backbone",
        "--trunc",
        "0.5",
        "--grids",
        tmp_path / "g2",
        "--compare",
        tmp_path / "g",
        "--label",
        "psi0.5",
    )
    assert code == 0 and "--grids DIR is deprecated" in err, err
    assert "psi 0.5" in out and (tmp_path / "g2" / "ppl_histograms_compared.png").exists()
    import latentlab
    from latentlab.latents import LatentCodes

    G = latentlab.load_generator(ADA)
    codes = LatentCodes.from_seeds(G, [0, 1, 2]).to("w+", G)
    codes.save(tmp_path / "lat.npz")
    code, out, err = run_cli(
        capsys,
        "ppl",
        "--model",
        ADA,
        "--samples",
        "5",
        "--random-backbone",
        "--crop",
        "--latents",
        tmp_path / "lat.npz",
        "--out",
        tmp_path / "lat.json",
    )  # old spelling: a file
    assert code == 0 and "deprecated" in err, err
    assert "3 given codes" in out and json.loads((tmp_path / "lat.json").read_text())["space"] == "w+"


def test_ppl_command_refuses_bad_input(capsys, tmp_path):
    code, out, err = run_cli(
        capsys, "ppl", "--model", ADA, "--samples", "4", "--random-backbone", "--compare", tmp_path
    )
    assert code != 0 and "not a PPL report" in err and "Traceback" not in err
    code, out, err = run_cli(
        capsys, "ppl", "--model", ADA, "--samples", "4", "--random-backbone", "--labels", "uniform"
    )
    assert code != 0 and "unconditional" in err
    bad = tmp_path / "lat.npz"
    np.savez(bad, codes=np.zeros((3, 7), np.float32), space="w", model_id="")
    code, out, err = run_cli(capsys, "ppl", "--model", ADA, "--samples", "4", "--random-backbone", "--latents", bad)
    assert code != 0 and "lat.npz" in err and "do not fit" in err


def test_ppl_offline_lpips_is_one_line(capsys, monkeypatch):
    import urllib.error

    import lpips

    def offline(*a, **k):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(lpips, "LPIPS", offline)
    code, out, err = run_cli(capsys, "ppl", "--model", ADA, "--samples", "4")
    assert code == 1 and err.count("\n") == 1 and "vgg16-397923af.pth" in err and "Traceback" not in err


@pytest.mark.slow
def test_corr_command(capsys, tmp_path, classifier):
    for space in ("z", "w"):
        folder = tmp_path / f"b{space}"
        folder.mkdir()
        rng = np.random.RandomState(0 if space == "z" else 1)
        for a in ("red", "green"):
            v = rng.randn(1, 64)
            np.save(folder / f"{a}.npy", v / np.linalg.norm(v))
    ref = tmp_path / "list_attr.txt"
    ref.write_text(
        "4\nattr0 attr1 attr2\n"
        + "".join(
            f"{i}.jpg {a} {b} {c}\n" for i, (a, b, c) in enumerate([(1, 1, -1), (-1, -1, 1), (1, 1, 1), (-1, -1, -1)])
        )
    )
    code, out, err = run_cli(
        capsys,
        "corr",
        "--model",
        ADA,
        "--classifier",
        f"torchscript:{classifier}",
        "--trust-code",
        "--attrs",
        "red,green",
        "--score-map",
        "red=attr0,green=attr1",
        "--z-boundaries",
        tmp_path / "bz",
        "--w-boundaries",
        tmp_path / "bw",
        "--reference",
        ref,
        "--seeds",
        "0-3",
        "--alpha",
        "-2:2:3",
        "--out",
        tmp_path / "c",
    )
    assert code == 0, err
    scores = pd.read_csv(tmp_path / "c" / "scores.csv")
    assert len(scores) == 2 * 2 * 4 * 3
    ref_corr = pd.read_csv(tmp_path / "c" / "corr_reference.csv", index_col=0)
    assert ref_corr.loc["attr0", "attr1"] == pytest.approx(1.0)
    read = lambda key: pd.read_csv(tmp_path / "c" / f"corr_{key}.csv", index_col=0).to_numpy()  # noqa: E731
    cols = ["attr0", "attr1", "attr2"]
    gen = {}
    for space in ("z", "w"):  # each space's matrix is the correlation of that space's rows only
        gen[space] = np.corrcoef(scores[scores.space == space][cols].to_numpy(), rowvar=False)
        np.testing.assert_allclose(read(f"{space}_generated"), gen[space], atol=1e-9)
        np.testing.assert_allclose(read(f"{space}_difference"), gen[space] - ref_corr.to_numpy(), atol=1e-9)
        np.testing.assert_allclose(
            read(f"{space}_difference_cubed"), (gen[space] - ref_corr.to_numpy()) ** 3, atol=1e-9
        )
    np.testing.assert_allclose(read("z_minus_w"), gen["z"] - gen["w"], atol=1e-9)
    np.testing.assert_allclose(read("pooled_generated"), np.corrcoef(scores[cols].to_numpy(), rowvar=False), atol=1e-9)
    assert not np.allclose(gen["z"], gen["w"])
    cmp = pd.read_csv(tmp_path / "c" / "corr_comparison.csv", index_col=0)
    mean_z = np.abs((gen["z"] - ref_corr.to_numpy())[np.triu_indices(3, 1)]).mean()
    assert cmp.loc["z - reference", "mean_abs"] == pytest.approx(mean_z)
    assert "correlations of logits" in out and f"z - reference      {mean_z:.4f}" in out and "z - w" in out
    fits = pd.read_csv(tmp_path / "c" / "linearity_fits.csv")
    assert len(fits) == 4 and set(fits["space"]) == {"z", "w"}
    for f in (
        "linearity.png",
        "linearity.pdf",
        "corr_z_difference_cubed.png",
        "corr_w_difference_cubed.png",
        "summary.md",
    ):
        assert (tmp_path / "c" / f).exists()
    code, out, err = run_cli(
        capsys,
        "corr",
        "--model",
        ADA,
        "--classifier",
        f"torchscript:{classifier}",
        "--trust-code",
        "--attrs",
        "red,green",
        "--score-map",
        "red=attr0,green=attr1",
        "--z-boundaries",
        tmp_path / "bz",
        "--w-boundaries",
        tmp_path / "bw",
        "--seeds",
        "0-3",
        "--alpha",
        "-2:2:3",
        "--scores",
        "probabilities",
        "--out",
        tmp_path / "p",
    )  # no reference: 4 matrices
    assert code == 0, err
    assert "correlations of probabilities" in out and "z - w" in out and "z - reference" not in out
    assert (
        not (tmp_path / "p" / "corr_reference.csv").exists() and not (tmp_path / "p" / "corr_z_difference.csv").exists()
    )
    probs = 1 / (1 + np.exp(-scores[scores.space == "w"][cols].to_numpy()))
    np.testing.assert_allclose(
        pd.read_csv(tmp_path / "p" / "corr_w_generated.csv", index_col=0).to_numpy(),
        np.corrcoef(probs, rowvar=False),
        atol=1e-6,
    )
    assert "**probabilities**" in (tmp_path / "p" / "summary.md").read_text()


def test_corr_command_rejects_a_bad_score_map(capsys, tmp_path, classifier):
    folder = tmp_path / "bw"
    folder.mkdir()
    np.save(folder / "red.npy", np.eye(64)[:1])
    code, out, err = run_cli(
        capsys,
        "corr",
        "--model",
        ADA,
        "--classifier",
        f"torchscript:{classifier}",
        "--trust-code",
        "--attrs",
        "red",
        "--score-map",
        "red",
        "--w-boundaries",
        folder,
        "--out",
        tmp_path / "c",
    )
    assert code == 1 and err.strip() == "latentlab: error: --score-map: expected attr=ClassifierColumn, got 'red'"
    code, out, err = run_cli(
        capsys,
        "corr",
        "--model",
        ADA,
        "--classifier",
        f"torchscript:{classifier}",
        "--trust-code",
        "--attrs",
        "red",
        "--scores",
        "sigmoid",
        "--w-boundaries",
        folder,
        "--out",
        tmp_path / "c",
    )
    assert code == 2 and "--scores" in err


def test_als_edit_linearity_along_a_boundary(capsys, tmp_path, classifier):
    v = np.random.RandomState(3).randn(1, 64)
    np.save(tmp_path / "d.npy", v / np.linalg.norm(v))
    code, out, err = run_cli(
        capsys,
        "als",
        "--model",
        ADA,
        "--classifier",
        f"torchscript:{classifier}",
        "--trust-code",
        "--pairs",
        "3",
        "--steps",
        "2",
        "--boundary",
        tmp_path / "d.npy",
        "--alpha",
        "2",
        "--out",
        tmp_path / "e",
    )
    assert code == 0, err and "edit along d.npy x 2" in out
    import latentlab
    import latentlab.attributes

    G = latentlab.load_generator(ADA)
    with torch.no_grad():
        w0 = G.mapping(latentlab.z_from_seeds([0], 64), None)
        n = torch.from_numpy(v[0] / np.linalg.norm(v)).float()
        clf = latentlab.attributes.load_classifier(f"torchscript:{classifier}", trust_code=True)
        mid = clf(G.synthesis(w0 + 1.0 * n))[0]  # t = 1/2 of the way to w0 + 2 n
    logits = np.load(tmp_path / "e" / "logits.npy")
    np.testing.assert_allclose(logits[0, 1], mid.numpy(), atol=1e-4)
