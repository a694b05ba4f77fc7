"""Our compiled kernels: the build, the fallback rules, and agreement with the reference ops.

The kernel tests run on two devices: 'cuda' (needs a GPU) and 'cpu', which uses the host
loop compiled into the same extension from the same per-element code. The CPU variant
is marked slow because it compiles the extensions; it checks the maths, the index
arithmetic and the autograd wiring on machines without a GPU.
"""

import os
import shutil
import warnings

import pytest
import torch

from latentlab.errors import ConfigError
from latentlab.ops import cuda as ops_cuda
from latentlab.ops.bias_act import bias_act_ref
from latentlab.ops.cuda.functions import bias_act_cuda, filtered_lrelu_cuda, upfirdn2d_cuda
from latentlab.ops.filtered_lrelu import filtered_lrelu_ref
from latentlab.ops.upfirdn2d import upfirdn2d_ref

HAS_GPU = torch.cuda.is_available()
DEVICES = [
    pytest.param("cpu", marks=pytest.mark.slow, id="host"),
    pytest.param("cuda", marks=pytest.mark.skipif(not HAS_GPU, reason="no CUDA device"), id="cuda"),
]
ACTS = ["linear", "relu", "lrelu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"]
EXPECTED_FUNCS = {"bias_act": ["bias_act"], "upfirdn2d": ["upfirdn2d"], "filtered_lrelu": ["filtered_lrelu"]}


def _toolkit_or_skip():
    """A CUDA_HOME with nvcc, or skip."""
    home = os.environ.get("CUDA_HOME") or "/usr/local/cuda"
    if not os.path.isfile(os.path.join(home, "bin", "nvcc")):
        nvcc = shutil.which("nvcc")
        if nvcc is None or "CUDA_HOME" in os.environ:
            pytest.skip(f"no CUDA toolkit (nvcc) found at CUDA_HOME={home} or on PATH")
        return None  # let load_extension locate it
    return home


def _build_env(mp):
    home = _toolkit_or_skip()
    if home and "CUDA_HOME" not in os.environ:
        mp.setenv("CUDA_HOME", home)
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not HAS_GPU:
        mp.setenv("TORCH_CUDA_ARCH_LIST", "9.0")
    mp.delenv("LATENTLAB_OPS", raising=False)


def _load_all():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mods = {name: ops_cuda.load_extension(name) for name in ops_cuda.OPS}
    msgs = [str(w.message) for w in caught if "latentlab" in str(w.message)]
    return mods, msgs


@pytest.fixture(scope="module")
def built():
    with pytest.MonkeyPatch.context() as mp:
        _build_env(mp)
        mods, msgs = _load_all()
    if any(m is None for m in mods.values()):
        pytest.fail("extension build failed: " + " | ".join(msgs))
    return mods


@pytest.fixture
def device(request, built):
    return request.param


# ----------------------------------------------------------------------------- build


@pytest.mark.slow
def test_extensions_compile_and_import(monkeypatch):
    """Builds every extension (or reuses torch's cached build of the same sources)."""
    _build_env(monkeypatch)
    saved = dict(ops_cuda._cache)
    ops_cuda._reset_cache()
    try:
        mods, msgs = _load_all()
    finally:
        ops_cuda._cache.update({k: v for k, v in saved.items() if v is not None})
    assert msgs == []
    for name, funcs in EXPECTED_FUNCS.items():
        assert mods[name] is not None, name
        for fn in funcs:
            assert callable(getattr(mods[name], fn)), f"{name}.{fn}"
        assert ops_cuda.load_extension(name) is mods[name]  # cached per process


@pytest.fixture
def fresh_cache():
    saved = dict(ops_cuda._cache)
    ops_cuda._reset_cache()
    yield
    ops_cuda._reset_cache()
    ops_cuda._cache.update(saved)


