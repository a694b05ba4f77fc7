"""Every feature that works on StyleGAN2 works on StyleGAN3 where it makes sense, checked on the official-format
fixtures (tests/fixtures/stylegan3): edits in Z, W, W+ and S (StyleGAN3's layer names), InterFaceGAN boundaries
from planted directions, every truncation variant, style mixing, ALS and PPL against hand computations, the
projector and the encoder, conversion, and the command line. What cannot apply (training, HSR's block hooks)
refuses in one line naming StyleGAN3; noise options are accepted and change nothing (no noise inputs).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from conftest import run_cli
from latentlab import load_checkpoint
from latentlab.errors import ConfigError
from latentlab.latents import Direction, LatentCodes, level_layers, parse_layers, z_from_seeds
from latentlab.utils.images import to_uint8

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "stylegan3")
T16 = os.path.join(HERE, "sg3t_16.pkl")  # T config, 16 px, z 8, w 16, 16 ws
R32 = os.path.join(HERE, "sg3r_32.pkl")  # R config, 32 px
COND = os.path.join(HERE, "sg3t_64_cond.pkl")  # conditional (c_dim 3), 64 px, 8 ws

# sg3t_16's ws levels by hand: band limits 2 f_c of (input, L0..L14) rounded to powers of two are
# 4 x5, 8 x5, 16 x6 (the schedule's cutoffs rise from 2 to Nyquist, 8), so coarse (4-8 px) = ws 0-9.
COARSE = list(range(10))
MIDDLE = list(range(10, 16))


@pytest.fixture(scope="module")
def ckpt():
    return load_checkpoint(T16)


@pytest.fixture(scope="module")
def G(ckpt):
    return ckpt.G_ema


@pytest.fixture(scope="module")
def G_cond():
    return load_checkpoint(COND).G_ema


def unit(dim, seed):
    v = np.random.RandomState(seed).randn(dim)
    return v / np.linalg.norm(v)


def t32(v):
    return torch.as_tensor(v, dtype=torch.float32)


def synth(G, ws):
    with torch.no_grad():
        return G.synthesis(ws)


def wplus(G, w):
    return w[:, None].repeat(1, G.num_ws, 1)


# ---- edits -----------------------------------------------------------------------------------------
def test_z_and_w_edits_are_code_plus_alpha_n(G):
    from latentlab.edits import distance, edit, sweep

    z = LatentCodes.from_seeds(G, [0, 1, 2])
    nz, nw = unit(G.z_dim, 1), unit(G.w_dim, 2)
    ez = edit(z, nz, 1.5, G)
    assert torch.allclose(ez.data, z.data + 1.5 * t32(nz), atol=1e-6) and ez.seeds == [0, 1, 2]
    with torch.no_grad():
        assert torch.allclose(ez.to("w", G).data, G.mapping(z.data + 1.5 * t32(nz), None)[:, 0], atol=1e-6)
        w = z.to("w", G)
    ew = edit(w, Direction(nw, space="w"), -2.0, G)
    assert torch.allclose(ew.data, w.data - 2 * t32(nw), atol=1e-6)
    assert torch.allclose(distance(ew, nw) - distance(w, nw), torch.full([3], -2.0), atol=1e-5)
    swept = sweep(w, nw, [-1, 0, 2], G)  # code-major: code i, alpha k at 3 i + k
    for i in range(3):
        for k, a in enumerate([-1, 0, 2]):
            assert torch.allclose(swept.data[3 * i + k], w.data[i] + a * t32(nw), atol=1e-6)
    # the image of an edited W code is the synthesis of w + alpha n on every layer
    img = ew[:1].render(G)
    assert torch.allclose(img, synth(G, wplus(G, w.data[:1] - 2 * t32(nw))), atol=1e-5)


def test_wplus_edits_change_only_the_named_layers(G):
    from latentlab.edits import edit

    assert parse_layers("coarse", G) == level_layers(G, "coarse") == COARSE
    assert parse_layers("middle", G) == MIDDLE and level_layers(G, "fine") == []  # nothing above 16 px
    wp = LatentCodes.from_seeds(G, [3, 4]).to("w+", G)
    n = unit(G.w_dim, 5)
    for spec, rows in (("coarse", COARSE), ("2,15", [2, 15]), ("middle", MIDDLE)):
        delta = edit(wp, n, 3.0, G, layers=spec).data - wp.data
        for i in range(G.num_ws):
            want = 3 * t32(n) if i in rows else torch.zeros(G.w_dim)
            assert torch.allclose(delta[:, i], want.expand_as(delta[:, i]), atol=1e-6), (spec, i)
    edited = edit(wp, n, 3.0, G, layers="coarse")
    by_hand = wp.data.clone()
    by_hand[:, COARSE] += 3 * t32(n)
    img = edited.render(G)
    assert torch.allclose(img, synth(G, by_hand), atol=1e-5)
    assert not torch.allclose(img, wp.render(G), atol=1e-3)  # the coarse layers do move the image


def test_s_space_edits_on_stylegan3_layer_names(G):
    from latentlab.edits import edit, parse_channels

    dims = G.synthesis.style_dims
    assert list(dims)[:3] == ["input", "L0_36_16", "L1_36_16"] and dims["input"] == 4 and dims["L3_36_16"] == 16
    assert sum(dims.values()) == 4 + 15 * 16
    # flat offsets by hand: input 0-3, L0 4-19, L1 20-35, L2 36-51, L3 52-67
    assert parse_channels("L3_36_16:2-4,input:1", G) == [1, 54, 55, 56]
    with pytest.raises(ConfigError, match="L0_36_16"):
        parse_channels("b16.conv0:1", G)  # a StyleGAN2 name: the message lists this model's layers
    w = LatentCodes.from_seeds(G, [6, 7]).to("w+", G)
    s = w.to("s", G)
    moved = edit(s, None, 5.0, G, channels="L3_36_16:2")
    delta = moved.data - s.data
    assert torch.allclose(delta[:, 54], torch.full([2], 5.0)) and delta[:, torch.arange(244) != 54].abs().max() == 0
    with torch.no_grad():
        styles = G.synthesis.compute_styles(w.data)
        layer = styles["L3_36_16"].clone()
        layer[:, 2] += 5
        want = G.synthesis(w.data, styles={"L3_36_16": layer})
    assert torch.allclose(moved.render(G), want, atol=1e-5)
    # a W direction moves S codes exactly as w + alpha n moves every layer's styles (the input's 4 included)
    n = unit(G.w_dim, 8)
    via_w = edit(s, Direction(n, space="w"), 2.0, G)
    with torch.no_grad():
        direct = G.synthesis.pack_styles(G.synthesis.compute_styles(w.data + 2 * t32(n)))
    assert torch.allclose(via_w.data, direct, atol=1e-5)


# ---- boundaries ------------------------------------------------------------------------------------
@pytest.mark.parametrize("conditional", [False, True])
def test_boundaries_recover_planted_directions(G, G_cond, conditional):
    """Scores linear in w: the InterFaceGAN SVM finds the planted direction on StyleGAN3 codes (also of the
    conditional model, labels drawn per code); a condition makes it orthogonal to the other direction.

    Every sample is used (ratio 0.5): codes crowd both sides of the hyperplane and pin it to the planted
    direction (from the far ends alone, ratio 0.02-0.1, the max-margin plane of an anisotropic W tilts)."""
    from latentlab.boundaries import train_boundaries, train_boundary
    from latentlab.edits import edit

    g = G_cond if conditional else G
    z = z_from_seeds(range(2000), g.z_dim)
    c = torch.eye(3)[torch.arange(2000) % 3] if conditional else None
    with torch.no_grad():
        w = g.mapping(z, c)[:, 0].double().numpy()
    n, m = unit(g.w_dim, 10), unit(g.w_dim, 11)
    m = 0.6 * n + 0.8 * (m - (m @ n) * n) / np.linalg.norm(m - (m @ n) * n)  # cos(n, m) = 0.6
    scores = np.stack([(w - w.mean(0)) @ n, (w - w.mean(0)) @ m], axis=1)
    b = train_boundary(w, scores[:, 0], ratio=0.5, seed=0)
    assert b.normal @ n > 0.97 and b.val_accuracy > 0.97
    # an edit along the found boundary moves the (linear) score by alpha times its cosine with the planted one
    codes = LatentCodes(torch.from_numpy(w[:4]).float(), "w")
    moved = edit(codes, b.direction(space="w"), 2.0, g).data.double().numpy()
    np.testing.assert_allclose((moved - w[:4]) @ n, 2.0 * (b.normal @ n), atol=1e-5)
    out = train_boundaries(w, scores, ["a", "b"], attrs=["a"], conditions={"a": ["b"]}, ratio=0.5, seed=0)
    plain_b = train_boundary(w, scores[:, 1], ratio=0.5, seed=0).normal
    cond = out["a"].normal
    assert abs(cond @ plain_b) < 1e-8 and out["a"].meta["conditions"] == ["b"]
    by_hand = n - (n @ m) * m
    assert cond @ (by_hand / np.linalg.norm(by_hand)) > 0.95


# ---- truncation --------------------------------------------------------------------------------------
def test_truncation_variants_on_stylegan3(G):
    from latentlab.truncation import (
        LayerScheduleTruncation,
        NoTruncation,
        RadiusClamp,
        WTruncation,
        ZTruncatedNormal,
        compare,
        parse_truncation,
    )

    z = z_from_seeds(range(8), G.z_dim)
    with torch.no_grad():
        ws = G.mapping(z, None)
        w_avg = G.mapping.w_avg.clone()
        # psi / cutoff: exactly the mapping's truncation, and by hand w_avg + psi (w - w_avg) below the cutoff
        assert torch.equal(WTruncation(0.6)(G, z), G.mapping(z, None, truncation_psi=0.6))
        cut = parse_truncation("w:0.6@4")(G, z)
        assert torch.equal(cut, G.mapping(z, None, truncation_psi=0.6, truncation_cutoff=4))
        assert torch.allclose(cut[:, :4], w_avg + 0.6 * (ws[:, :4] - w_avg), atol=1e-5)
        assert torch.equal(cut[:, 4:], ws[:, 4:])
        assert torch.equal(NoTruncation()(G, z), ws)
        psis = np.linspace(0, 1, G.num_ws)
        sched = LayerScheduleTruncation(psis)(G, z)
        assert torch.allclose(sched, w_avg + t32(psis)[:, None] * (ws - w_avg), atol=1e-5)
        with pytest.raises(ConfigError, match="16 ws layers"):
            LayerScheduleTruncation([0.5] * 18)(G, z)  # a StyleGAN2 1024 px schedule does not fit
        center = torch.randn(G.w_dim)
        assert torch.allclose(WTruncation(0.5, center=center)(G, z), center + 0.5 * (ws - center), atol=1e-5)
        # Z truncation: entries resampled into [-t, t], then plain mapping
        zt = ZTruncatedNormal(1.0)
        tz = zt.truncate_z(z)
        assert tz.abs().max() <= 1.0 and torch.equal(tz[z.abs() <= 1], z[z.abs() <= 1])
        assert torch.equal(zt(G, z), G.mapping(tz, None))
        # radius clamp: codes farther than r from w_avg go onto the sphere, the others stay
        dist = (ws[:, 0] - w_avg).norm(dim=1)
        r = float(dist.median())
        clamped = RadiusClamp(radius=r)(G, z)[:, 0]
        far = dist > r
        assert torch.allclose((clamped[far] - w_avg).norm(dim=1), torch.full([int(far.sum())], r), atol=1e-4)
        assert torch.equal(clamped[~far], ws[~far, 0])
        cos = torch.nn.functional.cosine_similarity(clamped[far] - w_avg, ws[far, 0] - w_avg)
        assert torch.allclose(cos, torch.ones_like(cos), atol=1e-5)
        fitted = RadiusClamp(percentile=50).fit(G, n_samples=200)
        assert fitted.radius_ > 0
        assert list(compare(G, ["none", "w:0.5", "z:2"], z)) == ["none", "w psi=0.5", "z threshold=2"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 20 EM steps: enough here
def test_cluster_truncation_clusters_stylegan3_styles(G, tmp_path):
    """Fitted clusters read StyleGAN3's style layers per level (coarse: the input and L0-L8, middle: L9-L13; the
    last ws, ToRGB's, is kept; no fine level at 16 px); psi 0 moves each level onto its predicted centre."""
    from latentlab.truncation import ClusterTruncation, parse_truncation

    t = ClusterTruncation(k=2, psi=0.0, dims=4, covariance_type="diag", max_iter=20).fit(G, n_samples=200, seed=1)
    assert t.layers_ == {"coarse": COARSE, "middle": list(range(10, 15))}
    assert t.style_layers_["coarse"] == ["input"] + [f"L{i}_36_16" for i in range(9)]
    assert t.style_layers_["middle"] == [f"L{i}_36_16" for i in range(9, 13)] + ["L13_16_16"]
    z = z_from_seeds(range(5), G.z_dim)
    with torch.no_grad():
        ws = G.mapping(z, None)
        out = t(G, z)
        for level, idx in t.layers_.items():
            ids = t.predict(ws, level, G=G)
            assert torch.allclose(out[:, idx], t.centers_[level][ids], atol=1e-6)
        assert torch.equal(out[:, 15], ws[:, 15])
        t.save(tmp_path / "c.npz")
        again = parse_truncation(f"clusters:{tmp_path / 'c.npz'}")
        assert torch.equal(again(G, z), out)


