"""Hierarchical Semantic Regulariser: extractors, predictors, loss, gradients, schedule."""

import argparse
import json

import pytest
import torch
from torch import nn

from latentlab import CheckpointError, Generator
from latentlab.attributes.preprocess import IMAGENET_MEAN, IMAGENET_STD
from latentlab.train.extractors import (
    FeatureExtractor,
    TorchvisionExtractor,
    make_extractor,
    resolve_extractor_name,
)
from latentlab.train.hsr import (
    HSR,
    HSRSchedule,
    HSRTerm,
    Predictor,
    capture_block_features,
    default_gen_resolutions,
    resize_to_grid,
)


def tiny_G():
    torch.manual_seed(0)
    return Generator(
        z_dim=16,
        c_dim=0,
        w_dim=16,
        img_resolution=32,
        img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=512, channel_max=32),
    )


def tiny_vit(seed=0, reg_tokens=0):
    pytest.importorskip("timm")
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(seed)
    return VisionTransformer(
        img_size=32, patch_size=8, embed_dim=16, depth=4, num_heads=2, num_classes=0, reg_tokens=reg_tokens
    )


def tiny_vit_extractor(seed=0, reg_tokens=0, **kw):
    from latentlab.train.extractors import ViTExtractor

    return ViTExtractor(tiny_vit(seed, reg_tokens), **kw)


class FixedExtractor(FeatureExtractor):
    """Returns the same known maps for every image (and counts its calls)."""

    def __init__(self, maps):
        super().__init__()
        self.maps = [m.clone() for m in maps]
        self.calls = 0
        from latentlab.attributes.preprocess import Preprocess

        self._setup(
            nn.Identity(),
            list(range(len(maps))),
            [f"f{i}" for i in range(len(maps))],
            (8, 8),
            Preprocess(),
            dict(name=None, weights=None, layers=list(range(len(maps))), input_size=[8, 8]),
        )
        self.channels = [m.shape[1] for m in maps]

    def extract(self, x):
        self.calls += 1
        return [m.expand(x.shape[0], -1, -1, -1) for m in self.maps]


def identity_predictor(q):
    with torch.no_grad():
        c = q.in_channels
        assert q.hidden == c == q.out_channels
        q[0].weight.copy_(torch.eye(c).reshape(c, c, 1, 1))
        q[0].bias.zero_()
        q[2].weight.copy_(torch.eye(c).reshape(c, c, 1, 1))
        q[2].bias.zero_()


# ------------------------------------------------------------------------------------------------
# Loss value and reduction


def test_loss_equals_hand_computation():
    torch.manual_seed(1)
    N, C = 3, 2
    t0 = torch.randn(1, C, 4, 4)  # pooled 4 -> 2 by the HSR
    t1 = torch.randn(1, C, 2, 2)
    ext = FixedExtractor([t0, t1])
    hsr = HSR(ext, {4: C, 2: C}, [(4, 0), (2, 1)], hidden=C, grid=2)
    assert hsr.keys == ["b4_f0", "b2_f1"]
    for q in hsr.predictors.values():
        identity_predictor(q)
    g4 = torch.randn(N, C, 4, 4)  # both signs: exercises LeakyReLU's 0.2 slope
    g2 = torch.randn(N, C, 2, 2)
    images = torch.rand(N, 3, 8, 8) * 2 - 1
    loss, parts = hsr({4: g4, 2: g2}, images)

    def lrelu(x):
        return torch.where(x >= 0, x, 0.2 * x)

    d = torch.float64
    pooled = g4.to(d).reshape(N, C, 2, 2, 2, 2).mean(dim=(3, 5))  # 2x2 cell means
    t0p = t0.to(d).reshape(1, C, 2, 2, 2, 2).mean(dim=(3, 5))
    e0 = ((lrelu(pooled) - t0p) ** 2).sum() / (N * C * 2 * 2)  # mean over every element
    e1 = ((lrelu(g2.to(d)) - t1.to(d)) ** 2).sum() / (N * C * 2 * 2)
    assert float(parts["b4_f0"]) == pytest.approx(float(e0), rel=1e-5)
    assert float(parts["b2_f1"]) == pytest.approx(float(e1), rel=1e-5)
    assert float(loss.detach()) == pytest.approx(float(e0 + e1), rel=1e-5)  # pairs are summed
    assert loss.dtype == torch.float32 and loss.ndim == 0
    assert ext.calls == 1  # one extractor pass for all pairs
    assert not parts["b4_f0"].requires_grad

    # float16 generator features (fp16 blocks on CUDA) are cast to float32
    loss16, _ = hsr({4: g4.half(), 2: g2.half()}, images.half())
    assert loss16.dtype == torch.float32
    assert float(loss16.detach()) == pytest.approx(float(loss.detach()), rel=1e-2)