def test_env_ref_returns_none_silently(monkeypatch, fresh_cache):
    monkeypatch.setenv("LATENTLAB_OPS", "ref")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ops_cuda.OPS:
            assert ops_cuda.load_extension(name) is None
        assert not ops_cuda.cuda_available_for(torch.zeros(1))
    assert caught == []


def test_missing_cuda_home_warns_once(monkeypatch, fresh_cache, tmp_path):
    monkeypatch.delenv("LATENTLAB_OPS", raising=False)
    missing = str(tmp_path / "no-such-cuda")
    monkeypatch.setenv("CUDA_HOME", missing)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ops_cuda.load_extension("bias_act") is None
        assert ops_cuda.load_extension("bias_act") is None  # no retry, no second warning
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert missing in msg and "bias_act" in msg and "reference" in msg


def test_failing_build_warns_once(monkeypatch, fresh_cache):
    from torch.utils import cpp_extension

    def boom(*args, **kwargs):
        raise RuntimeError("Error building extension: simulated compiler failure")

    monkeypatch.delenv("LATENTLAB_OPS", raising=False)
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", os.environ.get("TORCH_CUDA_ARCH_LIST", "9.0"))
    monkeypatch.setattr(cpp_extension, "load", boom)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert ops_cuda.load_extension("upfirdn2d") is None
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert "upfirdn2d" in msg
    try:
        ops_cuda._find_cuda_home()
    except ops_cuda.ExtensionUnavailable:
        return  # no toolkit here: the warning names that instead
    if torch.version.cuda is not None and cpp_extension.is_ninja_available():
        assert "simulated compiler failure" in msg


def test_unknown_op_name():
    with pytest.raises(ValueError, match="unknown op"):
        ops_cuda.load_extension("conv3d")


# -------------------------------------------------------------------------- bias_act


def _rand(shape, device, dtype=torch.float64, scale=2.0, requires_grad=False):
    t = (torch.randn(shape, dtype=torch.float64) * scale).to(device=device, dtype=dtype)
    return t.requires_grad_(requires_grad)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
@pytest.mark.parametrize("clamp", [None, 0.7])
def test_bias_act_forward_float64(device, act, dim, clamp):
    torch.manual_seed(1)
    x = _rand((3, 4, 5, 2), device)
    b = _rand((x.shape[dim],), device)
    for kwargs in (dict(), dict(alpha=0.3, gain=1.7)):
        ref = bias_act_ref(x, b, dim=dim % x.ndim, act=act, clamp=clamp, **kwargs)
        got = bias_act_cuda(x, b, dim=dim, act=act, clamp=clamp, **kwargs)
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bias_act_cuda(x, None, act=act), bias_act_ref(x, None, act=act), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_bias_act_forward_low_precision(device, act, dtype):
    torch.manual_seed(2)
    x = _rand((2, 8, 6, 5), device, dtype)
    b = _rand((8,), device, dtype)
    ref = bias_act_ref(x.double(), b.double(), act=act, clamp=1.9)
    got = bias_act_cuda(x, b, act=act, clamp=1.9)
    assert got.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=4e-3, atol=4e-3)
    torch.testing.assert_close(got.double(), ref, **tol)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("act", ["lrelu", "swish"])