def test_learned_clusters_train_and_truncate_on_stylegan3(G, tmp_path, capsys):
    """`train clusters` learns per-level mappings for a StyleGAN3 pickle (the generator frozen); its file
    truncates StyleGAN3 codes: psi 0 puts each level's layers onto the centre its classifier picks."""
    from latentlab.truncation import LearnedClusterTruncation, parse_truncation

    code, out, err = run_cli(
        capsys, "train", "clusters", "--model", T16, "--steps", 2, "--levels", "coarse,middle", "--k", 2,
        "--batch", 8, "--n-critic", 1, "--center-samples", 50, "--device", "cpu", "--out", tmp_path / "c",
    )  # fmt: skip
    assert code == 0, err
    t = parse_truncation(f"clusters:{tmp_path / 'c' / 'clusters.npz'}")
    assert isinstance(t, LearnedClusterTruncation) and t.layers_ == {"coarse": COARSE, "middle": list(range(10, 15))}
    t.psi = 0.0
    z = z_from_seeds(range(4), G.z_dim)
    with torch.no_grad():
        ws = G.mapping(z, None)
        out_ws = t(G, z)
        for level, idx in t.layers_.items():
            assert torch.allclose(out_ws[:, idx], t.centers_[level][t.predict(ws, level, G=G)], atol=1e-6)
    assert torch.equal(out_ws[:, 15], ws[:, 15])


