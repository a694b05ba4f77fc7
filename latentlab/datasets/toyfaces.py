"""Toyfaces: a deterministic procedural dataset of cartoon faces with known attributes.

Every face is drawn with PIL from one row of a label table, so the true value of every
attribute is known exactly. That makes it a test bed for the rest of latentlab: train a small
generator on the images, find attribute boundaries from the labels, and compare what a study
measures with the ground truth below.

Attributes (`ATTRIBUTES`, the column order of the table; all stored as floats, binary ones as 0/1):

  smile       [-1, 1]  mouth curvature: frown .. neutral line .. big open smile (teeth above 0.3)
  age         [0, 1]   hair (and beard, brows) blend toward grey-white; wrinkles appear above 0.5
  eyeglasses  0/1      dark rims around both eyes, a bridge and arms to the ears
  male        0/1      short hair and visible ears (1) or long hair falling to the shoulders (0)
  beard       0/1      full beard around the jaw plus moustache, in the hair colour
  yaw         [-1, 1]  head turn: eyes, nose and mouth shift toward the image's right for yaw > 0
                       (the nose most), the face ellipse narrows, the far eye is foreshortened and
                       the hair shifts a little the other way
  bangs       0/1      a fringe of hair over the upper forehead
  skin        [0, 1]   skin tone, light .. dark
  background  [0, 1)   background hue (HSV hue wheel, saturation 0.45, value falling from 0.95 at
                       the top to 0.75 at the bottom)

Nuisance variation (`NUISANCE`, recorded after the attributes): face size and position jitter,
eye size, hair colour family (0 brown, 1 black, 2 blond, 3 red; `HAIR_COLOURS`) and shade within it,
lighting brightness (multiplies every colour of the person, not the background) and shirt hue.

Sampling (`sample_attributes(n, seed)`): one `np.random.default_rng(seed)` draws an [n, 18] block of
uniforms, row by row, and every column is a fixed transform of its row's uniforms. So the table is
reproducible from (n, seed), and prefix-stable: the first m rows of n samples equal m samples.
The deliberate correlations, the ground truth for correlation studies (`reference_correlation`):

  * age ~ U(0, 1); male ~ Bernoulli(0.5)
  * eyeglasses ~ Bernoulli(sigmoid(4 age - 3)): about 5% at age 0, 27% at 0.5, 73% at 1
  * beard only for males (so only with short hair): P(beard | male, age) = 0.15 + 0.55 age (0.43 on average)
  * bangs: P = 0.5 for females, 0.15 for males
  * smile = tanh(0.8 N(0, 1) + 0.3 + 0.6 (0.5 - age)): mildly positive, younger faces smile more
  * yaw ~ U(-1, 1), skin ~ U(0, 1), background ~ U(0, 1), all independent of the rest

Rendering (`render_face(row, resolution)`) is a pure function of the row: the face is drawn at 4x
the resolution (2x above 256 px) and box-downsampled for anti-aliasing. Binary attributes are
drawn when their value is >= 0.5; the renderer draws whatever it is given (a beard on a long-haired
face if asked), only the sampler enforces "beard implies male". Missing columns take the neutral
values in `NEUTRAL`.

`binarize(table)` gives the positive class used to train boundaries on continuous attributes
(`POSITIVE` spells the rules out): smile > 0, age > 0.5, yaw > 0, skin > 0.5, background: a warm hue
(cos(2 pi hue) > 0, i.e. hue < 0.25 or hue > 0.75), binary attributes >= 0.5.

`write_dataset(out_dir, n, seed)` writes `images/000000.png ...` (zero-padded, so sorted file names
are row order), `labels.csv` (file, attributes, nuisance) and `dataset.json` (n, seed, resolution,
version); it resumes an interrupted run and refuses a folder written with other settings.
"""

import colorsys
import json
import math
import os
import time

import numpy as np
from PIL import Image, ImageDraw

from ..errors import ConfigError
from ..utils.atomic import atomic_path, remove_stale_temps, write_text
from ..utils.safe_json import load_json

__all__ = [
    "ATTRIBUTES",
    "NUISANCE",
    "COLUMNS",
    "DESCRIPTIONS",
    "POSITIVE",
    "NEUTRAL",
    "HAIR_COLOURS",
    "VERSION",
    "sample_attributes",
    "binarize",
    "reference_correlation",
    "neutral_attributes",
    "render_face",
    "render_batch",
    "write_dataset",
    "load_labels",
    "image_name",
    "check_resolution",
]

VERSION = 1  # bump whenever sampling or drawing changes (existing folders then refuse to resume)

ATTRIBUTES = ("smile", "age", "eyeglasses", "male", "beard", "yaw", "bangs", "skin", "background")
NUISANCE = (
    "nuisance_face_scale",
    "nuisance_face_dx",
    "nuisance_face_dy",
    "nuisance_eye_size",
    "nuisance_hair_colour",
    "nuisance_hair_shade",
    "nuisance_brightness",
    "nuisance_shirt_hue",
)
COLUMNS = ATTRIBUTES + NUISANCE

