"""FFHQ-style face alignment: crop, level and rescale a face photo the way the FFHQ images were made.

The procedure of NVlabs/ffhq-dataset `download_ffhq.py` (`recreate_aligned_images`), every constant a
parameter with the published default. From the two eye centres and the two mouth corners:

    eye_avg = (eye_left + eye_right) / 2     eye_to_eye = eye_right - eye_left
    mouth_avg = (mouth_left + mouth_right) / 2     eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - rot90(eye_to_mouth), scaled to length max(2.0 |eye_to_eye|, 1.8 |eye_to_mouth|)
    y = rot90(x)     c = eye_avg + 0.1 eye_to_mouth     quad = [c - x - y, c - x + y, c + x + y, c + x - y]

(rot90((a, b)) = (-b, a): a quarter turn in image coordinates, y down.) The quad (side qsize = 2 |x|)
is the output square in the photo. Then: when the quad is much larger than the output (shrink =
floor(qsize / output_size * 0.5) > 1) the photo is first reduced by that factor (Lanczos, against
aliasing); it is cropped to the quad's bounding box plus a border of max(rint(0.1 qsize), 3) px; where
the quad leaves the photo by more than border - 4 px, the photo is padded by at least rint(0.3 qsize)
per side with its reflection, and the padding fades (over its width, and a third of it into the photo)
into a Gaussian blur (sigma 0.02 qsize) and then into the median colour, so no hard mirror edge shows;
finally the quad is mapped onto a transform_size square (4096, bilinear) and that is resized to the
output size (Lanczos). FFHQ's landmarks were dlib's 68 points; `eye_left` is the eye on the image's
left (the person's right eye), and so on.

As in the original, the reduced photo takes the quad divided by the shrink factor (pixel index p -> p /
shrink, where the reduced pixel j covers the original's (j + 0.5) * shrink - 0.5), so a shrunk crop sits
(shrink - 1) / 2 photo pixels down-right of the quad, under a quarter of an output pixel; kept for
exactness with the published procedure.

Differences, on purpose: the output is resized to `output_size` also when it is larger than
`transform_size` (the original then returns the transform_size image); FFHQ's random crop shift
(`random_shift`, 0 for FFHQ itself) is left out; the blur is scipy's `gaussian_filter` (truncate 4,
mode 'reflect') recomputed with torch, so that scipy is not needed.

Landmarks files (`--landmarks FILE`; coordinates in pixels of the photo as displayed, i.e. after its
EXIF orientation; x to the right, y down, (0, 0) the centre of the top-left pixel, as dlib reports them):

* JSON, any number of images: an object with one entry per image, keyed by the image's file name with
  or without suffix ("photo.jpg" or "photo"), each either
  - 68 points [[x, y], ...] in dlib / iBUG 300-W order (0-16 jaw, 17-26 brows, 27-35 nose, 36-41 and
    42-47 the eyes on the image's left and right, 48-67 the mouth: corners 48 and 54), or
  - 5 points {"left_eye": [x, y], "right_eye": [x, y], "mouth_left": [x, y], "mouth_right": [x, y],
    "nose": [x, y]} (eye centres and mouth corners; left = on the image's left; "nose" optional, unused).
* .npy (a 68 x 2 array) or .txt (68 lines "x y" or "x,y"): the 68 points of one image.

Every image needs exactly one entry (entries of other images are ignored, so one file can serve a
whole folder; "photo" and "photo.jpg" both present is refused as ambiguous); points must be finite
numbers within the photo (a margin of half its size allowed), the eyes and the mouth at least 2 px
apart, left and right not swapped.

Without a landmarks file the optional detector finds them (`pip install 'latentlab[align]'`): dlib's
HOG frontal-face detector and its 68-point shape predictor, the tools FFHQ was aligned with; the model
file ships inside the `face_recognition_models` package (nothing is downloaded at run time). Of several
faces in a photo the largest is aligned. The 68-point model was trained on iBUG 300-W, whose licence
excludes commercial use.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import ConfigError, MissingDependency
from ..utils.limits import MAX_JSON_BYTES, MAX_JSON_DEPTH
from ..utils.npy import load_npy
from ..utils.safe_json import Schema, check, json_depth

FIVE_POINT_KEYS = ("left_eye", "right_eye", "mouth_left", "mouth_right")
FIVE_POINT_OPTIONAL = ("nose",)
INSTALL_HINT = "pip install 'latentlab[align]'"
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
MIN_FEATURE_DISTANCE = 2.0  # px between the eyes and between eyes and mouth: less means wrong units or a swap
RANGE_MARGIN = 0.5  # landmarks may lie this fraction of the photo's size outside it (faces cut by the frame)

_LANCZOS = getattr(Image, "Resampling", Image).LANCZOS
_BILINEAR = getattr(Image, "Resampling", Image).BILINEAR
_QUAD = getattr(Image, "Transform", Image).QUAD


@dataclass(frozen=True)
class FaceKeypoints:
    """The four points the alignment uses, each a float64 [2] array (x, y) in pixels: the centres of
    the eyes on the image's left and right, and the mouth corners on the image's left and right."""

    eye_left: np.ndarray
    eye_right: np.ndarray
    mouth_left: np.ndarray
    mouth_right: np.ndarray

    def points(self) -> np.ndarray:
        """[4, 2]: eye_left, eye_right, mouth_left, mouth_right."""
        return np.stack([self.eye_left, self.eye_right, self.mouth_left, self.mouth_right])


def keypoints_from_68(points: Any) -> FaceKeypoints:
    """FaceKeypoints from 68 dlib / iBUG points [68, 2], as FFHQ does: eye centres = the means of
    points 36-41 and 42-47, mouth corners = points 48 and 54."""
    lm = np.asarray(points, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ConfigError(f"expected 68 x 2 landmarks, got shape {lm.shape}")
    return FaceKeypoints(lm[36:42].mean(axis=0), lm[42:48].mean(axis=0), lm[48].copy(), lm[54].copy())


def keypoints_from_5(points: Dict[str, Any]) -> FaceKeypoints:
    """FaceKeypoints from {left_eye, right_eye, mouth_left, mouth_right[, nose]} (each [x, y])."""
    p = {k: np.asarray(points[k], dtype=np.float64) for k in FIVE_POINT_KEYS}
    return FaceKeypoints(p["left_eye"], p["right_eye"], p["mouth_left"], p["mouth_right"])


# ---- geometry --------------------------------------------------------------------------------------------------
def _rot90(v: np.ndarray) -> np.ndarray:
    """(a, b) -> (-b, a), the original's `np.flipud(v) * [-1, 1]`."""
    return np.array([-v[1], v[0]], dtype=np.float64)