# ---- style mixing ------------------------------------------------------------------------------------
def test_style_mixing_takes_rows_from_the_right_sources(G, tmp_path, capsys):
    from latentlab.edits import style_mix

    with torch.no_grad():
        dst, src = G.mapping(z_from_seeds([0, 1], G.z_dim), None), G.mapping(z_from_seeds([5, 5], G.z_dim), None)
    mixed = style_mix(dst, src, COARSE)
    assert torch.equal(mixed[:, COARSE], src[:, COARSE]) and torch.equal(mixed[:, 10:], dst[:, 10:])
    code, out, err = run_cli(
        capsys, "mix", "--model", T16, "--rows", "0-1", "--cols", "5", "--layers", "coarse", "--out", tmp_path / "m"
    )
    assert code == 0, err
    assert json.loads((tmp_path / "m" / "mix.json").read_text())["layers"] == COARSE
    from PIL import Image

    want = to_uint8(synth(G, mixed))
    for i, seed in enumerate([0, 1]):
        got = np.asarray(Image.open(tmp_path / "m" / f"mix_{seed:04d}_0005.png"))
        assert np.abs(got.astype(int) - want[i]).max() <= 1  # batch-level float differences at most flip a rounding


# ---- ALS and PPL -------------------------------------------------------------------------------------
def test_als_on_stylegan3_matches_the_formula(G):
    """Edit-linearity pairs w0 -> w0 + alpha n, a toy scorer (mean colour per channel), ALS by hand."""
    from latentlab.studies.reports import als_study

    def scorer(x):
        return x.mean(dim=[2, 3])

    n = unit(G.w_dim, 12)
    res = als_study(G, scorer, pairs=2, steps=2, space="w", direction=n, alpha=3.0, batch_size=4)
    with torch.no_grad():
        w0 = G.mapping(z_from_seeds([0, 2], G.z_dim), None)[:, 0]  # pair p starts at seed 2p
    t = torch.tensor([0.0, 0.5, 1.0])
    frames = w0[:, None] + t[None, :, None] * 3.0 * t32(n)  # [P, T, w_dim]
    logits = scorer(synth(G, wplus(G, frames.flatten(0, 1)))).reshape(2, 3, 3).double().numpy()
    np.testing.assert_allclose(res.attrs["logits"], logits, rtol=1e-4, atol=1e-6)
    tt = np.array([0.0, 0.5, 1.0])[None, :, None]
    delta = (logits - (1 - tt) * logits[:, :1] - tt * logits[:, -1:]) ** 2
    np.testing.assert_allclose(res.values[:3], delta[:, 1:].sum(1).mean(0) / 2, rtol=1e-3, atol=1e-9)
    assert res["mean"] == pytest.approx(res.values[:3].mean())


