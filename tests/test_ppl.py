"""Perceptual path length: hand-checkable pieces, the official noise and label handling, truncation, given codes."""

import numpy as np
import pytest
import torch

from latentlab.errors import ConfigError
from latentlab.studies import perceptual_path_length, prepare_images, slerp_unit
from latentlab.studies.ppl import LPIPSDistance, band_strips, draw_pairs, pair_images

MSE = lambda a, b: ((a - b) ** 2).mean(dim=[1, 2, 3])  # noqa: E731


class ConstantG(torch.nn.Module):
    """Ignores its latent: every image is the same."""

    z_dim, c_dim, num_ws = 8, 0, 2

    def mapping(self, z, c):
        return z[:, None].repeat(1, 2, 1)

    def synthesis(self, ws, noise_mode="const"):
        return torch.ones(len(ws), 3, 16, 16) * 0.25


def _official_pair(G, z0, z1, t, noise_seed, c=None, space="w", eps=1e-4):
    """One pair the way the official sampler renders it: overwrite every noise buffer, then render both
    images in one batch with noise_mode='const' (written independently of latentlab.studies.ppl)."""
    c = torch.zeros([1, G.c_dim]) if c is None else c
    if space == "w":
        w0, w1 = G.mapping(torch.cat([z0, z1]), torch.cat([c, c])).chunk(2)
        wa, wb = w0.lerp(w1, t), w0.lerp(w1, t + eps)
    else:
        za, zb = slerp_unit(z0, z1, t.reshape(1, 1)), slerp_unit(z0, z1, t.reshape(1, 1) + eps)
        wa, wb = G.mapping(torch.cat([za, zb]), torch.cat([c, c])).chunk(2)
    g = torch.Generator().manual_seed(noise_seed)
    saved = {}
    for name, buf in G.synthesis.named_buffers():
        if name.endswith("noise_const"):
            saved[name] = buf.clone()
            buf.copy_(torch.randn(buf.shape, generator=g))
    try:
        img = G.synthesis(torch.cat([wa, wb]), noise_mode="const")
    finally:
        for name, buf in G.synthesis.named_buffers():
            if name in saved:
                buf.copy_(saved[name])
    return img.chunk(2)


def test_generator_that_ignores_its_input_has_zero_ppl():
    for space in ("z", "w"):
        res = perceptual_path_length(ConstantG(), num_samples=20, space=space, distance=MSE, batch_size=7)
        assert res.mean == 0.0 and len(res.distances) == 20


@pytest.mark.parametrize("space", ["w", "z"])
def test_path_length_matches_the_official_sampler_by_hand(tiny_generator, space):
    G = tiny_generator
    res = perceptual_path_length(G, num_samples=12, space=space, distance=MSE, batch_size=5, seed=3)
    # pair 4 by hand: RandomState(3 + 4) draws z0, z1, t, then the pair's noise seed
    r = np.random.RandomState(7)
    z0, z1 = (torch.from_numpy(r.randn(1, 16)).float() for _ in range(2))
    t = torch.tensor([r.uniform()]).float()
    noise_seed = int(r.randint(2**31 - 1))
    a, b = _official_pair(G, z0, z1, t, noise_seed, space=space)
    expected = MSE(prepare_images(a), prepare_images(b)).item() / 1e-8
    # float32 images 1e-4 apart: batch-dependent round-off is ~1e-3 of the difference, hence rel 1e-2
    assert res.distances[4] == pytest.approx(expected, rel=1e-2)
    same = perceptual_path_length(G, num_samples=12, space=space, distance=MSE, batch_size=12, seed=3)
    np.testing.assert_allclose(same.distances, res.distances, rtol=1e-2)  # same pairs whatever the batch size
    lo, hi = np.percentile(res.distances, 1, method="lower"), np.percentile(res.distances, 99, method="higher")
    assert res.mean == pytest.approx(res.distances[(res.distances >= lo) & (res.distances <= hi)].mean())


def test_path_lengths_do_not_depend_on_the_stored_noise(tiny_generator):
    """The metric draws fresh noise per pair: overwriting the checkpoint's noise buffers changes nothing."""
    G = tiny_generator
    before = perceptual_path_length(G, num_samples=10, distance=MSE, batch_size=4, seed=1)
    stored = {n: b.clone() for n, b in G.synthesis.named_buffers() if n.endswith("noise_const")}
    assert stored, "the tiny generator has noise layers"
    with torch.no_grad():
        for name, buf in G.synthesis.named_buffers():
            if name.endswith("noise_const"):
                buf.normal_(0, 5)
        after = perceptual_path_length(G, num_samples=10, distance=MSE, batch_size=4, seed=1)
        for name, buf in G.synthesis.named_buffers():  # the override restores whatever the buffers held
            if name in stored:
                assert not torch.equal(buf, stored[name])
    np.testing.assert_allclose(after.distances, before.distances, rtol=1e-2)
    # ... while rendering with the stored noise (the old behaviour) gives other values
    pairs = draw_pairs(G, [0], seed=1, space="w")
    w0, w1 = G.mapping(torch.cat([pairs.a, pairs.b]), torch.zeros([2, 0])).chunk(2)
    t = pairs.t.reshape(-1, 1, 1)
    stored_noise = MSE(prepare_images(G.synthesis(w0.lerp(w1, t))), prepare_images(G.synthesis(w0.lerp(w1, t + 1e-4))))
    assert abs(stored_noise.item() / 1e-8 - after.distances[0]) > 1e-2 * after.distances[0]


