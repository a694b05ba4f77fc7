"""Behaviour of the StyleGAN2 networks, checked against hand-computed expectations."""

import numpy as np
import pytest
import torch

from latentlab import Discriminator, Generator
from latentlab.models.discriminator import MinibatchStdLayer


def make_G(res=16, arch="skip", channels=3, c_dim=0, **kw):
    torch.manual_seed(1)
    return Generator(
        z_dim=8,
        c_dim=c_dim,
        w_dim=8,
        img_resolution=res,
        img_channels=channels,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=128, channel_max=8, architecture=arch, **kw),
    ).eval()


@pytest.mark.parametrize("res,num_ws", [(4, 2), (8, 4), (16, 6), (64, 10)])
def test_num_ws_is_conv_layers_plus_one(res, num_ws):
    assert make_G(res).num_ws == num_ws


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("channels", [1, 3])
def test_architectures_render_and_differentiate(arch, channels):
    G = make_G(16, arch, channels).train()
    D = Discriminator(
        c_dim=0, img_resolution=16, img_channels=channels, architecture=arch, channel_base=128, channel_max=8
    )
    z = torch.randn(4, 8)
    img = G(z, noise_mode="random")
    assert img.shape == (4, channels, 16, 16)
    # R1-style double backward: gradient penalty on D, then backward into D's weights
    real = img.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
    g.square().sum().backward()
    assert D.b16.conv0.weight.grad.abs().sum() > 0 and D.b4.fc.weight.grad.abs().sum() > 0
    D(img).sum().backward()
    assert G.mapping.fc0.weight.grad is not None and G.synthesis.b16.conv1.weight.grad.abs().sum() > 0


def test_truncation_identity_and_center(tiny_generator):
    G = tiny_generator
    z = torch.randn(3, 16)
    with torch.no_grad():
        ws = G.mapping(z)
        assert torch.equal(G.mapping(z, truncation_psi=1), ws)
        w0 = G.mapping(z, truncation_psi=0, truncation_cutoff=2)
        assert torch.allclose(w0[:, :2], G.mapping.w_avg.expand(3, 2, -1))
        assert torch.equal(w0[:, 2:], ws[:, 2:])
        half = G.mapping(z, truncation_psi=0.5)
        assert torch.allclose(half, G.mapping.w_avg + 0.5 * (ws - G.mapping.w_avg), atol=1e-6)


def test_w_avg_tracks_the_mean_in_training():
    G = make_G(8).train()
    before = G.mapping.w_avg.clone()
    z = torch.randn(5, 8)
    ws = G.mapping(z)
    expected = ws[:, 0].detach().mean(0) * (1 - 0.995) + before * 0.995
    assert torch.allclose(G.mapping.w_avg, expected, atol=1e-6)
    G.eval()
    G.mapping(z)
    assert torch.allclose(G.mapping.w_avg, expected, atol=1e-6)  # eval mode leaves it alone