def test_bias_act_layouts(device, act):
    torch.manual_seed(3)
    x = _rand((2, 5, 4, 3), device).to(memory_format=torch.channels_last)
    b = _rand((5,), device)
    got = bias_act_cuda(x, b, dim=1, act=act)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, bias_act_ref(x, b, dim=1, act=act), rtol=1e-12, atol=1e-12)
    xt = _rand((6, 5), device).t()  # dense but transposed
    bt = _rand((6,), device)
    torch.testing.assert_close(
        bias_act_cuda(xt, bt, dim=1, act=act), bias_act_ref(xt, bt, dim=1, act=act), rtol=1e-12, atol=1e-12
    )
    xs = _rand((4, 6, 5), device)[:, ::2]  # not dense
    bs = _rand((3,), device)
    torch.testing.assert_close(
        bias_act_cuda(xs, bs, dim=1, act=act), bias_act_ref(xs, bs, dim=1, act=act), rtol=1e-12, atol=1e-12
    )
    # gradients arriving in another layout than x
    xg = x.detach().requires_grad_(True)
    dy = _rand(x.shape, device)  # contiguous while x is channels_last
    (gx,) = torch.autograd.grad(bias_act_cuda(xg, b, act=act), xg, dy)
    (rx,) = torch.autograd.grad(bias_act_ref(xg, b, act=act), xg, dy)
    torch.testing.assert_close(gx, rx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clamp", [None, 1.5])
@pytest.mark.parametrize("dim", [1, 2])
def test_bias_act_gradcheck(device, act, clamp, dim):
    torch.manual_seed(4)
    x = _rand((2, 3, 4), device, scale=1.0, requires_grad=True)
    b = _rand((x.shape[dim],), device, scale=1.0, requires_grad=True)
    fn = lambda x, b: bias_act_cuda(x, b, dim=dim, act=act, clamp=clamp)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("act", ACTS)
def test_bias_act_double_backward_matches_reference(device, act):
    torch.manual_seed(5)
    x = _rand((3, 4, 3, 2), device, requires_grad=True)
    b = _rand((4,), device, requires_grad=True)
    dy = _rand(x.shape, device)
    outs = []
    for fn in (bias_act_cuda, bias_act_ref):
        y = fn(x, b, act=act, alpha=0.25, gain=1.3, clamp=2.5)
        gx, gb = torch.autograd.grad(y, (x, b), dy, create_graph=True)
        # a scalar of the first gradients, differentiated again (an R1-penalty-like pattern)
        loss = gx.square().sum() + (gb * torch.arange(4, device=device)).sum()
        # piecewise-linear acts: the reference's first gradients may not depend on x at all
        second = torch.autograd.grad(loss, (x, b), allow_unused=True) if loss.requires_grad else (None, None)
        outs.append((y, gx, gb) + tuple(second))
    for got, ref in zip(*outs):
        if ref is None:
            assert got is None or torch.count_nonzero(got) == 0
        else:
            torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_bias_act_gradient_without_bias_and_linear(device):
    x = _rand((4, 3), device, requires_grad=True)
    (g,) = torch.autograd.grad(bias_act_cuda(x, None, act="linear", gain=3.0).sum(), x, create_graph=True)
    torch.testing.assert_close(g, torch.full_like(x, 3.0))
    x16 = _rand((4, 3), device, torch.float16, requires_grad=True)
    b32 = _rand((3,), device, torch.float32, requires_grad=True)  # bias in another dtype
    y = bias_act_cuda(x16, b32, act="lrelu")
    assert y.dtype == torch.float16
    y.float().sum().backward()
    assert b32.grad.dtype == torch.float32 and x16.grad.dtype == torch.float16


# ------------------------------------------------------------------------- upfirdn2d

UPFIRDN_CASES = [
    ((1, 1), (1, 1), (0, 0, 0, 0)),
    ((2, 2), (1, 1), (2, 1, 2, 1)),
    ((1, 1), (2, 2), (1, 1, 1, 1)),
    ((3, 2), (1, 1), (1, 2, 0, 3)),
    ((1, 1), (2, 3), (0, 1, 2, 0)),
    ((2, 2), (2, 2), (-1, 2, 1, -2)),
    ((1, 1), (1, 1), (-1, -1, -1, -2)),
    ((2, 1), (1, 2), (3, -1, 0, 2)),
    ((4, 4), (1, 1), (5, 4, 5, 4)),
    ((1, 1), (4, 4), (3, 3, 2, 4)),
    ((3, 3), (2, 2), (-2, 0, 4, -3)),
]
FILTERS = {
    "2d": lambda: torch.randn(3, 4, dtype=torch.float64),
    "sep": lambda: torch.randn(4, dtype=torch.float64),
    "1x1": lambda: torch.ones(1, 1, dtype=torch.float64),
    "wide": lambda: torch.randn(1, 5, dtype=torch.float64),
}


def _ref_upfirdn(x, f, up, down, pad, flip, gain):
    return upfirdn2d_ref(x, f.to(x.dtype), up=up, down=down, padding=pad, flip_filter=flip, gain=gain)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("case", UPFIRDN_CASES)
@pytest.mark.parametrize("filt", sorted(FILTERS))
@pytest.mark.parametrize("flip", [False, True])
def test_upfirdn2d_forward_float64(device, case, filt, flip):
    torch.manual_seed(6)
    up, down, pad = case
    x = _rand((2, 3, 7, 6), device)
    f = FILTERS[filt]().to(device)
    fh, fw = f.shape if f.ndim == 2 else f.shape * 2
    if 7 * up[1] + pad[2] + pad[3] < fh or 6 * up[0] + pad[0] + pad[1] < fw:
        with pytest.raises(ValueError, match="empty"):
            upfirdn2d_cuda(x, f, up, down, pad, flip, 2.5)
        return
    ref = _ref_upfirdn(x, f, up, down, pad, flip, 2.5)
    got = upfirdn2d_cuda(x, f, up, down, pad, flip, 2.5)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("case", UPFIRDN_CASES[:6])
def test_upfirdn2d_forward_low_precision(device, dtype, case):
    torch.manual_seed(7)
    up, down, pad = case
    x = _rand((2, 4, 9, 8), device, dtype, scale=1.0)
    f = (torch.tensor([1.0, 3.0, 3.0, 1.0]).outer(torch.tensor([1.0, 3.0, 3.0, 1.0])) / 64).to(device)
    ref = _ref_upfirdn(x.double(), f.double(), up, down, pad, False, 4.0)
    got = upfirdn2d_cuda(x, f, up, down, pad, False, 4.0)
    assert got.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=5e-3, atol=5e-3)
    torch.testing.assert_close(got.double(), ref, **tol)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_upfirdn2d_layouts(device):
    torch.manual_seed(8)
    f = torch.randn(4, 3, dtype=torch.float64, device=device)
    args = ((2, 2), (1, 1), (2, 1, 1, 2), False, 1.0)
    x = _rand((2, 5, 6, 7), device)
    xcl = x.to(memory_format=torch.channels_last)
    got = upfirdn2d_cuda(xcl, f, *args)
    assert got.is_contiguous(memory_format=torch.channels_last)
    ref = _ref_upfirdn(x, f, *args)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    xs = _rand((2, 5, 12, 7), device)[:, :, ::2]  # strided view
    torch.testing.assert_close(upfirdn2d_cuda(xs, f, *args), _ref_upfirdn(xs, f, *args), rtol=1e-12, atol=1e-12)
    # backward of a channels_last input
    xg = xcl.detach().requires_grad_(True)
    dy = _rand(ref.shape, device)
    (g1,) = torch.autograd.grad(upfirdn2d_cuda(xg, f, *args), xg, dy)
    (g2,) = torch.autograd.grad(_ref_upfirdn(xg, f, *args), xg, dy)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("case", UPFIRDN_CASES)