def test_ppl_on_stylegan3_matches_the_formula(G):
    """W-space PPL with a squared-L2 distance and a large epsilon: each pair's value by hand
    (RandomState(seed + i): z0, z1, t; both mapped, lerped at t and t + eps; [0, 255] images; / eps^2)."""
    from latentlab.studies.ppl import perceptual_path_length

    def sq_l2(a, b):
        return (a - b).square().flatten(1).sum(1)

    eps = 1e-2
    res = perceptual_path_length(G, num_samples=3, space="w", epsilon=eps, distance=sq_l2, batch_size=3, seed=7)
    want = []
    for i in range(3):
        r = np.random.RandomState(7 + i)
        z = torch.from_numpy(np.stack([r.randn(G.z_dim), r.randn(G.z_dim)])).float()
        t = float(np.float32(r.uniform()))
        with torch.no_grad():
            w0, w1 = G.mapping(z, None)
        a, b = (synth(G, torch.lerp(w0, w1, s)[None]) for s in (t, t + eps))
        want.append(float(sq_l2((a + 1) * 127.5, (b + 1) * 127.5)) / eps**2)
    np.testing.assert_allclose(res.distances, want, rtol=1e-3)
    assert res.kept.all() and res.mean == pytest.approx(np.mean(res.distances))  # 3 pairs: nothing filtered
    z_res = perceptual_path_length(G, num_samples=2, space="z", distance=sq_l2, batch_size=2)
    assert np.isfinite(z_res.distances).all() and (z_res.distances > 0).all()