DESCRIPTIONS = {
    "smile": "mouth curvature in [-1, 1]: frown (-1), neutral (0), big open smile (1)",
    "age": "age in [0, 1]: hair greys toward white; forehead, eye and cheek wrinkles above 0.5",
    "eyeglasses": "1 = dark-rimmed glasses (rims, bridge, arms); more likely with age",
    "male": "1 = short hair with visible ears, 0 = long hair falling to the shoulders",
    "beard": "1 = full beard and moustache in the hair colour; only males, more likely with age",
    "yaw": "head turn in [-1, 1]: features shift toward the image's right for yaw > 0",
    "bangs": "1 = a fringe of hair over the upper forehead; rarer for males",
    "skin": "skin tone in [0, 1], light (0) to dark (1)",
    "background": "background hue in [0, 1) on the HSV wheel (0 red, 1/3 green, 2/3 blue)",
    "nuisance_face_scale": "face size factor in [0.9, 1.1]",
    "nuisance_face_dx": "horizontal face offset in [-0.04, 0.04] of the image width",
    "nuisance_face_dy": "vertical face offset in [-0.03, 0.03] of the image height",
    "nuisance_eye_size": "eye size factor in [0.8, 1.2]",
    "nuisance_hair_colour": "hair colour family: 0 brown, 1 black, 2 blond, 3 red (then greyed by age)",
    "nuisance_hair_shade": "shade within the hair colour family in [0, 1], dark to light",
    "nuisance_brightness": "lighting: factor in [0.85, 1.15] on every colour of the person",
    "nuisance_shirt_hue": "shirt hue in [0, 1)",
}

POSITIVE = {
    "smile": "smile > 0",
    "age": "age > 0.5",
    "eyeglasses": "eyeglasses >= 0.5",
    "male": "male >= 0.5",
    "beard": "beard >= 0.5",
    "yaw": "yaw > 0 (turned toward the image's right)",
    "bangs": "bangs >= 0.5",
    "skin": "skin > 0.5 (darker half)",
    "background": "warm hue: cos(2 pi background) > 0 (hue < 0.25 or > 0.75)",
}

NEUTRAL = {
    "smile": 0.0,
    "age": 0.25,
    "eyeglasses": 0.0,
    "male": 0.0,
    "beard": 0.0,
    "yaw": 0.0,
    "bangs": 0.0,
    "skin": 0.3,
    "background": 0.55,
    "nuisance_face_scale": 1.0,
    "nuisance_face_dx": 0.0,
    "nuisance_face_dy": 0.0,
    "nuisance_eye_size": 1.0,
    "nuisance_hair_colour": 0.0,
    "nuisance_hair_shade": 0.5,
    "nuisance_brightness": 1.0,
    "nuisance_shirt_hue": 0.6,
}

HAIR_COLOURS = ("brown", "black", "blond", "red")
_HAIR_P = np.cumsum([0.4, 0.25, 0.2, 0.15])
_HAIR_RGB = np.array(
    [  # family: (dark shade, light shade), RGB in [0, 1]
        [[0.28, 0.17, 0.09], [0.55, 0.36, 0.20]],
        [[0.07, 0.06, 0.06], [0.22, 0.18, 0.16]],
        [[0.70, 0.55, 0.28], [0.94, 0.83, 0.52]],
        [[0.52, 0.18, 0.07], [0.82, 0.40, 0.16]],
    ]
)
_GREY_HAIR = np.array([0.82, 0.82, 0.84])
_SKIN_STOPS = np.array([[1.00, 0.87, 0.76], [0.86, 0.64, 0.47], [0.42, 0.27, 0.17]])
_N_UNIFORMS = 18


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ----------------------------------------------------------------------------------------------- labels


