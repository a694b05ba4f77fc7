"""FFHQ-style face alignment (latentlab.inversion.align) and load_targets(align=...).

Expectations are independent of the code: quads worked out by hand, the pixel -> photo mapping of
a linear ramp (each output pixel must show the ramp's value at the point the quad maps it to),
rotated copies that must align back to the same crop, scipy's gaussian_filter for the blur, and
dlib's real detector on a toyfaces render whose true eye and mouth positions are known.
"""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from latentlab.errors import ConfigError, MissingDependency
from latentlab.inversion import align as A
from latentlab.inversion import load_targets

UPRIGHT = A.FaceKeypoints(
    np.array([40.0, 50.0]), np.array([60.0, 50.0]), np.array([42.0, 70.0]), np.array([58.0, 70.0])
)


def kp_of(points):
    p = np.asarray(points, dtype=np.float64)
    return A.FaceKeypoints(p[0], p[1], p[2], p[3])


def rotate_points(points, theta, centre_in, centre_out):
    """Pixel-index coordinates after rotating the photo by theta (radians, clockwise on screen, y down)
    about centre_in and moving that centre to centre_out (continuous coordinates)."""
    R = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    return (np.asarray(points) + 0.5 - centre_in) @ R.T + centre_out - 0.5


def rotate_image(img, theta, size_out, centre_in, centre_out):
    """The photo rotated as `rotate_points` moves its points (PIL's affine map takes output -> input)."""
    Rt = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])  # R^T
    t = np.asarray(centre_in) - Rt @ np.asarray(centre_out)
    data = (Rt[0, 0], Rt[0, 1], t[0], Rt[1, 0], Rt[1, 1], t[1])
    return img.transform(size_out, Image.Transform.AFFINE, data, Image.Resampling.BICUBIC)


def ramp_photo(w, h, sx, sy):
    """R = sx * x, G = sy * y (pixel indices), B = 0: bilinear sampling reproduces it exactly."""
    yy, xx = np.mgrid[:h, :w]
    return Image.fromarray(np.stack([sx * xx, sy * yy, 0 * xx], -1).astype(np.uint8), "RGB")


def face_photo(size=256, kp=None):
    """A drawn face (skin ellipse, eyes, brows, nose, mouth, textured background) whose landmarks are
    exactly `kp`'s points, so alignment has something to line up."""
    rng = np.random.RandomState(0)
    yy, xx = np.mgrid[:size, :size]
    bg = np.stack([60 + 100 * xx / size, 80 + 60 * yy / size, 120 + 40 * np.sin(xx / 9.0) * np.cos(yy / 13.0)], -1)
    bg += rng.normal(0, 4, bg.shape)
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    c = size / 2
    s = size / 256
    d.ellipse([c - 60 * s, c - 80 * s, c + 60 * s, c + 90 * s], fill=(225, 180, 150))
    d.rectangle([c - 70 * s, c - 110 * s, c + 70 * s, c - 70 * s], fill=(90, 50, 30))  # hair
    for ex in (c - 22 * s, c + 22 * s):
        d.ellipse([ex - 9 * s, c - 6 * s, ex + 9 * s, c + 6 * s], fill=(250, 250, 250))
        d.ellipse([ex - 4 * s, c - 4 * s, ex + 4 * s, c + 4 * s], fill=(40, 30, 20))
        d.line([(ex - 12 * s, c - 16 * s), (ex + 12 * s, c - 18 * s)], fill=(70, 40, 20), width=max(1, int(3 * s)))
    d.polygon([(c, c + 5 * s), (c - 8 * s, c + 25 * s), (c + 8 * s, c + 25 * s)], fill=(200, 150, 120))
    d.line(
        [(c - 20 * s, c + 45 * s), (c, c + 50 * s), (c + 20 * s, c + 45 * s)],
        fill=(170, 40, 50),
        width=max(1, int(4 * s)),
    )
    points = np.array([[c - 22 * s, c], [c + 22 * s, c], [c - 20 * s, c + 45 * s], [c + 20 * s, c + 45 * s]]) - 0.5
    return img, kp_of(points)


