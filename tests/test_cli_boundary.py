"""`latentlab boundary` and `latentlab separability` on a sample folder made by the sampling library."""
import json

import numpy as np
import pytest
import torch

from conftest import run_cli



class ColourClassifier(torch.nn.Module):
    """Logits = mean of each RGB channel (and their negative sum): planted, image-dependent attributes."""

    names = ["red", "green", "dark"]

    def forward(self, images):
        m = images.mean(dim=[2, 3])
        return torch.stack([m[:, 0], m[:, 1], -m.sum(1)], dim=1) * 10


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from latentlab import Generator
    from latentlab.sampling import sample

    torch.manual_seed(0)
    G = Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                  mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=16)).eval()
    out = tmp_path_factory.mktemp("samples")
    sample(G, ColourClassifier(), out, n=600, chunk_size=200, batch_size=100, progress=False)
    return out



def test_boundary_writes_npy_report_and_index(capsys, tmp_path, samples):
    from latentlab.boundaries import train_boundary
    from latentlab.sampling import SampleTable

    out = tmp_path / "b" / "red.npy"
    code, stdout, err = run_cli(capsys, "boundary", "--samples", samples, "--attr", "red", "--ratio", "0.2", "--out", out)
    assert code == 0, err
    normal = np.load(out)
    assert normal.shape == (1, 16)
    report = json.loads((tmp_path / "b" / "red.json").read_text())
    assert report["seed_range"] == [0, 599] and report["n_samples"] == 600 and report["space"] == "w"
    assert len(report["model_id"]) == 16 and report["val_accuracy"] is not None
    data = SampleTable(samples).load(fields=("w", "scores"))
    expected = train_boundary(data["w"], data["scores"][:, 0], ratio=0.2).normal  # same procedure through the API
    np.testing.assert_allclose(normal[0], expected, atol=1e-10)
    assert json.loads((tmp_path / "b" / "index.json").read_text())["attributes"]["red"]["space"] == "w"


def test_conditional_and_all(capsys, tmp_path, samples):
    code, _, err = run_cli(capsys, "boundary", "--samples", samples, "--attr", "red", "--condition", "green",
                       "--ratio", "0.2", "--out", tmp_path / "rc.npy")
    assert code == 0, err
    code, _, err = run_cli(capsys, "boundary", "--samples", samples, "--attr", "green", "--ratio", "0.2", "--out", tmp_path / "g.npy")
    assert abs(np.load(tmp_path / "rc.npy")[0] @ np.load(tmp_path / "g.npy")[0]) < 1e-8
    code, _, err = run_cli(capsys, "boundary", "--samples", samples, "--attr", "all", "--ratio", "0.2", "--space", "z", "--out", tmp_path / "all")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "all").glob("*.npy")) == ["dark.npy", "green.npy", "red.npy"]


@pytest.mark.parametrize("args,message", [
    (["--attr", "blue"], "unknown attribute 'blue'"),
    (["--attr", "red", "--space", "s"], "no field 'styles'"),
    (["--attr", "red", "--attr", "green"], "several attributes go to a folder"),
])
def test_boundary_errors(capsys, tmp_path, samples, args, message):
    code, _, err = run_cli(capsys, "boundary", "--samples", samples, *args, "--out", tmp_path / "x.npy")
    assert code != 0 and len(err.strip().splitlines()) == 1 and message in err, err


def test_separability_command(capsys, tmp_path, samples):
    code, out, err = run_cli(capsys, "separability", "--samples", samples, "--space", "w", "--out", tmp_path / "s.json")
    assert code == 0, err
    res = json.loads((tmp_path / "s.json").read_text())
    assert set(res["entropies"]) == {"red", "green", "dark"} and 1.0 <= res["score"] <= 8.0
    assert res["kept"] == 300 and "separability (w, 3 attributes" in out


def test_wplus_layer_without_stored_layers_uses_w(capsys, tmp_path, samples):
    code, _, err = run_cli(capsys, "boundary", "--samples", samples, "--attr", "red", "--space", "w+", "--layer", "3",
                       "--ratio", "0.2", "--out", tmp_path / "l3.npy")
    assert code == 0, err
    run_cli(capsys, "boundary", "--samples", samples, "--attr", "red", "--ratio", "0.2", "--out", tmp_path / "w.npy")
    np.testing.assert_allclose(np.load(tmp_path / "l3.npy"), np.load(tmp_path / "w.npy"))
