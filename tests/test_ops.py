"""Reference ops against naive formulas written out with NumPy loops, plus gradient checks."""

import math

import numpy as np
import pytest
import torch

from latentlab.ops import bias_act, conv2d_resample, downsample2d, modulated_conv2d, setup_filter, upfirdn2d, upsample2d

RNG = np.random.default_rng(0)

NAIVE_ACTS = {
    "linear": (lambda x, a: x, 0.0, 1.0),
    "relu": (lambda x, a: np.maximum(x, 0), 0.0, math.sqrt(2)),
    "lrelu": (lambda x, a: np.where(x >= 0, x, a * x), 0.2, math.sqrt(2)),
    "tanh": (lambda x, a: np.tanh(x), 0.0, 1.0),
    "sigmoid": (lambda x, a: 1 / (1 + np.exp(-x)), 0.0, 1.0),
    "elu": (lambda x, a: np.where(x >= 0, x, a * (np.exp(x) - 1)), 1.0, 1.0),
    "selu": (lambda x, a: 1.0507009873554805 * np.where(x >= 0, x, 1.6732632423543772 * (np.exp(x) - 1)), 0.0, 1.0),
    "softplus": (lambda x, a: np.log1p(np.exp(x)), 0.0, 1.0),
    "swish": (lambda x, a: x / (1 + np.exp(-x)), 0.0, math.sqrt(2)),
}


@pytest.mark.parametrize("act", sorted(NAIVE_ACTS))
@pytest.mark.parametrize("dim", [1, 2, -1])
def test_bias_act_matches_formula(act, dim):
    x = RNG.standard_normal((3, 4, 5, 2)) * 2
    b = RNG.standard_normal(x.shape[dim])
    func, alpha, gain = NAIVE_ACTS[act]
    shape = [1] * 4
    shape[dim] = -1  # negative dims count from the end, as in NumPy
    expected = func(x + b.reshape(shape), alpha) * gain
    got = bias_act(torch.from_numpy(x), torch.from_numpy(b), dim=dim, act=act).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    # explicit alpha / gain / clamp
    expected = np.clip(func(x + b.reshape(shape), 0.3) * 1.7, -0.5, 0.5)
    got = bias_act(torch.from_numpy(x), torch.from_numpy(b), dim=dim, act=act, alpha=0.3, gain=1.7, clamp=0.5).numpy()
    if act != "selu":  # selu has fixed constants
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_bias_act_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown activation"):
        bias_act(torch.zeros(2, 3), act="gelu2")
    with pytest.raises(ValueError, match="bias of shape"):
        bias_act(torch.zeros(2, 3), torch.zeros(4))


