"""The side-by-side inversion report (projector, encoder, encoder + refinement) on a tiny generator."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from latentlab.errors import ConfigError
from latentlab.inversion.encoder import HierarchicalEncoder
from latentlab.inversion.projector import w_stats
from latentlab.inversion.report import compare_inversions, write_inversion_report
from latentlab.latents.directions import Direction


class Brightness:
    """A stand-in classifier with one attribute: 'bright' when the image mean is above 0."""

    names = ["bright"]

    def binary(self, images, batch_size=None):
        return (images.mean(dim=(1, 2, 3)) > 0).long()[:, None]


def l2(a, b):
    return (a - b).square().flatten(1).mean(1)


@pytest.mark.slow
def test_compare_and_write(tiny_generator, tmp_path):
    G = tiny_generator
    torch.manual_seed(0)
    enc = HierarchicalEncoder.for_generator(G, depth=10, width=8, fpn_channels=8, w_avg_samples=200)
    with torch.no_grad():
        w = G.mapping(torch.randn(4, G.z_dim), None)
        img = G.synthesis(w, noise_mode="const")
    targets = ((img + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    truth = (img.mean(dim=(1, 2, 3)) > 0).long()[:, None].numpy()
    truth[0] = 1 - truth[0]  # one wrong label: agreement on the originals is 3/4 at most
    direction = Direction(np.random.RandomState(0).randn(G.w_dim), name="d", space="w")
    comp = compare_inversions(
        G, targets, truth, Brightness(), encoder=enc, steps=3, refine=2, distance=l2, edit_direction=direction,
        w_avg_samples=200, log=lambda *a: None,
    )  # fmt: skip
    assert list(comp["methods"]) == ["projector (w, 3 steps)", "encoder", "encoder + 2 steps"]
    assert comp["original_agreement"][0] == 0.75
    for m in comp["methods"].values():
        assert m["images"].shape == (4, 16, 16, 3) and m["edited"].shape == (4, 16, 16, 3)
        assert not np.array_equal(m["images"], m["edited"])
        assert set(m["result"].metrics) >= {"distance", "mse", "psnr", "ssim"} and m["seconds"] > 0
    # the encoder's renders are the codes rendered with G's own constant noise: an untrained encoder gives y_avg
    enc_img = comp["methods"]["encoder"]["images"]
    with torch.no_grad():
        avg = G.synthesis(w_stats(G, 200)[0].reshape(1, 1, -1).repeat(1, G.num_ws, 1), noise_mode="const")
    avg_u8 = (avg.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()[0]
    assert np.abs(enc_img[0].astype(int) - avg_u8.astype(int)).max() <= 1
    lines = write_inversion_report(comp, targets, str(tmp_path), [f"im{i}" for i in range(4)], {"x": 1})
    assert lines[0].startswith("# Inversion")
    table = pd.read_csv(tmp_path / "metrics.csv")
    assert len(table) == 12 and set(table["image"]) == {"im0", "im1", "im2", "im3"}
    agree = pd.read_csv(tmp_path / "agreement.csv", index_col=0)
    assert agree.loc["original image", "bright"] == 0.75
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["x"] == 1 and summary["n"] == 4 and set(summary["methods"]) == set(comp["methods"])
    assert (tmp_path / "summary.md").exists()
    # figure.png: 7 labelled rows (originals, then each method and its edit) of 4 images, each 16 px face upscaled
    # 8x by pixel replication (cells >= 128 px); the bottom-right cell is the last method's last edited image
    from PIL import Image

    fig = np.asarray(Image.open(tmp_path / "figure.png"))
    last = list(comp["methods"].values())[-1]["edited"][-1]
    np.testing.assert_array_equal(fig[-128:, -128:], np.kron(last, np.ones((8, 8, 1), dtype=np.uint8)))
    assert fig.shape[0] > 7 * 128 + 6 * 2 and fig.shape[1] > 4 * 128 + 3 * 2  # plus the label margins
    with pytest.raises(ConfigError, match="true labels"):
        compare_inversions(G, targets, truth[:2], Brightness(), steps=1, distance=l2)