def sample_attributes(n, seed=0):
    """Label table of n faces: a pandas DataFrame with columns `COLUMNS` (float64), index 0..n-1.

    Deterministic in (n, seed) and prefix-stable (row i does not depend on n).
    """
    import pandas as pd

    n = int(n)
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    u = np.random.default_rng(seed).random((n, _N_UNIFORMS))  # filled row by row
    age = u[:, 0]
    male = (u[:, 1] < 0.5).astype(float)
    beard = male * (u[:, 2] < 0.15 + 0.55 * age)
    eyeglasses = (u[:, 3] < _sigmoid(4.0 * age - 3.0)).astype(float)
    bangs = (u[:, 4] < np.where(male > 0, 0.15, 0.5)).astype(float)
    normal = np.sqrt(-2.0 * np.log1p(-u[:, 5])) * np.cos(2.0 * np.pi * u[:, 6])  # Box-Muller
    smile = np.tanh(0.8 * normal + 0.3 + 0.6 * (0.5 - age))
    cols = {
        "smile": smile,
        "age": age,
        "eyeglasses": eyeglasses,
        "male": male,
        "beard": beard,
        "yaw": 2.0 * u[:, 7] - 1.0,
        "bangs": bangs,
        "skin": u[:, 8],
        "background": u[:, 9],
        "nuisance_face_scale": 0.9 + 0.2 * u[:, 10],
        "nuisance_face_dx": 0.08 * (u[:, 11] - 0.5),
        "nuisance_face_dy": 0.06 * (u[:, 12] - 0.5),
        "nuisance_eye_size": 0.8 + 0.4 * u[:, 13],
        "nuisance_hair_colour": np.searchsorted(_HAIR_P, u[:, 14], side="right").clip(0, 3).astype(float),
        "nuisance_hair_shade": u[:, 15],
        "nuisance_brightness": 0.85 + 0.3 * u[:, 16],
        "nuisance_shirt_hue": u[:, 17],
    }
    return pd.DataFrame({c: np.asarray(cols[c], dtype=np.float64) for c in COLUMNS})


def binarize(table):
    """0/1 labels (int DataFrame, columns `ATTRIBUTES`) by the rules in `POSITIVE`."""
    import pandas as pd

    t = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    out = {}
    for name in ATTRIBUTES:
        v = t[name].to_numpy(dtype=float)
        if name in ("smile", "yaw"):
            b = v > 0
        elif name in ("age", "skin"):
            b = v > 0.5
        elif name == "background":
            b = np.cos(2.0 * np.pi * v) > 0
        else:
            b = v >= 0.5
        out[name] = b.astype(np.int64)
    return pd.DataFrame(out, index=t.index)


def reference_correlation(n=20000, seed=0, binary=False):
    """Pearson correlation matrix (DataFrame, `ATTRIBUTES` x `ATTRIBUTES`) of the sampler's labels.

    binary=True correlates the `binarize`d labels instead of the raw values.
    """
    table = sample_attributes(n, seed)
    data = binarize(table) if binary else table[list(ATTRIBUTES)]
    return data.astype(float).corr()


def neutral_attributes(**overrides):
    """A full row (dict) of neutral values (`NEUTRAL`) with some columns overridden."""
    unknown = set(overrides) - set(COLUMNS)
    if unknown:
        raise ConfigError(f"unknown toyfaces column(s): {', '.join(sorted(unknown))}")
    row = dict(NEUTRAL)
    row.update({k: float(v) for k, v in overrides.items()})
    return row


# --------------------------------------------------------------------------------------------- drawing


def check_resolution(resolution):
    """The resolution as an int; ValueError unless it is a power of two >= 8."""
    r = int(resolution)
    if r != resolution or r < 8 or r & (r - 1):
        raise ConfigError(f"resolution must be a power of two >= 8, got {resolution}")
    return r


def _get(row, name):
    try:
        v = row[name]
    except (KeyError, IndexError):
        return float(NEUTRAL[name])
    return float(v)


def _rgb(c, scale=1.0):
    c = np.clip(np.asarray(c, dtype=float) * scale, 0.0, 1.0)
    return tuple(int(round(x * 255)) for x in c)


def _mix(a, b, t):
    return (1.0 - t) * np.asarray(a, dtype=float) + t * np.asarray(b, dtype=float)


def _skin_colour(t):
    t = min(max(t, 0.0), 1.0) * 2.0
    i = min(int(t), 1)
    return _mix(_SKIN_STOPS[i], _SKIN_STOPS[i + 1], t - i)


def _hair_colour(family, shade, age):
    fam = int(min(max(round(family), 0), 3))
    base = _mix(_HAIR_RGB[fam, 0], _HAIR_RGB[fam, 1], min(max(shade, 0.0), 1.0))
    grey = min(max((age - 0.25) / 0.75, 0.0), 1.0) * 0.92
    return _mix(base, _GREY_HAIR, grey)


def _ellipse_cap(draw, cx, cy, ax, by, y_line, fill, above=True, k=40):
    """Fill the part of the ellipse (centre cx, cy; semi-axes ax, by) above (or below) the line y = y_line.

    A polygon rather than ImageDraw.chord, which draws stray bars for some angles in Pillow 13.
    """
    s = min(max((y_line - cy) / by, -1.0), 1.0)
    p0 = math.asin(s)
    phi = np.linspace(math.pi - p0, 2 * math.pi + p0, k) if above else np.linspace(p0, math.pi - p0, k)
    draw.polygon(list(zip((cx + ax * np.cos(phi)).tolist(), (cy + by * np.sin(phi)).tolist())), fill=fill)


def _thick_curve(draw, pts, fill, width):
    draw.line(pts, fill=fill, width=max(1, int(round(width))), joint="curve")
    r = width / 2.0
    for x, y in (pts[0], pts[-1]):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)


