"""filtered_lrelu: the reference path against NVIDIA's (fixture) and against independent expectations.

The fixture (tests/fixtures/filtered_lrelu/, see its make_fixture.py) holds the official reference
path's outputs and gradients on StyleGAN3's layer configurations. The compiled kernel is checked
against the same fixture on its host variant (slow: it builds the extension); the full kernel vs
reference sweep, GPU included, is in tests/test_ops_cuda.py.
"""

import json
import math
import os
import shutil
import warnings

import numpy as np
import pytest
import torch

from latentlab.errors import ConfigError
from latentlab.ops import filtered_lrelu, filtered_lrelu_ref, setup_filter
from latentlab.ops.filtered_lrelu import output_size
from latentlab.ops.upfirdn2d import filter_size, parse_padding

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "filtered_lrelu", "filtered_lrelu_official.npz")
OFFICIAL = np.load(FIXTURE)
CASES = json.loads(str(OFFICIAL["cases"]))


def _case(name):
    """(x, fu, fd, b, kwargs, expected dict) of one fixture case, as float32 tensors."""
    get = lambda k: torch.from_numpy(OFFICIAL[f"{name}.{k}"]) if f"{name}.{k}" in OFFICIAL else None
    expected = {k: get(k) for k in ("y", "dy", "dx", "db")}
    return get("x"), get("fu"), get("fd"), get("b"), CASES[name], expected


def _run_with_grads(fn, x, fu, fd, b, kwargs, dy):
    x = x.clone().requires_grad_(True)
    b = None if b is None else b.clone().requires_grad_(True)
    y = fn(x, fu, fd, b, **kwargs)
    grads = torch.autograd.grad(y, [x] + ([] if b is None else [b]), dy)
    return y.detach(), grads[0], (grads[1] if b is not None else None)