@pytest.mark.parametrize("filt", ["2d", "sep"])
@pytest.mark.parametrize("flip", [False, True])
def test_upfirdn2d_gradcheck(device, case, filt, flip):
    torch.manual_seed(9)
    up, down, pad = case
    x = _rand((1, 2, 7, 6), device, requires_grad=True)
    f = FILTERS[filt]().to(device)
    fn = lambda x: upfirdn2d_cuda(x, f, up, down, pad, flip, 1.7)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    # and the gradient itself equals the reference one
    dy = _rand(fn(x).shape, device)
    (g1,) = torch.autograd.grad(fn(x), x, dy)
    (g2,) = torch.autograd.grad(_ref_upfirdn(x, f, up, down, pad, flip, 1.7), x, dy)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_upfirdn2d_rejects_empty_output(device):
    with pytest.raises(ValueError, match="empty"):
        upfirdn2d_cuda(
            torch.zeros(1, 1, 3, 3, device=device), torch.ones(4, 4, device=device), (1, 1), (1, 1), (-1,) * 4
        )


@pytest.mark.skipif(not HAS_GPU, reason="no CUDA device")
def test_public_ops_dispatch_to_kernels(built):
    from latentlab.ops import bias_act, setup_filter, upfirdn2d

    x = torch.randn(2, 3, 8, 8, device="cuda")
    f = setup_filter([1, 3, 3, 1], device="cuda")
    torch.testing.assert_close(
        upfirdn2d(x, f, up=2, padding=(2, 1, 2, 1), impl="cuda"), upfirdn2d_ref(x, f, up=2, padding=(2, 1, 2, 1))
    )
    b = torch.randn(3, device="cuda")
    torch.testing.assert_close(bias_act(x, b, act="lrelu", impl="cuda"), bias_act_ref(x, b, act="lrelu"))


