"""Perceptual path length: hand-checkable pieces and a generator that ignores its input (PPL 0)."""
import numpy as np
import pytest
import torch

from latentlab.studies import perceptual_path_length, prepare_images, slerp_unit
from latentlab.studies.ppl import LPIPSDistance, pair_images


class ConstantG(torch.nn.Module):
    """Ignores its latent: every image is the same."""

    z_dim, c_dim, num_ws = 8, 0, 2

    def mapping(self, z, c):
        return z[:, None].repeat(1, 2, 1)

    def synthesis(self, ws, noise_mode="const"):
        return torch.ones(len(ws), 3, 16, 16) * 0.25


def test_generator_that_ignores_its_input_has_zero_ppl():
    mse = lambda a, b: ((a - b) ** 2).mean(dim=[1, 2, 3])  # noqa: E731
    for space in ("z", "w"):
        res = perceptual_path_length(ConstantG(), num_samples=20, space=space, distance=mse, batch_size=7)
        assert res.mean == 0.0 and len(res.distances) == 20


def test_path_length_is_distance_over_eps_squared(tiny_generator):
    G = tiny_generator
    mse = lambda a, b: ((a - b) ** 2).mean(dim=[1, 2, 3])  # noqa: E731
    res = perceptual_path_length(G, num_samples=12, space="w", distance=mse, batch_size=5, seed=3)
    # pair 4 by hand: RandomState(3 + 4) draws z0, z1, then t
    r = np.random.RandomState(7)
    z0, z1 = (torch.from_numpy(r.randn(1, 16)).float() for _ in range(2))
    t = torch.tensor([r.uniform()]).float()
    a, b = pair_images(G, z0, z1, t, "w")
    expected = mse(prepare_images(a), prepare_images(b)).item() / 1e-8
    # float32 images 1e-4 apart: batch-dependent round-off is ~1e-3 of the difference, hence rel 1e-2
    assert res.distances[4] == pytest.approx(expected, rel=1e-2)
    same = perceptual_path_length(G, num_samples=12, space="w", distance=mse, batch_size=12, seed=3)
    np.testing.assert_allclose(same.distances, res.distances, rtol=1e-2)  # same pairs whatever the batch size
    lo, hi = np.percentile(res.distances, 1, method="lower"), np.percentile(res.distances, 99, method="higher")
    assert res.mean == pytest.approx(res.distances[(res.distances >= lo) & (res.distances <= hi)].mean())


def test_prepare_images_crop_box_downsample_and_scale():
    img = torch.linspace(-1, 1, 512 * 512).reshape(1, 1, 512, 512)
    out = prepare_images(img)
    assert out.shape == (1, 3, 256, 256)
    assert torch.allclose(out[0, 0, 0, 0], (img[0, 0, :2, :2].mean() + 1) * 127.5)
    crop = prepare_images(torch.zeros(1, 3, 64, 64), crop=True)
    assert crop.shape == (1, 3, 32, 32) and torch.allclose(crop, torch.full_like(crop, 127.5))


def test_slerp_unit_stays_on_the_sphere():
    a, b = torch.randn(5, 8), torch.randn(5, 8)
    t = torch.rand(5, 1)
    s = slerp_unit(a, b, t)
    assert torch.allclose(s.norm(dim=1), torch.ones(5), atol=1e-6)
    assert torch.allclose(slerp_unit(a, b, torch.zeros(5, 1)), a / a.norm(dim=1, keepdim=True), atol=1e-6)
    assert torch.allclose(slerp_unit(a, b, torch.ones(5, 1)), b / b.norm(dim=1, keepdim=True), atol=1e-5)


def test_lpips_distance_offline_backbone():
    """LPIPS-VGG with a randomly initialised backbone (no ImageNet weights can be downloaded in tests)."""
    pytest.importorskip("lpips")
    d = LPIPSDistance(pretrained_backbone=False)
    x = torch.rand(2, 3, 32, 32) * 255
    assert torch.allclose(d(x, x), torch.zeros(2), atol=1e-6)
    assert (d(x, 255 - x) > 0).all()


def test_extreme_pairs_are_the_sorted_ends(tiny_generator):
    from latentlab.studies.ppl import extreme_pairs

    G = tiny_generator
    mse = lambda a, b: ((a - b) ** 2).mean(dim=[1, 2, 3])  # noqa: E731
    res = perceptual_path_length(G, num_samples=6, distance=mse, batch_size=6)
    ext = extreme_pairs(G, res, k=2)
    assert ext["lowest"].shape == (2, 2, 16, 16, 3) and ext["lowest"].dtype == np.uint8
    # the re-rendered lowest pair really has the smallest image change
    diff = lambda p: np.abs(p[:, 0].astype(int) - p[:, 1].astype(int)).sum(axis=(1, 2, 3))  # noqa: E731
    assert diff(ext["lowest"])[0] <= diff(ext["highest"])[0]