def test_resize_to_grid():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(resize_to_grid(x, (4, 4)), x)
    assert torch.allclose(resize_to_grid(x, (2, 2)), x.reshape(1, 1, 2, 2, 2, 2).mean(dim=(3, 5)))
    up = resize_to_grid(x, (14, 14))  # enlarging: bilinear
    assert up.shape == (1, 1, 14, 14)
    assert torch.allclose(up, torch.nn.functional.interpolate(x, size=(14, 14), mode="bilinear", align_corners=False))
    assert resize_to_grid(torch.randn(2, 3, 64, 64), (14, 14)).shape == (2, 3, 14, 14)


def test_predictor_shape():
    q = Predictor(5, 7, hidden=11)
    assert isinstance(q[1], nn.LeakyReLU) and q[1].negative_slope == 0.2
    assert q[0].kernel_size == (1, 1) and q[2].kernel_size == (1, 1)
    assert q(torch.randn(2, 5, 3, 3)).shape == (2, 7, 3, 3)


# ------------------------------------------------------------------------------------------------
# Gradients


def test_gradients_reach_predictors_and_generator_not_extractor():
    G = tiny_G().train()
    ext = tiny_vit_extractor()
    hsr = HSR.for_generator(G, extractor=ext, gen_resolutions=default_gen_resolutions(G), hidden=8, grid=4)
    hsr.train().requires_grad_(True)  # even so, F stays in eval mode and gets no gradient
    assert not ext.training and not any(m.training for m in ext.modules())
    before = {k: v.clone() for k, v in ext.state_dict().items()}
    z = torch.randn(2, 16)
    with capture_block_features(G, hsr.resolutions) as feats:
        img = G(z)
    loss, parts = hsr(feats, img)
    assert set(parts) == {"b32_l2", "b16_l3", "b8_l4"}
    loss.backward()

    for key, q in hsr.predictors.items():
        for p in q.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, key
    syn = G.synthesis
    for p in (syn.b4.const, syn.b8.conv1.weight, syn.b16.conv0.weight, syn.b32.conv1.weight, G.mapping.fc0.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    # ToRGB layers only shape the image; the image reaches F under no_grad, so they get nothing
    for res in (4, 8, 16, 32):
        assert getattr(syn, f"b{res}").torgb.weight.grad is None
    assert all(p.grad is None for p in ext.parameters())

    opt = torch.optim.Adam(list(hsr.predictors.parameters()) + list(G.parameters()), lr=0.1)
    opt.step()
    after = ext.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_image_path_carries_no_gradient():
    ext = tiny_vit_extractor()
    hsr = HSR(ext, {8: 6}, [(8, 3)], hidden=8, grid=4)
    images = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    feat = torch.randn(2, 6, 8, 8, requires_grad=True)
    loss, _ = hsr({8: feat}, images)
    loss.backward()
    assert images.grad is None
    assert feat.grad is not None and feat.grad.abs().sum() > 0
    assert all(p.grad is None for p in ext.parameters())


# ------------------------------------------------------------------------------------------------
# Generator features


def test_capture_block_features_shapes_and_hook_removal():
    G = tiny_G()
    syn = G.synthesis
    z = torch.randn(3, 16)
    with capture_block_features(G, (32, 16, 8)) as feats:
        assert all(len(getattr(syn, f"b{r}").hook_x._forward_hooks) == 1 for r in (32, 16, 8))
        img = G(z)
    assert img.shape == (3, 3, 32, 32)
    assert sorted(feats) == [8, 16, 32]
    for r in (8, 16, 32):
        assert feats[r].shape == (3, getattr(syn, f"b{r}").out_channels, r, r)
        assert feats[r].requires_grad
    assert all(len(b.hook_x._forward_hooks) == 0 for b in syn.blocks())
    kept = feats[8]
    G(torch.randn(3, 16))  # no longer recorded
    assert feats[8] is kept

    with pytest.raises(RuntimeError):  # hooks go away on an exception too
        with capture_block_features(G.synthesis, (8,)):
            raise RuntimeError("boom")
    assert len(syn.b8.hook_x._forward_hooks) == 0

    with pytest.raises(ValueError, match="4, 8, 16, 32.*64"):
        with capture_block_features(G, (64,)):
            pass


def test_for_generator_resolutions_and_pairs():
    G = tiny_G()
    ext = tiny_vit_extractor()  # 4 blocks -> layers 1, 2, 3, 4 (the paper's 3, 6, 9, 12 for 12 blocks)
    assert ext.layers == [1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"resolutions 4, 8, 16, 32; HSR asked for 64.*\(32, 16, 8\)"):
        HSR.for_generator(G, extractor=ext)  # the paper's (64, 32, 16, 8) on a 32x32 generator
    assert default_gen_resolutions(G) == (32, 16, 8)
    hsr = HSR.for_generator(G, extractor=ext, gen_resolutions="auto", hidden=8, grid=4)
    assert hsr.pairs == [(32, 1), (16, 2), (8, 3)]  # paper's table: 32 <- 2nd layer, 16 <- 3rd, 8 <- 4th
    assert hsr.keys == ["b32_l2", "b16_l3", "b8_l4"]
    assert hsr.gen_channels == {r: getattr(G.synthesis, f"b{r}").out_channels for r in (32, 16, 8)}
    assert hsr.predictors["b32_l2"][0].in_channels == G.synthesis.b32.out_channels
    assert hsr.predictors["b32_l2"][2].out_channels == 16
    hsr2 = HSR.for_generator(G, extractor=ext, pairs=[(8, 0)], hidden=8, grid=4)
    assert hsr2.keys == ["b8_l1"]
    with pytest.raises(ValueError, match="cannot pair"):
        HSR.for_generator(G, extractor=ext, gen_resolutions=(32, 4), hidden=8)


def test_snapshot_round_trip_through_term_config():
    G = tiny_G()
    term = HSRTerm(
        HSR.for_generator(G, extractor=tiny_vit_extractor(), gen_resolutions="auto", hidden=8, grid=4),
        HSRSchedule(weight=2.0, warmup_kimg=5),
    )
    with torch.no_grad():
        for p in term.parameters():
            p.add_(0.1)
    config = json.loads(json.dumps(term.config))
    assert config["weight"] == 2.0 and config["warmup_kimg"] == 5.0 and config["hidden"] == 8
    assert term.log_keys == ["hsr_loss", "hsr_b32_l2", "hsr_b16_l3", "hsr_b8_l4"]
    state = term.state_dict()
    assert set(state) == set(term.hsr.predictors.state_dict())  # F is not part of the saved state
    restored = HSRTerm.from_config(config, extractor=tiny_vit_extractor())
    restored.load_state_dict(state)
    assert restored.weight(4.9) == 0.0 and restored.weight(5) == 2.0
    z = torch.randn(2, 16)
    with term.capture(G) as feats:
        img = G(z)
    loss_a, stats = term(feats, img)
    loss_b, _ = restored(feats, img)
    assert float(loss_a.detach()) == pytest.approx(float(loss_b.detach()), rel=1e-6)
    assert set(stats) == set(term.log_keys) and all(isinstance(v, float) for v in stats.values())
    other = HSRTerm(HSR.for_generator(G, extractor=tiny_vit_extractor(), pairs=[(8, 0)], hidden=8, grid=4))
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict(state)


def test_schedule():
    s = HSRSchedule(weight=0.5, warmup_kimg=100)
    assert s.lambda_at(0) == 0.0 and s.lambda_at(99.9) == 0.0
    assert s.lambda_at(100) == 0.5 and s(1000) == 0.5
    assert HSRSchedule(weight=3).lambda_at(0) == 3.0
    for bad in (dict(weight=-1), dict(warmup_kimg=float("nan")), dict(weight="1")):
        with pytest.raises(ValueError):
            HSRSchedule(**bad)


# ------------------------------------------------------------------------------------------------
# Extractors


def test_vit_extractor_shapes_prefix_tokens_and_preprocessing():
    model = tiny_vit(reg_tokens=2)  # CLS + 2 register tokens to drop
    from latentlab.train.extractors import ViTExtractor

    ext = ViTExtractor(model, blocks=[1, 4])
    assert ext.num_prefix_tokens == 3
    assert ext.channels == [16, 16] and ext.input_size == (32, 32) and ext.layer_names == ["l1", "l4"]
    assert all(not p.requires_grad for p in ext.parameters())
    pre = ext.preprocess
    assert pre.resize == (32, 32) and pre.resize_mode == "bilinear" and pre.input_range == (0.0, 1.0)
    assert pre.mean == IMAGENET_MEAN and pre.std == IMAGENET_STD
    ext.train()
    assert not ext.training and not model.training

    images = torch.rand(2, 3, 64, 64) * 2 - 1
    feats = ext(images)
    assert [tuple(f.shape) for f in feats] == [(2, 16, 4, 4)] * 2
    x = pre(images)
    assert torch.allclose(
        x,
        (
            (
                torch.nn.functional.interpolate(
                    (images + 1) / 2, size=(32, 32), mode="bilinear", antialias=True, align_corners=False
                )
                - torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
            )
            / torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
        ),
        atol=1e-6,
    )
    with torch.no_grad():
        tokens = model.forward_features(x)  # [N, 3 + 16, C], after the final norm
        ref = model.forward_intermediates(x, indices=[0, 3], intermediates_only=True)  # timm's own NCHW maps
    assert tokens.shape == (2, 19, 16)
    last = model.norm(feats[1].permute(0, 2, 3, 1))  # our block-4 map, normed, back to tokens
    assert torch.allclose(last.reshape(2, 16, 16), tokens[:, 3:], atol=1e-5)
    assert torch.allclose(feats[0], ref[0], atol=1e-6) and torch.allclose(feats[1], ref[1], atol=1e-6)

    with pytest.raises(ValueError, match="1..4"):
        ViTExtractor(tiny_vit(), blocks=[5])
    with pytest.raises(ValueError, match="32x32"):
        ViTExtractor(tiny_vit(), input_size=64)


def test_vit_weights_round_trip_with_dino_nesting(tmp_path):
    from safetensors.torch import save_file

    from latentlab.train.extractors import ViTExtractor

    src = tiny_vit(seed=1)
    sd = {k: v.clone() for k, v in src.state_dict().items()}
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    want = ViTExtractor(src)(images)
    head = {"head.mlp.0.weight": torch.randn(4, 16), "head.last_layer.weight_g": torch.ones(4, 1)}
    files = {
        "bare.pth": sd,
        "full.pth": {  # DINO's full checkpoint layout
            "teacher": {**{f"backbone.{k}": v for k, v in sd.items()}, **head},
            "student": {**{f"module.backbone.{k}": v + 1 for k, v in sd.items()}},
            "epoch": 100,
            "args": argparse.Namespace(arch="vit_small", patch_size=16),
        },
        "student.pth": {"student": {f"module.backbone.{k}": v for k, v in sd.items()}},
        "wrapped.pth": {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
        "bare.safetensors": sd,
    }
    for name, obj in files.items():
        path = tmp_path / name
        save_file(obj, str(path)) if name.endswith(".safetensors") else torch.save(obj, path)
        ext = ViTExtractor(tiny_vit(seed=2), weights=str(path))
        got = ext(images)
        assert all(torch.equal(a, b) for a, b in zip(got, want)), name
        assert ext.spec["weights"] == str(path)

    wrong = dict(sd)
    wrong["blocks.0.attn.qkv.weightX"] = wrong.pop("blocks.0.attn.qkv.weight")
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="blocks.0.attn.qkv.weight"):
        ViTExtractor(tiny_vit(), weights=str(tmp_path / "wrong.pth"))
    bad_shape = dict(sd, pos_embed=torch.zeros(1, 5, 16))
    torch.save(bad_shape, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match="pos_embed.*shape"):
        ViTExtractor(tiny_vit(), weights=str(tmp_path / "shape.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        ViTExtractor(tiny_vit(), weights=str(tmp_path / "junk.pth"))
    with pytest.raises(FileNotFoundError):
        ViTExtractor(tiny_vit(), weights=str(tmp_path / "absent.pth"))


def test_timm_extractor_by_module_name_matches_vit_extractor():
    from latentlab.train.extractors import TimmExtractor

    model = tiny_vit(reg_tokens=1)
    vit = tiny_vit_extractor(reg_tokens=1, blocks=[2])
    ext = TimmExtractor(model, layers=["blocks.1"], input_size=32)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    a, b = ext(images)[0], vit(images)[0]
    assert a.shape == (2, 16, 4, 4) and torch.allclose(a, b, atol=1e-6)
    assert ext.channels == [16] and ext.layer_names == ["blocks_1"]
    with pytest.raises(ValueError, match="unknown module"):
        TimmExtractor(model, layers=["blocks.9"], input_size=32)


def test_torchvision_extractor_resnet18(tmp_path):
    import torchvision

    ext = TorchvisionExtractor("resnet18", input_size=64)
    assert ext.layers == ["layer1", "layer2", "layer3", "layer4"]
    assert ext.channels == [64, 128, 256, 512]
    feats = ext(torch.rand(2, 3, 40, 40) * 2 - 1)  # resized to 64 first
    assert [tuple(f.shape) for f in feats] == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2)]
    assert ext.spec == dict(name="torchvision:resnet18", weights=None, layers=ext.layers, input_size=[64, 64], seed=0)
    ext.train()
    assert not any(m.training for m in ext.modules())

    torch.manual_seed(3)
    model = torchvision.models.resnet18(weights=None)
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "r18.pth")
    loaded = TorchvisionExtractor("resnet18", weights=str(tmp_path / "r18.pth"), layers=["layer2"], input_size=64)
    direct = TorchvisionExtractor(model, layers=["layer2"], input_size=64)
    images = torch.rand(1, 3, 64, 64) * 2 - 1
    assert torch.equal(loaded(images)[0], direct(images)[0])
    with pytest.raises(CheckpointError, match="fc.weight"):
        sd = model.state_dict()
        sd["fc.weight"] = torch.zeros(3, 512)
        torch.save(sd, tmp_path / "bad.pth")
        TorchvisionExtractor("resnet18", weights=str(tmp_path / "bad.pth"), input_size=64)
    with pytest.raises(ValueError, match="unknown graph node"):
        TorchvisionExtractor(model, layers=["layer9"], input_size=64)