# ---- geometry --------------------------------------------------------------------------------------------------
def test_quad_of_an_upright_face_by_hand():
    # eye_avg (50, 50), eye_to_eye (20, 0), eye_to_mouth (0, 20): x = (20, 0) - rot90(0, 20) = (40, 0) -> unit (1, 0),
    # scaled by max(2 * 20, 1.8 * 20) = 40; y = (0, 40); c = (50, 50) + 0.1 * (0, 20) = (50, 52)
    quad, qsize = A.alignment_quad(UPRIGHT)
    np.testing.assert_allclose(quad, [[10, 12], [10, 92], [90, 92], [90, 12]])
    assert qsize == 80
    # a long face: eye_to_eye (10, 0), eye_to_mouth (0, 30) -> half side max(20, 54) = 54, c = (50, 53)
    quad, qsize = A.alignment_quad(kp_of([[45, 50], [55, 50], [47, 80], [53, 80]]))
    np.testing.assert_allclose(quad, [[-4, -1], [-4, 107], [104, 107], [104, -1]])
    assert qsize == pytest.approx(108)
    # other constants: half side max(3 * 20, 1 * 20) = 60, c = (50, 50 + 0.5 * 20)
    quad, _ = A.alignment_quad(UPRIGHT, eye_scale=3.0, mouth_scale=1.0, centre_offset=0.5)
    np.testing.assert_allclose(quad, [[-10, 0], [-10, 120], [110, 120], [110, 0]])


def test_quad_of_a_tilted_face_by_hand():
    # eyes (0, 0) and (20, 20) (tilted 45 degrees), mouth corners straight below their midpoint along the face's axis:
    # eye_to_mouth = (-10, 10); x = (20, 20) - rot90(-10, 10) = (30, 30) -> unit (1, 1)/sqrt2, half side
    # max(2 * 20 sqrt2, 1.8 * 10 sqrt2) = 40 sqrt2 -> x = (40, 40), y = rot90(x) = (-40, 40), c = (10, 10) + (-1, 1)
    kp = kp_of([[0, 0], [20, 20], [-5, 25], [5, 15]])
    quad, qsize = A.alignment_quad(kp)
    c, x, y = np.array([9.0, 11.0]), np.array([40.0, 40.0]), np.array([-40.0, 40.0])
    np.testing.assert_allclose(quad, [c - x - y, c - x + y, c + x + y, c + x - y])
    assert qsize == pytest.approx(80 * math.sqrt(2))
    # rotate_level=False keeps the photo's axes with the same size and centre
    quad, _ = A.alignment_quad(kp, rotate_level=False)
    s = 40 * math.sqrt(2)
    np.testing.assert_allclose(quad, [c + [-s, -s], c + [-s, s], c + [s, s], c + [s, -s]])


@pytest.mark.parametrize("theta, scale, shift", [(0.3, 1.0, (5, -7)), (-1.2, 2.5, (100, 40)), (math.pi, 0.5, (0, 0))])
def test_quad_moves_with_the_face(theta, scale, shift):
    """A rotated, scaled and shifted face gives the same transform of the upright face's quad."""
    R = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    move = lambda p: scale * np.asarray(p) @ R.T + shift
    quad, qsize = A.alignment_quad(kp_of(move(UPRIGHT.points())))
    ref, ref_size = A.alignment_quad(UPRIGHT)
    np.testing.assert_allclose(quad, move(ref), atol=1e-9)
    assert qsize == pytest.approx(scale * ref_size)


def test_68_points_give_eye_means_and_mouth_corners():
    lm = np.random.RandomState(0).uniform(0, 100, (68, 2))
    kp = A.keypoints_from_68(lm)
    np.testing.assert_allclose(kp.eye_left, lm[36:42].mean(0))
    np.testing.assert_allclose(kp.eye_right, lm[42:48].mean(0))
    np.testing.assert_array_equal(kp.mouth_left, lm[48])
    np.testing.assert_array_equal(kp.mouth_right, lm[54])


