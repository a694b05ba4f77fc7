"""The projector (latentlab.inversion): schedules and noise terms against hand values, recovery of a
planted code on the tiny generator (W and S), starting codes, the optimisation video, determinism, and
the `latentlab project` command.

The recovery tests use a pixel distance (an untrained LPIPS backbone would make "near zero" depend
on random features); the CLI test uses LPIPS with an untrained VGG (--random-backbone, offline)."""

import json
import math

import numpy as np
import pytest
import torch

from conftest import make_tiny_generator, run_cli
from latentlab.errors import ConfigError
from latentlab.inversion import (
    ProjectionVideo,
    lr_at,
    noise_regularization,
    project,
    renormalize_noise_,
    s_noise,
    w_noise_scale,
    w_stats,
)
from latentlab.inversion.projector import ssim
from latentlab.latents import LatentCodes
from latentlab.models.identity import model_hash
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


def packed_styles(G, ws):
    """Independent of the projector: the packed styles of ws [N, num_ws, w_dim] (or w [N, w_dim])."""
    if ws.ndim == 2:
        ws = ws.unsqueeze(1).repeat(1, G.num_ws, 1)
    return torch.cat([layer.style(ws[:, i]) for _, layer, i in G.synthesis.style_layers()], dim=1)


def tiny_v1():
    from latentlab.models.stylegan1 import StyleGAN1Generator

    torch.manual_seed(0)
    return StyleGAN1Generator(
        latent_size=16, dlatent_size=16, resolution=16, mapping_layers=2, fmap_base=64, fmap_max=16
    ).eval()


def image_mse(a, b):
    """Per-image MSE of [-1, 1] images, on the [0, 1] scale."""
    return ((a - b) / 2).square().flatten(1).mean(1)


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
        project(G, torch.zeros(1, 3, 16, 16), 1, space="z", distance=pixel_distance)
    with pytest.raises(ConfigError, match="snapshot_every"):
        project(G, torch.zeros(1, 3, 16, 16), 1, distance=pixel_distance, on_snapshot=lambda step, img: None)
    with pytest.raises(ConfigError, match="names"):
        project(G, torch.zeros(1, 3, 16, 16), 1, distance=pixel_distance, names=["a", "b"])


# ---- S space ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: tiny(0.3), tiny_v1], ids=["stylegan2", "stylegan1"])
def test_s_noise_is_the_affine_image_of_a_w_plus_perturbation(make):
    G = make()
    g = torch.Generator().manual_seed(0)
    ws, eps = torch.randn(3, G.num_ws, G.w_dim, generator=g), torch.randn(3, G.num_ws, G.w_dim, generator=g)
    with torch.no_grad():
        assert torch.allclose(packed_styles(G, ws + eps), packed_styles(G, ws) + s_noise(G, eps), atol=1e-5)
        assert s_noise(G, torch.zeros_like(eps)).abs().max() == 0


def test_s_exploration_equals_w_plus_exploration():
    # One step with learning rate 0: the image the loss sees is the start plus the exploration noise. In S
    # (styles of w_avg + s_noise(eps)) it must equal W+'s (w_avg + eps): the same draws seen through the affines.
    # (Noise inputs off: the image differs from w_avg's by the exploration noise alone.)
    G = tiny(0.0)
    _, target = planted(G)
    seen = {}

    def record(space):
        def distance(synth, target):
            seen.setdefault(space, synth.detach().clone())  # the step's call, not the final evaluation's
            return pixel_distance(synth, target)

        return distance

    for space in ("w+", "s"):
        project(G, target, 1, space=space, distance=record(space), initial_lr=0, w_avg_samples=200, seed=3)
    w_avg, _ = w_stats(G, 200)
    with torch.no_grad():
        still = (G.synthesis(w_avg.expand(1, G.num_ws, -1), noise_mode="const") + 1) * 127.5
    assert (seen["s"] - still).abs().max() > 1  # the exploration noise is there ...
    assert torch.allclose(seen["s"], seen["w+"], atol=1e-3)  # ... and is W+'s


