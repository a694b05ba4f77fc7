"""The truncation study behind `latentlab truncate` and analyses/truncation_report.py: one library call, so the
two front-ends write the same rows, images and record."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import fixture_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADA = fixture_path("sg2ada_skip32.pkl")


def _uint8(x):
    return (x.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


def _png(path):
    return np.asarray(Image.open(path))


class MeanColour(torch.nn.Module):
    names = ["r", "g", "b"]

    def forward(self, x):
        return x.mean(dim=[2, 3])


def test_rows_from_specs():
    from latentlab.studies.reports import DEFAULT_TRUNCATIONS, TruncationRow, truncation_rows

    rows = truncation_rows(["w:0.5", TruncationRow.parse("none")])
    assert [r.spec for r in rows] == ["w:0.5", "none"] and [r.label for r in rows] == ["w psi=0.5", "none"]
    assert [r.spec for r in truncation_rows()] == list(DEFAULT_TRUNCATIONS)
    with pytest.raises(ValueError, match="bad truncation spec 'w:x'"):
        truncation_rows(["none", "w:x"])
    with pytest.raises(ValueError, match="choose and psi apply to a clusters file"):
        truncation_rows(["none"], choose={"coarse": 1})


def test_study_images_stats_and_unique_names(tiny_generator):
    from latentlab.studies.reports import truncation_study

    G = tiny_generator
    seeds = [5, 0, 3]
    res = truncation_study(G, ["w:0.5", "none", "w:0.5"], seeds, classifier=MeanColour(), batch_size=2)
    assert res["names"] == ["w psi=0.5", "none", "w psi=0.5 #2"]  # a repeated name keeps its row
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).float()
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=0.5)
        x = G.synthesis(ws, noise_mode="const")
    expected = _uint8(x)
    assert np.abs(res["images"]["w psi=0.5"].astype(int) - expected.astype(int)).max() <= 1
    np.testing.assert_array_equal(res["images"]["w psi=0.5"], res["images"]["w psi=0.5 #2"])
    stats = res["stats"].set_index(["variant", "attribute"])
    means = x.mean(dim=[2, 3]).numpy()
    for j, a in enumerate("rgb"):
        assert stats.loc[("w psi=0.5", a), "mean"] == pytest.approx(means[:, j].mean(), abs=1e-5)
        assert stats.loc[("w psi=0.5", a), "std"] == pytest.approx(means[:, j].std(), abs=1e-5)


def test_report_folder_and_record(tiny_generator, tmp_path):
    from latentlab.studies.reports import truncation_report

    G = tiny_generator
    res, record = truncation_report(
        G,
        ["none", "w:0", "clusters:k=2,psi=0"],
        [0, 1],
        tmp_path,
        fit_samples=100,
        save_fitted=True,
        settings=dict(model="tiny"),
    )
    files = set(os.listdir(tmp_path))
    assert {
        "grid.png",
        "variant0.png",
        "variant1.png",
        "variant2.png",
        "variant2.npz",
        "truncate.json",
        "summary.md",
    } <= files and "variant1.npz" not in files  # only fitted variants are saved
    assert record == json.loads((tmp_path / "truncate.json").read_text())
    assert record["model"] == "tiny" and record["noise_mode"] == "const" and record["seeds"] == [0, 1]
    assert [v["spec"] for v in record["variants"]] == ["none", "w:0", "clusters:k=2,psi=0"]
    assert record["variants"][2]["fitted"] == "variant2.npz" and record["figures"] == []
    row = _png(tmp_path / "variant1.png")  # psi 0: every seed renders w_avg
    assert np.array_equal(row[:, :16], row[:, 18:34])
    grid = _png(tmp_path / "grid.png")  # labelled rows (variants) and columns (seeds); 16 px cells x8 (auto)
    top, left = grid.shape[0] - (3 * 128 + 2 * 2), grid.shape[1] - (2 * 128 + 2)
    assert top > 0 and left > 0
    for q in range(2):  # the grid's second row is variant1.png's images, upscaled
        cell = grid[top + 130 : top + 258, left + q * 130 : left + q * 130 + 128]
        np.testing.assert_array_equal(cell, row[:, q * 18 : q * 18 + 16].repeat(8, axis=0).repeat(8, axis=1))
    assert "row 2: clusters" in (tmp_path / "summary.md").read_text()


def test_clusters_file_choose_psi_and_embeddings(tiny_generator, tmp_path):
    from latentlab.studies.reports import TruncationRow, truncation_report, truncation_rows
    from latentlab.truncation import ClusterTruncation

    G = tiny_generator
    t = ClusterTruncation(k=2, psi=0.5, levels=("coarse", "middle")).fit(G, n_samples=200)
    path = str(tmp_path / "c.npz")
    t.save(path)
    row = TruncationRow.clusters_file(path, psi=0.25, choose="middle=1")
    assert row.psi == 0.25 and row.truncation.psi == 0.25 and row.choose == {"middle": 1}
    assert row.label.endswith("psi=0.25 choose middle=1")
    with pytest.raises(ValueError, match="unknown level 'fine'"):
        TruncationRow.clusters_file(path, choose={"fine": 0})
    with pytest.raises(ValueError, match="psi must be a finite number"):
        TruncationRow.clusters_file(path, psi=float("nan"))
    rows = truncation_rows(["none"], clusters=path, choose={"coarse": 0})
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in (0, 1)])).float()
    with torch.no_grad():
        expected = _uint8(G.synthesis(t.generate(G, z, {"coarse": 0}), noise_mode="const"))
    res, record = truncation_report(G, rows, [0, 1], tmp_path / "one", embeddings=("tsne",), embed_samples=20)
    assert np.abs(res["images"][res["names"][1]].astype(int) - expected.astype(int)).max() <= 1
    assert record["variants"][1]["choose"] == {"coarse": 0} and record["figures"] == ["tsne.png", "tsne.pdf"]
    assert {"tsne.png", "tsne.pdf"} <= set(os.listdir(tmp_path / "one"))
    rows = truncation_rows(["clusters:k=2,psi=0.5"], clusters=path)  # two cluster rows: one figure each
    _, record = truncation_report(
        G, rows, [0], tmp_path / "two", fit_samples=100, embeddings=("tsne",), embed_samples=20
    )
    assert record["figures"] == ["tsne_0.png", "tsne_0.pdf", "tsne_1.png", "tsne_1.pdf"]
    with pytest.raises(ValueError, match="row 0 has no clusters"):
        truncation_report(G, truncation_rows(["none"]), [0], tmp_path / "x", embeddings=("tsne",), embed_rows=[0])
    with pytest.raises(ValueError, match="embedding must be one of tsne, umap"):
        truncation_report(G, truncation_rows(["none"]), [0], tmp_path / "x", embeddings=("pca",))
    assert not (tmp_path / "x").exists()  # refused before any work


@pytest.mark.slow
def test_the_command_and_the_analyses_script_write_the_same_study(tmp_path):
    """One library call behind both front-ends: same rows, same record, same pixels."""
    specs = ["none", "w:0.5@4", "clusters:k=2,psi=0"]
    # Both front-ends in fresh processes with the same thread settings: the k-means fit's float sums depend on
    # the OpenMP thread count, which earlier in-process tests may have changed (a different last bit moves pixels).
    cmd = [sys.executable, "-m", "latentlab", "truncate", "--model", ADA, "--seeds", "0-2"]
    cmd += sum((["--variant", s] for s in specs), []) + ["--fit-samples", "100", "--out", str(tmp_path / "cli")]
    env1 = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    c = subprocess.run(cmd, capture_output=True, text=True, env=env1)
    assert c.returncode == 0, c.stderr
    out = c.stdout
    env = env1
    p = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "analyses", "truncation_report.py"),
            "--model",
            ADA,
            "--seeds",
            "0-2",
            "--variants",
            ";".join(specs),
            "--fit-samples",
            "100",
            "--out",
            str(tmp_path / "script"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    cli, script = (json.loads((tmp_path / d / "truncate.json").read_text()) for d in ("cli", "script"))
    assert cli["variants"] == script["variants"] and cli["seeds"] == script["seeds"] == [0, 1, 2]
    for name in ("grid.png", "variant0.png", "variant1.png", "variant2.png", "summary.md"):
        a, b = tmp_path / "cli" / name, tmp_path / "script" / name
        assert a.read_bytes() == b.read_bytes(), name
    assert [ln for ln in out.splitlines() if ln.startswith("row ")] == [
        ln for ln in p.stdout.splitlines() if ln.startswith("row ")
    ]


def test_analyses_script_refuses_a_bad_spec_in_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "analyses", "truncation_report.py"),
            "--model",
            ADA,
            "--variants",
            "none;w:abc",
            "--out",
            str(tmp_path / "t"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "bad truncation spec 'w:abc'" in p.stderr
    assert not (tmp_path / "t").exists()