# ---------------------------------------------------------------------- filtered_lrelu

# (up, down, padding (x0, x1, y0, y1)) on a 7x6 input; the last ones crop and pad unevenly
FLRELU_CASES = [
    (1, 1, (0, 0, 0, 0)),
    (2, 2, (5, 4, 5, 4)),
    (4, 2, (9, 10, 11, 8)),
    (1, 4, (4, 3, 2, 5)),
    (2, 1, (3, 2, 4, 1)),
    (4, 4, (12, 10, 9, 13)),
    (3, 2, (-1, 6, 5, -2)),
    (2, 2, (-2, -1, 1, -3)),
]
FLRELU_FILTERS = {
    "none": lambda: None,
    "sep": lambda: torch.rand(6, dtype=torch.float64) + 0.1,
    "2d": lambda: torch.randn(5, 4, dtype=torch.float64),
    "1tap": lambda: torch.full((1,), 0.7, dtype=torch.float64),
}


def _flrelu_args(device, up, down, pad, fu, fd, dtype=torch.float64, requires_grad=False, with_bias=True):
    x = _rand((2, 3, 7, 6), device, dtype, requires_grad=requires_grad)
    b = _rand((3,), device, dtype, requires_grad=requires_grad) if with_bias else None
    filters = [FLRELU_FILTERS[name]() for name in (fu, fd)]
    return (x, *(None if f is None else f.to(device) for f in filters), b)


def _flrelu_kernel(x, fu, fd, b, up, down, pad, clamp=None, flip=False, tile=0, gain=1.4, slope=0.3):
    return filtered_lrelu_cuda(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip, tile)


def _flrelu_ref(x, fu, fd, b, up, down, pad, clamp=None, flip=False, gain=1.4, slope=0.3):
    cast = lambda t: None if t is None else t.to(x.dtype)
    return filtered_lrelu_ref(x, cast(fu), cast(fd), cast(b), up, down, pad, gain, slope, clamp, flip)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("case", FLRELU_CASES)
