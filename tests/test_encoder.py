"""GH-Feat's hierarchical encoder (latentlab.inversion.encoder) and `latentlab encode` / `latentlab features`."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_tiny_generator, run_cli
from latentlab.errors import CheckpointError, ConfigError
from latentlab.inversion.encoder import (
    HierarchicalEncoder,
    check_encoder_for,
    const_noise,
    encode,
    level_features,
    level_split,
    load_encoder,
    reconstruction_metrics,
    save_encoder,
    stage_widths,
    style_levels,
    write_features,
)
from latentlab.models.identity import model_hash
from latentlab.models.noise import noise_override

SMALL = dict(depth=10, width=4, fpn_channels=8)


def small_encoder(G, seed=0, **kw):
    torch.manual_seed(seed)
    enc = HierarchicalEncoder.for_generator(G, w_avg_samples=500, **{**SMALL, **kw})
    with torch.no_grad():  # trained-looking heads: the zero init would hide the routing
        for head in enc.heads:
            head.weight.normal_(0, 0.05)
            head.bias.normal_(0, 0.05)
    return enc.eval()


def fake_layers(n=6, dim=4):
    """Style dims and levels of an imaginary generator (for the architecture alone)."""
    dims = [(f"l{i}", dim) for i in range(n)]
    split = level_split(n)
    return dims, {lv: [f"l{i}" for i in idx] for lv, idx in split.items()}


# ---- levels ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "num_ws,sizes",
    [(14, (4, 4, 6)), (18, (5, 5, 8)), (10, (3, 3, 4)), (6, (2, 1, 3)), (3, (1, 1, 1))],
)
def test_level_split_follows_ghfeat_proportions(num_ws, sizes):
    # by hand: boundaries floor(n*4/14 + 1/2) and floor(n*8/14 + 1/2); 14 -> 4, 8; 18 -> 5, 10; 10 -> 3, 6; 6 -> 2, 3
    split = level_split(num_ws)
    assert tuple(len(split[k]) for k in ("coarse", "middle", "fine")) == sizes
    assert split["coarse"] + split["middle"] + split["fine"] == list(range(num_ws))


def test_level_split_refuses_too_few_layers():
    with pytest.raises(ConfigError, match="at least 3 ws layers"):
        level_split(2)


def test_style_levels_follow_the_ws_index_of_each_layer():
    G = make_tiny_generator()  # 16 px: ws 0..5; S layers b4.conv1(0) b4.torgb(1) b8.conv0(1) b8.conv1(2) ...
    assert style_levels(G) == {
        "coarse": ["b4.conv1", "b4.torgb", "b8.conv0"],  # ws 0, 1
        "middle": ["b8.conv1"],  # ws 2
        "fine": ["b8.torgb", "b16.conv0", "b16.conv1", "b16.torgb"],  # ws 3, 4, 5
    }


# ---- architecture ------------------------------------------------------------------------------
def test_stage_resolutions_and_widths():
    dims, levels = fake_layers()
    enc = HierarchicalEncoder(64, 3, dims, levels, depth=18, width=8, fpn_channels=8, stem_down=1).eval()
    sizes = []
    hooks = [s.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:]))) for s in enc.stages]
    enc(torch.zeros(2, 3, 64, 64))
    for h in hooks:
        h.remove()
    # stem_down 1 at 64 px: R2 64, then halving: R6 at 4x4; BasicBlock widths 8, 16, 32, 64 and R6 as R5
    assert sizes == [(8, 64, 64), (16, 32, 32), (32, 16, 16), (64, 8, 8), (64, 4, 4)]
    assert [len(s) for s in enc.stages] == [2, 2, 2, 2, 1]


def test_resnet50_configuration_matches_torchvision_resnet50():
    """depth 50: Bottleneck stages of 3, 4, 6, 3 units, 256..2048 channels: the stem and R2..R5 hold exactly
    the parameters of torchvision's ResNet-50 trunk (an independent implementation)."""
    import torchvision

    dims, levels = fake_layers(3, 2)
    with torch.device("meta"):  # shapes only: no time spent drawing 30 M weights
        enc = HierarchicalEncoder(256, 3, dims, levels, depth=50, width=64, fpn_channels=8)
        ref = torchvision.models.resnet50(weights=None)
    assert stage_widths(50, 64) == [256, 512, 1024, 2048, 2048]
    assert [len(s) for s in enc.stages] == [3, 4, 6, 3, 1]
    count = lambda mods: sum(p.numel() for m in mods for p in m.parameters())  # noqa: E731
    assert count([enc.stem, *enc.stages[:4]]) == count(
        [ref.conv1, ref.bn1, ref.layer1, ref.layer2, ref.layer3, ref.layer4]
    )
    assert type(enc.stages[0][0]).__name__ == "Bottleneck"