# ---- pixels ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size, scale, theta, out, transform",
    [
        (128, 2, 0.0, 16, 4096),  # the default transform size
        (128, 2, 0.5, 16, 256),  # tilted
        (1014, 0.25, -0.3, 8, 64),  # a 634 px quad for an 8 px output: the photo is shrunk first, by 39 = 1014 / 26
    ],
)
def test_each_output_pixel_shows_the_photo_where_the_quad_maps_it(size, scale, theta, out, transform):
    """On a linear ramp photo the aligned pixel (u, v) must equal the ramp at
    c + x (2 (u + 0.5) / S - 1) + y (2 (v + 0.5) / S - 1), in pixel-index coordinates."""
    centred = (UPRIGHT.points() - [50, 52]) * (size / 128) + (size - 1) / 2  # the quad's centre mid-photo
    kp = kp_of(rotate_points(centred, theta, size / 2, size / 2))
    sx = sy = scale
    photo = ramp_photo(size, size, sx, sy)
    got = np.asarray(A.align_face(photo, kp, out, transform_size=transform)).astype(np.float64)
    quad, qsize = A.alignment_quad(kp)
    assert quad.min() > 4 and quad.max() < size - 5  # inside the photo: no padding involved
    c, x, y = (quad[0] + quad[2]) / 2, (quad[3] - quad[0]) / 2, (quad[1] - quad[0]) / 2
    shrink = int(qsize / out * 0.5)
    if shrink > 1:  # as in the original, quad / shrink on the reduced photo: (shrink - 1) / 2 px down-right
        c = c + (shrink - 1) / 2
    t = (2 * (np.arange(out) + 0.5) / out - 1)[:, None, None]
    where = c + t.transpose(1, 0, 2) * x + t * y  # [v, u, 2]
    expected = np.stack([sx * where[..., 0], sy * where[..., 1]], -1)
    inner = slice(1, out - 1)  # Lanczos rings a little at the output's own edge
    err = got[inner, inner, :2] - expected[inner, inner]
    assert np.abs(err).max() <= 2.0, np.abs(err).max()  # (uint8 rounding; test_pupils_... checks sub-pixel placement)


def test_a_rotated_copy_aligns_back_to_the_upright_crop():
    photo, kp = face_photo(256)
    upright = np.asarray(A.align_face(photo, kp, 32, transform_size=512)).astype(np.float64)
    for degrees in (25, -40, 90):
        theta = math.radians(degrees)
        turned = rotate_image(photo, theta, (320, 320), (128, 128), (160, 160))
        kp_turned = kp_of(rotate_points(kp.points(), theta, 128, 160))
        got = np.asarray(A.align_face(turned, kp_turned, 32, transform_size=512)).astype(np.float64)
        naive = np.asarray(A.align_face(turned, kp, 32, transform_size=512)).astype(np.float64)
        assert np.abs(got - upright).mean() < 4.0, (degrees, np.abs(got - upright).mean())
        assert np.abs(naive - upright).mean() > 20.0  # the comparison can tell a wrong crop


def test_pupils_land_where_the_quad_puts_them():
    """Eyes (90, 100), (110, 100), mouth corners (92, 118), (108, 118): eye_to_mouth (0, 18), half side
    max(2 * 20, 1.8 * 18) = 40, centre (100, 101.8), so the output square is [60, 140] x [61.8, 141.8]; at
    160 px (2 px per photo pixel) one-pixel pupils land at (p - corner) * 2 - 0.5 = (59.5, 75.9), (99.5, 75.9).
    Half a photo pixel off (landmarks taken as pixel corners rather than centres) would be 1 px here."""
    img = Image.new("L", (200, 200), 255)
    for x in (90, 110):
        img.putpixel((x, 100), 0)
    kp = kp_of(np.array([[90, 100], [110, 100], [92, 118], [108, 118]]))
    dark = 255 - np.asarray(A.align_face(img, kp, 160, transform_size=640)).astype(np.float64)
    vv, uu = np.mgrid[:160, :160]
    for u_expected in (59.5, 99.5):
        w = dark * (np.abs(uu - u_expected) < 10)
        assert (w * uu).sum() / w.sum() == pytest.approx(u_expected, abs=0.1)
        assert (w * vv).sum() / w.sum() == pytest.approx(75.9, abs=0.1)


def test_padding_fills_the_outside_with_blended_reflection():
    photo, kp = face_photo(256)
    near_edge = kp_of(kp.points() - [110, 100])  # move the face to the top-left corner: the crop leaves the photo
    cropped = photo.crop((110, 100, 256, 256))
    padded = np.asarray(A.align_face(cropped, near_edge, 32, transform_size=256)).astype(np.int64)
    black = np.asarray(A.align_face(cropped, near_edge, 32, transform_size=256, enable_padding=False)).astype(np.int64)
    assert (black[0, 0] == 0).all() and (black[:3, :3] == 0).all()  # outside the photo: PIL's black
    assert padded[0, 0].min() > 20  # filled with the blurred, median-blended reflection
    np.testing.assert_array_equal(padded[20:, 20:], black[20:, 20:])  # inside: the same photo
    grey = np.asarray(A.align_face(cropped.convert("L"), near_edge, 32, transform_size=256)).astype(np.int64)
    rgb_to_grey = np.asarray(Image.fromarray(padded.astype(np.uint8)).convert("L")).astype(np.int64)
    assert grey.shape == (32, 32) and np.abs(grey - rgb_to_grey).max() <= 3  # grey photos take the same path