@pytest.mark.parametrize("filters", [("sep", "sep"), ("2d", "sep"), ("sep", "2d"), ("none", "2d"), ("1tap", "none")])
@pytest.mark.parametrize("clamp", [None, 0.8])
@pytest.mark.parametrize("flip", [False, True])
def test_filtered_lrelu_forward_float64(device, case, filters, clamp, flip):
    torch.manual_seed(10)
    up, down, pad = case
    x, fu, fd, b = _flrelu_args(device, up, down, pad, *filters)
    try:
        ref = _flrelu_ref(x, fu, fd, b, up, down, pad, clamp, flip)
    except ConfigError:  # the filters do not fit this padding
        with pytest.raises(ConfigError, match="leaves no output"):
            _flrelu_kernel(x, fu, fd, b, up, down, pad, clamp, flip)
        return
    for tile in (0, 1, 2, 5):  # tile borders fall everywhere
        got = _flrelu_kernel(x, fu, fd, b, up, down, pad, clamp, flip, tile)
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("case", FLRELU_CASES[1:4])
def test_filtered_lrelu_low_precision(device, dtype, case):
    torch.manual_seed(11)
    up, down, pad = case
    x, fu, fd, b = _flrelu_args(device, up, down, pad, "sep", "2d", dtype, requires_grad=True)
    y = _flrelu_kernel(x, fu, fd, b, up, down, pad, clamp=1.5)
    assert y.dtype == dtype
    x64, b64 = x.detach().double().requires_grad_(True), b.detach().double().requires_grad_(True)
    ref = _flrelu_ref(x64, fu, fd, b64, up, down, pad, clamp=1.5)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=5e-3, atol=5e-3)
    torch.testing.assert_close(y.double(), ref, **tol)
    dy = _rand(y.shape, device, dtype, scale=1.0)
    gx, gb = torch.autograd.grad(y, (x, b), dy)
    rx, rb = torch.autograd.grad(ref, (x64, b64), dy.double())
    assert gx.dtype == dtype and gb.dtype == dtype
    torch.testing.assert_close(gx.double(), rx, **tol)
    torch.testing.assert_close(gb.double(), rb, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)  # a sum of many


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("case", FLRELU_CASES)
@pytest.mark.parametrize("filters", [("sep", "2d"), ("2d", "sep")])
@pytest.mark.parametrize("clamp", [None, 0.8])
def test_filtered_lrelu_gradients_match_reference(device, case, filters, clamp):
    torch.manual_seed(12)
    up, down, pad = case
    x, fu, fd, b = _flrelu_args(device, up, down, pad, *filters, requires_grad=True)
    try:
        _flrelu_ref(x.detach(), fu, fd, None, up, down, pad)
    except ConfigError:
        return  # the filters do not fit this padding (the forward test checks the error)
    outs = []
    for fn in (lambda *a: _flrelu_kernel(*a, clamp=clamp, tile=2), lambda *a: _flrelu_ref(*a, clamp=clamp)):
        y = fn(x, fu, fd, b, up, down, pad)
        dy = torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=device).reshape(y.shape).requires_grad_(True)
        gx, gb = torch.autograd.grad(y, (x, b), dy, create_graph=True)
        # an R1-like penalty of the first gradients, differentiated again (here only dy reaches it:
        # the activation's derivative is piecewise constant)
        penalty = gx.square().sum() + (gb * torch.arange(3, device=device)).sum()
        (gdy,) = torch.autograd.grad(penalty, dy)
        outs.append((y, gx, gb, gdy))
    for got, ref in zip(*outs):
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("case", [FLRELU_CASES[2], FLRELU_CASES[6]])
def test_filtered_lrelu_gradcheck(device, case):
    torch.manual_seed(13)
    up, down, pad = case
    x = _rand((1, 2, 4, 3), device, scale=1.0, requires_grad=True)
    b = _rand((2,), device, scale=1.0, requires_grad=True)
    fu, fd = torch.rand(4, dtype=torch.float64, device=device), torch.randn(3, 2, dtype=torch.float64, device=device)
    pad = tuple(max(p, 1) for p in pad)
    fn = lambda x, b: _flrelu_kernel(x, fu, fd, b, up, down, pad, clamp=1.0, tile=2)
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_filtered_lrelu_layouts_and_modes(device):
    torch.manual_seed(14)
    up, down, pad = FLRELU_CASES[1]
    x, fu, fd, b = _flrelu_args(device, up, down, pad, "sep", "sep")
    ref = _flrelu_ref(x, fu, fd, b, up, down, pad)
    xcl = x.to(memory_format=torch.channels_last)
    got = _flrelu_kernel(xcl, fu, fd, b, up, down, pad)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    xs = _rand((2, 3, 14, 6), device)[:, :, ::2]  # strided view
    torch.testing.assert_close(
        _flrelu_kernel(xs, fu, fd, b, up, down, pad), _flrelu_ref(xs, fu, fd, b, up, down, pad), rtol=1e-12, atol=1e-12
    )
    with torch.no_grad():  # no record is kept, same values
        torch.testing.assert_close(_flrelu_kernel(x, fu, fd, b, up, down, pad), ref, rtol=1e-12, atol=1e-12)
    # gradients: channels_last x, expanded (stride 0) upstream gradient from .sum(), bias-only gradients
    for xin, bias_only in ((xcl, False), (x, True)):
        xg = xin.detach().requires_grad_(not bias_only)
        bg = b.detach().requires_grad_(True)
        inputs = (bg,) if bias_only else (xg, bg)
        got_g = torch.autograd.grad(_flrelu_kernel(xg, fu, fd, bg, up, down, pad).sum(), inputs)
        ref_g = torch.autograd.grad(_flrelu_ref(xg, fu, fd, bg, up, down, pad).sum(), inputs)
        for g1, g2 in zip(got_g, ref_g):
            torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_filtered_lrelu_large_filters(device):
    """Filters whose tile workspace exceeds shared memory: the GPU uses a global scratch buffer."""
    torch.manual_seed(15)
    x = _rand((1, 2, 12, 12), device, torch.float32, scale=1.0, requires_grad=True)
    fu = torch.rand(8, 8, device=device)
    fd = torch.rand(120, 120, device=device) / 7200  # 120 * 120 * 4 bytes > 48 KiB even for a 1x1 tile
    args = (4, 2, (45, 45, 45, 45))
    y = _flrelu_kernel(x, fu, fd, None, *args, clamp=2.0)
    ref = _flrelu_ref(x.double(), fu, fd, None, *args, clamp=2.0)
    torch.testing.assert_close(y.double(), ref, rtol=1e-4, atol=1e-4)
    (gx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    (rx,) = torch.autograd.grad(ref, x, torch.ones_like(ref))
    torch.testing.assert_close(gx, rx, rtol=1e-4, atol=1e-4)


# StyleGAN3's configurations, which run the kernel's compiled specialisations (with_spec in
# filtered_lrelu.h; their backward chains swap up and down, and the filters): (up, down, up taps,
# down taps, padding). The last has a 2-D (radial) down filter and 11 up taps, which the kernel
# pads with a zero tap to the specialisation's 12.
FLRELU_SPEC_CASES = [
    (2, 2, 12, 12, (11, 10, 11, 10)),
    (4, 2, 24, 12, (23, 22, 21, 24)),
    (2, 4, 12, 24, (9, 14, 13, 10)),
    (2, 2, 11, (12, 12), (10, 11, 12, 9)),
]


def _spec_args(device, case, dtype=torch.float64):
    up, down, tu, td, pad = case
    make = lambda t: (torch.rand(t, dtype=torch.float64) + 0.1).to(device) / (t if isinstance(t, int) else t[0])
    x = _rand((2, 3, 19, 17), device, dtype, scale=1.0, requires_grad=True)
    b = _rand((3,), device, dtype, scale=1.0, requires_grad=True)
    return x, make(tu), make(td), b, up, down, pad


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("case", FLRELU_SPEC_CASES)
@pytest.mark.parametrize("flip", [False, True])
def test_filtered_lrelu_compiled_configs(device, case, flip):
    """Forward (all tile borders), gradients and double gradients on the compiled configurations."""
    torch.manual_seed(16)
    x, fu, fd, b, up, down, pad = _spec_args(device, case)
    ref = _flrelu_ref(x, fu, fd, b, up, down, pad, clamp=0.8, flip=flip)
    for tile in (0, 1, 3, 7):
        got = _flrelu_kernel(x, fu, fd, b, up, down, pad, clamp=0.8, flip=flip, tile=tile)
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    outs = []
    for fn in (
        lambda *a: _flrelu_kernel(*a, clamp=0.8, flip=flip, tile=5),
        lambda *a: _flrelu_ref(*a, clamp=0.8, flip=flip),
    ):
        y = fn(x, fu, fd, b, up, down, pad)
        dy = torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=device).reshape(y.shape).requires_grad_(True)
        gx, gb = torch.autograd.grad(y, (x, b), dy, create_graph=True)
        (gdy,) = torch.autograd.grad(gx.square().sum() + gb.sum(), dy)
        outs.append((gx, gb, gdy))
    for got, want in zip(*outs):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("case", FLRELU_SPEC_CASES[:3])