# ---- inversion -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("space", ["w", "w+"])
def test_projector_runs_on_stylegan3_without_noise_maps(G, space):
    """The StyleGAN2-ADA projector needs nothing StyleGAN2-specific in W / W+: no noise maps to optimise or
    regularise (the default regulariser weight is kept), and 5 steps get closer to the target than w_avg."""
    from latentlab.inversion.projector import project, w_stats

    def mse(a, b):
        return (a - b).square().flatten(1).mean(1)

    target = LatentCodes.from_seeds(G, [3, 4]).render(G)
    res = project(G, target, 5, space=space, distance=mse, w_avg_samples=200)
    assert res.noise == [] and res.codes.space == space and res.settings["noise_regularize_weight"] == 1e5
    w_avg, _ = w_stats(G, 200)
    start = ((synth(G, wplus(G, w_avg[None].repeat(2, 1))) - target) / 2).square().flatten(1).mean(1)
    assert (torch.from_numpy(res.metrics["mse"]) < start.double()).all()
    assert torch.allclose(res.codes.render(G), res.images, atol=1e-5)


def test_encoder_predicts_stylegan3_styles(G):
    from latentlab.inversion.encoder import HierarchicalEncoder, encode
    from latentlab.inversion.projector import w_stats

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        enc = HierarchicalEncoder.for_generator(G, depth=18, width=4, fpn_channels=8, w_avg_samples=200)
    assert sorted(sum(enc.levels.values(), [])) == sorted(G.synthesis.style_dims)
    assert enc.levels["coarse"][0] == "input"
    w_avg, _ = w_stats(G, 200)
    with torch.no_grad():
        y = G.synthesis.pack_styles(G.synthesis.compute_styles(wplus(G, w_avg[None])))[0]
    assert torch.allclose(enc.y_avg, y)
    codes = encode(G, enc, LatentCodes.from_seeds(G, [0, 1]).render(G))
    assert codes.space == "s" and codes.data.shape == (2, 244) and codes.render(G).shape == (2, 3, 16, 16)