def test_untrained_encoder_predicts_y_avg_the_styles_of_w_avg():
    G = make_tiny_generator()
    torch.manual_seed(0)
    enc = HierarchicalEncoder.for_generator(G, w_avg_samples=500, **SMALL)
    z = torch.from_numpy(np.random.RandomState(123).randn(500, G.z_dim)).float()  # the projector's w_avg
    with torch.no_grad():
        w_avg = G.mapping(z, None)[:, 0].double().mean(0).float()
        expected = G.synthesis.pack_styles(G.synthesis.compute_styles(w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)))
    assert torch.allclose(enc.y_avg, expected[0], atol=1e-6)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(enc.eval()(x), enc.y_avg.expand(3, -1))  # zero-initialised heads
        enc = small_encoder(G)
        assert not torch.allclose(enc(x), enc.y_avg.expand(3, -1))
        for head in enc.heads:  # delta weights zero again: y = y_avg whatever the backbone
            head.weight.zero_()
            head.bias.zero_()
        assert torch.equal(enc(x), enc.y_avg.expand(3, -1))


def _codes_by_level(enc, x):
    with torch.no_grad():
        return enc.level_codes(enc(x))


@pytest.mark.parametrize(
    "module,changed",
    [
        ("align.0", {"fine"}),  # W_4: only R4's branch
        ("align.1", {"middle"}),  # W_5: only R5's branch
        ("align.2", {"coarse", "middle", "fine"}),  # W_6 R_6 is added to every branch
        ("lateral.0", {"fine"}),  # R4's lateral conv: the top-down path flows R6 -> R5 -> R4
        ("lateral.1", {"middle", "fine"}),
        ("smooth.2", {"coarse", "middle", "fine"}),
        ("heads.0", {"coarse"}),  # b4.conv1's head
    ],
)
def test_each_branch_feeds_its_level(module, changed):
    G = make_tiny_generator()
    enc = small_encoder(G)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    before = _codes_by_level(enc, x)
    with torch.no_grad():
        for p in enc.get_submodule(module).parameters():
            p.add_(torch.randn_like(p) * 0.5)
    after = _codes_by_level(enc, x)
    assert {lv for lv in before if not torch.equal(before[lv], after[lv])} == changed


def test_coarse_codes_are_the_heads_of_the_aligned_r6_features():
    """An independent recomputation of the coarse codes: y_avg + W (W_6 R_6 pooled to 4x4) + b."""
    G = make_tiny_generator()
    enc = small_encoder(G)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        h = enc.stem(x)
        feats = []
        for stage in enc.stages:
            h = stage(h)
            feats.append(h)
        r6 = enc.smooth[2](enc.lateral[2](feats[4]))
        f = torch.nn.functional.adaptive_avg_pool2d(enc.align[2](r6), 4).flatten(1)
        names = enc.levels["coarse"]
        heads = [enc.heads[i] for i in range(len(names))]
        expected = torch.cat([hd(f) for hd in heads], 1) + enc.y_avg[enc.level_slices()["coarse"]]
        assert torch.allclose(enc.level_codes(enc(x))["coarse"], expected, atol=1e-6)


def test_bad_shapes_and_arguments_are_refused():
    G = make_tiny_generator()
    enc = small_encoder(G)
    with pytest.raises(ConfigError, match=r"images \[N, 3, 16, 16\]"):
        enc(torch.zeros(1, 3, 32, 32))
    dims, levels = fake_layers()
    with pytest.raises(ConfigError, match="depth must be one of"):
        HierarchicalEncoder(16, 3, dims, levels, depth=12)
    with pytest.raises(ConfigError, match="every S layer once"):
        HierarchicalEncoder(16, 3, dims, {**levels, "fine": levels["fine"][:-1]})
    with pytest.raises(ConfigError, match="power of two"):
        HierarchicalEncoder(48, 3, dims, levels)


