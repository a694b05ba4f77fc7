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
    code, out, err = run_cli(capsys, "als", "--model", ADA, "--classifier", f"torchscript:{classifier}", "--pairs", "5",
                         "--steps", "4", "--batch", "3", "--out", tmp_path / "a")
    assert code == 0, err
    assert "mean ALS (paper, 5 pairs, 4 steps, w)" in out
    table = pd.read_csv(tmp_path / "a" / "als.csv")
    logits = np.load(tmp_path / "a" / "logits.npy")
    assert logits.shape == (5, 5, 3)
    t = np.linspace(0, 1, 5)[None, :, None]
    delta = (logits - ((1 - t) * logits[:, :1] + t * logits[:, -1:])) ** 2
    np.testing.assert_allclose(table.iloc[0, :3].values, delta[:, 1:].sum(1).mean(0) / 4, rtol=1e-6)
    assert len(pd.read_csv(tmp_path / "a" / "per_pair.csv")) == 5


def test_ppl_command_offline(capsys, tmp_path):
    pytest.importorskip("lpips")
    code, out, err = run_cli(capsys, "ppl", "--model", ADA, "--samples", "6", "--random-backbone", "--batch", "3",
                         "--out", tmp_path / "p.json", "--grids", tmp_path / "g")
    assert code == 0, err
    from PIL import Image

    assert Image.open(tmp_path / "g" / "ppl_highest.png").size == (2 * 32 + 2, 6 * 32 + 5 * 2)  # 6 pairs < 8
    res = json.loads((tmp_path / "p.json").read_text())
    assert res["samples"] == 6 and res["mean"] > 0 and sum(res["histogram"]["counts"]) >= 4



def test_corr_command(capsys, tmp_path, classifier):
    for space in ("z", "w"):
        folder = tmp_path / f"b{space}"
        folder.mkdir()
        rng = np.random.RandomState(0 if space == "z" else 1)
        for a in ("red", "green"):
            v = rng.randn(1, 64)
            np.save(folder / f"{a}.npy", v / np.linalg.norm(v))
    ref = tmp_path / "list_attr.txt"
    ref.write_text("4\nattr0 attr1 attr2\n" + "".join(f"{i}.jpg {a} {b} {c}\n" for i, (a, b, c) in
                                                       enumerate([(1, 1, -1), (-1, -1, 1), (1, 1, 1), (-1, -1, -1)])))
    code, out, err = run_cli(capsys, "corr", "--model", ADA, "--classifier", f"torchscript:{classifier}", "--attrs", "red,green",
                         "--score-map", "red=attr0,green=attr1", "--z-boundaries", tmp_path / "bz", "--w-boundaries", tmp_path / "bw",
                         "--reference", ref, "--seeds", "0-3", "--alpha", "-2:2:3", "--out", tmp_path / "c")
    assert code == 0, err
    scores = pd.read_csv(tmp_path / "c" / "scores.csv")
    assert len(scores) == 2 * 2 * 4 * 3
    ref_corr = pd.read_csv(tmp_path / "c" / "corr_reference.csv", index_col=0)
    assert ref_corr.loc["attr0", "attr1"] == pytest.approx(1.0)
    diff = pd.read_csv(tmp_path / "c" / "corr_difference.csv", index_col=0)
    gen = pd.read_csv(tmp_path / "c" / "corr_generated.csv", index_col=0)
    np.testing.assert_allclose(diff.to_numpy(), gen.to_numpy() - ref_corr.to_numpy(), atol=1e-9)
    fits = pd.read_csv(tmp_path / "c" / "linearity_fits.csv")
    assert len(fits) == 4 and set(fits["space"]) == {"z", "w"}
    for f in ("linearity.png", "linearity.pdf", "corr_difference_cubed.png"):
        assert (tmp_path / "c" / f).exists()


def test_als_edit_linearity_along_a_boundary(capsys, tmp_path, classifier):
    v = np.random.RandomState(3).randn(1, 64)
    np.save(tmp_path / "d.npy", v / np.linalg.norm(v))
    code, out, err = run_cli(capsys, "als", "--model", ADA, "--classifier", f"torchscript:{classifier}", "--pairs", "3",
                         "--steps", "2", "--boundary", tmp_path / "d.npy", "--alpha", "2", "--out", tmp_path / "e")
    assert code == 0, err and "edit along d.npy x 2" in out
    import latentlab
    import latentlab.attributes

    G = latentlab.load_generator(ADA)
    with torch.no_grad():
        w0 = G.mapping(latentlab.z_from_seeds([0], 64), None)
        n = torch.from_numpy(v[0] / np.linalg.norm(v)).float()
        clf = latentlab.attributes.load_classifier(f"torchscript:{classifier}")
        mid = clf(G.synthesis(w0 + 1.0 * n))[0]  # t = 1/2 of the way to w0 + 2 n
    logits = np.load(tmp_path / "e" / "logits.npy")
    np.testing.assert_allclose(logits[0, 1], mid.numpy(), atol=1e-4)