def test_gaussian_blur_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    img = np.random.RandomState(0).uniform(0, 255, (23, 31, 3)).astype(np.float32)
    for sigma in (0.7, 2.0, 9.0):  # 9: the kernel is wider than the image (repeated reflection)
        np.testing.assert_allclose(
            A.gaussian_blur(img, sigma), ndimage.gaussian_filter(img, [sigma, sigma, 0]), atol=1e-3
        )
    np.testing.assert_array_equal(A.gaussian_blur(img, 0.1), img)  # radius 0: unchanged, as scipy


def test_pad_blend_by_hand():
    """Without blur: reflection (edge not repeated), then each pixel moves towards the median colour by
    mask = max(1 - min(x / left, (w-1-x) / right), 1 - min(y / top, (h-1-y) / bottom)), clipped to [0, 1]."""
    arr = np.random.RandomState(1).randint(0, 256, (10, 12, 3)).astype(np.uint8)
    left, top, right, bottom = 4, 5, 6, 3
    out = A._pad_and_blend(arr, (left, top, right, bottom), qsize=50.0, blur_frac=0.0).astype(np.float64)
    assert out.shape == (10 + top + bottom, 12 + left + right, 3)
    ref = np.pad(arr.astype(np.float64), ((top, bottom), (left, right), (0, 0)), mode="reflect")
    median = np.median(ref, axis=(0, 1))
    np.testing.assert_array_equal(out[top:-bottom, left:-right], arr)  # the photo itself: mask <= 0
    # just left of the photo, in a middle row: mirror of the photo's column 1, moved 1/4 of the way to the median
    r = top + 4
    np.testing.assert_allclose(out[r, left - 1], np.rint(0.75 * arr[4, 1] + 0.25 * median), atol=1)
    np.testing.assert_allclose(out[r, 0], np.rint(median), atol=0.51)  # the outer edge: the median colour
    np.testing.assert_allclose(out[0, left + 3], np.rint(median), atol=0.51)


@pytest.mark.parametrize("side", ["left", "top", "right", "bottom"])
def test_padding_starts_when_the_quad_comes_within_border_minus_4_px_of_the_edge(side):
    """The quad (80 px: border max(rint(8), 3) = 8) padded when it comes within 3 px of a side of the
    photo (8 - 3 = 5 > 8 - 4), not at 5 px (8 - 5 = 3): padding changes the output, so compare with
    enable_padding=False."""
    photo = Image.fromarray(np.random.RandomState(4).randint(0, 256, (200, 200, 3)).astype(np.uint8))
    for gap, padded in ((3, True), (5, False)):
        lo = {"left": (gap, 60), "top": (60, gap), "right": (200 - gap - 80, 60), "bottom": (60, 200 - gap - 80)}[side]
        kp = kp_of(UPRIGHT.points() + np.array(lo) - [10, 12])  # UPRIGHT's quad is [10, 90] x [12, 92]
        assert A.alignment_quad(kp)[0].min(axis=0).tolist() == list(lo)
        on = np.asarray(A.align_face(photo, kp, 64, transform_size=64))  # 64 px: no shrink
        off = np.asarray(A.align_face(photo, kp, 64, transform_size=64, enable_padding=False))
        assert (not np.array_equal(on, off)) == padded, (side, gap)


def test_pad_blend_blurs_near_the_photos_edge():
    """With blur: the photo's edge column (mask 0) is fully replaced by the blur, the blur fading out
    by a third of the padding into the photo (mask -1/3)."""
    arr = np.random.RandomState(1).randint(0, 256, (30, 30, 3)).astype(np.uint8)
    pad = (9, 9, 9, 9)
    out = A._pad_and_blend(arr, pad, qsize=100.0, blur_frac=0.01).astype(np.float64)
    ref = np.pad(arr.astype(np.float32), ((9, 9), (9, 9), (0, 0)), mode="reflect")
    blurred = A.gaussian_blur(ref, 1.0)
    r = 9 + 15  # a middle row: only the x term of the mask matters
    np.testing.assert_allclose(out[r, 9], np.rint(blurred[r, 9]), atol=0.51)  # mask 0: all blur
    # 1 px into the photo: mask -1/9, blur weight 1 - 3/9
    np.testing.assert_allclose(out[r, 10], np.rint(ref[r, 10] + (blurred[r, 10] - ref[r, 10]) * (2 / 3)), atol=0.51)
    np.testing.assert_array_equal(out[r, 9 + 3 : 9 + 27], arr[15, 3:27])  # mask <= -1/3: the photo


