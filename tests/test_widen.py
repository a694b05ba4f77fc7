"""Widening a trained network (`latentlab.models.widen`, `latentlab convert --channel-max`): more channels, the
same function, and the new channels can learn."""

import os

import numpy as np
import pytest
import torch

import latentlab
from conftest import FIXTURES, assert_matches_official, fixture_path, run_cli
from latentlab.errors import ConfigError
from latentlab.models import widen as widen_module
from latentlab.models.discriminator import Discriminator
from latentlab.models.generator import Generator
from latentlab.models.widen import widen


def _trained_like(net, seed):
    """Random weights everywhere (biases, noise strengths, const), as after training, not as initialised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    return net


def _pair(arch, c_dim=3):
    torch.manual_seed(0)
    G = Generator(
        16,
        c_dim,
        16,
        32,
        3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=256, channel_max=16, architecture=arch, num_fp16_res=2),
    )
    D = Discriminator(c_dim, 32, 3, architecture=arch, channel_base=256, channel_max=16, num_fp16_res=2)
    return _trained_like(G, 1).eval(), _trained_like(D, 2).eval()


def _channels(net):
    if isinstance(net, Generator):
        return [b.conv1.weight.shape[0] for b in net.synthesis.blocks()]
    return [getattr(net, f"b{r}").conv0.weight.shape[0] for r in (32, 16, 8)]


@pytest.mark.parametrize("arch", ["skip", "resnet", "orig"])
def test_widened_networks_compute_the_same_function(arch):
    G, D = _pair(arch)
    Gw, Dw = widen(G, channel_base=512, channel_max=48), widen(D, channel_base=512, channel_max=48)
    assert _channels(G) == [16, 16, 16, 8] and _channels(Gw) == [48, 48, 32, 16]
    assert _channels(D) == [8, 16, 16] and _channels(Dw) == [16, 32, 48]
    z = torch.randn(8, 16)
    c = torch.nn.functional.one_hot(torch.arange(8) % 3, 3).float()
    img = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        for noise_mode in ("const", "none"):
            a = G(z, c, noise_mode=noise_mode)
            assert_matches_official(Gw(z, c, noise_mode=noise_mode), a.numpy(), f"{arch} G {noise_mode}")
            assert float((Gw(z, c, noise_mode=noise_mode) - a).abs().max()) < 1e-5
        # D: the minibatch stddev now averages over zero channels too (sqrt(1e-8) each): ~1e-4 of its weight.
        d = D(img, c)
        assert float((Dw(img, c) - d).abs().max()) <= 1e-3 * max(1.0, float(d.abs().max()))


def test_old_weights_sit_in_the_corner_rescaled_for_the_fan_in():
    G, D = _pair("skip", c_dim=0)
    Gw, Dw = widen(G, channel_max=32), widen(D, channel_max=32)
    old, new = G.synthesis.b8.conv1.weight, Gw.synthesis.b8.conv1.weight  # demodulated: copied as is
    assert torch.equal(new[:16, :16], old) and torch.count_nonzero(new[:16, 16:]) == 0
    assert torch.count_nonzero(new[16:]) == new[16:].numel()  # the new channels are active
    assert torch.equal(G.synthesis.b16.conv1.weight, Gw.synthesis.b16.conv1.weight)  # 16 px: 256 // 16 = 16 still
    old, new = G.synthesis.b8.torgb.weight, Gw.synthesis.b8.torgb.weight  # gain 1/sqrt(fan_in): 16 -> 32 inputs
    torch.testing.assert_close(new[:, :16], old * np.sqrt(32 / 16))
    assert torch.count_nonzero(new[:, 16:]) == 0
    old, new = D.b8.conv0.weight, Dw.b8.conv0.weight  # 16 -> 32 channels, fan_in 16*9 -> 32*9
    torch.testing.assert_close(new[:16, :16], old * np.sqrt(2))
    assert torch.count_nonzero(new[16:]) == 0 and torch.count_nonzero(Dw.b8.conv0.bias[16:]) == 0
    # The 4x4 conv reads [16 features, stddev] -> [32 features, stddev]: the stddev column moves and grows 2x
    # (its mean now runs over twice the channels) on top of the fan-in gain sqrt(33 / 17).
    old, new = D.b4.conv.weight, Dw.b4.conv.weight
    torch.testing.assert_close(new[:16, 32], old[:, 16] * 2 * np.sqrt(33 * 9 / (17 * 9)))
    # Its dense layer reads channel-major 4x4 maps: old channel 5, pixel 7 was input 87, is input 87 still
    # (channels come first), while old channel 15's pixels stay at 240-255 of 512.
    old, new = D.b4.fc.weight, Dw.b4.fc.weight
    torch.testing.assert_close(new[:16, 5 * 16 + 7], old[:, 5 * 16 + 7] * np.sqrt(512 / 256))
    torch.testing.assert_close(new[:16, 240:256], old[:, 240:256] * np.sqrt(2))


def test_new_channels_receive_gradients():
    G, D = _pair("resnet", c_dim=0)
    Gw, Dw = widen(G, channel_max=32), widen(D, channel_max=32)
    Gw.train(), Dw.train()
    Gw(torch.randn(4, 16), None).square().mean().backward()
    # G: the old layers' zero weights on the new channels move first (the new channels are active).
    assert float(Gw.synthesis.b8.conv1.weight.grad[:16, 16:].abs().sum()) > 0
    assert float(Gw.synthesis.b16.conv0.weight.grad[:, 16:].abs().sum()) > 0
    Dw(torch.randn(4, 3, 32, 32)).sum().backward()
    # D: the new channels' zero weights move first (they are read with random weights).
    assert float(Dw.b8.conv0.weight.grad[16:].abs().sum()) > 0
    assert float(Dw.b4.conv.weight.grad[16:].abs().sum()) > 0


def test_same_seed_gives_G_and_G_ema_the_same_new_weights():
    G, _ = _pair("skip")
    a, b = widen(G, channel_max=32, seed=3), widen(G, channel_max=32, seed=3)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    assert not torch.equal(widen(G, channel_max=32, seed=4).synthesis.b8.conv1.weight, a.synthesis.b8.conv1.weight)


@pytest.mark.parametrize("name", ["sg2ada_skip32", "tf_sg2_16"])
def test_widened_official_networks_reproduce_the_official_outputs(name):
    ckpt = latentlab.load_checkpoint(os.path.join(FIXTURES, name + ".pkl"))
    e = dict(np.load(os.path.join(FIXTURES, name + ".expected.npz")))
    G, D = ckpt.generator, ckpt.D
    base = G.init_kwargs["synthesis_kwargs"].get("channel_base", 32768)
    Gw = widen(G, channel_base=2 * base, channel_max=2 * G.init_kwargs["synthesis_kwargs"].get("channel_max", 512))
    Dw = widen(D, channel_base=2 * D.init_kwargs["channel_base"], channel_max=2 * D.init_kwargs["channel_max"])
    assert sum(p.numel() for p in Gw.synthesis.parameters()) > 2 * sum(p.numel() for p in G.synthesis.parameters())
    with torch.no_grad():
        ws = torch.from_numpy(e["ws"])
        assert_matches_official(Gw.mapping(torch.from_numpy(e["z"]), torch.from_numpy(e["c"])), e["ws"], "ws")
        assert_matches_official(Gw.synthesis(ws, noise_mode="const"), e["img_const"], f"{name} widened")
        logits = Dw(torch.from_numpy(e["img_const"]), torch.from_numpy(e["c"]))
    np.testing.assert_allclose(logits.numpy(), e["d_logits"], atol=1e-3 * max(1.0, float(np.abs(e["d_logits"]).max())))


def test_refusals():
    G, D = _pair("skip", c_dim=0)
    with pytest.raises(ConfigError, match="cannot remove channels"):
        widen(G, channel_max=8)
    with pytest.raises(ConfigError, match="StyleGAN2 generators and discriminators"):
        widen(torch.nn.Linear(2, 2))
    D2 = Discriminator(0, 32, 3, channel_base=256, channel_max=16, epilogue_kwargs=dict(mbstd_num_channels=2))
    with pytest.raises(ConfigError, match="minibatch-stddev"):
        widen(D2, channel_max=32)


def test_a_wrong_copy_is_caught_by_the_check(monkeypatch):
    """The result is run against the original: a copy rule that breaks the function raises, never ships."""
    G, _ = _pair("skip", c_dim=0)
    monkeypatch.setattr(widen_module, "_copy_weight", lambda new_t, old_t, *a: new_t[: old_t.shape[0]].zero_())
    with pytest.raises(ConfigError, match="changed the Generator's output"):
        widen(G, channel_max=32)


def test_cli_convert_widens_and_training_continues(capsys, tmp_path):
    src = fixture_path("sg2ada_skip32.pkl")
    dst = tmp_path / "wide.safetensors"
    code, out, err = run_cli(capsys, "convert", src, str(dst), "--networks", "G_ema,D", "--channel-max", "1024")
    assert code == 0, err
    assert "widened" in out
    narrow, wide = latentlab.load_checkpoint(src), latentlab.load_checkpoint(dst)
    assert wide.generator.init_kwargs["synthesis_kwargs"]["channel_max"] == 1024
    assert sum(p.numel() for p in wide.generator.parameters()) > sum(p.numel() for p in narrow.generator.parameters())
    z, c = torch.randn(2, wide.generator.z_dim), None
    with torch.no_grad():
        assert_matches_official(wide.generator(z, c), narrow.generator(z, c).numpy(), "widened G_ema")
    code, _, err = run_cli(capsys, "convert", src, str(tmp_path / "x.safetensors"), "--channel-max", "4")
    assert code == 1 and err.count("\n") == 1 and src in err and "cannot remove channels" in err