class _Face:
    """Everything the drawing steps share, in canvas pixels (S x S): the row's values, colours and geometry."""

    def __init__(self, attrs, S):
        self.S = S
        g = self.g = {name: _get(attrs, name) for name in COLUMNS}
        self.smile = min(max(g["smile"], -1.0), 1.0)
        self.age = min(max(g["age"], 0.0), 1.0)
        self.yaw = min(max(g["yaw"], -1.0), 1.0)
        self.male, self.beard = g["male"] >= 0.5, g["beard"] >= 0.5
        self.glasses, self.bangs = g["eyeglasses"] >= 0.5, g["bangs"] >= 0.5
        self.light = light = g["nuisance_brightness"]
        self.sc = sc = g["nuisance_face_scale"]

        # colours
        self.skin = skin = _skin_colour(g["skin"])
        self.skin_c = _rgb(skin, light)
        self.shadow_c = _rgb(skin, 0.8 * light)
        hair = _hair_colour(g["nuisance_hair_colour"], g["nuisance_hair_shade"], self.age)
        self.hair_c = _rgb(hair, light)
        self.brow_c = _rgb(hair, 0.7 * light)
        self.shirt_c = _rgb(colorsys.hsv_to_rgb(g["nuisance_shirt_hue"] % 1.0, 0.55, 0.62), light)
        self.dark_c = _rgb([0.08, 0.07, 0.08])

        # geometry
        self.a0 = a0 = 0.205 * sc * S * (1.03 if self.male else 0.97)  # face half-width (unturned)
        self.b0 = b0 = 0.265 * sc * S  # face half-height
        self.cx = cx = (0.5 + g["nuisance_face_dx"]) * S
        self.cy = cy = (0.45 + g["nuisance_face_dy"]) * S
        self.a = a = a0 * (1.0 - 0.12 * abs(self.yaw))
        self.shoulder_y = cy + b0 + 0.07 * sc * S
        self.hair_cx, self.hair_cy = cx - 0.06 * a0 * self.yaw, cy - 0.04 * b0
        self.hair_ax, self.hair_by = a * 1.12, b0 * 1.12

        # feature positions: the nose shifts most with yaw, then mouth and eyes
        self.ex0 = cx + 0.34 * a0 * self.yaw
        self.nx = cx + 0.48 * a0 * self.yaw
        self.mx = cx + 0.36 * a0 * self.yaw
        self.ey = cy - 0.04 * b0
        self.my = cy + 0.5 * b0
        self.es = g["nuisance_eye_size"]

    def eye(self, s):
        """(x centre, foreshortening factor) of the eye on side s (-1 left, 1 right); the far eye narrows."""
        far = max(0.0, s * self.yaw)
        wf = 1.0 - 0.35 * far
        ex = self.ex0 + s * 0.4 * self.a0 * (1.0 - 0.18 * abs(self.yaw))
        return ex, wf


def _draw_background(f):
    """The canvas: the background hue with a vertical value gradient (top lighter)."""
    S = f.S
    v = np.linspace(0.95, 0.75, S)
    r, gg, b = colorsys.hsv_to_rgb(f.g["background"] % 1.0, 0.45, 1.0)
    col = (np.outer(v, [r, gg, b]) * 255.0 + 0.5).astype(np.uint8)  # [S, 3]
    return Image.fromarray(np.ascontiguousarray(np.broadcast_to(col[:, None, :], (S, S, 3))), "RGB")


def _draw_hair_behind(d, f):
    """Hair behind the head: long hair down to the shoulders (male = 0), or a short cap (male = 1)."""
    a, b0, cy, hair_cx = f.a, f.b0, f.cy, f.hair_cx
    if not f.male:
        d.ellipse([hair_cx - 1.3 * a, cy - 1.16 * b0, hair_cx + 1.3 * a, cy + 0.6 * b0], fill=f.hair_c)
        yb = f.shoulder_y + 0.12 * f.sc * f.S
        d.polygon(
            [(hair_cx - 1.3 * a, cy), (hair_cx + 1.3 * a, cy), (hair_cx + 1.4 * a, yb), (hair_cx - 1.4 * a, yb)],
            fill=f.hair_c,
        )
    else:
        d.ellipse([hair_cx - 1.1 * a, cy - 1.14 * b0, hair_cx + 1.1 * a, cy + 0.15 * b0], fill=f.hair_c)