def test_the_two_images_of_a_pair_share_their_noise(tiny_generator):
    G = tiny_generator
    pairs = draw_pairs(G, [0, 1, 2], seed=0, space="w")
    pairs.space = "w_from_z"
    a, b = pair_images(G, pairs, epsilon=0.0)
    assert torch.equal(a, b)  # same code and same noise -> the same image
    # different pairs get different noise: the same code rendered with pair 0's and pair 1's noise differs
    same_code = draw_pairs(G, [0, 1], seed=0, space="w")
    same_code.a, same_code.b = same_code.a[:1].repeat(2, 1), same_code.b[:1].repeat(2, 1)
    same_code.t = same_code.t[:1].repeat(2)
    same_code.space = "w_from_z"
    x, _ = pair_images(G, same_code)
    assert not torch.allclose(x[0], x[1])


@pytest.fixture
def conditional_generator():
    from latentlab import Generator

    torch.manual_seed(1)
    G = Generator(
        z_dim=8,
        c_dim=3,
        w_dim=8,
        img_resolution=8,
        img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=64, channel_max=8),
    )
    return G.eval()


def test_conditional_labels_uniform_table_and_never_zero(conditional_generator):
    from latentlab.studies.ppl import Labels

    G = conditional_generator
    drawn = np.stack([Labels(G, "uniform").draw(np.random.RandomState(i)) for i in range(30)])
    assert set(drawn.sum(axis=1)) == {1.0} and (drawn.sum(axis=0) > 0).all()  # one-hot, every class drawn
    pairs = draw_pairs(G, range(5), labels=None)  # the default for a conditional model: uniform classes, not zeros
    assert (pairs.c.sum(dim=1) == 1).all()
    # a one-row label table: every pair uses that label; the value matches a hand-rendered pair
    table = np.array([[0, 1, 0]], dtype=np.float32)
    res = perceptual_path_length(G, num_samples=4, distance=MSE, batch_size=4, labels=table)
    r = np.random.RandomState(2)
    z0, z1 = (torch.from_numpy(r.randn(1, 8)).float() for _ in range(2))
    t = torch.tensor([r.uniform()]).float()
    r.randint(1)  # the label index drawn from the one-row table
    a, b = _official_pair(G, z0, z1, t, int(r.randint(2**31 - 1)), c=torch.from_numpy(table))
    assert res.distances[2] == pytest.approx(MSE(prepare_images(a), prepare_images(b)).item() / 1e-8, rel=1e-2)
    zero = perceptual_path_length(G, num_samples=4, distance=MSE, batch_size=4, labels=np.zeros((1, 3), np.float32))
    assert not np.allclose(zero.distances, res.distances, rtol=1e-2)
    with pytest.raises(ValueError, match=r"\[M, 3\]"):
        perceptual_path_length(G, num_samples=4, distance=MSE, labels=np.zeros((2, 2)))


def test_dataset_labels_from_dataset_json(tmp_path, conditional_generator):
    import json

    from PIL import Image

    from latentlab.studies.ppl import dataset_labels

    for i in range(4):
        Image.new("RGB", (8, 8)).save(tmp_path / f"img{i}.png")
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [[f"img{i}.png", i % 3] for i in range(4)]}))
    table = dataset_labels(tmp_path, conditional_generator)
    np.testing.assert_array_equal(table, np.eye(3, dtype=np.float32)[[0, 1, 2, 0]])


def test_prepare_images_crop_box_downsample_and_scale():
    img = torch.linspace(-1, 1, 512 * 512).reshape(1, 1, 512, 512)
    out = prepare_images(img)
    assert out.shape == (1, 3, 256, 256)
    assert torch.allclose(out[0, 0, 0, 0], (img[0, 0, :2, :2].mean() + 1) * 127.5)
    crop = prepare_images(torch.zeros(1, 3, 64, 64), crop=True)
    assert crop.shape == (1, 3, 32, 32) and torch.allclose(crop, torch.full_like(crop, 127.5))
    # the official factor comes from the generator's resolution: a cropped 512 px image (256 px) is halved again
    cropped = prepare_images(img, crop=True, resolution=512)
    assert cropped.shape == (1, 3, 128, 128)
    c = 512 // 8
    assert torch.allclose(cropped[0, 0, 0, 0], (img[0, 0, 3 * c : 3 * c + 2, 2 * c : 2 * c + 2].mean() + 1) * 127.5)


