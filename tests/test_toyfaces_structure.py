"""Structure of the toyfaces modules: the renderer's per-attribute drawing steps draw exactly what the
one long `render_face` drew, and the classifier (with its file format) is separate from its training."""

import hashlib
import inspect
import subprocess
import sys

import numpy as np
import PIL
import pytest

from latentlab.datasets import toyfaces as tf

# sha256 of renders made with the single 180-line render_face (commit 7a4ab5a) under Pillow 13.0.0, before it
# was split into drawing steps. Rasterisation can change between Pillow releases, so the check runs on Pillow 13.
RENDER_SHA256 = {
    "batch64": "ed65c8595473dc401892d44cb6c7edad63b1656c1c072fc933806e2ca39c88e0",
    "batch16": "c1d70cb0fc047c02ccfe48ce10776c329605201e4b0a36ed6b4a21928439033a",
    "row1_512": "fc8c7e75bcde4310526291853981e8e4791ae765b15601365fa979c6feb794ba",
    "row4_512": "ccdec043081847a4caea2dac1263c187e145893bbcc6e97d2aec0e9ab05e26b4",
    "neutral64": "898c4adc8329b3dbf8a696c4793a95dc085eff7c384ac02942a374514431f051",
    "extreme128": "7f647328eb4a670cd4ff7c2d2f34ccebfdf1f581aa6193b1bc3b31f49f4038d0",
    "extreme2_64": "8c87cfe666e92e9fb83ec5287fb0798353f267c83f65b0a12b678ac8f5f4955f",
}


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.mark.skipif(
    PIL.__version__.split(".")[0] != "13", reason=f"hashes recorded with Pillow 13, have {PIL.__version__}"
)
def test_renders_are_bit_identical_to_the_unsplit_renderer():
    table = tf.sample_attributes(12, seed=3)  # rows 0-11 cover every branch: long/short hair, beard, glasses, bangs,
    rows = table.to_dict("records")  # open smiles (> 0.3), frowns, wrinkles (age > 0.5)
    extreme = tf.neutral_attributes(
        smile=1.0, age=1.0, eyeglasses=1, male=0, beard=1, yaw=-1.0, bangs=1, skin=1.0, background=0.99
    )
    extreme2 = tf.neutral_attributes(
        smile=-1.0,
        age=0.0,
        eyeglasses=1,
        male=1,
        beard=1,
        yaw=1.0,
        bangs=1,
        skin=0.0,
        nuisance_hair_colour=3,
        nuisance_eye_size=1.2,
    )
    got = {
        "batch64": sha(tf.render_batch(table, 64)),
        "batch16": sha(tf.render_batch(table, 16)),
        "row1_512": sha(tf.render_face(rows[1], 512)),
        "row4_512": sha(tf.render_face(rows[4], 512)),
        "neutral64": sha(tf.render_face({}, 64)),
        "extreme128": sha(tf.render_face(extreme, 128)),
        "extreme2_64": sha(tf.render_face(extreme2, 64)),
    }
    assert got == RENDER_SHA256


def test_render_face_is_a_short_sequence_of_drawing_steps():
    names = [step.__name__ for step in tf._DRAW_STEPS]
    for part in (
        "hair",
        "neck_and_shirt",
        "ears",
        "face",
        "wrinkles",
        "beard",
        "eyes",
        "nose",
        "mouth",
        "bangs",
        "eyeglasses",
    ):
        assert any(n.startswith("_draw_" + part) for n in names), part
    assert len(inspect.getsource(tf.render_face).splitlines()) < 25
    for step in tf._DRAW_STEPS:
        assert len(inspect.getsource(step).splitlines()) < 30, step.__name__
    # every step draws something: without it a short- or a long-haired face (every feature on) comes out differently
    rows = [tf.neutral_attributes(smile=0.8, age=0.9, eyeglasses=1, male=m, beard=1, bangs=1) for m in (0, 1)]
    full = [tf.render_face(row, 32) for row in rows]
    original = tf._DRAW_STEPS
    for step in original:
        try:
            tf._DRAW_STEPS = tuple(s for s in original if s is not step)
            assert any(not np.array_equal(tf.render_face(row, 32), f) for row, f in zip(rows, full)), step.__name__
        finally:
            tf._DRAW_STEPS = original


def test_classifier_module_does_not_load_training():
    code = (
        "import sys, latentlab.attributes.toyfaces as t; "
        "print('latentlab.attributes.toyfaces_training' in sys.modules); "
        "from latentlab.attributes.toyfaces import train_toyfaces_classifier, evaluate_scores; "
        "import latentlab.attributes.toyfaces_training as tt; "
        "print(train_toyfaces_classifier is tt.train_toyfaces_classifier and evaluate_scores is tt.evaluate_scores)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]  # loaded only when a training name is asked for (old imports keep working)