def alignment_quad(
    kp: FaceKeypoints,
    *,
    rotate_level: bool = True,
    eye_scale: float = 2.0,
    mouth_scale: float = 1.8,
    centre_offset: float = 0.1,
) -> Tuple[np.ndarray, float]:
    """(quad [4, 2], qsize): the output square's corners in the photo (top-left, bottom-left,
    bottom-right, top-right of the aligned image, in pixel coordinates) and its side.

    rotate_level: level the eyes (False keeps the photo's axes, as FFHQ's option does);
    eye_scale, mouth_scale: half the side is max(eye_scale |eye_to_eye|, mouth_scale |eye_to_mouth|);
    centre_offset: the centre lies this fraction of eye_to_mouth below the eyes' midpoint."""
    eye_avg = (kp.eye_left + kp.eye_right) * 0.5
    eye_to_eye = kp.eye_right - kp.eye_left
    eye_to_mouth = (kp.mouth_left + kp.mouth_right) * 0.5 - eye_avg
    x = eye_to_eye - _rot90(eye_to_mouth) if rotate_level else np.array([1.0, 0.0])
    length = float(np.hypot(*x))
    if length == 0:
        raise ConfigError("degenerate landmarks: cannot orient the crop")
    x = x / length * max(float(np.hypot(*eye_to_eye)) * eye_scale, float(np.hypot(*eye_to_mouth)) * mouth_scale)
    y = _rot90(x)
    c = eye_avg + eye_to_mouth * centre_offset
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    return quad, float(np.hypot(*x)) * 2


