"""StyleGAN3 generators: official pickles (made by NVIDIA's classes, tests/fixtures/stylegan3) load and match.

The fixtures hold a T network at 16 px (default 14-layer schedule, with D), an R network at 32 px
(1x1 convs, radial filters) and a conditional 64 px network with 6 layers (changing up/down factors);
their outputs were recorded with NVIDIA's own forward passes (make_fixture.py).
"""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest
import torch

from conftest import assert_matches_official, run_cli
from latentlab import load_checkpoint
from latentlab.errors import ConfigError
from latentlab.latents import level_layers, parse_layers, ws_resolutions
from latentlab.models.stylegan3 import StyleGAN3Generator, input_transform, layer_schedule
from latentlab.models.summary import generator_summary

CASES = ["sg3t_16", "sg3r_32", "sg3t_64_cond"]
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "stylegan3")


def fixture_path(name):
    return os.path.join(HERE, name.split("/", 1)[1])


def _load(case):
    ckpt = load_checkpoint(fixture_path(f"stylegan3/{case}.pkl"))
    return ckpt, dict(np.load(fixture_path(f"stylegan3/{case}.expected.npz")))


def _c(G, e):
    return torch.from_numpy(e["c"]) if G.c_dim else None


@pytest.mark.parametrize("case", CASES)
def test_official_outputs(case):
    ckpt, e = _load(case)
    G = ckpt.G_ema
    assert type(G) is StyleGAN3Generator and G.generation == 3
    z = torch.from_numpy(e["z"])
    with torch.no_grad():
        ws = G.mapping(z, _c(G, e))
        assert_matches_official(ws, e["ws"], f"{case} ws")
        assert_matches_official(G.synthesis(ws), e["img"], f"{case} img")
        assert_matches_official(G(z, _c(G, e), truncation_psi=0.6), e["img_trunc"], f"{case} truncated")
        wplus = torch.from_numpy(e["wplus"])
        assert_matches_official(G.synthesis(wplus), e["img_wplus"], f"{case} W+")
        # the grouped-conv path (used on GPUs) computes the same images
        assert_matches_official(G.synthesis(wplus, fused_modconv=True), e["img_wplus"], f"{case} fused")


@pytest.mark.parametrize("case", CASES)
def test_style_space_matches_official_affines_and_round_trips(case):
    ckpt, e = _load(case)
    G = ckpt.G_ema
    wplus = torch.from_numpy(e["wplus"])
    with torch.no_grad():
        styles = G.synthesis.compute_styles(wplus)
        names = ["input"] + json.load(open(fixture_path("stylegan3/cases.json")))[case]["layer_names"]
        assert list(styles) == names
        for name in names:
            assert_matches_official(styles[name], e[f"style_{name}"], f"{case} style {name}")
        flat = G.synthesis.pack_styles(styles)
        assert flat.shape[1] == sum(G.synthesis.style_dims.values())
        assert_matches_official(G.synthesis(styles=flat), e["img_wplus"], f"{case} from styles")
        # a style given with ws overrides only its layer; a uniform scale of a demodulated layer's styles
        # cancels (they are normalised), one channel's does not
        edited = dict(styles)
        scaled = G.synthesis(wplus, styles={names[3]: styles[names[3]] * 1.5})
        assert_matches_official(scaled, e["img_wplus"], f"{case} uniformly scaled styles")
        edited[names[3]] = styles[names[3]].clone()
        edited[names[3]][:, 0] += 2.0
        img_edit = G.synthesis(wplus, styles={names[3]: edited[names[3]]})
        assert torch.allclose(img_edit, G.synthesis(styles=edited), atol=1e-6)
        assert not torch.allclose(img_edit, torch.from_numpy(e["img_wplus"]), atol=1e-4)


def test_user_transform_matches_the_official_visualiser():
    ckpt, e = _load("sg3t_16")
    G = ckpt.G_ema
    ws = torch.from_numpy(e["ws"])
    before = G.synthesis.input.transform.clone()
    with torch.no_grad(), input_transform(G, translate=(0.1, -0.2), rotate=30):
        img = G.synthesis(ws)
    assert_matches_official(img, e["img_transformed"], "transformed")
    assert torch.equal(G.synthesis.input.transform, before)  # restored
    with pytest.raises(ConfigError, match="StyleGAN3"):
        with input_transform(torch.nn.Module()):
            pass