def test_make_extractor_names_and_paper_default():
    assert resolve_extractor_name("dino_vits16") == ("vit", "vit_small_patch16_224.dino")
    assert resolve_extractor_name("vit_small_patch16_224.dino") == ("vit", "vit_small_patch16_224.dino")
    assert resolve_extractor_name("timm:resnet18") == ("timm", "resnet18")
    assert resolve_extractor_name("torchvision:vgg16") == ("torchvision", "vgg16")
    for bad in ("resnet18", "dino", "timm:", ""):
        with pytest.raises(ValueError, match="torchvision:<model name>"):
            make_extractor(bad)
    pytest.importorskip("timm")
    ext = make_extractor("dino_vits16", weights="none")  # the paper's architecture, randomly initialised
    assert ext.layers == [3, 6, 9, 12] and ext.layer_names == ["l3", "l6", "l9", "l12"]
    assert ext.channels == [384] * 4 and ext.input_size == (224, 224) and ext.num_prefix_tokens == 1
    assert ext.preprocess.mean == IMAGENET_MEAN and ext.preprocess.std == IMAGENET_STD
    assert ext.spec["name"] == "vit_small_patch16_224.dino" and ext.spec["weights"] is None
    with torch.no_grad():
        feats = ext(torch.zeros(1, 3, 32, 32))
    assert [tuple(f.shape) for f in feats] == [(1, 384, 14, 14)] * 4
    again = make_extractor("vit_small_patch16_224.dino", weights=None)  # seeded: same random weights
    assert torch.equal(again.net.blocks[0].attn.qkv.weight, ext.net.blocks[0].attn.qkv.weight)
