"""Distances for inversion, by name (the embedded model's offline distance)."""

import pytest
import torch

from latentlab import defaults, load_generator
from latentlab.errors import ConfigError
from latentlab.inversion.distances import ToyFacesStages, distance_by_name, resolve_name

pytestmark = pytest.mark.skipif(not defaults.is_available(), reason="embedded model not installed")


def test_auto_picks_the_embedded_classifier_for_the_embedded_model(tiny_generator):
    assert resolve_name("auto", load_generator("toyfaces")) == "toyfaces"
    assert resolve_name("auto", tiny_generator) == "lpips"
    with pytest.raises(ConfigError, match="unknown distance"):
        resolve_name("l2", tiny_generator)


def test_toyfaces_distance_is_lpips_without_weights():
    """Against an independent computation: unit-normalise each stage over channels, squared difference,
    sum over channels, mean over positions, sum over stages."""
    torch.manual_seed(0)
    a, b = torch.rand(3, 3, 64, 64) * 255, torch.rand(3, 3, 64, 64) * 255
    d = distance_by_name("toyfaces")(a, b)
    stages = ToyFacesStages()
    expect = torch.zeros(3)
    for x, y in zip(stages(a / 127.5 - 1), stages(b / 127.5 - 1)):
        x = x / x.norm(dim=1, keepdim=True)
        y = y / y.norm(dim=1, keepdim=True)
        expect += ((x - y) ** 2).sum(1).flatten(1).mean(1)
    torch.testing.assert_close(d, expect, rtol=1e-4, atol=1e-6)
    assert len(stages.stages) == 4 and (distance_by_name("toyfaces")(a, a) == 0).all()
    grey = distance_by_name("toyfaces")(a[:, :1], b[:, :1])  # grey images are repeated to RGB
    torch.testing.assert_close(
        grey, distance_by_name("toyfaces")(a[:, :1].repeat(1, 3, 1, 1), b[:, :1].repeat(1, 3, 1, 1))
    )


@pytest.mark.slow
def test_project_on_the_embedded_model_uses_its_classifier_offline(capsys, tmp_path):
    """`latentlab project` with the embedded model and no --distance runs offline (auto -> toyfaces)."""
    import json

    from PIL import Image

    from conftest import run_cli

    G = load_generator("toyfaces")
    with torch.no_grad():
        img = G.synthesis(G.mapping(torch.randn(1, G.z_dim), None), noise_mode="const")
    Image.fromarray((img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).byte().numpy()).save(tmp_path / "face.png")
    code, out, err = run_cli(capsys, "project", tmp_path / "face.png", "--steps", "2", "--out", tmp_path / "p")
    assert code == 0, err
    assert "toyfaces distance" in out
    record = json.loads((tmp_path / "p" / "project.json").read_text())
    assert record["settings"]["distance"] == "toyfaces" and record["settings"]["pretrained_backbone"] is None
    code, _, err = run_cli(
        capsys, "project", tmp_path / "face.png", "--steps", "1", "--distance", "toyfaces", "--random-backbone"
    )
    assert code == 2 and "--random-backbone contradicts --distance toyfaces" in err


def test_encode_needs_an_encoder_for_other_models(capsys, tmp_path, tiny_generator):
    from PIL import Image

    from conftest import run_cli
    from latentlab.checkpoints.native import save_native

    ckpt = tmp_path / "tiny.safetensors"
    save_native(ckpt, {"G_ema": tiny_generator}, "latentlab")
    Image.new("RGB", (16, 16)).save(tmp_path / "x.png")
    code, _, err = run_cli(capsys, "encode", tmp_path / "x.png", "--model", ckpt, "--out", tmp_path / "e")
    assert code == 2 and "pass --encoder FILE" in err