def _draw_neck_and_shirt(d, f):
    """Neck, shirt (narrower for male = 0) and a V neckline."""
    S, a0, cx, shoulder_y = f.S, f.a0, f.cx, f.shoulder_y
    d.rectangle([cx - 0.42 * a0, f.cy + 0.5 * f.b0, cx + 0.42 * a0, shoulder_y + 0.1 * S], fill=f.shadow_c)
    bw = (0.42 if f.male else 0.38) * f.sc * S
    d.ellipse(
        [
            0.5 * S + f.g["nuisance_face_dx"] * S - bw,
            shoulder_y,
            0.5 * S + f.g["nuisance_face_dx"] * S + bw,
            shoulder_y + 0.7 * S,
        ],
        fill=f.shirt_c,
    )
    d.polygon(
        [
            (cx - 0.42 * a0, shoulder_y - 0.01 * S),
            (cx + 0.42 * a0, shoulder_y - 0.01 * S),
            (cx, shoulder_y + 0.09 * f.sc * S),
        ],
        fill=f.shadow_c,
    )  # V neckline


def _draw_hair_strands(d, f):
    """Long hair (male = 0): strands falling in front of the shoulders."""
    if f.male:
        return
    yb = f.shoulder_y + 0.12 * f.sc * f.S
    cx, a, b0, cy = f.cx, f.a, f.b0, f.cy
    for s in (-1.0, 1.0):
        d.polygon(
            [
                (cx + s * 0.8 * a, cy + 0.2 * b0),
                (cx + s * 1.3 * a, cy + 0.2 * b0),
                (cx + s * 1.42 * a, yb),
                (cx + s * 0.95 * a, yb),
            ],
            fill=f.hair_c,
        )


def _draw_ears(d, f):
    """Visible ears (male = 1); the far one hides as the head turns."""
    if not f.male:
        return
    a, a0, b0, cy = f.a, f.a0, f.b0, f.cy
    for s in (-1.0, 1.0):
        vis = 1.0 - 0.7 * max(0.0, s * f.yaw)
        ex = f.cx + s * (a * 0.97 - 0.05 * a0 * (1 - vis))
        d.ellipse([ex - 0.15 * a0 * vis, cy - 0.12 * b0, ex + 0.15 * a0 * vis, cy + 0.16 * b0], fill=f.skin_c)


def _draw_face(d, f):
    """The face ellipse in the skin colour (narrower as the head turns)."""
    d.ellipse([f.cx - f.a, f.cy - f.b0, f.cx + f.a, f.cy + f.b0], fill=f.skin_c)


def _draw_wrinkles(d, f):
    """Age above 0.5: forehead lines, crow's feet and smile lines, darker and thicker with age."""
    w = min(max((f.age - 0.5) / 0.5, 0.0), 1.0)
    if w <= 0:
        return
    a0, b0, cy, ex0, ey, nx, mx = f.a0, f.b0, f.cy, f.ex0, f.ey, f.nx, f.mx
    wc = _rgb(_mix(f.skin, f.skin * 0.55, w), f.light)
    lw = 0.022 * f.S * (0.6 + 0.4 * w)
    for k, yy in enumerate((cy - 0.52 * b0, cy - 0.42 * b0)):
        hw = (0.42 - 0.06 * k) * a0
        pts = [(ex0 + t * hw, yy + 0.04 * b0 * t * t) for t in np.linspace(-1, 1, 7)]
        _thick_curve(d, pts, wc, lw)
    for s in (-1.0, 1.0):
        ox = ex0 + s * 0.62 * a0 * (1 - 0.2 * abs(f.yaw))
        for dy in (-0.06, 0.06):
            d.line([(ox, ey), (ox + s * 0.12 * a0, ey + dy * b0)], fill=wc, width=max(1, int(lw * 0.8)))
        d.line(
            [(nx + s * 0.2 * a0, cy + 0.28 * b0), (mx + s * 0.42 * a0, cy + 0.52 * b0)], fill=wc, width=max(1, int(lw))
        )


def _draw_beard(d, f):
    """Beard = 1: full beard, sideburns and moustache in the hair colour, with a clear patch for the lips."""
    if not f.beard:
        return
    a, a0, b0, cx, cy, mx, my, nx = f.a, f.a0, f.b0, f.cx, f.cy, f.mx, f.my, f.nx
    _ellipse_cap(d, cx, cy, a * 1.04, b0 * 1.05, cy + 0.12 * b0, f.hair_c, above=False)
    for s in (-1.0, 1.0):  # sideburns
        d.polygon(
            [
                (cx + s * a * 1.0, cy - 0.2 * b0),
                (cx + s * a * 0.86, cy - 0.2 * b0),
                (cx + s * a * 0.8, cy + 0.2 * b0),
                (cx + s * a * 1.03, cy + 0.2 * b0),
            ],
            fill=f.hair_c,
        )
    d.ellipse([mx - 0.42 * a0, my - 0.2 * b0, mx + 0.42 * a0, my + 0.2 * b0], fill=f.skin_c)
    d.polygon(
        [
            (mx - 0.46 * a0, my - 0.06 * b0),
            (nx - 0.2 * a0, cy + 0.3 * b0),
            (nx + 0.2 * a0, cy + 0.3 * b0),
            (mx + 0.46 * a0, my - 0.06 * b0),
            (mx, my - 0.15 * b0),
        ],
        fill=f.hair_c,
    )