def _assert_matches_official(name, fn):
    x, fu, fd, b, kwargs, exp = _case(name)
    y, dx, db = _run_with_grads(fn, x, fu, fd, b, kwargs, exp["dy"])
    torch.testing.assert_close(y, exp["y"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dx, exp["dx"], rtol=1e-5, atol=1e-5)
    if b is not None:
        torch.testing.assert_close(db, exp["db"], rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------- the official reference


def test_fixture_covers_stylegan3_configurations():
    ups = {c["up"] for c in CASES.values()}
    downs = {c["down"] for c in CASES.values()}
    clamps = {c.get("clamp") for c in CASES.values()}
    assert ups == {1, 2, 4} and downs == {1, 2, 4} and None in clamps and 256.0 in clamps and len(CASES) >= 12
    assert any(OFFICIAL[f"{n}.fd"].ndim == 2 for n in CASES if f"{n}.fd" in OFFICIAL)  # a radial filter
    assert any(c.get("flip_filter") for c in CASES.values())
    assert any(f"{n}.b" not in OFFICIAL for n in CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_matches_official(name):
    _assert_matches_official(name, filtered_lrelu_ref)


@pytest.mark.parametrize("name", ["layer_up2_down2", "torgb"])
def test_public_op_matches_official_on_cpu(name):
    _assert_matches_official(name, filtered_lrelu)  # impl=None on the CPU is the reference path


# -------------------------------------------------------------- independent expectations


@pytest.mark.parametrize("clamp", [None, 0.6])
def test_identity_filters_are_bias_lrelu_gain_clamp(clamp):
    rng = np.random.default_rng(0)
    x, b = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal(3)
    z = x + b[None, :, None, None]
    expected = np.where(z > 0, z, 0.3 * z) * 1.7
    if clamp is not None:
        expected = np.clip(expected, -clamp, clamp)
    got = filtered_lrelu(torch.from_numpy(x), b=torch.from_numpy(b), gain=1.7, slope=0.3, clamp=clamp)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("value", [0.8, -1.3])
@pytest.mark.parametrize("sep", [True, False])
def test_constant_passes_normalised_filters(value, sep):
    # [1, 3, 3, 1] / 8 has equal even and odd tap sums, so up 2 (gain 4) keeps a constant exactly.
    f = setup_filter([1, 3, 3, 1], separable=sep).double()
    x = torch.full((1, 2, 12, 12), value, dtype=torch.float64)
    y = filtered_lrelu(x, fu=f, fd=f, up=2, down=2, padding=3, gain=math.sqrt(2), slope=0.2)
    inner = y[:, :, 4:-4, 4:-4]  # away from the zero padding
    expected = value * math.sqrt(2) * (1 if value > 0 else 0.2)
    torch.testing.assert_close(inner, torch.full_like(inner, expected), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("up", [1, 2, 3, 4])
@pytest.mark.parametrize("down", [1, 2, 4])
@pytest.mark.parametrize("taps", [(None, None), (4, 6), ((3, 5), 1), (12, (2, 7))])
@pytest.mark.parametrize("padding", [0, (3, 1), (5, -1, 2, 7), -4])
def test_output_size_formula(up, down, taps, padding):
    make = lambda t: None if t is None else torch.ones(t if isinstance(t, tuple) else (t,))
    fu, fd = (make(t) for t in taps)
    (fuw, fuh), (fdw, fdh) = filter_size(fu), filter_size(fd)
    px0, px1, py0, py1 = parse_padding(padding)
    oh = output_size(9, up, down, py0, py1, fuh, fdh)
    ow = output_size(7, up, down, px0, px1, fuw, fdw)
    x = torch.randn(1, 2, 9, 7)
    if min(oh, ow) < 1:
        with pytest.raises(ConfigError, match="leaves no output"):
            filtered_lrelu(x, fu, fd, up=up, down=down, padding=padding)
        return
    assert filtered_lrelu(x, fu, fd, up=up, down=down, padding=padding).shape == (1, 2, oh, ow)


@pytest.mark.parametrize("clamp", [None, 0.9])
@pytest.mark.parametrize("config", [(2, 2, (2, 1, 3, 1)), (1, 2, (2, 2, 3, 1)), (3, 1, (0, 2, 1, 1))])
def test_gradcheck_and_gradgradcheck(clamp, config):
    torch.manual_seed(0)
    up, down, padding = config
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    fu, fd = torch.rand(4, dtype=torch.float64), torch.rand(3, 2, dtype=torch.float64)
    fn = lambda x, b: filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=padding, slope=0.3, clamp=clamp)
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b), fast_mode=True)  # the full check takes 10-40 s here


BAD_CALLS = {
    "3-D input": lambda x: filtered_lrelu(x[0]),
    "3-D filter": lambda x: filtered_lrelu(x, fu=torch.ones(2, 2, 2)),
    "list filter": lambda x: filtered_lrelu(x, fd=[1.0, 2.0]),
    "bias length": lambda x: filtered_lrelu(x, b=torch.zeros(4)),
    "up 0": lambda x: filtered_lrelu(x, up=0),
    "float down": lambda x: filtered_lrelu(x, down=2.0),
    "negative gain": lambda x: filtered_lrelu(x, gain=-1.0),
    "nan slope": lambda x: filtered_lrelu(x, slope=float("nan")),
    "negative clamp": lambda x: filtered_lrelu(x, clamp=-1.0),
    "crops everything": lambda x: filtered_lrelu(x, padding=-3),
    "bad padding": lambda x: filtered_lrelu(x, padding=(1, 2, 3)),
    "bad impl": lambda x: filtered_lrelu(x, impl="triton"),
    "cuda on cpu": lambda x: filtered_lrelu(x, impl="cuda"),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_arguments_raise_one_line_config_error(name):
    with pytest.raises(ConfigError) as info:
        BAD_CALLS[name](torch.zeros(1, 3, 5, 5))
    assert "\n" not in str(info.value)


# ------------------------------------------------------- the compiled kernel's host variant


@pytest.fixture(scope="module")
def host_kernel():
    """Build (or reuse) the extension with the toolkit found as tests/test_ops_cuda.py finds it."""
    from latentlab.ops import cuda as ops_cuda

    home = os.environ.get("CUDA_HOME") or "/usr/local/cuda"
    if not os.path.isfile(os.path.join(home, "bin", "nvcc")) and shutil.which("nvcc") is None:
        pytest.skip("no CUDA toolkit (nvcc)")
    with pytest.MonkeyPatch.context() as mp:
        if os.path.isfile(os.path.join(home, "bin", "nvcc")):
            mp.setenv("CUDA_HOME", home)
        if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
            mp.setenv("TORCH_CUDA_ARCH_LIST", "9.0")
        mp.delenv("LATENTLAB_OPS", raising=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = ops_cuda.load_extension("filtered_lrelu")
    if module is None:
        pytest.fail("extension build failed: " + " | ".join(str(w.message) for w in caught))
    return module


def _kernel(tile):
    from latentlab.ops.cuda.functions import filtered_lrelu_cuda

    def run(x, fu, fd, b, up=1, down=1, padding=0, gain=math.sqrt(2), slope=0.2, clamp=None, flip_filter=False):
        return filtered_lrelu_cuda(
            x, fu, fd, b, up, down, parse_padding(padding), gain, slope, clamp, flip_filter, tile
        )

    return run


@pytest.mark.slow
@pytest.mark.parametrize("tile", [0, 3])
@pytest.mark.parametrize("name", sorted(CASES))
def test_host_kernel_matches_official(host_kernel, name, tile):
    _assert_matches_official(name, _kernel(tile))