# ---- files -------------------------------------------------------------------------------------
def test_save_load_round_trip_and_refusal_of_another_model(tmp_path):
    G = make_tiny_generator()
    enc = small_encoder(G)
    path = str(tmp_path / "enc.safetensors")
    save_encoder(enc, path, info={"steps": 7})
    back = load_encoder(path)
    assert back.init_kwargs == enc.init_kwargs and back.info == {"steps": 7} and not back.training
    assert all(torch.equal(a, b) for a, b in zip(enc.state_dict().values(), back.state_dict().values()))
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(enc(x), back(x))
    assert back.model_id == model_hash(G)
    check_encoder_for(back, G)
    with pytest.raises(ConfigError, match="belongs to another model"):
        check_encoder_for(back, make_tiny_generator(seed=1))
    from safetensors.torch import save_file

    other = str(tmp_path / "other.safetensors")
    save_file({"x": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a latentlab encoder"):
        load_encoder(other)
    with pytest.raises(ConfigError, match="missing.safetensors"):
        load_encoder(str(tmp_path / "missing.safetensors"))


def test_encode_gives_s_codes_of_the_model_that_render():
    G = make_tiny_generator()
    enc = small_encoder(G)
    imgs = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    codes = encode(G, enc, imgs, batch_size=2, names=["a", "b", "c"])
    assert codes.space == "s" and codes.model_id == model_hash(G) and codes.meta["targets"] == ["a", "b", "c"]
    with torch.no_grad():
        assert torch.allclose(codes.data, enc(imgs.float() / 127.5 - 1), atol=1e-6)  # batches of 2 = all at once
    assert codes.render(G).shape == (3, 3, 16, 16)
    with pytest.raises(ConfigError, match="another model"):
        encode(make_tiny_generator(seed=1), enc, imgs)


def test_level_features_and_their_file(tmp_path):
    G = make_tiny_generator()
    enc = small_encoder(G)
    imgs = torch.rand(3, 3, 16, 16) * 2 - 1
    feats = level_features(enc, imgs, batch_size=2)
    dims = G.synthesis.style_dims
    with torch.no_grad():
        y = enc(imgs)
    start = 0
    for level in ("coarse", "middle", "fine"):
        d = sum(dims[n] for n in style_levels(G)[level])
        assert feats[level].shape == (3, d) and feats[level].dtype == np.float32
        np.testing.assert_allclose(feats[level], y[:, start : start + d].numpy(), atol=1e-6)
        start += d
    path = str(tmp_path / "f.npz")
    write_features(enc, imgs, ["x", "y", "z"], path, batch_size=2)
    with np.load(path) as f:
        assert set(f.files) == {"coarse", "middle", "fine", "names", "model_id", "levels"}
        assert f["names"].tolist() == ["x", "y", "z"] and str(f["model_id"]) == model_hash(G)
        assert json.loads(str(f["levels"])) == style_levels(G)
        np.testing.assert_array_equal(f["fine"], feats["fine"])


def test_reconstruction_metrics_hand_values():
    target = torch.zeros(2, 3, 8, 8)  # 0.5 on [0, 1]
    images = torch.zeros(2, 3, 8, 8)
    images[1] += 0.2  # 0.6 on [0, 1]: mse 0.01, psnr 20 dB
    m = reconstruction_metrics(images, target, distance=lambda a, b: (a - b).abs().flatten(1).mean(1))
    np.testing.assert_allclose(m["mse"], [0.0, 0.01], atol=1e-12)
    np.testing.assert_allclose(m["psnr"], [120.0, 20.0], atol=1e-9)  # mse clamped at 1e-12
    np.testing.assert_allclose(m["distance"], [0.0, 0.2 * 127.5], atol=1e-4)  # on [0, 255] images
    assert m["ssim"][0] == pytest.approx(1.0) and m["ssim"][1] < 1.0
    u8 = torch.full((2, 3, 8, 8), 128, dtype=torch.uint8)  # uint8 targets are read as [0, 255]
    assert reconstruction_metrics(images, u8)["mse"][0] == pytest.approx((0.5 - 128 / 255) ** 2, rel=1e-4)


def test_const_noise_renders_as_noise_mode_const(tiny_generator):
    G = tiny_generator
    ws = G.mapping(torch.randn(2, G.z_dim), None)
    with torch.no_grad():
        ref = G.synthesis(ws, noise_mode="const")
        noise = const_noise(G, 2)
        assert all(n.shape[0] == 2 for n in noise)
        with noise_override(G.synthesis, [torch.randn_like(n) for n in noise]):
            assert not torch.allclose(G.synthesis(ws, noise_mode="const"), ref)
        with noise_override(G.synthesis, noise):
            assert torch.equal(G.synthesis(ws, noise_mode="const"), ref)


# ---- commands ----------------------------------------------------------------------------------
@pytest.fixture
def cheap_distance(monkeypatch):
    """A pixel distance instead of LPIPS in the encoder's metrics and the projector (building LPIPS' VGG
    takes seconds; the commands' plumbing is what these tests check)."""

    def make(pretrained_backbone=True):
        return lambda a, b: (a - b).square().flatten(1).mean(1)

    monkeypatch.setattr("latentlab.inversion.encoder.default_distance", make)
    monkeypatch.setattr("latentlab.inversion.projector.default_distance", make)


@pytest.fixture(scope="module")
def toy_setup(tmp_path_factory):
    """The embedded model, a small (untrained-head) encoder of it saved to a file, and three 64 px PNGs."""
    from latentlab import load_generator

    folder = tmp_path_factory.mktemp("enc")
    G = load_generator("toyfaces")
    enc = small_encoder(G)
    path = str(folder / "encoder.safetensors")
    save_encoder(enc, path)
    rng = np.random.RandomState(0)
    images = []
    for name in ("a", "b", "c"):
        p = folder / f"{name}.png"
        Image.fromarray(rng.randint(0, 256, (64, 64, 3), dtype=np.uint8)).save(p)
        images.append(str(p))
    return G, enc, path, images, folder


def test_encode_command_writes_the_projector_files(capsys, tmp_path, toy_setup, cheap_distance):
    from latentlab.latents.codes import LatentCodes

    G, enc, path, images, _ = toy_setup
    out = tmp_path / "e"
    code, stdout, err = run_cli(capsys, "encode", *images, "--encoder", path, "--random-backbone", "--out", out)
    assert code == 0, err
    assert "encoded 3 image(s)" in stdout
    assert sorted(os.listdir(out)) == sorted(
        ["latents.npz", "metrics.csv", "project.json", "recon_a.png", "recon_b.png", "recon_c.png"]
    )
    codes = LatentCodes.load_for(out / "latents.npz", G)
    assert codes.space == "s" and codes.meta["targets"] == ["a", "b", "c"]
    with torch.no_grad():
        x = torch.from_numpy(np.stack([np.asarray(Image.open(p)) for p in images])).permute(0, 3, 1, 2)
        assert torch.allclose(codes.data, enc(x.float() / 127.5 - 1), atol=1e-5)
    with np.load(out / "latents.npz") as f:  # the generator's own constant noise, per image
        noise = [f[f"noise{i}"] for i in range(len(const_noise(G, 1)))]
    for n, ref in zip(noise, const_noise(G, 3)):
        np.testing.assert_array_equal(n, ref.numpy())
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0] == "image,distance,mse,psnr,ssim" and len(rows) == 4


def test_encode_refine_starts_from_the_encoder_codes(capsys, tmp_path, toy_setup, cheap_distance):
    from latentlab.latents.codes import LatentCodes

    G, enc, path, images, _ = toy_setup
    out = tmp_path / "r"
    code, stdout, err = run_cli(
        capsys, "encode", images[0], "--encoder", path, "--refine", "2", "--random-backbone", "--out", out
    )
    assert code == 0, err
    assert "+2 refinement steps" in stdout
    codes = LatentCodes.load_for(out / "latents.npz", G)
    with torch.no_grad():
        start = enc(torch.from_numpy(np.array(Image.open(images[0]))).permute(2, 0, 1)[None].float() / 127.5 - 1)
    assert codes.space == "s" and codes.data.shape == start.shape
    assert not torch.equal(codes.data, start) and (codes.data - start).abs().max() < 1.0  # moved, not restarted
    assert json.loads((out / "project.json").read_text())["refine"] == 2


def test_features_command(capsys, tmp_path, toy_setup):
    G, enc, path, images, _ = toy_setup
    code, stdout, err = run_cli(capsys, "features", *images, "--encoder", path, "--out", tmp_path / "f")
    assert code == 0, err
    with np.load(tmp_path / "f" / "features.npz") as f:
        assert f["names"].tolist() == ["a", "b", "c"] and str(f["model_id"]) == model_hash(G)
        assert json.loads(str(f["levels"])) == enc.levels
        assert f["coarse"].shape[0] == 3
    assert "coarse" in stdout and "features.npz" in stdout


def test_bad_inputs_get_one_line_and_exit_1(capsys, tmp_path, toy_setup):
    G, enc, path, images, folder = toy_setup
    small = folder / "small.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(small)
    grey = folder / "grey.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(grey)
    other = str(tmp_path / "other.safetensors")
    save_encoder(small_encoder(make_tiny_generator()), other)
    enc_args = ["--model", "toyfaces", "--random-backbone"]
    cases = [
        (["encode", str(small), "--encoder", path, *enc_args], "32x32"),
        (["encode", str(grey), "--encoder", path, *enc_args], "greyscale"),
        (["encode", images[0], "--encoder", other, *enc_args], "another model"),
        (["encode", images[0], "--encoder", str(tmp_path / "nope.safetensors"), *enc_args], "nope.safetensors"),
        (["features", str(small), "--encoder", path], "32x32"),
        (["features", images[0], "--encoder", str(small)], "small.png"),
    ]
    for i, (args, message) in enumerate(cases):
        code, _, err = run_cli(capsys, *args, "--out", tmp_path / f"o{i}")
        assert code == 1, (args, err)
        assert err.startswith("latentlab: error:") and message in err and len(err.strip().splitlines()) == 1, err