# ---- what does not apply -----------------------------------------------------------------------------
def test_no_noise_inputs_noise_options_change_nothing(G):
    from latentlab.models.noise import draw_noise, noise_layers, noise_override

    assert noise_layers(G.synthesis) == [] and draw_noise(G.synthesis, [1, 2]) == []
    ws = LatentCodes.from_seeds(G, [0, 1]).wplus(G)
    with torch.no_grad():
        const = G.synthesis(ws, noise_mode="const")
        for mode in ("random", "none"):
            assert torch.equal(G.synthesis(ws, noise_mode=mode), const)
        with noise_override(G.synthesis, []):
            assert torch.equal(G.synthesis(ws), const)


def test_training_and_hsr_refuse_stylegan3(ckpt, tmp_path, capsys):
    from conftest import blob_images
    from latentlab.datasets.images import ImageDataset
    from latentlab.train.hsr import capture_block_features, default_gen_resolutions
    from latentlab.train.loop import Trainer
    from latentlab.train.runs import load_for_finetuning

    (tmp_path / "data").mkdir()
    data = blob_images(tmp_path / "data", 4, size=16)
    with pytest.raises(ConfigError, match="StyleGAN3 generators cannot be trained"):
        Trainer(tmp_path / "run", ckpt.G, ckpt.D, ImageDataset(data, 16), progress=False)
    with pytest.raises(ConfigError, match="StyleGAN3"):
        load_for_finetuning(T16)
    for call in (
        lambda: default_gen_resolutions(ckpt.G_ema),
        lambda: capture_block_features(ckpt.G_ema, [8]).__enter__(),
    ):
        with pytest.raises(ConfigError, match=r"StyleGAN2 synthesis blocks \(b\{R\}.hook_x\).*StyleGAN3"):
            call()
    code, out, err = run_cli(
        capsys, "train", "gan", "--model", T16, "--data", data, "--steps", 1, "--out", tmp_path / "t"
    )
    assert code != 0 and "StyleGAN3 generators cannot be trained" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "t" / "training_state.pt").exists()