def _draw_eyes(d, f):
    """Eyes (size nuisance_eye_size; iris shifted by yaw) and brows (thicker for male = 1)."""
    a0, b0, ey, es = f.a0, f.b0, f.ey, f.es
    for s in (-1.0, 1.0):
        ex, wf = f.eye(s)
        rx, ry = 0.17 * a0 * es * wf, 0.12 * a0 * es
        d.ellipse([ex - rx, ey - ry, ex + rx, ey + ry], fill=(250, 250, 248))
        ix = ex + 0.05 * a0 * f.yaw
        ir = 0.095 * a0 * es
        d.ellipse([ix - ir * wf, ey - ir, ix + ir * wf, ey + ir], fill=(70, 45, 30))
        d.ellipse([ix - 0.5 * ir * wf, ey - 0.5 * ir, ix + 0.5 * ir * wf, ey + 0.5 * ir], fill=f.dark_c)
        by = ey - 0.19 * b0
        bw2 = 0.2 * a0 * wf
        d.line(
            [(ex - bw2, by + 0.02 * b0), (ex, by - 0.015 * b0), (ex + bw2, by + 0.02 * b0)],
            fill=f.brow_c,
            width=max(1, int(round((0.075 if f.male else 0.05) * a0))),
            joint="curve",
        )


def _draw_nose(d, f):
    """The nose: a shaded wedge and nostrils (shifted most by yaw)."""
    a0, nx = f.a0, f.nx
    tip = f.cy + 0.27 * f.b0
    d.polygon(
        [(nx - 0.03 * a0 * f.yaw, f.ey + 0.1 * f.b0), (nx + 0.11 * a0, tip), (nx - 0.11 * a0, tip)], fill=f.shadow_c
    )
    nr = 0.035 * a0
    for s in (-1.0, 1.0):
        d.ellipse(
            [nx + s * 0.06 * a0 - nr, tip - nr, nx + s * 0.06 * a0 + nr, tip + nr], fill=_rgb(f.skin, 0.5 * f.light)
        )


def _draw_mouth(d, f):
    """Smile: the mouth curves with the smile value; above 0.3 it opens and shows teeth."""
    a0, b0, mx, smile = f.a0, f.b0, f.mx, f.smile
    lips = _rgb(_mix(f.skin * 0.55, [0.62, 0.1, 0.14], 0.7 if not f.male else 0.5), f.light)
    hw = 0.4 * a0 * (1.0 - 0.15 * abs(f.yaw)) * (1.0 + 0.18 * max(smile, 0.0))
    dcurve = smile * 0.16 * b0
    ts = np.linspace(-1.0, 1.0, 15)
    base = f.my - 0.5 * dcurve
    if smile > 0.3:
        opening = (smile - 0.3) / 0.7 * 0.15 * b0
        upper = [(mx + t * hw, base + 0.3 * dcurve * (1 - t * t)) for t in ts]
        lower = [(mx + t * hw, base + (dcurve + opening) * (1 - t * t)) for t in ts]
        d.polygon(upper + lower[::-1], fill=(95, 20, 28))
        teeth = [(mx + t * hw * 0.9, base + (0.3 * dcurve + 0.35 * (0.7 * dcurve + opening)) * (1 - t * t)) for t in ts]
        d.polygon(upper[1:-1] + teeth[::-1][1:-1], fill=(245, 245, 240))
        _thick_curve(d, upper, lips, 0.07 * a0)
        _thick_curve(d, lower, lips, 0.1 * a0)
    else:
        pts = [(mx + t * hw, base + dcurve * (1 - t * t)) for t in ts]
        _thick_curve(d, pts, lips, 0.12 * a0)


def _draw_hair_top(d, f):
    """Hair over the scalp down to the hairline; for male = 1 also the short sides down to the ears."""
    a, cx, hairline = f.a, f.cx, f.cy - 0.6 * f.b0
    _ellipse_cap(d, f.hair_cx, f.hair_cy, f.hair_ax, f.hair_by, hairline, f.hair_c)
    if f.male:
        for s in (-1.0, 1.0):
            d.polygon(
                [
                    (cx + s * a * 1.06, hairline),
                    (cx + s * a * 0.78, hairline),
                    (cx + s * a * 0.93, f.cy - 0.12 * f.b0),
                    (cx + s * a * 1.02, f.cy - 0.12 * f.b0),
                ],
                fill=f.hair_c,
            )


