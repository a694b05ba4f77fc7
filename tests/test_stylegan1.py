"""StyleGAN v1: official fixture outputs, numerics from SG1_FORMAT.md checked by hand, InterFaceGAN edits."""

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import latentlab
from conftest import FIXTURES, assert_matches_official
from latentlab.checkpoints.tags import FORMAT_SG1_TF
from latentlab.models.stylegan1 import StyleGAN1Discriminator, StyleGAN1Generator, StyleGAN1Layer

SHARED_BOUNDARIES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "interfacegan", "boundaries")


@pytest.fixture(scope="module")
def sg1():
    ckpt = latentlab.load_checkpoint(os.path.join(FIXTURES, "sg1_32.pkl"))
    return ckpt, dict(np.load(os.path.join(FIXTURES, "sg1_32.expected.npz")))


def test_fixture_outputs(sg1):
    """Every array of sg1_32.json, with the official calls behind it."""
    ckpt, e = sg1
    assert ckpt.format == FORMAT_SG1_TF
    G, D = ckpt.generator, ckpt.D
    z, c = torch.from_numpy(e["z"]), torch.from_numpy(e["labels"])
    with torch.no_grad():
        assert_matches_official(G.mapping(z, c), e["ws"], "ws")
        assert_matches_official(G(z, c, truncation_psi=1.0), e["img_const"], "img_const")
        assert_matches_official(G(z, c, truncation_psi=0.7, truncation_cutoff=8), e["img_trunc"], "img_trunc")
        assert_matches_official(G(z, c, truncation_psi=0.5, truncation_cutoff=4), e["img_trunc_c4"], "img_trunc_c4")
        assert_matches_official(G.synthesis(torch.from_numpy(e["wplus"])), e["img_wplus"], "img_wplus")
        assert_matches_official(D(torch.from_numpy(e["img_const"]), c), e["d_logits"], "d_logits")
        both = torch.from_numpy(np.concatenate([e["img_const"], e["img_wplus"]]))
        assert_matches_official(D(both, torch.cat([c, c])), e["d_logits_8"], "d_logits_8")


def test_fixture_styles_round_trip_and_lod_layers(sg1):
    ckpt, e = sg1
    G = ckpt.generator
    ws = torch.from_numpy(e["ws"])
    with torch.no_grad():
        styles = G.synthesis.compute_styles(ws)
        assert list(styles) == [f"b{r}.conv{k}" for r in (4, 8, 16, 32) for k in (0, 1)]
        assert styles["b32.conv1"].shape == (4, 2 * 16)  # scale and shift per channel
        assert_matches_official(G.synthesis(styles=G.synthesis.pack_styles(styles)), e["img_const"], "img_from_styles")
    # the progressive-growing ToRGB/FromRGB of lod > 0 are listed, not silently dropped
    ignored = ckpt.extras["ignored_tf_variables"]
    assert "Gs:synthesis/ToRGB_lod1/weight" in ignored and "D:FromRGB_lod3/bias" in ignored
    assert ckpt.extras["truncation_psi"] == 0.7 and ckpt.extras["truncation_cutoff"] == 8


def test_converted_v1_checkpoint_round_trips(sg1, tmp_path):
    ckpt, e = sg1
    out = tmp_path / "sg1.safetensors"
    latentlab.convert(ckpt.path, out)
    back = latentlab.load_checkpoint(out)
    assert type(back.generator) is StyleGAN1Generator and back.extras["source_format"] == FORMAT_SG1_TF
    with torch.no_grad():
        assert_matches_official(back.generator.synthesis(torch.from_numpy(e["ws"])), e["img_const"], "converted")


def _layer_pair(fused_scale_a, fused_scale_b, res):
    torch.manual_seed(0)
    a = StyleGAN1Layer(4, 5, 8, res, kind="up", fused_scale=fused_scale_a).eval()
    b = StyleGAN1Layer(4, 5, 8, res, kind="up", fused_scale=fused_scale_b).eval()
    b.load_state_dict(a.state_dict())
    return a, b


def test_fused_upscale_equals_nearest_upsampling_with_flipped_kernel():
    """SG1_FORMAT.md: the fused layer (>= 128 px) == nearest upsampling + 3x3 conv with the kernel flipped in both axes."""
    fused, plain = _layer_pair("auto", "auto", 128)
    assert fused.fused and not StyleGAN1Layer(4, 5, 8, 64, kind="up").fused
    plain.fused = False
    with torch.no_grad():
        plain.conv.weight.copy_(fused.conv.weight.flip([2, 3]))
        x, w = torch.randn(2, 4, 64, 64), torch.randn(2, 8)
        np.testing.assert_allclose(fused(x, w).numpy(), plain(x, w).numpy(), atol=1e-4)
        # and it is not the unflipped kernel
        plain.conv.weight.copy_(fused.conv.weight)
        assert (fused(x, w) - plain(x, w)).abs().max() > 1e-2


def test_fused_downscale_equals_conv_then_average():
    torch.manual_seed(0)
    D1 = StyleGAN1Discriminator(num_channels=3, resolution=128, fmap_base=64, fmap_max=8, fused_scale="auto").eval()
    D2 = StyleGAN1Discriminator(num_channels=3, resolution=128, fmap_base=64, fmap_max=8, fused_scale=False).eval()
    D2.load_state_dict(D1.state_dict())
    assert D1.b128.fused and not D1.b64.fused and not D2.b128.fused
    img = torch.randn(4, 3, 128, 128)
    with torch.no_grad():
        np.testing.assert_allclose(D1(img).numpy(), D2(img).numpy(), rtol=1e-4, atol=1e-5)