def gaussian_blur(image: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """float32 [H, W, C] blurred over H and W as `scipy.ndimage.gaussian_filter(image, [sigma, sigma, 0])`
    does: a separable normalised Gaussian of radius int(truncate * sigma + 0.5), edges mirrored with
    the edge pixel repeated (scipy's mode 'reflect')."""
    radius = int(truncate * sigma + 0.5)
    if sigma <= 0 or radius == 0:
        return image.astype(np.float32, copy=True)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1, dtype=np.float64) / sigma) ** 2)
    k = torch.from_numpy((taps / taps.sum()).astype(np.float32))
    padded = np.pad(image.astype(np.float32), ((radius, radius), (radius, radius), (0, 0)), mode="symmetric")
    t = torch.from_numpy(padded).permute(2, 0, 1).unsqueeze(1)  # [C, 1, H + 2r, W + 2r]
    t = F.conv2d(F.conv2d(t, k.view(1, 1, -1, 1)), k.view(1, 1, 1, -1))
    return t.squeeze(1).permute(1, 2, 0).numpy().astype(np.float32)


def _pad_and_blend(arr: np.ndarray, pad: Sequence[int], qsize: float, blur_frac: float) -> np.ndarray:
    """The original's padding: reflect-pad (left, top, right, bottom), then blend towards a blur and the
    median colour with weights that rise from the photo's edge to the padding's outer edge."""
    left, top, right, bottom = (int(p) for p in pad)
    img = np.pad(arr.astype(np.float32), ((top, bottom), (left, right), (0, 0)), mode="reflect")
    h, w, _ = img.shape
    yy, xx = np.ogrid[:h, :w]
    xx, yy = xx[..., None].astype(np.float32), yy[..., None].astype(np.float32)
    mask = np.maximum(
        1.0 - np.minimum(xx / left, (w - 1 - xx) / right), 1.0 - np.minimum(yy / top, (h - 1 - yy) / bottom)
    )
    img += (gaussian_blur(img, qsize * blur_frac) - img) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    img += (np.median(img, axis=(0, 1)) - img) * np.clip(mask, 0.0, 1.0)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def align_face(
    image: Image.Image,
    kp: FaceKeypoints,
    output_size: int,
    *,
    transform_size: int = 4096,
    enable_padding: bool = True,
    rotate_level: bool = True,
    eye_scale: float = 2.0,
    mouth_scale: float = 1.8,
    centre_offset: float = 0.1,
    shrink_frac: float = 0.5,
    border_frac: float = 0.1,
    min_border: int = 3,
    pad_frac: float = 0.3,
    pad_slack: int = 4,
    blur_frac: float = 0.02,
) -> Image.Image:
    """The aligned output_size x output_size crop of `image` (mode 'RGB' or 'L'; others are read as RGB).

    transform_size: the side of the intermediate quad transform (bilinear), then resized (Lanczos);
    enable_padding: pad with the blended reflection where the crop leaves the photo (else black);
    rotate_level, eye_scale, mouth_scale, centre_offset: the quad (`alignment_quad`);
    shrink_frac: reduce the photo first by floor(qsize / output_size * shrink_frac) when that is > 1;
    border_frac, min_border: crop border max(rint(border_frac * qsize), min_border) px;
    pad_frac, pad_slack: pad (at least rint(pad_frac * qsize) per side) when the quad leaves the photo
    by more than border - pad_slack px; blur_frac: the padding blur's sigma, blur_frac * qsize."""
    if output_size < 1 or transform_size < 1:
        raise ConfigError(f"output_size and transform_size must be positive, got {output_size}, {transform_size}")
    img = image if image.mode in ("RGB", "L") else image.convert("RGB")
    quad, qsize = alignment_quad(
        kp, rotate_level=rotate_level, eye_scale=eye_scale, mouth_scale=mouth_scale, centre_offset=centre_offset
    )

    shrink = int(np.floor(qsize / output_size * shrink_frac))
    if shrink > 1:
        size = (int(np.rint(float(img.size[0]) / shrink)), int(np.rint(float(img.size[1]) / shrink)))
        img = img.resize(size, _LANCZOS)
        quad, qsize = quad / shrink, qsize / shrink

    border = max(int(np.rint(qsize * border_frac)), min_border)
    lo, hi = np.floor(quad.min(axis=0)).astype(int), np.ceil(quad.max(axis=0)).astype(int)
    crop = (
        max(lo[0] - border, 0),
        max(lo[1] - border, 0),
        min(hi[0] + border, img.size[0]),
        min(hi[1] + border, img.size[1]),
    )
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        quad = quad - np.array(crop[:2], dtype=np.float64)

    lo, hi = np.floor(quad.min(axis=0)).astype(int), np.ceil(quad.max(axis=0)).astype(int)
    pad = [
        max(-lo[0] + border, 0),
        max(-lo[1] + border, 0),
        max(hi[0] - img.size[0] + border, 0),
        max(hi[1] - img.size[1] + border, 0),
    ]
    if enable_padding and max(pad) > border - pad_slack:
        pad = [max(p, int(np.rint(qsize * pad_frac)), 1) for p in pad]
        arr = np.asarray(img)
        grey = arr.ndim == 2
        out = _pad_and_blend(arr[..., None] if grey else arr, pad, qsize, blur_frac)
        img = Image.fromarray(out[..., 0], "L") if grey else Image.fromarray(out, "RGB")
        quad = quad + np.array(pad[:2], dtype=np.float64)

    img = img.transform((transform_size, transform_size), _QUAD, tuple((quad + 0.5).flatten()), _BILINEAR)
    if output_size != transform_size:
        img = img.resize((output_size, output_size), _LANCZOS)
    return img


