"""ADA augmentation (latentlab.train.augment): recorded official outputs, each transform against hand-built
expectations, gradients (first and second order), the AdaptiveP controller, make_pipe, PRESETS, argument checks.
"""

import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latentlab.errors import ConfigError
from latentlab.train.augment import (
    PRESETS,
    SYM6,
    AdaptiveP,
    AugmentPipe,
    _filter_bank,
    _rotate3d,
    make_pipe,
)

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "ada", "ada_official.npz")
S = 24  # image side: > 21 px, the image-space filter's half-width
# Geometric transforms resample in float32 through three cascaded 12-tap filters (2x up, bilinear, 2x down) of
# inputs in [-1, 1]: the observed rounding error is <= ~8e-6, so exact blits are compared to 2e-5.
GEOM_TOL = 2e-5

# When a blit flips an axis, StyleGAN2-ADA's resampling is not an exact blit: sym6 is not symmetric, so after
# the flip the 2x down-sampler no longer undoes the 2x up-sampler and that axis is left filtered by the even
# taps of sym6 * sym6 (sum 1, centre tap 0.9646). An unflipped axis is restored exactly (the wavelet is
# orthogonal). FLIP_TAPS is that residual filter, computed here from the wavelet coefficients alone.
FLIP_TAPS = np.convolve(SYM6, SYM6)[0::2]


def _load_fixture():
    data = np.load(FIXTURE)
    return {k: data[k] for k in data.files}


OFFICIAL = _load_fixture()
CASES = json.loads(str(OFFICIAL["cases"]))


def _flip_residual(img, dim):
    """img [C, H, W] filtered along `dim` (1 = H, 2 = W) by FLIP_TAPS: out[j] = sum_m taps[m] img[j - 5 + m],
    the borders reflect-padded (as the pipeline pads its input)."""
    x = img.double()
    if dim == 1:
        x = x.transpose(1, 2)
    c, h, w = x.shape
    xp = F.pad(x.reshape(c * h, 1, w), [5, 6], mode="reflect")
    y = F.conv1d(xp, torch.tensor(FLIP_TAPS).view(1, 1, -1)).reshape(c, h, w)
    if dim == 1:
        y = y.transpose(1, 2)
    return y.float()


def _pipe(p=1.0, **kwargs):
    pipe = AugmentPipe(**kwargs)
    pipe.p.fill_(p)
    return pipe


def _rand(shape, lo=-1.0, hi=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) * (hi - lo) + lo


def _maxerr(a, b):
    return float((a - b).abs().max())


# ------------------------------------------------------------------------------------------ official outputs


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_official_augmentpipe(name):
    case = CASES[name]
    pipe = _pipe(case["p"], **case["kwargs"])
    x = torch.from_numpy(OFFICIAL["input_" + case["input"]])
    torch.manual_seed(case["seed"])
    got = pipe(x)
    expected = OFFICIAL[name]
    assert got.shape == expected.shape
    assert _maxerr(got, torch.from_numpy(expected)) <= 1e-5


def test_fixture_covers_every_transform():
    on = {k for case in CASES.values() for k, v in case["kwargs"].items() if k in PRESETS["bgcfnc"] and v > 0}
    assert on == set(PRESETS["bgcfnc"])
    assert {case["input"] for case in CASES.values()} == {"rgb", "grey", "rect"}


# ------------------------------------------------------------------------------------------ p = 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_p0_is_identity_and_draws_nothing(dtype):
    pipe = _pipe(0.0, **PRESETS["bgcfnc"])
    x = _rand([4, 3, S, S]).to(dtype)
    before = x.clone()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    y = pipe(x)
    assert torch.equal(torch.get_rng_state(), state)
    assert y.dtype == dtype and torch.equal(y, before)
    # the same pipe at p = 1 does change the images and does draw random numbers
    pipe.p.fill_(1.0)
    y = pipe(x)
    assert not torch.equal(torch.get_rng_state(), state)
    assert _maxerr(y, before) > 0.1


# ------------------------------------------------------------------------------------------ pixel blitting