def test_layer_epilogue_by_hand():
    """noise -> bias -> lrelu -> instance norm -> x * (scale + 1) + shift, with runtime-scaled weights."""
    torch.manual_seed(1)
    layer = StyleGAN1Layer(3, 3, 6, 4, kind="conv").eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    x, w = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 6, dtype=torch.float64)
    layer = layer.double()
    k = layer.conv.weight * np.sqrt(2) / np.sqrt(3 * 9)
    y = F.conv2d(x, k, padding=1) + layer.noise_const[None, None] * layer.noise_strength[None, :, None, None]
    y = y + layer.bias[None, :, None, None]
    y = torch.where(y >= 0, y, 0.2 * y)
    y = y - y.mean(dim=[2, 3], keepdim=True)
    y = y / torch.sqrt((y**2).mean(dim=[2, 3], keepdim=True) + 1e-8)
    s = w @ (layer.affine.weight / np.sqrt(6)).t() + layer.affine.bias
    y = y * (s[:, :3, None, None] + 1) + s[:, 3:, None, None]
    with torch.no_grad():
        np.testing.assert_allclose(layer(x, w).numpy(), y.numpy(), rtol=1e-10, atol=1e-10)


def test_conditional_v1_mapping_and_projection_discriminator():
    torch.manual_seed(0)
    G = StyleGAN1Generator(
        latent_size=6,
        label_size=3,
        dlatent_size=5,
        resolution=8,
        mapping_layers=1,
        mapping_fmaps=5,
        fmap_base=32,
        fmap_max=4,
    ).eval()
    z, c = torch.randn(2, 6, dtype=torch.float64), torch.eye(3, dtype=torch.float64)[:2]
    G = G.double()
    x = torch.cat([z, c @ G.mapping.embed.t()], dim=1)  # labels @ LabelConcat, z first
    x = x / torch.sqrt((x**2).mean(dim=1, keepdim=True) + 1e-8)
    fc = G.mapping.fc0
    y = x @ (fc.weight * np.sqrt(2) / np.sqrt(12) * 0.01).t() + fc.bias * 0.01
    y = torch.where(y >= 0, y, 0.2 * y)
    with torch.no_grad():
        np.testing.assert_allclose(G.mapping(z, c)[:, 0].numpy(), y.numpy(), rtol=1e-10)
        assert G(z, c).shape == (2, 3, 8, 8)
    D = StyleGAN1Discriminator(num_channels=3, resolution=8, label_size=3, fmap_base=32, fmap_max=4).eval()
    img = torch.randn(4, 3, 8, 8)
    labels = torch.eye(3)[[0, 1, 2, 0]]
    with torch.no_grad():
        per_label = torch.stack([D(img, torch.eye(3)[[k] * 4]) for k in range(3)], dim=1)[..., 0]
        np.testing.assert_allclose(D(img, labels)[:, 0].numpy(), (per_label * labels).sum(1).numpy(), rtol=1e-5)


def test_interfacegan_boundary_edits_a_v1_network_of_width_512():
    path = os.path.join(SHARED_BOUNDARIES, "stylegan_ffhq_smile_w_boundary.npy")
    zpath = os.path.join(SHARED_BOUNDARIES, "stylegan_ffhq_smile_boundary.npy")
    if not os.path.exists(path):
        pytest.skip("official InterFaceGAN boundaries (../shared/data/interfacegan) not available")
    n = np.load(path)
    assert n.shape == (1, 512) and abs(np.linalg.norm(n) - 1) < 1e-6
    torch.manual_seed(0)
    G = StyleGAN1Generator(
        latent_size=512, dlatent_size=512, resolution=16, mapping_layers=2, fmap_base=64, fmap_max=16
    ).eval()
    z = latentlab.z_from_seeds([0, 1], 512)
    direction = torch.from_numpy(n[0]).float()
    with torch.no_grad():
        ws = G.mapping(z)
        edited = ws + 2.0 * direction  # W-space edit, broadcast to every layer
        assert torch.allclose(edited - ws, 2.0 * direction.expand_as(ws), atol=1e-6)
        a, b = G.synthesis(ws), G.synthesis(edited)
        assert torch.equal(G.synthesis(ws + 0 * direction), a) and (a - b).abs().max() > 1e-3
        zn = torch.from_numpy(np.load(zpath)[0]).float()  # Z-space edit: move z, then map
        assert (G(z + 2.0 * zn) - G(z)).abs().max() > 1e-3


def test_unsupported_v1_kwargs_are_refused(tmp_path):
    from latentlab.checkpoints.tf_stylegan1 import _kwargs

    with pytest.raises(latentlab.CheckpointError, match="const_input_layer"):
        _kwargs("x.pkl", "Gs", {"const_input_layer": False}, {"resolution": 32}, {"const_input_layer": True}, {})
    unused = {}
    kw = _kwargs("x.pkl", "Gs", {"resolution": 64, "foo": 1}, {"resolution": 32}, {}, unused)
    assert kw == {"resolution": 64} and unused == {"Gs": {"foo": 1}}