def test_shrink_antialiases_a_photo_much_larger_than_the_output():
    """Stripes of period 17.5 px seen through an 8 px output of a 548 px quad must come out flat grey (the
    photo is first reduced by floor(548 / 8 * 0.5) = 34, which blurs them away); without the shrink step
    (shrink_frac=0) a 32 px bilinear transform samples them every 17.1 px and aliases them to full contrast."""
    xx = np.mgrid[:800, :800][1]
    stripes = Image.fromarray(((xx % 17.5) < 8.75).astype(np.uint8) * 255, "L")
    kp = kp_of(np.array([[331.5, 360], [468.5, 360], [340, 500], [460, 500]]))
    assert A.alignment_quad(kp)[1] == pytest.approx(548)
    good = np.asarray(A.align_face(stripes, kp, 8, transform_size=32)).astype(np.float64)
    bad = np.asarray(A.align_face(stripes, kp, 8, transform_size=32, shrink_frac=0.0)).astype(np.float64)
    assert np.abs(good - 127.5).max() < 8
    assert np.abs(bad - 127.5).max() > 100


# ---- landmarks files -------------------------------------------------------------------------------------------
def write_json(path, doc):
    path.write_text(json.dumps(doc))
    return str(path)


def sixty_eight(kp, jitter=0.0):
    """68 points whose eye means and mouth corners are kp's (the other points anywhere in the face)."""
    lm = np.full((68, 2), 50.0) + np.random.RandomState(2).uniform(-5, 5, (68, 2))
    for idx, centre in ((slice(36, 42), kp.eye_left), (slice(42, 48), kp.eye_right)):
        ring = np.random.RandomState(3).uniform(-3, 3, (6, 2))
        lm[idx] = centre + ring - ring.mean(0)
    lm[48], lm[54] = kp.mouth_left, kp.mouth_right
    return lm


def assert_same(a, b):
    np.testing.assert_allclose(a.points(), b.points(), atol=1e-9)


def test_json_68_and_5_points_keyed_by_name_with_or_without_suffix(tmp_path):
    five = {
        "left_eye": [40, 50],
        "right_eye": [60, 50],
        "nose": [50, 60],
        "mouth_left": [42, 70],
        "mouth_right": [58, 70],
    }
    path = write_json(tmp_path / "lm.json", {"a.png": sixty_eight(UPRIGHT).tolist(), "b": five})
    got = A.read_landmarks(path, ["x/a.png", "y/b.jpg"])
    assert_same(got[0], UPRIGHT)
    assert_same(got[1], UPRIGHT)
    five.pop("nose")  # optional; entries of other images are ignored
    got = A.read_landmarks(write_json(tmp_path / "l2.json", {"b": five, "c": "not read"}), ["b.jpg"])
    assert_same(got[0], UPRIGHT)


def test_npy_and_txt_hold_one_images_68_points(tmp_path):
    lm = sixty_eight(UPRIGHT)
    np.save(tmp_path / "lm.npy", lm)
    assert_same(A.read_landmarks(str(tmp_path / "lm.npy"), ["p.png"])[0], UPRIGHT)
    np.save(tmp_path / "int.npy", np.rint(lm).astype(np.int32))
    A.read_landmarks(str(tmp_path / "int.npy"), ["p.png"])
    (tmp_path / "lm.txt").write_text("\n".join(f"{x} {y}" for x, y in lm) + "\n")
    assert_same(A.read_landmarks(str(tmp_path / "lm.txt"), ["p.png"])[0], UPRIGHT)
    (tmp_path / "c.txt").write_text("\n".join(f"{x},{y}" for x, y in lm))
    assert_same(A.read_landmarks(str(tmp_path / "c.txt"), ["p.png"])[0], UPRIGHT)


GOOD68 = sixty_eight(UPRIGHT).tolist()