def test_xflip_is_input_or_its_mirror():
    x = _rand([32, 3, S, S])
    torch.manual_seed(0)
    y = _pipe(xflip=1)(x)
    flipped = []
    for i in range(32):
        same = _maxerr(y[i], x[i]) <= GEOM_TOL
        mirror = _maxerr(y[i], _flip_residual(x[i].flip(-1), 2)) <= GEOM_TOL
        assert same != mirror, f"image {i}: neither the input nor its mirror"
        flipped.append(mirror)
    assert 0 < sum(flipped) < 32
    # the residual filter is mild: on a smooth image the mirror is the plain flip to ~2 % of the range
    r = torch.arange(S, dtype=torch.float32)
    smooth = torch.cos(math.pi * r / (S - 1)).expand(3, S, S) * torch.tensor([1.0, 0.5, -0.7]).view(3, 1, 1)
    assert _maxerr(_flip_residual(smooth.flip(-1), 2), smooth.flip(-1)) < 0.02


def test_rotate90_is_one_of_four_rotations():
    # Convention: a draw i rotates the image i * 90 degrees counter-clockwise as displayed (row 0 on top), i.e.
    # torch.rot90(x, i, dims=(2, 3)): out[r, c] = in[c, W-1-r] for i = 1 (G_inv maps (x, y) -> (-y, x)).
    # Odd i flips the H axis of the rotated image, i = 2 both axes (see FLIP_TAPS).
    n = 32
    x = _rand([n, 3, S, S])
    torch.manual_seed(5)
    y = _pipe(rotate90=1)(x)
    ks = []
    for i in range(n):
        matches = []
        for k in range(4):
            r = torch.rot90(x[i], k, dims=(1, 2))
            expected = [r, _flip_residual(r, 1), _flip_residual(_flip_residual(r, 1), 2), _flip_residual(r, 2)][k]
            if _maxerr(y[i], expected) <= GEOM_TOL:
                matches.append(k)
        assert len(matches) == 1, f"image {i}: matches rotations {matches}"
        ks.append(matches[0])
    assert set(ks) == {0, 1, 2, 3}
    # the pipeline's first draw is i = floor(4 u) per image (the official order): the direction is as stated
    torch.manual_seed(5)
    assert ks == torch.floor(torch.rand([n]) * 4).long().tolist()


@pytest.mark.parametrize("xint_max", [0.125, 0.25])
def test_xint_is_an_integer_shift(xint_max):
    n = 16
    bound = round(xint_max * S)
    x = _rand([n, 3, S, S])
    torch.manual_seed(7)
    y = _pipe(xint=1, xint_max=xint_max)(x)
    xp = F.pad(x, [bound] * 4, mode="reflect")  # the pipeline reflect-pads what comes in from outside
    shifts = []
    for i in range(n):
        found = [
            (tx, ty)
            for tx in range(-bound, bound + 1)
            for ty in range(-bound, bound + 1)
            if _maxerr(y[i], xp[i, :, bound - ty : bound - ty + S, bound - tx : bound - tx + S]) <= GEOM_TOL
        ]
        assert len(found) == 1, f"image {i}: not one integer shift within {bound} px ({found})"
        shifts.append(found[0])
    assert len(set(shifts)) > 4 and any(abs(tx) == bound or abs(ty) == bound for tx, ty in shifts)
    # content moves by +round(t * size), t = (2u - 1) * xint_max drawn per image as [x, y] (official order)
    torch.manual_seed(7)
    t = (torch.rand([n, 2]) * 2 - 1) * xint_max
    assert shifts == [tuple(v) for v in torch.round(t * S).long().tolist()]


# ------------------------------------------------------------------------------------------ colour


def test_brightness_adds_one_offset_per_image():
    n = 64
    x = _rand([n, 3, S, S])
    torch.manual_seed(0)
    d = _pipe(brightness=1)(x) - x
    b = d[:, 0, 0, 0]
    assert (d - b.view(n, 1, 1, 1)).abs().max() <= 1e-6
    assert (b.abs() > 1e-4).sum() >= n - 2
    assert 0.12 < float(b.std()) < 0.28  # brightness_std 0.2
    torch.manual_seed(0)
    d = _pipe(brightness=1, brightness_std=0.05)(x) - x
    assert 0.03 < float(d[:, 0, 0, 0].std()) < 0.07


def test_contrast_scales_each_image():
    n = 64
    x = _rand([n, 3, S, S], 0.5, 1.0)
    torch.manual_seed(1)
    ratio = _pipe(contrast=1)(x) / x
    k = ratio[:, 0, 0, 0]
    assert (ratio - k.view(n, 1, 1, 1)).abs().max() <= 1e-5 * float(k.max())
    assert (k > 0).all() and ((k - 1).abs() > 1e-3).sum() >= n - 2
    assert 0.3 < float(torch.log2(k).std()) < 0.7  # contrast_std 0.5 (log2)