def _draw_bangs(d, f):
    """Bangs = 1: the hair comes down to a fringe over the upper forehead, cut in points."""
    if not f.bangs:
        return
    hair_cx, hair_cy, hair_ax, hair_by = f.hair_cx, f.hair_cy, f.hair_ax, f.hair_by
    fringe = f.cy - 0.33 * f.b0
    _ellipse_cap(d, hair_cx, hair_cy, hair_ax, hair_by, fringe, f.hair_c)
    half = math.sqrt(max(0.0, 1 - ((fringe - hair_cy) / hair_by) ** 2)) * hair_ax
    k = 7
    edges = np.linspace(hair_cx - half, hair_cx + half, k + 1)
    for i in range(k):
        x0, x1 = edges[i], edges[i + 1]
        d.polygon(
            [(x0, fringe - 1), (x1, fringe - 1), ((x0 + x1) / 2 + 0.1 * (x1 - x0), fringe + 0.08 * f.b0)], fill=f.hair_c
        )


def _draw_eyeglasses(d, f):
    """Eyeglasses = 1: dark rims around both eyes, a bridge and arms to the ears."""
    if not f.glasses:
        return
    a0, ey = f.a0, f.ey
    lw = max(1, int(round(0.085 * a0)))
    inner = []
    for s in (-1.0, 1.0):
        ex, wf = f.eye(s)
        rx, ry = 0.3 * a0 * wf, 0.22 * a0
        d.ellipse([ex - rx, ey - ry, ex + rx, ey + ry], outline=f.dark_c, width=lw)
        inner.append((ex - s * rx, ey - 0.2 * ry))
        d.line([(ex + s * rx, ey - 0.2 * ry), (f.cx + s * f.a * 0.99, ey - 0.1 * ry)], fill=f.dark_c, width=lw)
    d.line(inner, fill=f.dark_c, width=lw)


# The drawing steps of `render_face`, back to front (each draws over the ones before it).
_DRAW_STEPS = (
    _draw_hair_behind,
    _draw_neck_and_shirt,
    _draw_hair_strands,
    _draw_ears,
    _draw_face,
    _draw_wrinkles,
    _draw_beard,
    _draw_eyes,
    _draw_nose,
    _draw_mouth,
    _draw_hair_top,
    _draw_bangs,
    _draw_eyeglasses,
)


def render_face(attrs, resolution=64):
    """Draw one face: uint8 array [resolution, resolution, 3].

    attrs: a mapping (dict, pandas Series, DataFrame row) with some or all of `COLUMNS`;
    missing columns take their `NEUTRAL` value. A pure function of those values. Drawn at
    4x (2x above 256 px) on the background by the steps in `_DRAW_STEPS`, then box-downsampled.
    """
    res = check_resolution(resolution)
    ss = 4 if res <= 256 else 2
    face = _Face(attrs, res * ss)
    img = _draw_background(face)
    d = ImageDraw.Draw(img)
    for step in _DRAW_STEPS:
        step(d, face)
    if ss > 1:
        img = img.reduce(ss)
    return np.asarray(img, dtype=np.uint8)


def _rows(table):
    """Row mappings of a DataFrame, a dict of arrays, or a list of mappings."""
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        return table.to_dict("records")
    if isinstance(table, dict):
        keys = list(table)
        n = len(np.asarray(table[keys[0]])) if keys else 0
        return [{k: np.asarray(table[k])[i] for k in keys} for i in range(n)]
    return list(table)


def render_batch(table, resolution=64):
    """Draw every row of a label table: uint8 array [N, resolution, resolution, 3]."""
    res = check_resolution(resolution)
    rows = _rows(table)
    out = np.empty((len(rows), res, res, 3), dtype=np.uint8)
    for i, row in enumerate(rows):
        out[i] = render_face(row, res)
    return out


# -------------------------------------------------------------------------------------------- datasets


def image_name(i, n):
    """File name of image i of n: zero-padded to at least 6 digits so sorted names are row order."""
    return f"{i:0{max(6, len(str(max(n - 1, 0))))}d}.png"


def load_labels(directory):
    """labels.csv of a toyfaces folder as a DataFrame (floats read back exactly)."""
    import pandas as pd

    path = os.path.join(os.fspath(directory), "labels.csv")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such labels file (write the dataset with `latentlab toyfaces`)")
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    return pd.read_csv(path, **exact)


def _save_png(arr, path):
    with atomic_path(path, ".png") as tmp:
        Image.fromarray(arr, "RGB").save(tmp, format="PNG")


def _render_chunk(job):
    """Worker: draw and write a list of (index, path, row); returns how many it wrote.

    `owner` is the pid of the run that handed out the job. A rendering process whose run has died (kill -9)
    exits before its next face: that run's lock no longer keeps other runs out of the folder, and nobody is
    left to report to."""
    resolution, items, owner = job
    for _, path, row in items:
        if os.getpid() != owner and os.getppid() != owner:
            os._exit(0)
        _save_png(render_face(row, resolution), path)
    return len(items)


def _label_frame(table, n):
    frame = table.copy()
    frame.insert(0, "file", [f"images/{image_name(i, n)}" for i in range(n)])
    return frame


