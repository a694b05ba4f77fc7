"""The projector (latentlab.inversion): schedules and noise terms against hand values, recovery of a
planted code on the tiny generator, determinism, and the `latentlab project` command.

The recovery tests use a pixel distance (an untrained LPIPS backbone would make "near zero" depend
on random features); the CLI test uses LPIPS with an untrained VGG (--random-backbone, offline)."""

import json
import math

import numpy as np
import pytest
import torch

from conftest import make_tiny_generator, run_cli
from latentlab.errors import ConfigError
from latentlab.inversion import lr_at, noise_regularization, project, renormalize_noise_, w_noise_scale, w_stats
from latentlab.inversion.projector import ssim
from latentlab.models.noise import draw_noise, noise_override


def pixel_distance(synth, target):
    """Per-image mean squared error of [0, 255] images."""
    return (synth - target).square().flatten(1).mean(1)


def tiny(noise_strength):
    G = make_tiny_generator()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(noise_strength)
    return G


def planted(G, n=2):
    """(w* [n, w_dim], the targets G(w*) in [-1, 1], rendered with noise the projector does not start from)."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        w = G.mapping(z, torch.zeros(n, 0))[:, 0]
        with noise_override(G.synthesis, draw_noise(G.synthesis, range(100, 100 + n))):
            img = G.synthesis(w.unsqueeze(1).repeat(1, G.num_ws, 1), noise_mode="const")
    return w, img


# ---- schedules (hand values: cos(0.8 pi) = -0.809017, cos(0.4 pi) = 0.309017) -------------------------------------
@pytest.mark.parametrize(
    "t, lr",
    [
        (0.0, 0.0),  # ramp-up starts at 0
        (0.025, 0.05),  # half-way up the 5 % ramp
        (0.5, 0.1),
        (0.8, 0.1 * 0.5 * (1 + 0.80901699)),  # ramp-down at 0.2 / 0.25 = 0.8
        (0.9, 0.1 * 0.5 * (1 - 0.30901699)),  # ramp-down at 0.4
        (1.0, 0.0),
    ],
)
def test_learning_rate_schedule(t, lr):
    assert lr_at(t) == pytest.approx(lr, abs=1e-8)


@pytest.mark.parametrize(
    "t, scale",
    [(0.0, 0.1), (0.025, 0.1 * (29 / 30) ** 2), (0.5, 0.1 / 9), (0.8, 0.0), (0.9, 0.0), (1.0, 0.0)],
)
def test_w_noise_schedule(t, scale):
    assert w_noise_scale(t, w_std=2.0) == pytest.approx(scale, abs=1e-12)


def test_w_stats_match_an_independent_computation():
    G = tiny(0.0)
    w_avg, w_std = w_stats(G, samples=500)
    z = torch.from_numpy(np.random.RandomState(123).randn(500, G.z_dim)).float()
    with torch.no_grad():
        w = G.mapping(z, None)[:, 0].double()
    assert torch.allclose(w_avg.double(), w.mean(0), atol=1e-5)
    assert w_std == pytest.approx(math.sqrt(((w - w.mean(0)) ** 2).sum().item() / 500), rel=1e-5)


# ---- noise terms --------------------------------------------------------------------------------------------------
def test_noise_regularization_hand_values():
    ones = torch.ones(1, 1, 16, 16)
    idx = torch.arange(16)
    checker = ((-1.0) ** (idx[:, None] + idx[None, :])).view(1, 1, 16, 16)
    # constant: autocorrelation 1 in x and in y at 16 and 8 px -> 4; checkerboard: -1 at 16 px (squared: 1, 1),
    # and its 2x2 average is 0 at 8 px -> 2; a map of 8 px or less is its own only level -> 2
    assert noise_regularization([ones]).tolist() == pytest.approx([4.0])
    assert noise_regularization([checker]).tolist() == pytest.approx([2.0])
    assert noise_regularization([torch.ones(1, 1, 4, 4)]).tolist() == pytest.approx([2.0])
    # per image, summed over layers
    batch = [torch.cat([ones, checker]), torch.cat([torch.ones(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)])]
    assert noise_regularization(batch).tolist() == pytest.approx([6.0, 2.0])
    stripes = ((-1.0) ** idx).repeat(16, 1).view(1, 1, 16, 16)  # alternates along x only: x -> (-1)^2, y -> 1
    assert noise_regularization([stripes]).tolist() == pytest.approx([2.0])


def test_renormalize_noise_per_image():
    g = torch.Generator().manual_seed(0)
    n = torch.randn(2, 1, 8, 8, generator=g) * torch.tensor([3.0, 0.1]).view(2, 1, 1, 1) + torch.tensor(
        [5.0, -2.0]
    ).view(2, 1, 1, 1)
    maps = [n, torch.randn(2, 1, 4, 4, generator=g) * 7]
    renormalize_noise_(maps)
    for m in maps:
        assert torch.allclose(m.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-6)
        assert torch.allclose(m.std(dim=(1, 2, 3), unbiased=False), torch.ones(2), atol=1e-6)


def test_ssim_hand_values():
    a = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert ssim(a, a).tolist() == pytest.approx([1.0, 1.0])
    # constant images x, y: variances and covariance vanish -> (2xy + C1) / (x^2 + y^2 + C1)
    x, y = torch.full((1, 1, 16, 16), 0.2, dtype=torch.float64), torch.full((1, 1, 16, 16), 0.6, dtype=torch.float64)
    assert ssim(x, y).item() == pytest.approx((2 * 0.12 + 1e-4) / (0.04 + 0.36 + 1e-4), rel=1e-5)


# ---- the projector ------------------------------------------------------------------------------------------------
def test_recovers_a_planted_code():
    # Without noise inputs the image depends on w alone: from w_avg, 200 steps bring the pixel error from about
    # 0.1 to under 1e-9 and w to within 1e-4 of w* (measured); the bounds leave orders of magnitude of slack.
    G = tiny(0.0)
    w_star, target = planted(G)
    w_avg, _ = w_stats(G, samples=1000)
    r = project(G, target, 200, distance=pixel_distance, w_avg_samples=1000)
    assert r.codes.space == "w" and r.codes.data.shape == w_star.shape
    assert (r.metrics["mse"] < 1e-6).all() and (r.metrics["psnr"] > 60).all()
    start = (w_avg - w_star).norm(dim=1)
    assert ((r.codes.data - w_star).norm(dim=1) < 0.01 * start).all()
    assert torch.allclose(r.images, target, atol=1e-2)


def test_wplus_with_noise_inputs_reconstructs_the_image():
    # With noise strengths 0.3 the noise maps are optimised too: the [0, 1]-pixel MSE falls from about 0.3 (w_avg)
    # to about 0.005 in 300 W steps (measured); W+ must reach under 0.02.
    G = tiny(0.3)
    _, target = planted(G)
    r = project(G, target, 300, space="w+", distance=pixel_distance, w_avg_samples=1000)
    assert r.codes.space == "w+" and r.codes.data.shape == (2, G.num_ws, G.w_dim)
    assert (r.metrics["mse"] < 0.02).all()
    assert len(r.noise) == len(draw_noise(G.synthesis, [0])) and r.noise[0].shape[0] == 2
    for n in r.noise:  # renormalised after the last step
        assert torch.allclose(n.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5)


def test_pixel_weight_alone_recovers_and_generator_is_untouched():
    G = tiny(0.0)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    w_star, target = planted(G, n=1)
    zero = lambda s, t: torch.zeros(len(s))  # noqa: E731
    r = project(G, target, 200, distance=zero, pixel_weight=1.0, w_avg_samples=1000)
    assert r.metrics["mse"][0] < 1e-6
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    assert all(p.requires_grad and p.grad is None for p in G.parameters())


def test_deterministic_for_a_seed():
    G = tiny(0.3)
    _, target = planted(G)
    kw = dict(distance=pixel_distance, w_avg_samples=200)
    a, b = project(G, target, 15, seed=3, **kw), project(G, target, 15, seed=3, **kw)
    c = project(G, target, 15, seed=4, **kw)
    assert torch.equal(a.codes.data, b.codes.data) and all(torch.equal(x, y) for x, y in zip(a.noise, b.noise))
    assert not torch.equal(a.codes.data, c.codes.data)


def test_uint8_targets_equal_float_targets():
    G = tiny(0.0)
    _, target = planted(G, n=1)
    u8 = ((target + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    kw = dict(distance=pixel_distance, w_avg_samples=200, seed=1)
    a, b = project(G, u8, 5, **kw), project(G, u8.float() / 127.5 - 1, 5, **kw)
    assert torch.allclose(a.codes.data, b.codes.data, atol=1e-5)


def test_bad_inputs():
    G = tiny(0.0)
    with pytest.raises(ConfigError, match="do not fit"):
        project(G, torch.zeros(1, 3, 8, 8), 1, distance=pixel_distance)
    with pytest.raises(ConfigError, match="space"):
        project(G, torch.zeros(1, 3, 16, 16), 1, space="s", distance=pixel_distance)
    with pytest.raises(ConfigError, match="names"):
        project(G, torch.zeros(1, 3, 16, 16), 1, distance=pixel_distance, names=["a", "b"])


# ---- the command --------------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_ckpt(tmp_path):
    from latentlab.checkpoints import save_native

    path = tmp_path / "tiny.safetensors"
    save_native(path, {"G_ema": tiny(0.3)}, "latentlab")
    return path


def test_cli_writes_the_projection(tmp_path, tiny_ckpt, capsys):
    from PIL import Image

    from latentlab import load_generator
    from latentlab.latents import LatentCodes

    rng = np.random.RandomState(0)
    for name in ("a", "b"):
        Image.fromarray(rng.randint(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        capsys, "project", tmp_path / "a.png", tmp_path / "b.png", "--model", tiny_ckpt, "--steps", "3",
        "--space", "w+", "--random-backbone", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert "projected 2 image(s)" in stdout
    for f in ("latents.npz", "recon_a.png", "recon_b.png", "metrics.csv", "project.json"):
        assert (out / f).exists(), f
    G = load_generator(str(tiny_ckpt))
    codes = LatentCodes.load_for(out / "latents.npz", G)
    assert codes.space == "w+" and codes.data.shape == (2, G.num_ws, G.w_dim)
    assert codes.meta["targets"] == ["a", "b"] and codes.meta["projector"]["num_steps"] == 3
    with np.load(out / "latents.npz") as f:
        assert f["noise0"].shape[0] == 2 and f["noise0"].shape[1] == 1
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0] == "image,distance,mse,psnr,ssim" and len(rows) == 3
    record = json.loads((out / "project.json").read_text())
    assert record["settings"]["space"] == "w+" and record["settings"]["pretrained_backbone"] is False
    assert np.asarray(Image.open(out / "recon_a.png")).shape == (16, 16, 3)


@pytest.mark.parametrize(
    "size, mode, message",
    [((32, 32), "RGB", "image is 32x32, the generator makes 16x16"), ((16, 16), "L", "greyscale image")],
)
def test_cli_refuses_wrong_images_in_one_line(tmp_path, tiny_ckpt, capsys, size, mode, message):
    from PIL import Image

    Image.new(mode, size).save(tmp_path / "x.png")
    code, _, err = run_cli(capsys, "project", tmp_path / "x.png", "--model", tiny_ckpt, "--out", tmp_path / "o")
    assert code != 0
    line = err.strip().splitlines()[-1]
    assert line.startswith("latentlab: error:") and message in line and "x.png" in line
    assert "Traceback" not in err
    if size != (16, 16):
        assert "--align" in line and "not implemented yet" in line