def test_s_projection_recovers_a_planted_s_code():
    # The planted code moves every style channel off the styles of w_avg by 0.3 of its std (over the w_avg samples):
    # a code off W's image, which W projection cannot reach (pixel MSE stays about 3e-3, measured), while S
    # projection brings the MSE from 0.01 to about 1.4e-4 in 200 steps (measured). On this random tiny generator S
    # is ill-conditioned (even L-BFGS from the start stalls near 1e-4 for far codes), hence the moderate offset.
    G = tiny(0.0)
    w_avg, _ = w_stats(G, 1000)
    z = torch.from_numpy(np.random.RandomState(123).randn(1000, G.z_dim)).float()
    with torch.no_grad():
        s_avg = packed_styles(G, w_avg[None]).repeat(2, 1)
        s_std = packed_styles(G, G.mapping(z, None)[:, 0]).std(0)
        s_star = s_avg + 0.3 * torch.randn(s_avg.shape, generator=torch.Generator().manual_seed(7)) * s_std
        target = G.synthesis(styles=s_star, noise_mode="const")
        start = image_mse(G.synthesis(styles=s_avg, noise_mode="const"), target)
    r = project(G, target, 200, space="s", distance=pixel_distance, w_avg_samples=1000)
    assert r.codes.space == "s" and r.codes.data.shape == s_star.shape
    assert (start > 5e-3).all() and (r.metrics["mse"] < 5e-4).all() and (r.metrics["psnr"] > 33).all()
    w = project(G, target, 200, space="w", distance=pixel_distance, w_avg_samples=1000)
    assert (w.metrics["mse"] > 5 * r.metrics["mse"]).all()
    # the codes render as the result's images, with the result's noise
    assert torch.allclose(r.codes.render(G), r.images, atol=1e-5)


def test_s_projection_of_a_stylegan1_model():
    G = tiny_v1()
    with torch.no_grad():
        w = G.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(5)), None)[:, 0]
        target = G.synthesis(styles=packed_styles(G, w), noise_mode="const")
    before = project(G, target, 1, space="s", distance=pixel_distance, initial_lr=0, w_avg_samples=200)
    r = project(G, target, 60, space="s", distance=pixel_distance, w_avg_samples=200)
    assert r.codes.data.shape == (1, sum(G.synthesis.style_dims.values()))
    assert r.metrics["mse"][0] < 0.25 * before.metrics["mse"][0]  # 0.25 -> 0.01 in 100 steps (measured)


# ---- starting codes -----------------------------------------------------------------------------------------------
def _trace(target):
    steps, mses = [], []

    def on_snapshot(step, images):
        steps.append(step)
        mses.append(image_mse(images, target).max().item())

    return on_snapshot, steps, mses


@pytest.mark.parametrize("space, init_space", [("s", "s"), ("s", "w"), ("s", "z"), ("w+", "w"), ("w", "w")])
def test_starting_from_the_planted_code_is_exact_from_step_0(space, init_space):
    # Without exploration noise the gradient at the planted code is exactly 0, so Adam does not move: the synthesis
    # equals the target at every snapshot (z, w codes converted forward to the projection's space). With it (the
    # default), step 0 is still exact, the noise moves the code away, and the run ends far closer than from w_avg.
    G = tiny(0.0)
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(5))
    w_star, target = planted(G)
    data = {"z": z, "w": w_star, "s": packed_styles(G, w_star)}[init_space]
    init = LatentCodes(data, init_space, model_id=model_hash(G))
    on_snapshot, steps, mses = _trace(target)
    kw = dict(distance=pixel_distance, w_avg_samples=200, snapshot_every=10, on_snapshot=on_snapshot)
    r = project(G, target, 30, space=space, init=init, initial_noise_factor=0, **kw)
    assert steps == [0, 10, 20, 30] and max(mses) < 1e-10 and r.metrics["mse"].max() < 1e-10
    assert r.codes.space == space and r.settings["init"] == f"given {init_space} codes"
    if (space, init_space) == ("s", "s"):  # with the default exploration noise: 7e-4 vs 7e-3 from w_avg (measured)
        on_snapshot, steps, mses = _trace(target)
        kw["on_snapshot"] = on_snapshot
        r = project(G, target, 30, space=space, init=init, **kw)
        cold = project(G, target, 30, space=space, **kw)
        assert mses[0] < 1e-10 and r.metrics["mse"].max() < 0.3 * cold.metrics["mse"].min()