@pytest.mark.parametrize(
    "doc, images, message",
    [
        ({"a": GOOD68[:67]}, ["a.png"], "expected 68 [x, y] points, got a list of 67 items"),
        ({"a": [[1, 2, 3]] * 68}, ["a.png"], "every point must be [x, y]"),
        ({"a": [["1", 2]] * 68}, ["a.png"], "every point must be [x, y]"),
        ({"a": [[True, 2]] * 68}, ["a.png"], "every point must be [x, y]"),
        ({"a": "eyes"}, ["a.png"], "expected 68 [x, y] points or an object"),
        ({"a": {"left_eye": [1, 2]}}, ["a.png"], "missing right_eye, mouth_left, mouth_right"),
        ({"a": {"left_eye": [1, 2], "chin": [3, 4]}}, ["a.png"], "unknown key(s) chin"),
        ({"a": GOOD68}, ["a.png", "b.png"], "no landmarks for b.png"),
        ({"a": GOOD68, "a.png": GOOD68}, ["a.png"], "two entries for a.png"),
        ([GOOD68], ["a.png"], "expected a JSON object"),
    ],
)
def test_json_refusals_name_the_file(tmp_path, doc, images, message):
    path = write_json(tmp_path / "lm.json", doc)
    with pytest.raises(ConfigError) as e:
        A.read_landmarks(path, images)
    line = str(e.value)
    assert message in line and line.startswith(path) and "\n" not in line


def test_file_level_refusals(tmp_path):
    def refused(path, images=("a.png",)):
        with pytest.raises(ConfigError) as e:
            A.read_landmarks(str(path), list(images))
        assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
        return str(e.value)

    (tmp_path / "nan.json").write_text(json.dumps({"a": GOOD68[:5] + [[float("nan"), 1.0]] + GOOD68[6:]}))
    assert "finite" in refused(tmp_path / "nan.json")
    (tmp_path / "dup.json").write_text('{"a": [], "a": []}')
    assert "'a' appears twice" in refused(tmp_path / "dup.json")
    (tmp_path / "bad.json").write_text("{not json")
    assert "not valid JSON" in refused(tmp_path / "bad.json")
    assert "not found" in refused(tmp_path / "missing.json")
    (tmp_path / "lm.csv").write_text("1,2")
    assert "must be .json, .npy or .txt" in refused(tmp_path / "lm.csv")
    np.save(tmp_path / "lm.npy", np.zeros((5, 2)))
    assert "68 x 2" in refused(tmp_path / "lm.npy")
    np.save(tmp_path / "two.npy", np.asarray(GOOD68))
    assert "holds one image's points, got 2 images" in refused(tmp_path / "two.npy", ["a.png", "b.png"])
    inf = np.asarray(GOOD68)
    inf[3, 1] = np.inf
    np.save(tmp_path / "inf.npy", inf)
    assert "finite" in refused(tmp_path / "inf.npy")
    (tmp_path / "lm.txt").write_text("1 2\nthree 4\n")
    assert "cannot read landmarks" in refused(tmp_path / "lm.txt")


@pytest.mark.parametrize(
    "points, message",
    [
        ([[40, 50], [60, 50], [42, 70], [58, 700]], "lies far outside the 100x100 image"),
        ([[0.4, 0.5], [0.6, 0.5], [0.42, 0.7], [0.58, 0.7]], "less than 2 px apart"),
        ([[60, 50], [40, 50], [58, 70], [42, 70]], "swapped"),
        ([[40, 50], [60, 50], [58, 70], [42, 70]], "swapped"),  # mouth corners only
        ([[40, 50], [60, 50], [42, 70], [np.nan, 70]], "finite"),
    ],
)
def test_keypoint_checks(points, message):
    with pytest.raises(ConfigError, match=r"^lm\.json: a\.png: .*" + message.replace("(", r"\(")):
        A.check_keypoints(kp_of(points), (100, 100), "lm.json: a.png")
    A.check_keypoints(UPRIGHT, (100, 100), "ok")
    A.check_keypoints(kp_of(rotate_points(UPRIGHT.points(), math.pi, 50, 50)), (100, 100), "upside down is fine")


# ---- detector --------------------------------------------------------------------------------------------------
def test_missing_detector_says_which_extra_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(A, "_predictor_path", lambda: None)
    Image.new("RGB", (50, 40)).save(tmp_path / "p.png")
    with pytest.raises(MissingDependency) as e:
        load_targets([str(tmp_path / "p.png")], 16, 3, align=True)
    line = str(e.value)
    assert "pip install 'latentlab[align]'" in line and "--landmarks" in line and "\n" not in line