def test_lumaflip_is_identity_or_householder():
    n = 32
    x = _rand([n, 3, S, S])
    torch.manual_seed(2)
    y = _pipe(lumaflip=1)(x)
    # I - 2 v v^T with v = (1, 1, 1) / sqrt(3): out = in - 2/3 * (r + g + b), per pixel
    reflected = x - 2 / 3 * x.sum(dim=1, keepdim=True)
    kinds = []
    for i in range(n):
        same, refl = _maxerr(y[i], x[i]) <= 1e-6, _maxerr(y[i], reflected[i]) <= 1e-6
        assert same != refl
        kinds.append(refl)
    assert 0 < sum(kinds) < n


def test_rotate3d_helper_hand_values():
    luma = torch.tensor([1.0, 1, 1, 0]) / math.sqrt(3)
    full = _rotate3d(luma, torch.tensor([2 * math.pi]), 1, "cpu")[0]
    assert _maxerr(full, torch.eye(4)) <= 1e-6
    # a third of a turn about the grey axis permutes the channels cyclically: R -> G -> B -> R
    third = _rotate3d(luma, torch.tensor([2 * math.pi / 3]), 1, "cpu")[0]
    perm = torch.tensor([[0.0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
    assert _maxerr(third, perm) <= 1e-6
    # a quarter turn about z is the 2-D rotation in the x-y plane; batched angles give one matrix each
    quarter = _rotate3d(torch.tensor([0.0, 0, 1]), torch.tensor([math.pi / 2, 0.0]), 2, "cpu")
    assert _maxerr(quarter[0, :3, :3], torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])) <= 1e-6
    assert _maxerr(quarter[1], torch.eye(4)) <= 1e-6


@pytest.mark.parametrize("hue_max", [1.0, 0.25])
def test_hue_is_a_rotation_about_the_grey_axis(hue_max):
    n = 16
    x = _rand([n, 3, S, S], seed=3)
    torch.manual_seed(3)
    y = _pipe(hue=1, hue_max=hue_max)(x)
    assert _maxerr(y.mean(dim=1), x.mean(dim=1)) <= 1e-6  # luma (mean of RGB) kept per pixel
    angles = []
    for i in range(n):
        a, b = x[i].reshape(3, -1).double(), y[i].reshape(3, -1).double()
        R = b @ torch.linalg.pinv(a)  # the per-image colour matrix, recovered from the pixels
        assert float((R @ a - b).abs().max()) <= 1e-5  # linear, no offset
        assert float((R @ R.T - torch.eye(3, dtype=torch.float64)).abs().max()) <= 1e-5
        assert abs(float(torch.linalg.det(R)) - 1) <= 1e-5
        assert float((R @ torch.ones(3, dtype=torch.float64) - 1).abs().max()) <= 1e-5
        angles.append(math.acos(max(-1.0, min(1.0, (float(torch.trace(R)) - 1) / 2))))
    assert max(angles) <= math.pi * hue_max + 1e-3
    assert sum(a > math.pi * hue_max / 4 for a in angles) >= n // 2


def test_saturation_scales_chroma_and_zero_gives_grey():
    # saturation_std 20: s = 2^(20 z) is below 2^-20 for z < -1, so some images come out grey
    n = 32
    x = _rand([n, 3, S, S], seed=4)
    torch.manual_seed(4)
    y = _pipe(saturation=1, saturation_std=20)(x)
    mean = x.double().mean(dim=1, keepdim=True)
    chroma_in, chroma_out = x.double() - mean, y.double() - mean
    grey = 0
    for i in range(n):
        s = float((chroma_out[i] * chroma_in[i]).sum() / chroma_in[i].square().sum())
        assert s >= 0
        tol = 1e-5 * max(1.0, s)
        assert float((chroma_out[i] - s * chroma_in[i]).abs().max()) <= tol  # chroma scaled, luma kept
        if s < 1e-6:
            grey += 1
            assert _maxerr(y[i], mean[i].float().expand(3, S, S)) <= 1e-6  # every channel = mean of RGB
    assert grey >= 2
    # with the default saturation_std 1: s = 2^N(0, 1) per image
    torch.manual_seed(4)
    chroma_out = _pipe(saturation=1)(x).double() - mean
    s = (chroma_out * chroma_in).flatten(1).sum(1) / chroma_in.square().flatten(1).sum(1)
    assert 0.7 < float(torch.log2(s).std()) < 1.3
    torch.manual_seed(4)
    d = _pipe(saturation=1)(x) - x
    assert _maxerr(d.mean(dim=1), torch.zeros(n, S, S)) <= 1e-5 and float(d.abs().max()) > 0.1


def test_greyscale_colour_paths():
    x = _rand([2, 1, S, S])
    torch.manual_seed(0)
    y = _pipe(**PRESETS["bgcfnc"])(x)
    assert y.shape == x.shape and torch.isfinite(y).all() and _maxerr(y, x) > 0.1
    # luma flip of a grey pixel: the mean of the Householder rows (each summing to -1) gives out = -in
    xs = _rand([16, 1, S, S])
    torch.manual_seed(1)
    ys = _pipe(lumaflip=1)(xs)
    kinds = [_maxerr(ys[i], -xs[i]) <= 1e-6 for i in range(16)]
    assert all(k or _maxerr(ys[i], xs[i]) <= 1e-6 for i, k in enumerate(kinds)) and 0 < sum(kinds) < 16
    # hue and saturation need chroma: on grey images they do nothing
    assert torch.equal(_pipe(hue=1, saturation=1)(xs), xs)


def test_two_channels_refused_by_colour_but_not_by_geometry():
    x = _rand([2, 2, S, S])
    for kw in [dict(brightness=1), dict(hue=1), PRESETS["bgc"]]:
        with pytest.raises(ConfigError, match="1 or 3 channels"):
            _pipe(**kw)(x)
    y = _pipe(xflip=1, xint=1)(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


# ------------------------------------------------------------------------------------------ filtering


def test_filter_bank_splits_the_unit_impulse():
    bank = _filter_bank()
    assert bank.shape == (4, 43)
    impulse = np.zeros(43)
    impulse[21] = 1
    np.testing.assert_allclose(bank.sum(0), impulse, atol=1e-12)
    np.testing.assert_allclose(bank.sum(1), [1, 0, 0, 0], atol=1e-12)  # band 0 alone passes DC
    np.testing.assert_allclose(bank, bank[:, ::-1], atol=1e-12)  # zero-phase bands
    # octave bands, lowest first: frequency responses at DC, pi/2 (the top two bands' crossover) and Nyquist
    taps = np.arange(43) - 21

    def response(w):
        return (bank * np.cos(w * taps)).sum(1)

    np.testing.assert_allclose(response(0), [1, 0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(response(np.pi / 2), [0, 0, 0.5, 0.5], atol=1e-9)
    np.testing.assert_allclose(response(np.pi), [0, 0, 0, 1], atol=1e-9)
    assert [int(np.argmax(response(w))) for w in np.pi * np.array([3 / 64, 3 / 16, 3 / 8, 3 / 4])] == [0, 1, 2, 3]


@pytest.mark.parametrize("kw", [dict(imgfilter_std=0), dict(imgfilter_bands=(0, 0, 0, 0))])
def test_filter_with_unit_gains_is_identity(kw):
    x = _rand([4, 3, S, S])
    torch.manual_seed(0)
    assert _maxerr(_pipe(imgfilter=1, **kw)(x), x) <= 1e-5
    torch.manual_seed(0)
    assert _maxerr(_pipe(imgfilter=1)(x), x) > 0.05  # with the default gains it does filter


@pytest.mark.parametrize("band", [0, 3])
def test_filter_keeps_the_expected_power(band):
    # One band amplified by t, then all gains divided by n = sqrt(sum(expected_power * gain^2)), expected_power
    # = (10, 1, 1, 1) / 13, so 10 g0^2 + g1^2 + g2^2 + g3^2 = 13. The 1-D filter runs along rows and columns: a
    # constant channel comes out scaled by g0^2 (DC passes band 0 only), a checkerboard by g3^2 (Nyquist passes
    # band 3 only). The other gains are 1 / n, equal to g3 (band 0 amplified) or g0 (band 3 amplified).
    n = 16
    r = torch.arange(S)
    checker = ((r[:, None] + r[None, :]) % 2 * 2 - 1).float()
    x = torch.stack([torch.ones(S, S), checker, _rand([S, S])]).expand(n, 3, S, S)
    bands = [0, 0, 0, 0]
    bands[band] = 1
    torch.manual_seed(9)
    y = _pipe(imgfilter=1, imgfilter_bands=bands)(x)
    g0sq = y[:, 0, 0, 0]
    g3sq = y[:, 1, 0, 0] * checker[0, 0]
    assert _maxerr(y[:, 0], g0sq.view(n, 1, 1).expand(n, S, S)) <= 1e-5
    assert _maxerr(y[:, 1], g3sq.view(n, 1, 1) * checker) <= 1e-5
    lhs = 10 * g0sq + 3 * g3sq if band == 0 else 12 * g0sq + g3sq
    assert _maxerr(lhs, torch.full([n], 13.0)) <= 1e-4
    assert ((g0sq - 1).abs() > 1e-3).sum() >= n - 2  # and the gains were random


def test_filter_refuses_small_images():
    with pytest.raises(ConfigError, match="larger than 21 px"):
        _pipe(imgfilter=1)(_rand([1, 3, 16, 16]))


# ------------------------------------------------------------------------------------------ corruptions


def test_noise_is_gaussian_with_one_std_per_image():
    n = 64
    x = _rand([n, 3, S, S])
    torch.manual_seed(6)
    d = (_pipe(noise=1)(x) - x).double()
    sigma = d.flatten(1).std(dim=1)
    mean = d.flatten(1).mean(dim=1)
    assert (mean.abs() <= 5 * sigma / math.sqrt(3 * S * S) + 1e-12).all()
    per_channel = d.flatten(2).std(dim=2)  # [n, 3]: the same sigma in every channel
    busy = sigma > 1e-3
    assert busy.sum() >= n - 4
    assert ((per_channel[busy] / sigma[busy, None] - 1).abs() <= 0.2).all()
    # sigma ~ |N(0, 1)| * 0.1: mean 0.1 * sqrt(2 / pi) = 0.0798, median 0.1 * 0.674
    assert abs(float(sigma.mean()) - 0.0798) < 0.025
    assert 0.045 < float(sigma.median()) < 0.095


@pytest.mark.parametrize("cutout_size, side", [(0.5, 12), (0.25, 6)])
def test_cutout_zeroes_one_clipped_square(cutout_size, side):
    n = 32
    x = _rand([n, 3, S, S], 0.5, 1.0)
    torch.manual_seed(8)
    y = _pipe(cutout=1, cutout_size=cutout_size)(x)
    clipped = 0
    for i in range(n):
        zero = y[i] == 0
        assert (zero == zero[0]).all()  # the same hole in every channel
        mask = zero[0]
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert len(rows) and len(cols)
        assert torch.equal(mask, mask.any(1)[:, None] & mask.any(0)[None, :])  # a rectangle
        for idx in (rows, cols):
            assert torch.equal(idx, torch.arange(int(idx[0]), int(idx[-1]) + 1))  # contiguous
            assert len(idx) == side or (len(idx) < side and (idx[0] == 0 or idx[-1] == S - 1))
        clipped += len(rows) < side or len(cols) < side
        assert torch.equal(y[i][:, ~mask], x[i][:, ~mask])  # the rest untouched
    assert 0 < clipped < n


# ------------------------------------------------------------------------------------------ gradients


@pytest.mark.parametrize("preset", ["blit", "geom", "color", "filter", "noise", "cutout", "bgcfnc"])
def test_directional_derivative_matches_finite_difference(preset):
    pipe = _pipe(**PRESETS[preset])
    x = _rand([1, 3, S, S], seed=1)
    u, v = _rand([1, 3, S, S], seed=2), _rand([1, 3, S, S], seed=3)

    def f(inp):
        torch.manual_seed(11)  # the same random transform on every call
        return pipe(inp)

    xg = x.clone().requires_grad_(True)
    out = f(xg)
    (jtv,) = torch.autograd.grad(out, xg, v)
    analytic = float((jtv * u).sum())
    eps = 1e-2  # the pipeline is affine in the image for fixed draws: the central difference is exact
    numeric = float(((f(x + eps * u) - f(x - eps * u)) / (2 * eps) * v).sum())
    assert jtv.abs().sum() > 0
    assert analytic == pytest.approx(numeric, rel=1e-2, abs=1e-3)


def test_double_backward_through_augmentation():
    pipe = _pipe(**PRESETS["bgcfnc"])
    g = torch.Generator().manual_seed(0)
    w = (torch.randn([4, 3, 3, 3], generator=g) * 0.3).requires_grad_(True)
    x = _rand([2, 3, S, S]).requires_grad_(True)
    torch.manual_seed(0)
    logits = F.softplus(F.conv2d(pipe(x), w)).sum()  # a tiny D, curved so that R1 has a second derivative
    (grad,) = torch.autograd.grad(logits, x, create_graph=True)
    grad.square().sum().backward()
    for t in (x.grad, w.grad):
        assert t is not None and torch.isfinite(t).all() and t.abs().sum() > 0


# ------------------------------------------------------------------------------------------ AdaptiveP


def test_adaptive_p_hand_values():
    ada = AdaptiveP(target=0.6, interval=4, speed_kimg=500)
    step = 16 * 4 / (500 * 1000)  # batch 16, interval 4, 500 kimg: 0.000128
    assert step == pytest.approx(0.000128, rel=1e-12)
    ada.observe(torch.tensor([1.5, 2.0, -3.0, 4.0]))
    ada.observe(torch.tensor([[0.5], [0.7]]))  # signs: +1 +1 -1 +1 +1 +1 -> r_t = 4 / 6
    for s in (1, 2, 3):
        assert ada.update(s, 16, 0.5) is None
    assert (ada.sign_sum, ada.count) == (4.0, 6)  # not reset by the non-adjusting steps
    assert ada.update(4, 16, 0.5) == pytest.approx(0.5 + 0.000128, abs=6e-8)  # float32 p, as the buffer
    assert ada.last_rt == pytest.approx(4 / 6)
    assert (ada.sign_sum, ada.count) == (0.0, 0)
    assert ada.update(8, 16, 0.5) is None  # nothing observed since

    ada.observe(-torch.ones(5))  # r_t = -1 < 0.6: down, clamped at 0
    assert ada.update(12, 16, 0.25) == pytest.approx(0.25 - 0.000128, abs=3e-8)
    ada.observe(-torch.ones(5))
    assert ada.update(16, 16, 0.0001) == 0.0
    ada.observe(torch.tensor([-1.0, 2.0]))
    assert ada.update(20, 32, 0.0) == 0.0 and ada.last_rt == 0.0

    exact = AdaptiveP(target=0.5, interval=2, speed_kimg=10)
    exact.observe(torch.tensor([1.0, 1.0, 1.0, -1.0]))  # r_t = 0.5 = target: p stays
    assert exact.update(2, 64, 0.375) == 0.375
    exact.observe(torch.tensor([1.0]))  # r_t = 1 > 0.5: +64 * 2 / 10000
    assert exact.update(4, 64, 0.375) == pytest.approx(0.3878, abs=3e-8)


def test_adaptive_p_sync_sees_the_totals():
    ada = AdaptiveP(target=0.6, interval=1)
    ada.observe(torch.ones(4))  # this process alone: r_t = 1
    seen = []

    def sync(t):  # another process reports 6 negative logits
        seen.append(t.clone())
        return t + torch.tensor([-6.0, 6.0], dtype=t.dtype)

    assert ada.update(1, 8, 0.5, sync=sync) == pytest.approx(0.5 - 8 / 500000, abs=6e-8)
    assert seen[0].tolist() == [4.0, 4.0] and ada.last_rt == pytest.approx(-0.2)


def test_adaptive_p_state_round_trip():
    a = AdaptiveP(target=0.6, interval=4, speed_kimg=100)
    a.observe(torch.tensor([1.0, -1.0, 1.0]))
    assert a.update(4, 8, 0.2) is not None
    a.observe(torch.tensor([1.0, 1.0, -2.0]))
    b = AdaptiveP(target=0.6, interval=4, speed_kimg=100)
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict() == {"sign_sum": 1.0, "count": 3, "last_rt": pytest.approx(1 / 3)}
    for ada in (a, b):
        ada.observe(torch.tensor([-1.0, -1.0, -1.0]))  # r_t = (1 - 3) / 6 < 0.6
    pa, pb = a.update(8, 8, 0.2), b.update(8, 8, 0.2)
    assert pa == pb == pytest.approx(0.2 - 8 * 4 / 100000, abs=3e-8)
    assert a.state_dict() == b.state_dict()
    fresh = AdaptiveP()
    fresh.load_state_dict({"sign_sum": 2, "count": 2})  # last_rt optional
    assert fresh.last_rt is None and fresh.update(4, 4, 0.0) == pytest.approx(16 / 500000, abs=1e-9)


@pytest.mark.parametrize(
    "kw",
    [
        dict(target=-0.1),
        dict(target=1.5),
        dict(target="0.6"),
        dict(target=float("nan")),
        dict(interval=0),
        dict(interval=2.5),
        dict(speed_kimg=0),
        dict(speed_kimg=-5),
        dict(speed_kimg=float("inf")),
        dict(speed_kimg=float("nan")),
    ],
)
def test_adaptive_p_bad_arguments(kw):
    with pytest.raises(ConfigError):
        AdaptiveP(**kw)


# ------------------------------------------------------------------------------------------ make_pipe, arguments


def test_make_pipe_modes():
    assert make_pipe("noaug") is None
    ada = make_pipe("ada")
    assert isinstance(ada, AugmentPipe) and float(ada.p) == 0.0
    assert {k: v for k, v in ada.init_kwargs.items() if k in PRESETS["bgcfnc"] and v > 0} == PRESETS["bgc"]
    fixed = make_pipe("fixed", "bgcfnc", 0.3)
    assert float(fixed.p) == pytest.approx(0.3) and fixed.p.dtype == torch.float32
    assert all(getattr(fixed, k) == 1.0 for k in PRESETS["bgcfnc"])
    assert fixed.noise_std == 0.1 and fixed.cutout_size == 0.5  # the defaults


@pytest.mark.parametrize(
    "args",
    [("augment",), ("ADA",), ("ada", "bgx"), ("fixed", "bgc", -0.1), ("ada", "bgc", 1.5), ("ada", "bgc", float("nan"))],
)
def test_make_pipe_refuses(args):
    with pytest.raises(ConfigError):
        make_pipe(*args)


@pytest.mark.parametrize(
    "kw",
    [
        dict(xflip=-1),
        dict(hue=float("nan")),
        dict(noise_std=float("inf")),
        dict(scale_std=-0.2),
        dict(cutout_size=1.5),
        dict(xint_max=2),
        dict(brightness="1"),
        dict(imgfilter_bands=(1, 1, 1)),
        dict(imgfilter_bands=(1, 1, -1, 1)),
        dict(imgfilter_bands=(1, 1, float("nan"), 1)),
        dict(imgfilter_bands=3),
    ],
)
def test_augmentpipe_refuses_bad_arguments(kw):
    with pytest.raises(ConfigError):
        AugmentPipe(**kw)


@pytest.mark.parametrize(
    "images",
    [
        torch.zeros(3, S, S),
        torch.zeros(1, 1, 3, S, S),
        torch.zeros(1, 3, S, S, dtype=torch.uint8),
        np.zeros((1, 3, S, S)),
    ],
    ids=["3d", "5d", "uint8", "numpy"],
)
def test_augmentpipe_refuses_bad_input(images):
    with pytest.raises(ConfigError, match="float"):
        _pipe(**PRESETS["bgc"])(images)


def test_presets_are_unions_of_their_parts():
    parts = {k: PRESETS[k] for k in ("blit", "geom", "color", "filter", "noise", "cutout")}
    keys = [k for part in parts.values() for k in part]
    assert len(keys) == len(set(keys))  # the groups are disjoint
    assert all(v == 1 for part in parts.values() for v in part.values())
    assert set(parts["blit"]) == {"xflip", "rotate90", "xint"}
    assert set(parts["geom"]) == {"scale", "rotate", "aniso", "xfrac"}
    assert set(parts["color"]) == {"brightness", "contrast", "lumaflip", "hue", "saturation"}
    expected = dict(parts["blit"])
    for name, part in zip(["bg", "bgc", "bgcf", "bgcfn", "bgcfnc"], ["geom", "color", "filter", "noise", "cutout"]):
        expected = {**expected, **parts[part]}  # each union adds one group to the previous one
        assert PRESETS[name] == expected, name
    pipe = AugmentPipe.from_preset("bgc", xflip=0, hue_max=0.5)
    assert pipe.xflip == 0 and pipe.hue_max == 0.5 and pipe.rotate90 == 1 and pipe.imgfilter == 0
    with pytest.raises(ConfigError):
        AugmentPipe.from_preset("bgcx")