def test_init_noise_and_the_noise_that_codes_carry():
    G = tiny(0.3)
    w_star, target = planted(G)  # rendered with draw_noise(range(100, 102))
    noise = draw_noise(G.synthesis, [100, 101])
    kw = dict(distance=pixel_distance, w_avg_samples=200, snapshot_every=5, initial_noise_factor=0)
    on_snapshot, _, mses = _trace(target)
    project(G, target, 5, init=LatentCodes(w_star, "w"), on_snapshot=on_snapshot, **kw)
    assert mses[0] > 1e-3  # random starting noise: not the target's
    on_snapshot, _, mses = _trace(target)
    r = project(G, target, 5, init=LatentCodes(w_star, "w"), init_noise=noise, on_snapshot=on_snapshot, **kw)
    assert mses[0] < 1e-10 and r.settings["init_noise"] == "given"
    on_snapshot, _, carried = _trace(target)
    project(G, target, 5, init=LatentCodes(w_star, "w", noise=noise), on_snapshot=on_snapshot, **kw)
    assert carried == mses  # codes that carry noise maps (a latents file's) start from them


def test_init_refusals():
    G = tiny(0.0)
    _, target = planted(G)
    kw = dict(distance=pixel_distance, w_avg_samples=50)
    s = packed_styles(G, torch.zeros(2, G.w_dim))
    with pytest.raises(ConfigError, match=r"init: cannot start a projection in 'w\+' from 's' codes"):
        project(G, target, 1, space="w+", init=LatentCodes(s, "s"), **kw)
    with pytest.raises(ConfigError, match="init: these codes belong to another model"):
        project(G, target, 1, init=LatentCodes(torch.zeros(2, G.w_dim), "w", model_id="0123456789abcdef"), **kw)
    with pytest.raises(ConfigError, match="init: 1 codes for 2 targets"):
        project(G, target, 1, init=LatentCodes(torch.zeros(1, G.w_dim), "w"), **kw)
    with pytest.raises(ConfigError, match="do not fit"):
        project(G, target, 1, init=LatentCodes(torch.zeros(2, 7), "w"), **kw)
    noise = draw_noise(G.synthesis, [0, 1])
    with pytest.raises(ConfigError, match="init_noise: 4 noise maps"):
        project(G, target, 1, init_noise=noise[:-1], **kw)
    with pytest.raises(ConfigError, match=r"init_noise\[0\] must be \[2, 1, 4, 4\]"):
        project(G, target, 1, init_noise=[noise[0][:1], *noise[1:]], **kw)