class _Rect:
    def __init__(self, l, t, r, b):
        self.l, self.t, self.r, self.b = l, t, r, b

    def left(self):
        return self.l

    def top(self):
        return self.t

    def right(self):
        return self.r

    def bottom(self):
        return self.b


class _Shape:
    def __init__(self, pts):
        self.pts, self.num_parts = pts, len(pts)

    def part(self, i):
        return type("P", (), {"x": int(self.pts[i][0]), "y": int(self.pts[i][1])})()


def test_detector_adapter_with_a_stub(monkeypatch):
    """(The real dlib is tested below when installed.) The largest face's 68 points become the keypoints."""
    lm_small, lm_big = np.rint(sixty_eight(UPRIGHT)), np.rint(sixty_eight(UPRIGHT)) + 7
    seen = {}

    def detector(arr, upsample):
        seen["arr"], seen["upsample"] = arr, upsample
        return [_Rect(0, 0, 10, 10), _Rect(5, 5, 60, 70), _Rect(0, 0, 30, 30)]

    def predictor(arr, rect):
        return _Shape(lm_big if rect.right() == 60 else lm_small)

    monkeypatch.setattr(A, "require_detector", lambda: "model.dat")
    monkeypatch.setattr(A, "_dlib_models", lambda path: (detector, predictor))
    kp = A.detect_keypoints(Image.new("L", (90, 80)), "p.png")
    assert_same(kp, A.keypoints_from_68(lm_big))
    assert seen["arr"].shape == (80, 90, 3) and seen["arr"].dtype == np.uint8 and seen["upsample"] == 1
    monkeypatch.setattr(A, "_dlib_models", lambda path: (lambda arr, up: [], predictor))
    with pytest.raises(ConfigError, match="^p.png: the face detector found no face"):
        A.detect_keypoints(Image.new("RGB", (90, 80)), "p.png")


def toyface_truth(res):
    """A neutral toyfaces render at res px and its true eye centres and mouth corners (pixel indices)."""
    from latentlab.datasets.toyfaces import _Face, neutral_attributes, render_face

    row = neutral_attributes()
    f = _Face(row, 4 * res)  # drawn at 4x, then reduced: canvas c -> pixel index c / 4 - 0.5
    a = 0.4 * f.a0  # the neutral mouth's half width
    canvas = [[f.eye(-1)[0], f.ey], [f.eye(1)[0], f.ey], [f.mx - a, f.my], [f.mx + a, f.my]]
    return Image.fromarray(render_face(row, res)), kp_of(np.array(canvas) / 4 - 0.5)


def test_real_detector_finds_a_toyface(tmp_path):
    if A._predictor_path() is None:
        pytest.skip("the align extra (dlib-bin, face_recognition_models) is not installed")
    photo, truth = toyface_truth(128)
    kp = A.detect_keypoints(photo, "toy.png")
    eye_distance = np.hypot(*(truth.eye_right - truth.eye_left))
    err = np.hypot(*(kp.points() - truth.points()).T)
    assert err.max() < 0.15 * eye_distance, err
    photo.save(tmp_path / "toy.png")
    targets, names = load_targets([str(tmp_path / "toy.png")], 32, 3, align=True)
    assert targets.shape == (1, 3, 32, 32) and names == ["toy"]


# ---- load_targets ----------------------------------------------------------------------------------------------
def test_load_targets_aligns_a_large_photo_to_the_generators_size(tmp_path):
    photo, kp = face_photo(300)
    photo = photo.crop((0, 0, 300, 240))
    photo.save(tmp_path / "big.png")
    path = write_json(
        tmp_path / "lm.json", {"big.png": {k: p.tolist() for k, p in zip(A.FIVE_POINT_KEYS, kp.points())}}
    )
    targets, names = load_targets([str(tmp_path / "big.png")], 16, 3, align=True, landmarks=path)
    assert targets.shape == (1, 3, 16, 16) and targets.dtype == torch.uint8 and names == ["big"]
    expected = np.asarray(A.align_face(photo, kp, 16))
    np.testing.assert_array_equal(targets[0].permute(1, 2, 0).numpy(), expected)
    # a grey photo for a grey generator
    photo.convert("L").save(tmp_path / "grey.png")
    path = write_json(tmp_path / "g.json", {"grey": sixty_eight(kp).tolist()})
    targets, _ = load_targets([str(tmp_path / "grey.png")], 16, 1, align=True, landmarks=path)
    assert targets.shape == (1, 1, 16, 16)