def naive_upfirdn2d(x, f, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """Textbook definition: zero-stuff, pad/crop, true 2-D convolution, decimate."""
    n, c, h, w = x.shape
    ux, uy = up
    dx, dy = down
    u = np.zeros((n, c, h * uy, w * ux))
    u[:, :, ::uy, ::ux] = x
    px0, px1, py0, py1 = pad
    big = np.zeros((n, c, u.shape[2] + abs(py0) + abs(py1), u.shape[3] + abs(px0) + abs(px1)))
    big[:, :, abs(py0) : abs(py0) + u.shape[2], abs(px0) : abs(px0) + u.shape[3]] = u
    top = abs(py0) - py0  # rows to drop when cropping
    left = abs(px0) - px0
    big = big[:, :, top : big.shape[2] - (abs(py1) - py1), left : big.shape[3] - (abs(px1) - px1)]
    if f.ndim == 1:
        f = np.outer(f, f)
        g = gain
    else:
        g = gain
    fh, fw = f.shape
    k = f if flip_filter else f[::-1, ::-1]
    oh, ow = big.shape[2] - fh + 1, big.shape[3] - fw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = (big[:, :, i : i + fh, j : j + fw] * k).sum(axis=(2, 3))
    return out[:, :, ::dy, ::dx] * g


CASES = [
    dict(up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0)),
    dict(up=(2, 2), down=(1, 1), pad=(2, 1, 2, 1)),
    dict(up=(1, 1), down=(2, 2), pad=(1, 1, 1, 1)),
    dict(up=(3, 2), down=(1, 1), pad=(1, 2, 0, 3)),
    dict(up=(1, 1), down=(2, 3), pad=(0, 1, 2, 0)),
    dict(up=(2, 2), down=(2, 2), pad=(-1, 2, 1, -2)),
    dict(up=(1, 1), down=(1, 1), pad=(-1, -1, -1, -2)),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("sep", [False, True])
def test_upfirdn2d_matches_naive(case, flip, sep):
    x = RNG.standard_normal((2, 3, 7, 6))
    f = RNG.standard_normal(4) if sep else RNG.standard_normal((3, 4))
    expected = naive_upfirdn2d(x, f, case["up"], case["down"], case["pad"], flip, gain=2.5)
    got = upfirdn2d(
        torch.from_numpy(x),
        torch.from_numpy(f),
        up=case["up"],
        down=case["down"],
        padding=case["pad"],
        flip_filter=flip,
        gain=2.5,
    ).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "taps, up, pad",
    [
        (12, (2, 2), (6, 5, 6, 5)),  # StyleGAN3's up-sampling layers
        (24, (4, 4), (12, 11, 12, 11)),
        (3, (4, 1), (0, 0, 1, 1)),  # fewer taps than phases: some output phases meet no sample
        (5, (3, 2), (-2, 4, 3, -1)),  # taps not a multiple of up, crops
        (6, (2, 3), (-7, -3, 0, 0)),  # crops beyond the first phases' reach
    ],
)
def test_upsampling_by_phases_matches_naive(taps, up, pad):
    """Separable filters up-sample by phases (no zeros inserted); the sums equal the textbook definition."""
    x = RNG.standard_normal((2, 3, 9, 8))
    f = RNG.standard_normal(taps)
    for flip in (False, True):
        expected = naive_upfirdn2d(x, f, up, (1, 1), pad, flip, gain=1.7)
        got = upfirdn2d(torch.from_numpy(x), torch.from_numpy(f), up=up, padding=pad, flip_filter=flip, gain=1.7)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_upsampling_by_phases_gradients():
    torch.manual_seed(0)
    x = _d(1, 2, 5, 4)
    f = torch.randn(5, dtype=torch.float64)
    fn = lambda x: upfirdn2d(x, f, up=(3, 2), padding=(-1, 2, 2, 1))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_upfirdn2d_refuses_empty_output():
    with pytest.raises(ValueError, match="empty"):
        upfirdn2d(torch.zeros(1, 1, 3, 3), torch.ones(4, 4), padding=-1)


def test_setup_filter_and_resample_helpers():
    f = setup_filter([1, 3, 3, 1])
    k = np.array([1, 3, 3, 1]) / 8
    np.testing.assert_allclose(f.numpy(), np.outer(k, k), rtol=1e-7)
    assert setup_filter([1] * 8).ndim == 1  # 8 taps or more stay separable
    x = torch.from_numpy(RNG.standard_normal((1, 2, 5, 5)))
    up = upsample2d(x, f.double())
    assert up.shape == (1, 2, 10, 10)
    np.testing.assert_allclose(
        up.numpy(), naive_upfirdn2d(x.numpy(), f.double().numpy(), (2, 2), (1, 1), (2, 1, 2, 1), gain=4)
    )
    # a constant image stays constant away from the borders under both resamplers
    ones = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    assert torch.allclose(upsample2d(ones, f.double())[..., 3:-3, 3:-3], torch.tensor(1.0, dtype=torch.float64))
    assert torch.allclose(downsample2d(ones, f.double())[..., 1:-1, 1:-1], torch.tensor(1.0, dtype=torch.float64))