def test_filtered_lrelu_compiled_configs_tile_invariant(device, case):
    """Every tiling gives the same float32 sums (the register-blocked passes of filtered_lrelu.h take
    several outputs per thread: full blocks inside large tiles, partial ones at their ends)."""
    torch.manual_seed(18)
    up, down, tu, td, pad = case
    x = _rand((1, 2, 45, 38), device, torch.float32, scale=1.0)
    b = _rand((2,), device, torch.float32, scale=1.0)
    fu, fd = (torch.rand(t, device=device) / t for t in (tu, td))
    want = _flrelu_kernel(x, fu, fd, b, up, down, pad, clamp=0.8, tile=0)
    # up to one tile for the whole output (tile 0 on a GPU plans tiles for its opted-in shared memory)
    for tile in (1, 3, 8, 13, 17, 23, 40, 64):
        assert torch.equal(_flrelu_kernel(x, fu, fd, b, up, down, pad, clamp=0.8, tile=tile), want), tile
    # recording the activation's branches (for a backward pass) takes another path to the same values
    xg = x.clone().requires_grad_(True)
    for tile in (0, 5, 64):
        assert torch.equal(_flrelu_kernel(xg, fu, fd, b, up, down, pad, clamp=0.8, tile=tile).detach(), want), tile
    ref = _flrelu_ref(x.double(), fu, fd, b.double(), up, down, pad, clamp=0.8)
    torch.testing.assert_close(want.double(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", FLRELU_SPEC_CASES[:3])
def test_filtered_lrelu_compiled_configs_low_precision(device, dtype, case):
    torch.manual_seed(17)
    x, fu, fd, b, up, down, pad = _spec_args(device, case, dtype)
    x64, b64 = x.detach().double().requires_grad_(True), b.detach().double().requires_grad_(True)
    ref = _flrelu_ref(x64, fu, fd, b64, up, down, pad, clamp=1.5)
    y = _flrelu_kernel(x, fu, fd, b, up, down, pad, clamp=1.5)
    assert y.dtype == dtype
    # the kernel rounds only its input and output to dtype (float32 arithmetic)
    tol = {torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 3e-2}[dtype]
    torch.testing.assert_close(y.double(), ref, rtol=tol, atol=tol)
    (gx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    (rx,) = torch.autograd.grad(ref, x64, torch.ones_like(ref))
    torch.testing.assert_close(gx.double(), rx, rtol=tol, atol=tol * 10)


@pytest.mark.skipif(not HAS_GPU, reason="no CUDA device")
def test_public_filtered_lrelu_dispatch(built):
    from latentlab.ops import filtered_lrelu

    x = torch.randn(2, 3, 10, 10, device="cuda", requires_grad=True)
    f = torch.rand(12, device="cuda")
    kw = dict(up=2, down=2, padding=(11, 10, 11, 10), clamp=256)
    ref = filtered_lrelu_ref(x, f, f, **kw)
    torch.testing.assert_close(filtered_lrelu(x, f, f, impl="cuda", **kw), ref)
    torch.testing.assert_close(filtered_lrelu(x, f, f, **kw), ref)
    fg = f.clone().requires_grad_(True)  # filter gradients: the reference path
    (gf,) = torch.autograd.grad(filtered_lrelu(x, fg, f, **kw).sum(), fg)
    assert gf.shape == f.shape
