"""Our networks reproduce the official implementation's outputs on the official-format fixtures."""

import glob
import os

import numpy as np
import pytest
import torch

import latentlab
from conftest import FIXTURES, assert_matches_official
from latentlab.checkpoints.tags import FORMAT_LATENTLAB, FORMAT_SG2_TF

# StyleGAN2 fixtures (v1 files belong to the StyleGAN v1 loader).
NAMES = sorted(
    os.path.basename(p)[: -len(".expected.npz")]
    for p in glob.glob(os.path.join(FIXTURES, "*.expected.npz"))
    if not os.path.basename(p).startswith("sg1_")
)


def trunc_settings(ckpt):
    """Per the fixtures' README: psi 0.7 / cutoff 2 for PyTorch pickles, psi 0.5 / all layers for TF pickles."""
    return (0.5, None) if ckpt.format == FORMAT_SG2_TF else (0.7, 2)


@pytest.fixture(scope="module", params=NAMES)
def case(request):
    name = request.param
    ckpt = latentlab.load_checkpoint(os.path.join(FIXTURES, name + ".pkl"))
    expected = dict(np.load(os.path.join(FIXTURES, name + ".expected.npz")))
    return name, ckpt, expected


def test_fixtures_present():
    assert "sg2ada_skip32" in NAMES and "tf_sg2_16" in NAMES


@pytest.mark.parametrize("fused", [None, True, False])
def test_generator_outputs(case, fused):
    name, ckpt, e = case
    G = ckpt.generator
    assert not G.training
    z, c = torch.from_numpy(e["z"]), torch.from_numpy(e["c"])
    psi, cutoff = trunc_settings(ckpt)
    with torch.no_grad():
        ws = G.mapping(z, c)
        assert_matches_official(ws, e["ws"], f"{name}/ws")
        if "ws_trunc" in e:
            assert_matches_official(
                G.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff), e["ws_trunc"], f"{name}/ws_trunc"
            )
        ws = torch.from_numpy(e["ws"])
        assert_matches_official(
            G.synthesis(ws, noise_mode="const", fused_modconv=fused), e["img_const"], f"{name}/img_const"
        )
        assert_matches_official(
            G.synthesis(ws, noise_mode="none", fused_modconv=fused), e["img_none"], f"{name}/img_none"
        )
        img = G(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="const", fused_modconv=fused)
        assert_matches_official(img, e["img_trunc_const"], f"{name}/img_trunc_const")
        if "wplus" in e:
            img = G.synthesis(torch.from_numpy(e["wplus"]), noise_mode="const", fused_modconv=fused)
            assert_matches_official(img, e["img_wplus_const"], f"{name}/img_wplus_const")


def test_styles_round_trip_reproduces_official_image(case):
    """Rendering from S space (the affine outputs) gives the same image as rendering from ws."""
    name, ckpt, e = case
    G = ckpt.generator
    ws = torch.from_numpy(e["ws"])
    with torch.no_grad():
        styles = G.synthesis.compute_styles(ws)
        assert_matches_official(G.synthesis(styles=styles), e["img_const"], f"{name}/img_from_styles")
        flat = G.synthesis.pack_styles(styles)
        assert_matches_official(G.synthesis(styles=flat), e["img_const"], f"{name}/img_from_flat_styles")


def test_discriminator_logits(case):
    name, ckpt, e = case
    assert ckpt.D is not None
    with torch.no_grad():
        logits = ckpt.D(torch.from_numpy(e["img_const"]), torch.from_numpy(e["c"]))
    assert_matches_official(logits, e["d_logits"], f"{name}/d_logits")


def test_converted_checkpoint_is_bit_exact(case, tmp_path):
    name, ckpt, e = case
    out = tmp_path / f"{name}.safetensors"
    latentlab.convert(ckpt.path, out)
    back = latentlab.load_checkpoint(out)
    assert back.format == FORMAT_LATENTLAB and back.extras["source_format"] == ckpt.format
    assert sorted(back.networks()) == sorted(ckpt.networks())
    for net_name, net in ckpt.networks().items():
        a, b = net.state_dict(), back.networks()[net_name].state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{net_name}.{k} changed in the round trip"
    with torch.no_grad():
        img = back.generator.synthesis(torch.from_numpy(e["ws"]))
    assert_matches_official(img, e["img_const"], f"{name}/converted")