def naive_corr(x, w, groups=1):
    n, cin, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    out = np.zeros((n, cout, h - kh + 1, wd - kw + 1))
    per = cout // groups
    for o in range(cout):
        gi = o // per
        xs = x[:, gi * cg : (gi + 1) * cg]
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                out[:, o, i, j] = (xs[:, :, i : i + kh, j : j + kw] * w[o]).sum(axis=(1, 2, 3))
    return out


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2)])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("flip_weight", [True, False])
def test_conv2d_resample_matches_slow_path(up, down, k, flip_weight):
    x = RNG.standard_normal((2, 3, 6, 6))
    w = RNG.standard_normal((4, 3, k, k))
    f = setup_filter([1, 3, 3, 1]).double().numpy()
    p = k // 2
    wc = w if flip_weight else w[:, :, ::-1, ::-1]
    if up > 1:
        pad = (p + 2, p + 1, p + 2, p + 1)
        expected = naive_corr(naive_upfirdn2d(x, f, (up, up), (1, 1), pad, gain=up * up), wc)
    elif down > 1:
        pad = (p + 1, p + 1, p + 1, p + 1)
        expected = naive_corr(naive_upfirdn2d(x, f, (1, 1), (1, 1), pad), wc)[:, :, ::down, ::down]
    else:
        expected = naive_corr(naive_upfirdn2d(x, f[:1, :1] * 0 + 1, pad=(p, p, p, p)), wc)
    got = conv2d_resample(
        torch.from_numpy(x),
        torch.from_numpy(w.copy()),
        f=torch.from_numpy(f),
        up=up,
        down=down,
        padding=p,
        flip_weight=flip_weight,
    ).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv2d_matches_per_sample_formula(up, demodulate):
    n, cin, cout = 3, 4, 5
    x = RNG.standard_normal((n, cin, 5, 5))
    w = RNG.standard_normal((cout, cin, 3, 3))
    s = RNG.standard_normal((n, cin))
    noise = RNG.standard_normal((n, 1, 5 * up, 5 * up))
    f = setup_filter([1, 3, 3, 1]).double()
    outs = []
    for i in range(n):
        wi = w * s[i][None, :, None, None]
        if demodulate:
            wi = wi / np.sqrt((wi**2).sum(axis=(1, 2, 3), keepdims=True) + 1e-8)
        outs.append(
            conv2d_resample(
                torch.from_numpy(x[i : i + 1]), torch.from_numpy(wi), f=f, up=up, padding=1, flip_weight=up == 1
            ).numpy()
        )
    expected = np.concatenate(outs) + noise
    for fused in (True, False):
        got = modulated_conv2d(
            torch.from_numpy(x),
            torch.from_numpy(w),
            torch.from_numpy(s),
            noise=torch.from_numpy(noise),
            up=up,
            padding=1,
            resample_filter=f,
            demodulate=demodulate,
            flip_weight=up == 1,
            fused_modconv=fused,
        ).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def _d(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("act", ["linear", "lrelu", "tanh", "swish", "elu", "softplus"])
def test_bias_act_gradients(act):
    torch.manual_seed(0)
    x, b = _d(2, 3, 4), _d(3)
    fn = lambda x, b: bias_act(x, b, act=act, clamp=1.5)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


@pytest.mark.parametrize("case", CASES[:4])
def test_upfirdn2d_gradients(case):
    torch.manual_seed(0)
    x = _d(1, 2, 5, 4)
    f = torch.randn(3, 4, dtype=torch.float64)
    fn = lambda x: upfirdn2d(x, f, up=case["up"], down=case["down"], padding=case["pad"])  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("case", CASES[4:])
@pytest.mark.parametrize("sep", [False, True])
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")  # torch.func's own first use
def test_upfirdn2d_gradients_through_strides_and_crops(case, sep):
    """The constant filter's gradient is its adjoint (a transposed per-channel filter, with the rows a stride skips
    given back as output padding); first and second derivatives against finite differences."""
    torch.manual_seed(1)
    x = _d(1, 2, 7, 6)  # sizes the strides do not divide
    f = torch.randn(4, dtype=torch.float64) if sep else torch.randn(3, 4, dtype=torch.float64)
    fn = lambda x: upfirdn2d(x, f, up=case["up"], down=case["down"], padding=case["pad"], gain=1.3)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,), check_forward_ad=True, check_batched_grad=True)
    assert torch.autograd.gradgradcheck(fn, (x,))
    xs = x.detach().expand(3, *x.shape[1:]) * torch.arange(1.0, 4.0, dtype=x.dtype)[:, None, None, None]
    assert torch.equal(torch.func.vmap(fn)(xs[:, None]).squeeze(1), fn(xs))  # torch.func transforms work


def test_upfirdn2d_learned_filter_gets_gradients():
    """A filter that requires grad takes autograd's own path, so it is learned too (first and second order)."""
    torch.manual_seed(2)
    x, f = _d(1, 2, 6, 5), _d(3, 3)
    fn = lambda x, f: upfirdn2d(x, f, down=2, padding=1)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, f))
    assert torch.autograd.gradgradcheck(fn, (x, f))


@pytest.mark.parametrize("up,down,fused", [(1, 1, True), (2, 1, True), (2, 1, False), (1, 2, False)])
def test_modulated_conv_and_resample_gradients(up, down, fused):
    torch.manual_seed(0)
    f = setup_filter([1, 3, 3, 1]).double()
    x, w, s = _d(2, 3, 4, 4), _d(2, 3, 3, 3), _d(2, 3)
    fn = lambda x, w, s: modulated_conv2d(x, w, s, up=up, down=down, padding=1, resample_filter=f, fused_modconv=fused)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, s))
    assert torch.autograd.gradgradcheck(fn, (x, w, s))