def test_load_targets_reads_the_photo_as_displayed(tmp_path):
    """Landmarks refer to the photo after its EXIF orientation (6: the stored pixels are turned a quarter)."""
    photo, kp = face_photo(200)
    exif = Image.Exif()
    exif[0x0112] = 6
    photo.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "turned.png", exif=exif)
    path = write_json(tmp_path / "lm.json", {"turned": sixty_eight(kp).tolist()})
    targets, _ = load_targets([str(tmp_path / "turned.png")], 16, 3, align=True, landmarks=path)
    np.testing.assert_array_equal(targets[0].permute(1, 2, 0).numpy(), np.asarray(A.align_face(photo, kp, 16)))


def test_load_targets_refusals(tmp_path):
    photo, kp = face_photo(64)
    photo.save(tmp_path / "p.png")
    photo.convert("L").save(tmp_path / "g.png")
    lm = write_json(tmp_path / "lm.json", {"p": sixty_eight(kp).tolist(), "g": sixty_eight(kp).tolist()})
    with pytest.raises(
        ConfigError, match=r"p.png: image is 64x64, the generator makes 16x16 \(align a face photo with --align"
    ):
        load_targets([str(tmp_path / "p.png")], 16, 3)
    with pytest.raises(ConfigError, match="g.png: a greyscale image"):
        load_targets([str(tmp_path / "g.png")], 16, 3, align=True, landmarks=lm)
    with pytest.raises(ConfigError, match="p.png: a colour image"):
        load_targets([str(tmp_path / "p.png")], 16, 1, align=True, landmarks=lm)
    with pytest.raises(ConfigError, match="add --align"):
        load_targets([str(tmp_path / "p.png")], 16, 3, landmarks=lm)
    far = write_json(tmp_path / "far.json", {"p": (sixty_eight(kp) + 500).tolist()})
    with pytest.raises(ConfigError, match=r"far.json: p.png: landmark .* lies far outside the 64x64 image"):
        load_targets([str(tmp_path / "p.png")], 16, 3, align=True, landmarks=far)


# ---- command line ----------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_ckpt(tmp_path):
    from conftest import make_tiny_generator
    from latentlab.checkpoints import save_native

    path = tmp_path / "tiny.safetensors"
    save_native(path, {"G_ema": make_tiny_generator()}, "latentlab")
    return path


@pytest.mark.slow  # ~5-10 s: the projector's LPIPS network
def test_cli_projects_an_aligned_photo_and_refuses_in_one_line(tmp_path, tiny_ckpt, capsys, monkeypatch):
    from conftest import run_cli

    photo, kp = face_photo(120)
    photo.save(tmp_path / "face.jpg")
    marks = write_json(tmp_path / "marks.json", {"face.jpg": sixty_eight(kp).tolist()})
    base = ("project", tmp_path / "face.jpg", "--model", tiny_ckpt, "--steps", "1", "--random-backbone")
    code, out, err = run_cli(capsys, *base, "--align", "--landmarks", marks, "--out", tmp_path / "p")
    assert code == 0, err
    assert np.asarray(Image.open(tmp_path / "p" / "recon_face.png")).shape == (16, 16, 3)
    # bad input: one line naming the file, exit 1
    bad = write_json(tmp_path / "bad.json", {"face": sixty_eight(kp)[:60].tolist()})
    code, _, err = run_cli(capsys, *base, "--align", "--landmarks", bad, "--out", tmp_path / "q")
    assert code == 1 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("latentlab: error:") and "bad.json: 'face': expected 68 [x, y] points" in line
    monkeypatch.setattr(A, "_predictor_path", lambda: None)
    code, _, err = run_cli(capsys, *base, "--align", "--out", tmp_path / "r")
    assert code == 1 and "pip install 'latentlab[align]'" in err.strip().splitlines()[-1]


def test_landmarks_json_nested_too_deep_is_refused_before_parsing(tmp_path):
    """10^6 nested brackets (which would make json recurse) give one line naming the file."""
    path = tmp_path / "marks.json"
    path.write_text("[" * 1_000_000 + "]" * 1_000_000)
    with pytest.raises(ConfigError, match=r"marks.json: JSON nested more than \d+ levels deep"):
        A.read_landmarks(str(path), ["a.png"])