# ---- the optimisation video ---------------------------------------------------------------------------------------
def test_snapshots_and_video_frames(tmp_path):
    from PIL import Image

    from latentlab.utils.images import to_uint8

    G = tiny(0.3)
    _, target = planted(G)
    u8 = ((target + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    video = ProjectionVideo(u8, tmp_path, 25)
    seen = []

    def on_snapshot(step, images):
        seen.append((step, images.clone()))
        video(step, images)

    r = project(G, u8, 25, distance=pixel_distance, w_avg_samples=50, snapshot_every=10, on_snapshot=on_snapshot)
    assert [s for s, _ in seen] == [0, 10, 20, 25]
    assert torch.equal(seen[-1][1], r.images) and not torch.equal(seen[0][1], r.images)
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == ["step_0000.png", "step_0010.png", "step_0020.png", "step_0025.png"]
    frame = np.asarray(Image.open(tmp_path / "frames" / "step_0010.png"))
    assert frame.shape == (2 * 16, 2 * 16, 3)  # one row per image: target | synthesis
    synth = to_uint8(seen[1][1])
    for i in range(2):
        rows = frame[16 * i : 16 * (i + 1)]
        assert np.array_equal(rows[:, :16], u8[i].permute(1, 2, 0).numpy())
        assert np.array_equal(rows[:, 16:], synth[i])
    assert ProjectionVideo(u8, tmp_path, 12345).digits == 5


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
    assert record["settings"]["space"] == "w+" and record["settings"]["distance"] == "lpips-random"
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
        assert "--align" in line


def test_cli_refuses_an_unreadable_image_and_colour_for_a_grey_model(tmp_path, capsys):
    from PIL import Image

    from latentlab import Generator
    from latentlab.checkpoints import save_native

    (tmp_path / "broken.png").write_bytes(b"not an image")
    code, _, err = run_cli(capsys, "project", tmp_path / "broken.png", "--out", tmp_path / "o1")
    line = err.strip().splitlines()[-1]
    assert code == 1 and line.startswith("latentlab: error:") and "broken.png: cannot read image" in line
    torch.manual_seed(0)
    grey = Generator(
        z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=1, mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=256, channel_max=16),
    ).eval()  # fmt: skip
    save_native(tmp_path / "grey.safetensors", {"G_ema": grey}, "latentlab")
    Image.new("RGB", (16, 16)).save(tmp_path / "colour.png")
    code, _, err = run_cli(
        capsys, "project", tmp_path / "colour.png", "--model", tmp_path / "grey.safetensors", "--out", tmp_path / "o2"
    )
    line = err.strip().splitlines()[-1]
    assert code == 1 and "colour.png: a colour image (RGB) for a generator with 1 channel(s)" in line
    assert "Traceback" not in err


def test_cli_nvidia_format_adds_projected_w(tmp_path, tiny_ckpt, capsys, no_vgg):
    from latentlab import load_generator

    out = tmp_path / "out"
    code, stdout, err = run_cli(
        capsys, "project", *_two_targets(tmp_path), "--model", tiny_ckpt, "--steps", "2", "--space", "w",
        "--latents-format", "nvidia", "--random-backbone", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    G = load_generator(str(tiny_ckpt))
    codes = LatentCodes.load_for(out / "latents.npz", G)
    assert codes.space == "w"
    with np.load(out / "projected_w.npz") as f:
        assert list(f.keys()) == ["w"] and f["w"].dtype == np.float32
        ws = f["w"]
    assert ws.shape == (2, G.num_ws, G.w_dim)  # one w per image, repeated for every layer
    for layer in range(G.num_ws):
        assert np.array_equal(ws[:, layer], codes.data.numpy())
    back = LatentCodes.load(out / "projected_w.npz")
    assert back.space == "w+" and torch.equal(back.data, torch.from_numpy(ws))
    assert "projected_w.npz" in json.loads((out / "project.json").read_text())["files"]


def test_cli_nvidia_format_refuses_s_space_before_projecting(tmp_path, tiny_ckpt, capsys, monkeypatch):
    import latentlab.inversion as inversion

    monkeypatch.setattr(inversion, "project", lambda *a, **k: pytest.fail("projected before the check"))
    code, _, err = run_cli(
        capsys, "project", *_two_targets(tmp_path), "--model", tiny_ckpt, "--space", "s", "--latents-format",
        "nvidia", "--out", tmp_path / "o",
    )  # fmt: skip
    line = err.strip().splitlines()[-1]
    assert code != 0 and line.startswith("latentlab: error:") and "--latents-format nvidia" in line
    assert "--space w or w+" in line and "Traceback" not in err
    assert not (tmp_path / "o" / "latents.npz").exists()


@pytest.fixture
def no_vgg(monkeypatch):
    """The projector's default distance replaced by the pixel distance (building even an untrained VGG16 takes
    seconds; test_cli_writes_the_projection runs the real default)."""
    import latentlab.inversion.projector as projector

    monkeypatch.setattr(projector, "default_distance", lambda pretrained_backbone=True: pixel_distance)


def _two_targets(tmp_path):
    from PIL import Image

    rng = np.random.RandomState(0)
    for name in ("a", "b"):
        Image.fromarray(rng.randint(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    return [tmp_path / "a.png", tmp_path / "b.png"]


def test_cli_space_s_with_the_video(tmp_path, tiny_ckpt, capsys, no_vgg):
    pytest.importorskip("imageio_ffmpeg")  # the video extra (in the dev extra)
    from PIL import Image

    from latentlab import load_generator

    out = tmp_path / "out"
    code, stdout, err = run_cli(
        capsys, "project", *_two_targets(tmp_path), "--model", tiny_ckpt, "--steps", "5", "--space", "s",
        "--video", "--video-every", "2", "--random-backbone", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert "projected 2 image(s) in s" in stdout and "note" not in err
    frames = sorted(p.name for p in (out / "frames").iterdir())
    assert frames == ["step_0000.png", "step_0002.png", "step_0004.png", "step_0005.png"]
    frame = np.asarray(Image.open(out / "frames" / "step_0005.png"))
    assert frame.shape == (32, 32, 3)
    assert np.array_equal(frame[16:, :16], np.asarray(Image.open(tmp_path / "b.png")))  # row 2, left: target b
    assert np.array_equal(frame[:16, 16:], np.asarray(Image.open(out / "recon_a.png")))  # row 1, right: the result
    import imageio.v2 as imageio

    with imageio.get_reader(out / "proj.mp4") as reader:
        assert sum(1 for _ in reader) == 4 and reader.get_meta_data()["fps"] == 10
    record = json.loads((out / "project.json").read_text())
    assert record["video"] == {"every": 2, "frames": 4, "mp4": "proj.mp4"} and record["settings"]["space"] == "s"
    G = load_generator(str(tiny_ckpt))
    codes = LatentCodes.load_for(out / "latents.npz", G)
    assert codes.space == "s" and codes.data.shape == (2, sum(G.synthesis.style_dims.values()))


def test_cli_video_without_the_mp4_writer_writes_the_frames_and_says_so(
    tmp_path, tiny_ckpt, capsys, monkeypatch, no_vgg
):
    import latentlab.inversion.video as video

    monkeypatch.setattr(video, "mp4_writer_available", lambda: False)
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "project", _two_targets(tmp_path)[0], "--model", tiny_ckpt,
        "--steps", "3", "--video", "--random-backbone", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["step_0000.png", "step_0003.png"]
    assert not (out / "proj.mp4").exists()
    lines = err.strip().splitlines()
    notes = [line for line in lines if "video frames" in line]
    assert len(notes) == 1 and "2 video frames" in notes[0] and "pip install 'latentlab[video]'" in notes[0]
    assert json.loads((out / "project.json").read_text())["video"]["mp4"] is None


def test_cli_passes_align_and_landmarks_to_load_targets(tmp_path, tiny_ckpt, capsys, monkeypatch):
    import latentlab.inversion as inversion

    calls = []

    def fake_load_targets(paths, resolution, channels, align=False, landmarks=None):
        calls.append(
            dict(paths=list(paths), resolution=resolution, channels=channels, align=align, landmarks=landmarks)
        )
        raise ConfigError("stop here")  # what follows is tested above

    monkeypatch.setattr(inversion, "load_targets", fake_load_targets)
    args = ["project", tmp_path / "photo.jpg", "--model", tiny_ckpt]
    code, _, err = run_cli(capsys, *args, "--align", "--landmarks", tmp_path / "marks.txt", "--out", tmp_path / "o")
    assert code == 1 and err.strip().endswith("stop here")
    code, _, err = run_cli(capsys, *args, "--out", tmp_path / "o2")
    assert code == 1 and [c["align"] for c in calls] == [True, False]
    assert calls[0] == dict(
        paths=[str(tmp_path / "photo.jpg")],
        resolution=16,
        channels=3,
        align=True,
        landmarks=str(tmp_path / "marks.txt"),
    )
    assert calls[1]["landmarks"] is None


def test_load_targets_refuses_a_header_claiming_a_huge_image(tmp_path):
    """A 50-byte PNG whose header claims 100000 x 100000 pixels is refused before decoding (no 30 GB buffer)."""
    import struct
    import zlib

    from latentlab.inversion import load_targets

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    with pytest.raises(ConfigError, match=r"bomb.png: (header claims 100000x100000|refused as a decompression bomb)"):
        load_targets([str(tmp_path / "bomb.png")], 16, 3)
    # the same for one within PIL's own limit but over latentlab's (checked from the header, nothing decoded)
    ihdr = struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0)
    (tmp_path / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    with pytest.raises(ConfigError, match=r"big.png: header claims 9000x9000 pixels"):
        load_targets([str(tmp_path / "big.png")], 16, 3)