def _check_existing(out_dir, meta):
    """Raise unless out_dir is empty/new or holds a toyfaces dataset with the same settings."""
    info_path = os.path.join(out_dir, "dataset.json")
    if not os.path.exists(info_path):
        for name in ("images", "labels.csv"):
            if os.path.exists(os.path.join(out_dir, name)):
                raise ConfigError(
                    f"{out_dir} already holds {name} but no dataset.json; refusing to overwrite it "
                    "(use an empty folder)"
                )
        return False
    try:
        old = load_json(info_path)  # size and depth checked (`latentlab.utils.safe_json`)
    except ConfigError as e:
        raise ConfigError(f"{e}; refusing to write into {out_dir}") from None
    except OSError as e:
        raise ConfigError(f"{info_path}: unreadable ({e}); refusing to write into {out_dir}") from None
    if not isinstance(old, dict) or old.get("format") != meta["format"]:
        raise ConfigError(f"{info_path} does not describe a toyfaces dataset; refusing to write into {out_dir}")
    diffs = [
        f"{k}={old.get(k)!r} there, {meta[k]!r} asked"
        for k in ("n", "seed", "resolution", "version")
        if old.get(k) != meta[k]
    ]
    if diffs:
        raise ConfigError(
            f"{out_dir} holds a toyfaces dataset with other settings ({'; '.join(diffs)}); "
            "refusing to overwrite it: use another folder"
        )
    return True


def write_dataset(out_dir, n, seed=0, resolution=64, workers=None, progress=True):
    """Render n faces into out_dir: images/NNNNNN.png, labels.csv and dataset.json.

    Resumable: a folder written with the same (n, seed, resolution, version) gets only its
    missing images drawn; other settings raise ValueError (nothing is overwritten). Every file is
    written atomically. Returns a dict: out_dir, n, rendered, existing, seconds, rate (renders/s).
    """
    from ..utils.progress import progress_bar

    out_dir = os.fspath(out_dir)
    n = int(n)
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    res = check_resolution(resolution)
    seed = int(seed)
    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        workers = min(cpus, 4)
    workers = int(workers)
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NotADirectoryError(f"{out_dir} exists and is not a folder")

    meta = dict(
        format="latentlab-toyfaces",
        version=VERSION,
        n=n,
        seed=seed,
        resolution=res,
        attributes=list(ATTRIBUTES),
        nuisance=list(NUISANCE),
    )
    resuming = _check_existing(out_dir, meta)
    table = sample_attributes(n, seed)
    labels = _label_frame(table, n)
    labels_path = os.path.join(out_dir, "labels.csv")
    if not resuming:
        write_text(os.path.join(out_dir, "dataset.json"), json.dumps(meta, indent=1) + "\n")
    if os.path.exists(labels_path):
        import pandas as pd

        try:
            old = load_labels(out_dir)
            same = list(old.columns) == list(labels.columns) and len(old) == n and old.equals(labels)
        except (ValueError, pd.errors.ParserError):
            same = False
        if not same:
            raise ConfigError(
                f"{labels_path} does not match the dataset's settings; refusing to overwrite it "
                "(delete it to have it rewritten)"
            )
    else:
        with atomic_path(labels_path, ".csv") as tmp:
            labels.to_csv(tmp, index=False)

    img_dir = os.path.join(out_dir, "images")
    os.makedirs(img_dir, exist_ok=True)
    remove_stale_temps(out_dir)  # leftovers of an interrupted atomic write (labels.csv, dataset.json)
    for name in os.listdir(img_dir):  # leftovers of an interrupted atomic write
        if name.startswith(".tmp-"):
            try:
                os.unlink(os.path.join(img_dir, name))
            except FileNotFoundError:
                pass
    rows = table.to_dict("records")
    todo = [
        (i, os.path.join(img_dir, image_name(i, n)), rows[i])
        for i in range(n)
        if not os.path.exists(os.path.join(img_dir, image_name(i, n)))
    ]
    existing = n - len(todo)

    t0 = time.perf_counter()
    with progress_bar(
        total=n, initial=existing, desc="toyfaces", unit="img", enabled=progress, what="faces", hint="use --n to reduce"
    ) as bar:
        if todo:
            chunk = max(8, min(256, len(todo) // (workers * 8) or 1))
            jobs = [(res, todo[i : i + chunk], os.getpid()) for i in range(0, len(todo), chunk)]
            if workers == 1 or len(jobs) == 1:
                for job in jobs:
                    bar.update(_render_chunk(job))
            else:
                import multiprocessing as mp

                ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else None)
                with ctx.Pool(min(workers, len(jobs))) as pool:
                    for done in pool.imap_unordered(_render_chunk, jobs):
                        bar.update(done)
    seconds = time.perf_counter() - t0
    return dict(
        out_dir=out_dir,
        n=n,
        rendered=len(todo),
        existing=existing,
        seconds=seconds,
        rate=len(todo) / seconds if todo and seconds > 0 else float("nan"),
        workers=workers,
    )