# ---- checks ------------------------------------------------------------------------------------------------------
def check_keypoints(kp: FaceKeypoints, size: Tuple[int, int], where: str) -> None:
    """ConfigError (one line starting with `where`) unless the points are finite, within the photo of
    `size` (W, H) give or take RANGE_MARGIN of it, the features at least MIN_FEATURE_DISTANCE px apart,
    and left / right in the right order (the mouth below the eyes' line as seen from the left eye)."""
    pts = kp.points()
    if not np.isfinite(pts).all():
        raise ConfigError(f"{where}: landmarks must be finite numbers")
    w, h = size
    lo, hi = -RANGE_MARGIN * np.array([w, h]), (1 + RANGE_MARGIN) * np.array([w, h])
    outside = ((pts < lo) | (pts > hi)).any(axis=1)
    if outside.any():
        x, y = pts[int(np.argmax(outside))]
        raise ConfigError(
            f"{where}: landmark ({x:g}, {y:g}) lies far outside the {w}x{h} image "
            "(landmarks are pixel coordinates of the image as displayed)"
        )
    eye_to_eye = kp.eye_right - kp.eye_left
    eye_to_mouth = (kp.mouth_left + kp.mouth_right) * 0.5 - (kp.eye_left + kp.eye_right) * 0.5
    if min(np.hypot(*eye_to_eye), np.hypot(*eye_to_mouth)) < MIN_FEATURE_DISTANCE:
        raise ConfigError(
            f"{where}: eyes and mouth are less than {MIN_FEATURE_DISTANCE:g} px apart "
            "(landmarks must be in pixels, not normalised to [0, 1])"
        )
    cross = eye_to_eye[0] * eye_to_mouth[1] - eye_to_eye[1] * eye_to_mouth[0]
    if cross <= 0 or float(np.dot(kp.mouth_right - kp.mouth_left, eye_to_eye)) <= 0:
        raise ConfigError(
            f"{where}: left and right landmarks are swapped (left_eye / mouth_left are the ones on the image's "
            "left, dlib's points 36-41 and 48)"
        )