def test_integer_translation_shifts_the_image():
    """Alias-free equivariance, checked where it is exact: a translation by whole pixels of the input's
    grid moves the first layer's features by whole pixels (the Fourier features are a continuous signal)."""
    ckpt, _ = _load("sg3t_16")
    inp = ckpt.G_ema.synthesis.input
    w = torch.randn([2, ckpt.G_ema.w_dim])
    with torch.no_grad():
        x0 = inp(w)
        inp.set_transform(translate=(2 / inp.sampling_rate, 0.0))  # two samples of the input grid
        x1 = inp(w)
        inp.set_transform()
    assert torch.allclose(x1[..., 2:], x0[..., :-2], atol=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_designed_filters_equal_the_files_taps(case):
    """Our filter design (Kaiser sinc / jinc) reproduces the taps NVIDIA's code stored in the file."""
    ckpt, _ = _load(case)
    G = ckpt.G_ema
    torch.manual_seed(0)
    fresh = StyleGAN3Generator(**ckpt.kwargs["G_ema"])
    n = 0
    for (name, a), (name_b, b) in zip(G.synthesis.named_buffers(), fresh.synthesis.named_buffers()):
        assert name == name_b
        if name.endswith("_filter"):
            assert a.shape == b.shape, name
            assert torch.allclose(a, b, atol=1e-7, rtol=0), name
            n += 1
    assert n > 0
    radial = [layer.down_filter.ndim == 2 for layer in G.synthesis.layers() if layer.down_filter is not None]
    assert any(radial) == (case == "sg3r_32")


def test_schedule_follows_the_paper():
    """Cutoffs rise geometrically from 2 to Nyquist, then stay; rates are powers of two >= 2 x stop band."""
    spec = layer_schedule(1024, 3, 32768, 512, 14, 2, 2, 2**2.1, 2**0.3, 10, 4)
    cutoffs = [s.cutoff for s in spec]
    assert cutoffs[0] == 2 and cutoffs[12] == cutoffs[13] == cutoffs[14] == 512
    ratios = np.diff(np.log(cutoffs[:13]))
    assert np.allclose(ratios, ratios[0])
    for s in spec:
        assert s.sampling_rate & (s.sampling_rate - 1) == 0
        assert s.sampling_rate >= min(2 * s.stopband, 1024) - 1e-9
    assert [s.size for s in spec][:2] == [36, 36] and spec[-1].size == 1024
    assert [s.channels for s in spec][0] == 512 and spec[-1].channels == 3
    # FFHQ-1024 T: the official layer names
    assert [f"L{s.index}_{s.size}_{s.channels}" for s in spec][:4] == [
        "L0_36_512",
        "L1_36_512",
        "L2_52_512",
        "L3_52_512",
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(first_cutoff=0),
        dict(first_cutoff=float("nan")),
        dict(num_critical=20),
        dict(num_layers=0),
        dict(margin_size=10**9),
        dict(last_stopband_rel=1e6),
        dict(first_stopband=1e-300),
    ],
)
def test_impossible_schedules_are_refused(kwargs):
    with pytest.raises(ConfigError, match="StyleGAN3"):
        StyleGAN3Generator(z_dim=4, c_dim=0, w_dim=4, img_resolution=16, img_channels=3, channel_base=64, **kwargs)


def test_levels_and_summary():
    ckpt, _ = _load("sg3t_16")
    G = ckpt.G_ema
    res = ws_resolutions(G)
    assert len(res) == G.num_ws and res[0] == 4 and res[-1] == 16
    assert res == sorted(res)
    assert level_layers(G, "coarse") and level_layers(G, "middle")
    assert parse_layers("coarse,middle", G) == sorted(level_layers(G, "coarse") + level_layers(G, "middle"))
    s = generator_summary(G)
    assert s["generation"] == 3 and s["architecture"] == "stylegan3-t"
    assert [r["name"] for r in s["layers"]] == ["input"] + G.synthesis.layer_names
    assert s["params"]["total"] == sum(p.numel() for p in G.parameters())
    r = generator_summary(load_checkpoint(fixture_path("stylegan3/sg3r_32.pkl")).G_ema)
    assert r["architecture"] == "stylegan3-r"


def test_discriminator_of_a_stylegan3_snapshot_loads():
    ckpt, _ = _load("sg3t_16")
    assert type(ckpt.D).__name__ == "Discriminator"
    with torch.no_grad():
        logits = ckpt.D(torch.zeros([2, 3, 16, 16]), None)
    assert logits.shape == (2, 1) and torch.isfinite(logits).all()


def test_float64_generator_matches_the_official_output():
    """A generator moved to float64 computes in float64 up to its output (benchmarks/sg3_accuracy_profile.py checks
    the GPU paths against it) and lands on the official float32 image within float32's own error."""
    ckpt, e = _load("sg3r_32")
    G = copy.deepcopy(ckpt.G_ema).double()
    dtypes = []
    hook = G.synthesis.layer_names[-2]
    handle = getattr(G.synthesis, hook).register_forward_hook(lambda m, a, out: dtypes.append(out.dtype))
    with torch.no_grad():
        img = G(torch.from_numpy(e["z"]).double(), _c(G, e))
    handle.remove()
    assert dtypes == [torch.float64]
    with torch.no_grad():
        img32 = ckpt.G_ema(torch.from_numpy(e["z"]), _c(G, e))
    # computed in float64 up to the output, which is cast to float32 as NVIDIA's synthesis does
    assert_matches_official(img, e["img"], "sg3r_32 in float64")
    assert 0 < float((img - img32).abs().max()) < 1e-5