# ---- files and the command line ------------------------------------------------------------------------
def test_convert_to_safetensors_round_trips(tmp_path):
    from latentlab.checkpoints.loader import convert
    from latentlab.models.stylegan3 import StyleGAN3Generator

    src = load_checkpoint(R32)
    convert(R32, tmp_path / "r.safetensors")
    back = load_checkpoint(tmp_path / "r.safetensors")
    assert sorted(back.networks()) == sorted(src.networks()) and type(back.G_ema) is StyleGAN3Generator
    ws = LatentCodes.from_seeds(src.G_ema, [0, 1]).wplus(src.G_ema)
    assert torch.equal(synth(back.G_ema, ws), synth(src.G_ema, ws))
    for (k, a), (k2, b) in zip(src.G_ema.state_dict().items(), back.G_ema.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def test_cli_info_and_generate(G, tmp_path, capsys):
    from PIL import Image

    code, out, err = run_cli(capsys, "info", T16)
    assert code == 0, err
    assert [line for line in out.splitlines() if line.startswith("generation")] == [
        "generation    StyleGAN3 (alias-free, stylegan3-t)"
    ]
    with torch.no_grad():
        z = z_from_seeds([0, 1], G.z_dim)
        w = G.mapping(z, None, truncation_psi=0.7)[:, 0]
    pngs = {}
    for mode in ("const", "random"):
        code, out, err = run_cli(
            capsys, "generate", "--model", T16, "--seeds", "0-1", "--trunc", 0.7, "--noise-mode", mode,
            "--out", tmp_path / mode,
        )  # fmt: skip
        assert code == 0, err
        pngs[mode] = [np.asarray(Image.open(tmp_path / mode / f"seed000{s}.png")) for s in (0, 1)]
    lat = np.load(tmp_path / "const" / "latents.npz")
    np.testing.assert_allclose(lat["w"], w.numpy(), atol=1e-6)
    want = to_uint8(synth(G, wplus(G, w)))
    for s in (0, 1):
        assert np.array_equal(pngs["random"][s], pngs["const"][s])  # no noise inputs: noise modes agree
        assert np.abs(pngs["const"][s].astype(int) - want[s]).max() <= 1


def test_cli_edit_with_a_direction_file(G, tmp_path, capsys):
    from PIL import Image

    n = unit(G.w_dim, 3)
    np.save(tmp_path / "dir.npy", n[None])
    code, out, err = run_cli(
        capsys, "edit", "--model", T16, "--boundary", tmp_path / "dir.npy", "--alpha", 2, "--seeds", 0,
        "--noise-mode", "random", "--out", tmp_path / "e",
    )  # fmt: skip
    assert code == 0, err
    lat = np.load(tmp_path / "e" / "latents.npz")
    with torch.no_grad():
        w0 = G.mapping(z_from_seeds([0], G.z_dim), None)[:, 0]
    np.testing.assert_allclose(lat["edited_codes"], torch.cat([w0, w0 + 2 * t32(n)]).numpy(), atol=1e-6)
    got = np.asarray(Image.open(tmp_path / "e" / "seed0000_alpha+2.00.png"))
    assert np.abs(got.astype(int) - to_uint8(synth(G, wplus(G, w0 + 2 * t32(n))))[0]).max() <= 1
    code, out, err = run_cli(
        capsys, "edit", "--model", T16, "--boundary", tmp_path / "dir.npy", "--space", "w+", "--layers", "coarse",
        "--alpha", 2, "--seeds", 0, "--out", tmp_path / "wp",
    )  # fmt: skip
    assert code == 0, err
    orig, edited = np.load(tmp_path / "wp" / "latents.npz")["edited_codes"]  # alpha 0, then alpha 2
    np.testing.assert_allclose(edited[COARSE] - orig[COARSE], np.tile(2 * n, (10, 1)), atol=1e-5)
    assert np.array_equal(edited[10:], orig[10:])
    code, out, err = run_cli(
        capsys, "edit", "--model", T16, "--space", "s", "--channels", "L3_36_16:2", "--alpha", 2, "--seeds", 0,
        "--out", tmp_path / "s",
    )  # fmt: skip
    assert code == 0, err
    orig, edited = np.load(tmp_path / "s" / "latents.npz")["edited_codes"]
    assert np.flatnonzero(edited != orig).tolist() == [54] and edited[54] - orig[54] == pytest.approx(2)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::latentlab.boundaries.ImbalancedLabelsWarning")  # mean colours: all positive
def test_cli_sample_boundary_als_and_ppl(G, tmp_path, capsys, mean_colour_torchscript):
    """`sample` on a StyleGAN3 pickle stores its codes and scores, `boundary` trains on them; `als` and `ppl` run."""
    from latentlab.attributes import load_classifier
    from latentlab.boundaries import train_boundary

    clf = f"torchscript:{mean_colour_torchscript}"
    code, out, err = run_cli(
        capsys, "sample", "--model", T16, "--n", 40, "--classifier", clf, "--trust-code", "--chunk", 40,
        "--batch", 20, "--out", tmp_path / "s",
    )  # fmt: skip
    assert code == 0, err
    chunk = np.load(tmp_path / "s" / "chunk_000000.npz")
    with torch.no_grad():
        w = G.mapping(z_from_seeds(range(40), G.z_dim), None)
    np.testing.assert_allclose(chunk["w"], w[:, 0].numpy(), atol=1e-6)
    with torch.no_grad():  # the scores are the classifier's of the StyleGAN3 images of those seeds
        scores = load_classifier(clf, trust_code=True)(synth(G, w))
    np.testing.assert_allclose(chunk["scores"], scores.numpy(), atol=1e-5)
    code, out, err = run_cli(
        capsys, "boundary", "--samples-dir", tmp_path / "s", "--attr", "attr0", "--count", 8, "--out", tmp_path / "b"
    )
    assert code == 0, err
    normal = np.load(tmp_path / "b" / "attr0.npy")
    np.testing.assert_allclose(normal[0], train_boundary(chunk["w"], chunk["scores"][:, 0], count=8).normal, atol=1e-6)
    code, out, err = run_cli(
        capsys, "als", "--model", T16, "--classifier", clf, "--trust-code", "--pairs", 2, "--steps", 2, "--batch", 3
    )
    assert code == 0 and "mean ALS (paper, 2 pairs, 2 steps, w)" in out, err
    code, out, err = run_cli(capsys, "ppl", "--model", T16, "--samples", 4, "--random-backbone", "--batch", 4)
    assert code == 0 and "PPL (w, full, 4 pairs)" in out, err


@pytest.mark.slow
def test_cli_project_then_edit_the_projected_codes(G, tmp_path, capsys):
    """`project` on a StyleGAN3 pickle (no noise maps to optimise), then `edit --latents` of its codes."""
    from PIL import Image

    target = to_uint8(LatentCodes.from_seeds(G, [9]).render(G))[0]
    Image.fromarray(target).save(tmp_path / "t.png")
    code, out, err = run_cli(
        capsys, "project", tmp_path / "t.png", "--model", T16, "--steps", 3, "--random-backbone", "--space", "w+",
        "--out", tmp_path / "p",
    )  # fmt: skip
    assert code == 0, err
    codes = LatentCodes.load_for(tmp_path / "p" / "latents.npz", G)
    assert codes.space == "w+" and codes.data.shape == (1, 16, 16) and codes.noise is None
    np.save(tmp_path / "dir.npy", unit(G.w_dim, 4)[None])
    code, out, err = run_cli(
        capsys, "edit", "--model", T16, "--latents", tmp_path / "p" / "latents.npz", "--boundary", tmp_path / "dir.npy",
        "--alpha", 1, "--out", tmp_path / "e",
    )  # fmt: skip
    assert code == 0, err
    edited = np.load(tmp_path / "e" / "latents.npz")["edited_codes"]
    np.testing.assert_allclose(edited[1] - edited[0], np.tile(unit(G.w_dim, 4), (16, 1)), atol=1e-5)