# ---- landmarks files ---------------------------------------------------------------------------------------------
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Point(Schema):
    """[x, y]: two finite numbers (booleans are not numbers)."""

    def check(self, value: Any, path: str, fail: Callable[[str, str], None]) -> None:
        if not (isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)):
            fail(path, f"every point must be [x, y] with two numbers, got {_preview(value)}")
        elif not all(math.isfinite(v) for v in value):
            fail(path, "landmarks must be finite numbers")


class _Points(Schema):
    """A list of exactly n [x, y] points."""

    def __init__(self, n: int):
        self.n = n

    def check(self, value: Any, path: str, fail: Callable[[str, str], None]) -> None:
        if not isinstance(value, list) or len(value) != self.n:
            got = f"a list of {len(value)} items" if isinstance(value, list) else type(value).__name__
            fail(path, f"expected {self.n} [x, y] points, got {got}")
        for p in value:
            _Point().check(p, path, fail)


class _Entry(Schema):
    """One image's landmarks: 68 points, or the 5-point object (FIVE_POINT_KEYS, optionally 'nose')."""

    def check(self, value: Any, path: str, fail: Callable[[str, str], None]) -> None:
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(FIVE_POINT_KEYS) - set(FIVE_POINT_OPTIONAL))
            missing = [k for k in FIVE_POINT_KEYS if k not in value]
            if unknown or missing:
                what = f"unknown key(s) {', '.join(unknown)[:200]}" if unknown else f"missing {', '.join(missing)}"
                fail(
                    path,
                    f"{what} (5-point landmarks are left_eye, right_eye, mouth_left, mouth_right and optionally nose)",
                )
            for k, v in value.items():
                _Point().check(v, f"{path} {k}", fail)
        elif isinstance(value, list):
            _Points(68).check(value, path, fail)
        else:
            fail(
                path,
                "expected 68 [x, y] points or an object with left_eye, right_eye, mouth_left, mouth_right, "
                f"got {type(value).__name__}",
            )


# The shape of one image's entry in a landmarks JSON file (`latentlab.utils.safe_json` schema); the file itself
# is an object {image name: entry}; only the entries of the images asked for are read (and checked).
LANDMARKS_ENTRY = _Entry()


def _preview(value: Any) -> str:
    """At most 40 characters of a JSON value, without serialising a large one."""
    if isinstance(value, list) and len(value) > 4:
        value = value[:4]
    try:
        return json.dumps(value)[:40]
    except (ValueError, TypeError, RecursionError):
        return type(value).__name__


def _parse_entry(value: Any, where: str, source: str) -> FaceKeypoints:
    """One JSON entry (checked against LANDMARKS_ENTRY, errors "SOURCE: WHERE: problem"): 68 points or the
    5-point object."""
    check(value, LANDMARKS_ENTRY, source, path=where)
    if isinstance(value, dict):
        return keypoints_from_5({k: np.asarray(v, dtype=np.float64) for k, v in value.items()})
    return keypoints_from_68(np.asarray(value, dtype=np.float64))


def _no_duplicates(path: str) -> Callable[[List[Tuple[str, Any]]], Dict[str, Any]]:
    def hook(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):  # linear: a file with 10^6 keys must not cost 10^12 comparisons
            seen: set = set()
            for k, _ in pairs:
                if k in seen:
                    raise ConfigError(f"{path}: {k[:60]!r} appears twice")
                seen.add(k)
        return out

    return hook