def test_noise_modes(tiny_generator):
    G = tiny_generator
    ws = G.mapping(torch.randn(2, 16)).detach()
    with torch.no_grad():
        const = G.synthesis(ws, noise_mode="const")
        assert torch.equal(const, G.synthesis(ws, noise_mode="const"))
        assert not torch.allclose(const, G.synthesis(ws, noise_mode="none"))
        assert not torch.allclose(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random"))
        with pytest.raises(ValueError, match="noise_mode"):
            G.synthesis(ws, noise_mode="sometimes")


def test_style_space_edits_only_touch_what_they_name(tiny_generator):
    G = tiny_generator
    ws = G.mapping(torch.randn(2, 16)).detach()
    syn = G.synthesis
    with torch.no_grad():
        base = syn(ws)
        styles = syn.compute_styles(ws)
        assert list(styles) == list(syn.style_dims)
        assert list(styles)[:3] == ["b4.conv1", "b4.torgb", "b8.conv0"]
        # the ToRGB of a block shares its w with the next block's first conv
        assert torch.allclose(styles["b4.torgb"], syn.b4.torgb.affine(ws[:, 1]))
        assert torch.allclose(styles["b8.conv0"], syn.b8.conv0.affine(ws[:, 1]))
        assert torch.allclose(syn(ws, styles={"b8.conv1": styles["b8.conv1"]}), base, atol=1e-6)
        edited = dict(styles)
        edited["b16.conv1"] = styles["b16.conv1"] + 3.0
        out = syn(styles=edited)
        assert not torch.allclose(out, base)
        flat = syn.pack_styles(styles)
        assert flat.shape == (2, sum(syn.style_dims.values()))
        back = syn.unpack_styles(flat)
        assert all(torch.equal(back[k], styles[k]) for k in styles)
        with pytest.raises(ValueError, match="unknown style layers"):
            syn(ws, styles={"b99.conv9": styles["b8.conv1"]})
        with pytest.raises(ValueError, match="every layer"):
            syn(styles={"b8.conv1": styles["b8.conv1"]})


def test_hook_points_expose_and_replace_activations(tiny_generator):
    G = tiny_generator
    z = torch.randn(2, 16)
    seen = {}
    h1 = G.synthesis.b8.conv1.hook_out.register_forward_hook(lambda m, i, o: seen.setdefault("x", o))
    h2 = G.mapping.hook_w.register_forward_hook(lambda m, i, o: seen.setdefault("w", o))
    with torch.no_grad():
        base = G(z)
    h1.remove()
    h2.remove()
    assert seen["x"].shape == (2, 16, 8, 8) and seen["w"].shape == (2, 16)
    h = G.synthesis.b8.conv1.hook_out.register_forward_hook(lambda m, i, o: o * 0)
    with torch.no_grad():
        zeroed = G(z)
    h.remove()
    assert not torch.allclose(base, zeroed)


def test_conditional_mapping_needs_labels():
    G = make_G(8, c_dim=3)
    z = torch.randn(2, 8)
    c = torch.eye(3)[:2]
    assert G(z, c).shape == (2, 3, 8, 8)
    assert not torch.allclose(G.mapping(z, c), G.mapping(z, torch.eye(3)[1:3]))
    with pytest.raises(ValueError, match="c must be"):
        G(z)


def test_fp16_flags_keep_fp32_on_cpu():
    G0 = make_G(16, conv_clamp=256)
    G1 = make_G(16, conv_clamp=256, num_fp16_res=2)
    G1.load_state_dict(G0.state_dict())
    assert G1.synthesis.b16.use_fp16 and not G0.synthesis.b16.use_fp16
    z = torch.randn(2, 8)
    with torch.no_grad():
        a, b = G0(z), G1(z)
    assert b.dtype == torch.float32 and torch.equal(a, b)


def test_conv_clamp_bounds_the_image():
    G = make_G(16, conv_clamp=0.05)
    with torch.no_grad():
        img = G(torch.randn(3, 8) * 5)
    # each ToRGB output is clamped to 0.05; the skip image sums upsampled ones (filter gain keeps the bound)
    assert img.abs().max() <= 0.05 * 3 + 1e-6


def test_minibatch_std_groups_are_strided():
    x = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    y = MinibatchStdLayer(group_size=2)(x)
    assert y.shape == (4, 3, 3, 3)
    for a, b in [(0, 2), (1, 3)]:  # strided: sample i is in group i % (N / G)
        expected = ((x[a] - x[b]).abs() / 2).square().add(1e-8).sqrt().mean()
        assert torch.allclose(y[a, 2], expected.expand(3, 3)) and torch.allclose(y[b, 2], expected.expand(3, 3))
    with pytest.raises(ValueError, match="multiple"):
        MinibatchStdLayer(group_size=4)(torch.randn(6, 2, 3, 3))


def test_conditional_discriminator_projects_onto_label_map():
    torch.manual_seed(0)
    D = Discriminator(c_dim=3, img_resolution=8, img_channels=3, channel_base=64, channel_max=8).eval()
    img = torch.randn(2, 3, 8, 8)
    c = torch.eye(3)[:2]
    out = D(img, c)
    assert out.shape == (2, 1)
    # the epilogue's output dotted with the label map, scaled by 1/sqrt(cmap_dim)
    feats = {}
    h = D.b4.out.register_forward_hook(lambda m, i, o: feats.setdefault("o", o))
    D(img, c)
    h.remove()
    cmap = D.mapping(None, c)
    expected = (feats["o"] * cmap).sum(1, keepdim=True) / np.sqrt(8)
    assert torch.allclose(out, expected, atol=1e-6)


def test_bad_shapes_are_refused(tiny_generator):
    G = tiny_generator
    with pytest.raises(ValueError, match="z must be"):
        G(torch.randn(2, 5))
    with pytest.raises(ValueError, match="ws must be"):
        G.synthesis(torch.randn(2, 3, 16))
    with pytest.raises(ValueError, match="power of two"):
        Generator(8, 0, 8, 24, 3)