def test_slerp_unit_stays_on_the_sphere():
    a, b = torch.randn(5, 8), torch.randn(5, 8)
    t = torch.rand(5, 1)
    s = slerp_unit(a, b, t)
    assert torch.allclose(s.norm(dim=1), torch.ones(5), atol=1e-6)
    assert torch.allclose(slerp_unit(a, b, torch.zeros(5, 1)), a / a.norm(dim=1, keepdim=True), atol=1e-6)
    assert torch.allclose(slerp_unit(a, b, torch.ones(5, 1)), b / b.norm(dim=1, keepdim=True), atol=1e-5)


def test_truncation_to_the_average_has_zero_path_length(tiny_generator):
    G = tiny_generator
    full = perceptual_path_length(G, num_samples=6, distance=MSE, batch_size=6)
    half = perceptual_path_length(G, num_samples=6, distance=MSE, batch_size=6, truncation_psi=0.5)
    none = perceptual_path_length(G, num_samples=6, distance=MSE, batch_size=6, truncation_psi=0.0)
    assert none.mean == 0.0 and full.mean > 0
    # W is affine in psi: halving every step halves the image change, so distances shrink (about 4x for MSE)
    assert half.mean < 0.5 * full.mean
    assert half.settings["truncation_psi"] == 0.5


def test_given_latents_pairs_and_checks(tiny_generator, tmp_path):
    from latentlab.latents import LatentCodes
    from latentlab.models.identity import model_hash

    G = tiny_generator
    w = G.mapping(torch.randn(4, 16), None)[:, 0].detach()
    twins = LatentCodes(w[:1].repeat(3, 1), "w", model_id=model_hash(G))
    assert perceptual_path_length(G, 5, distance=MSE, latents=twins, batch_size=5).mean == 0.0  # identical codes
    codes = LatentCodes(w, "w", model_id=model_hash(G))
    res = perceptual_path_length(G, 8, distance=MSE, latents=codes, batch_size=3, seed=2)
    assert res.settings["space"] == "w" and res.mean > 0
    # pair 5 by hand: two distinct codes from RandomState(7), lerped in W
    r = np.random.RandomState(7)
    j, k = r.choice(4, 2, replace=False)
    t = torch.tensor([r.uniform()]).float()
    pairs = draw_pairs(G, [5], seed=2, space="w", latents=codes)
    assert torch.equal(pairs.a[0], w[j]) and torch.equal(pairs.b[0], w[k]) and torch.equal(pairs.t, t)
    codes.save(tmp_path / "lat.npz")
    assert torch.equal(LatentCodes.load_for(tmp_path / "lat.npz", G).data, w)
    LatentCodes(w, "w", model_id="0123456789abcdef").save(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="another model"):
        LatentCodes.load_for(tmp_path / "other.npz", G)
    with pytest.raises(ValueError, match="truncation"):
        perceptual_path_length(G, 4, distance=MSE, latents=codes, truncation_psi=0.7)
    with pytest.raises(ValueError, match="does not match"):
        perceptual_path_length(G, 4, distance=MSE, latents=codes, space="z")


def test_lpips_distance_offline_backbone():
    """LPIPS-VGG with a randomly initialised backbone (no ImageNet weights can be downloaded in tests)."""
    d = LPIPSDistance(pretrained_backbone=False)
    x = torch.rand(2, 3, 32, 32) * 255
    assert torch.allclose(d(x, x), torch.zeros(2), atol=1e-6)
    assert (d(x, 255 - x) > 0).all()


def test_lpips_without_downloadable_weights_says_what_to_do(monkeypatch):
    import urllib.error

    import lpips

    from latentlab.errors import MissingWeights

    def offline(*a, **k):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(lpips, "LPIPS", offline)
    with pytest.raises(MissingWeights, match="vgg16-397923af.pth.*--random-backbone"):
        LPIPSDistance()