def read_landmarks(path: str, images: Sequence[str]) -> List[FaceKeypoints]:
    """The keypoints of every image in `images` (paths, in order) from the landmarks file `path`
    (formats in the module docstring). ConfigError, one line naming the file, for anything amiss."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".json", ".npy", ".txt"):
        raise ConfigError(f"{path}: landmarks file must be .json, .npy or .txt")
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: landmarks file not found")
    if suffix in (".npy", ".txt"):
        if len(images) != 1:
            raise ConfigError(
                f"{path}: a {suffix} landmarks file holds one image's points, got {len(images)} images "
                "(use a JSON file keyed by image name)"
            )
        if os.path.getsize(path) > MAX_JSON_BYTES:
            raise ConfigError(f"{path}: larger than the {MAX_JSON_BYTES} bytes a landmarks file may hold")
        try:
            if suffix == ".npy":  # header checked before reading: an .npz, a structured dtype, a forged size
                arr = load_npy(path, max_bytes=68 * 2 * 8, what="landmarks (.npy) array")  # 68 x 2 of 8-byte numbers
            else:
                with open(path, encoding="utf-8") as f:
                    arr = np.loadtxt(f.read().replace(",", " ").splitlines(), dtype=np.float64, ndmin=2)
        except ConfigError:
            raise
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read landmarks ({str(e).splitlines()[0] if str(e) else e})") from None
        if arr.dtype.kind not in "iuf" or arr.shape != (68, 2):
            raise ConfigError(f"{path}: expected a 68 x 2 array of numbers, got shape {arr.shape} ({arr.dtype})")
        if not np.isfinite(arr).all():
            raise ConfigError(f"{path}: landmarks must be finite numbers")
        return [keypoints_from_68(arr)]

    if os.path.getsize(path) > MAX_JSON_BYTES:
        raise ConfigError(f"{path}: larger than the {MAX_JSON_BYTES} bytes a landmarks file may hold")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if json_depth(text) > MAX_JSON_DEPTH:  # before json, which recurses
            raise ConfigError(f"{path}: JSON nested more than {MAX_JSON_DEPTH} levels deep")
        doc = json.loads(text, object_pairs_hook=_no_duplicates(path))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f'{path}: expected a JSON object {{"image name": landmarks, ...}}, got {type(doc).__name__}')
    result: List[FaceKeypoints] = []
    for image in images:
        base = os.path.basename(image)
        stem = os.path.splitext(base)[0]
        found = [k for k in dict.fromkeys((base, stem)) if k in doc]
        if not found:
            raise ConfigError(f"{path}: no landmarks for {base} (keys are image file names, with or without suffix)")
        if len(found) > 1:
            raise ConfigError(f"{path}: two entries for {base} ({found[0]!r} and {found[1]!r})")
        result.append(_parse_entry(doc[found[0]], repr(found[0]), path))
    return result


# ---- detector ----------------------------------------------------------------------------------------------------
def _predictor_path() -> Optional[str]:
    """The 68-point model inside face_recognition_models (located without importing the package, whose
    __init__ needs pkg_resources), or None when either package is missing."""
    if importlib.util.find_spec("dlib") is None:
        return None
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", PREDICTOR_FILE)
    return path if os.path.isfile(path) else None


def require_detector() -> str:
    """The predictor model's path; MissingDependency (one line with the pip command) without the extra."""
    path = _predictor_path()
    if path is None:
        raise MissingDependency(
            f"--align without --landmarks needs the face detector: {INSTALL_HINT} "
            "(dlib-bin and face_recognition_models), or give the landmarks with --landmarks FILE"
        )
    return path


@functools.lru_cache(maxsize=1)
def _dlib_models(predictor: str) -> Tuple[Any, Any]:
    import dlib  # type: ignore[import-not-found,unused-ignore]

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(predictor)


def detect_landmarks(image: Image.Image, upsample: int = 1) -> Optional[np.ndarray]:
    """The 68 dlib points [68, 2] of the largest face in `image` (HOG detector run on the image
    upsampled `upsample` times, then the shape predictor), or None when no face is found."""
    detector, predictor = _dlib_models(require_detector())
    arr = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    faces = list(detector(arr, upsample))
    if not faces:
        return None
    face = max(faces, key=lambda r: (r.right() - r.left()) * (r.bottom() - r.top()))
    shape = predictor(arr, face)
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], dtype=np.float64)


def detect_keypoints(image: Image.Image, where: str) -> FaceKeypoints:
    """FaceKeypoints of the largest face the detector finds; ConfigError naming `where` when none."""
    points = detect_landmarks(image)
    if points is None:
        raise ConfigError(f"{where}: the face detector found no face (give its landmarks with --landmarks FILE)")
    return keypoints_from_68(points)