def test_double_backward_through_the_generator():
    """Path-length style gradients of gradients work (the filtered_lrelu reference is differentiable twice)."""
    ckpt, e = _load("sg3t_64_cond")
    G = ckpt.G_ema
    ws = torch.from_numpy(e["ws"][:1]).requires_grad_(True)
    img = G.synthesis(ws)
    (g,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), ws, create_graph=True)
    (gg,) = torch.autograd.grad(g.square().sum(), ws)
    assert torch.isfinite(gg).all() and gg.abs().sum() > 0


def test_stylegan2_pickle_from_the_stylegan3_code_base():
    """NVIDIA re-released StyleGAN2 models with the stylegan3 code (flat synthesis kwargs, fused_modconv_default)."""
    ckpt = load_checkpoint(fixture_path("stylegan3/sg2_from_sg3_16.pkl"))
    e = dict(np.load(fixture_path("stylegan3/sg2_from_sg3_16.expected.npz")))
    G = ckpt.G_ema
    assert type(G).__name__ == "Generator" and G.generation == 2
    assert ckpt.extras["ignored_kwargs"] == {
        "G": {"fused_modconv_default": "inference_only"},
        "G_ema": {"fused_modconv_default": "inference_only"},
    }
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(e["z"]), None)
        assert_matches_official(ws, e["ws"], "ws")
        assert_matches_official(G.synthesis(ws), e["img"], "img")
        assert_matches_official(G.synthesis(torch.from_numpy(e["wplus"])), e["img_wplus"], "W+")


@pytest.mark.parametrize("case", ["sg3t_16", "sg3r_32"])
def test_convert_writes_the_official_stylegan3_layout(case, tmp_path):
    """convert -> .pkl keeps NVIDIA's class names, constructor kwargs and tensor names, and the images."""
    from latentlab.checkpoints.formats import read_checkpoint
    from latentlab.checkpoints.loader import convert
    from latentlab.checkpoints.safe_pickle import PersistentObject, load_pickle

    src = fixture_path(f"stylegan3/{case}.pkl")
    dst = str(tmp_path / "out.pkl")
    convert(src, dst)

    def classes(obj, prefix=""):
        out = {prefix: obj.class_name}
        for name, child in obj.state["_modules"].items():
            if isinstance(child, PersistentObject):
                out.update(classes(child, f"{prefix}{name}."))
        return out

    a, b = load_pickle(src), load_pickle(dst)
    assert classes(a["G_ema"]) == classes(b["G_ema"])
    ra, rb = read_checkpoint(src), read_checkpoint(dst)
    assert rb.networks["G_ema"].class_name == "StyleGAN3Generator"
    assert rb.networks["G_ema"].init_kwargs == ra.networks["G_ema"].init_kwargs
    sa, sb = ra.networks["G_ema"].state, rb.networks["G_ema"].state
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    z = torch.randn([2, 8])
    with torch.no_grad():
        assert torch.equal(load_checkpoint(src).G_ema(z), load_checkpoint(dst).G_ema(z))


def test_readme_stylegan3_example():
    """The README's StyleGAN3 snippet runs as written on a StyleGAN3 generator and moves the image."""
    from test_readme_python import readme_block

    ckpt, e = _load("sg3t_16")
    G, ws = ckpt.G_ema, torch.from_numpy(e["ws"])
    scope = {"G": G, "ws": ws}
    with torch.no_grad():
        exec(compile(readme_block("python:stylegan3"), "README.md", "exec"), scope)
        assert scope["img"].shape == (3, 3, 16, 16)
        assert not torch.allclose(scope["img"], G.synthesis(ws), atol=1e-3)
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))


def test_generate_translate_rotate(tmp_path, capsys):
    """`generate --translate/--rotate` renders what input_transform renders, records it, and refuses StyleGAN2."""
    from PIL import Image

    from latentlab.generate import generation_latents

    path = fixture_path("stylegan3/sg3t_16.pkl")
    out = tmp_path / "g"
    code, _, err = run_cli(
        capsys, "generate", "--model", path, "--seeds", "3", "--translate", "0.25,-0.1", "--rotate", "20", "--out", out
    )
    assert code == 0, err
    assert json.load(open(out / "generate.json"))["transform"] == {"translate": [0.25, -0.1], "rotate": 20.0}
    G = load_checkpoint(path).G_ema
    _, w = generation_latents(G, [3])
    with torch.no_grad(), input_transform(G, (0.25, -0.1), 20):
        img = G.synthesis(w.wplus(G), noise_mode="const")
    expected = (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    got = np.asarray(Image.open(out / "seed0003.png"))
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    code, _, err = run_cli(capsys, "generate", "--seeds", "0", "--rotate", "5", "--out", tmp_path / "b")
    assert code != 0 and "StyleGAN3" in err and len(err.strip().splitlines()) <= 2