def test_extreme_pairs_and_band_strips(tiny_generator):
    from latentlab.studies.ppl import extreme_pairs

    G = tiny_generator
    res = perceptual_path_length(G, num_samples=20, distance=MSE, batch_size=10)
    ext = extreme_pairs(G, res, k=2)
    assert ext["lowest"].shape == (2, 2, 16, 16, 3) and ext["lowest"].dtype == np.uint8
    diff = lambda p: np.abs(p[:, 0].astype(int) - p[:, 1].astype(int)).sum(axis=(1, 2, 3))  # noqa: E731
    assert diff(ext["lowest"])[0] <= diff(ext["highest"])[0]
    assert set(res.band(0.1, "lowest")) == set(np.argsort(res.distances)[:2])
    strips = band_strips(G, res, fraction=0.1, k=2, frames=5)
    assert strips["highest"].shape == (2, 5, 16, 16, 3)
    # a strip's first and last frames are the pair's endpoints (t = 0 and 1), rendered with the pair's noise
    top = int(res.band(0.1, "highest")[0])
    pairs = draw_pairs(G, [top], space="w")
    pairs.space = "w_from_z"
    from latentlab.utils.images import to_uint8

    pairs.t = torch.zeros(1)
    np.testing.assert_array_equal(strips["highest"][0, 0], to_uint8(pair_images(G, pairs, epsilon=0.0)[0])[0])


def test_figures_label_each_pair_with_its_index_and_path_length(tiny_generator, tmp_path):
    """The report's pair figures: rows 'pair i: d' for the pairs extreme_pairs / band_strips chose (hand-picked
    distances), columns t / t + epsilon and t = 0 .. 1, cells upscaled (16 px -> 8x, at least 128 px)."""
    from PIL import Image

    from latentlab.studies.ppl import extreme_indices, strip_indices
    from latentlab.studies.ppl_figures import pair_labels
    from latentlab.studies.reports import write_ppl_report

    res = perceptual_path_length(tiny_generator, num_samples=5, distance=MSE, batch_size=5)
    res.distances = np.array([3.0, 1.0, 2.0, 10.0, 0.5])
    assert [list(v) for v in extreme_indices(res, 2).values()] == [[4, 1], [3, 0]]
    res.distances = np.array([3.0, 1.0, 3.0, 10.0, 0.5])  # a tie: pairs 0 and 2
    assert list(res.ranked("lowest")) == [4, 1, 0, 2, 3] and list(res.ranked("highest")) == [3, 2, 0, 1, 4]
    assert list(res.band(0.4, "highest")) == [3, 2]
    with pytest.raises(ConfigError, match="'lowest' or 'highest'"):
        res.ranked("middle")
    res.distances = np.array([3.0, 1.0, 2.0, 10.0, 0.5])
    assert [list(v) for v in strip_indices(res, 0.4, 2).values()] == [[4, 1], [3, 0]]
    assert pair_labels(res, [4, 3]) == ["pair 4: 0.5", "pair 3: 10"]
    rng = np.random.RandomState(0)
    pairs = rng.randint(0, 256, (2, 2, 16, 16, 3), dtype=np.uint8)
    strips = rng.randint(0, 256, (2, 5, 16, 16, 3), dtype=np.uint8)
    write_ppl_report(res, tmp_path, extremes={"lowest": pairs}, strips={"highest": strips}, band=0.4)
    up = lambda x: np.kron(x, np.ones((8, 8, 1), dtype=np.uint8))  # noqa: E731
    fig = np.asarray(Image.open(tmp_path / "ppl_lowest.png"))
    np.testing.assert_array_equal(fig[-128:, -128:], up(pairs[1, 1]))
    assert fig.shape[0] > 2 * 128 + 2 and fig.shape[1] > 2 * 128 + 2  # plus the label margins
    fig = np.asarray(Image.open(tmp_path / "ppl_strips_highest.png"))
    np.testing.assert_array_equal(fig[-128:, -128:], up(strips[1, 4]))
    assert fig.shape[1] > 5 * 128 + 4 * 2


def test_overlaid_histograms_and_report_folders(tiny_generator, tmp_path):
    from latentlab.studies.ppl_figures import ppl_histograms, read_ppl_report
    from latentlab.studies.reports import write_ppl_report

    G = tiny_generator
    a = perceptual_path_length(G, num_samples=8, distance=MSE, batch_size=8)
    b = perceptual_path_length(G, num_samples=8, distance=MSE, batch_size=8, truncation_psi=0.5)
    write_ppl_report(a, tmp_path / "a", label="full")
    label, d = read_ppl_report(tmp_path / "a")
    assert label == "full"
    np.testing.assert_array_equal(d, a.distances)
    write_ppl_report(b, tmp_path / "b", label="psi 0.5", compare={label: d})
    assert (tmp_path / "b" / "ppl_histograms_compared.png").exists()
    assert "full: PPL" in (tmp_path / "b" / "summary.md").read_text()
    paths = ppl_histograms({"a": a, "b": b.distances}, str(tmp_path / "h"))
    assert all(__import__("os").path.getsize(p) > 0 for p in paths)
    with pytest.raises(ValueError, match="not a PPL report"):
        read_ppl_report(tmp_path)
