"""The inputs of the correlation study (latentlab.studies.correlation.study_inputs), resolved the same way for
`latentlab corr` and analyses/correlation_report.py."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import fixture_path, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADA = fixture_path("sg2ada_skip32.pkl")


def _boundaries(folder, names, dim=64):
    folder.mkdir()
    for k, a in enumerate(names):
        v = np.random.RandomState(k).randn(1, dim)
        np.save(folder / f"{a}.npy", v / np.linalg.norm(v))
    return folder


def test_embedded_model_defaults():
    from latentlab import defaults
    from latentlab.studies.correlation import EMBEDDED_ATTRIBUTES, study_inputs

    inputs = study_inputs()
    assert inputs.embedded and inputs.edited == list(EMBEDDED_ATTRIBUTES)
    assert sorted(inputs.directions) == sorted((s, a) for s in "zw" for a in EMBEDDED_ATTRIBUTES)
    assert inputs.reference is not None and set(EMBEDDED_ATTRIBUTES) <= set(inputs.reference.columns)
    assert study_inputs(defaults.NAME, "smile").edited == ["smile"]


def test_given_inputs_and_refusals(tmp_path):
    from latentlab.studies.correlation import MissingInput, study_inputs

    bz, bw = _boundaries(tmp_path / "bz", ["smile", "age"]), _boundaries(tmp_path / "bw", ["smile"])
    inputs = study_inputs(ADA, "smile, age", z_boundaries=bz, score_map="age=Young")
    assert not inputs.embedded and inputs.edited == ["smile", "age"] and inputs.reference is None
    assert sorted(inputs.directions) == [("z", "age"), ("z", "smile")]
    assert inputs.directions[("z", "age")].name == "age"
    assert inputs.classifier_attributes == ["smile", "Young"]
    assert inputs.columns(["Smiling", "Young"]) == {"smile": "Smiling", "age": "Young"}
    # an alias opposite to its column is refused unless mapped: the rule of both front-ends
    plain = study_inputs(ADA, ["age"], z_boundaries=bz)
    with pytest.raises(
        ValueError, match="'age' is the opposite of 'Young'; map it explicitly with --score-map age=Young"
    ):
        plain.columns(["Smiling", "Young"])
    for kwargs, message in (
        (dict(attrs=None, z_boundaries=bz), "--attrs is required for models other than the embedded"),
        (dict(attrs="smile"), "give --z-boundaries and/or --w-boundaries"),
        (dict(attrs=" , "), "--attrs names no attribute"),
    ):
        with pytest.raises(MissingInput, match=message):
            study_inputs(ADA, **kwargs)
    with pytest.raises(ValueError, match="no direction 'age' in .*bw; it has: smile"):
        study_inputs(ADA, "smile,age", z_boundaries=bz, w_boundaries=bw)
    with pytest.raises(ValueError, match="--score-map: expected attr=ClassifierColumn, got 'age'"):
        study_inputs(ADA, "age", z_boundaries=bz, score_map="age")
    with pytest.raises((ValueError, OSError)):
        study_inputs(ADA, "age", z_boundaries=bz, reference=tmp_path / "missing.txt")


def test_both_front_ends_word_a_missing_input_alike(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "corr", "--model", ADA, "--attrs", "red", "--classifier", "x", "--out", tmp_path / "c"
    )
    assert code == 2 and "give --z-boundaries and/or --w-boundaries" in err
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "analyses", "correlation_report.py"),
            "--model",
            ADA,
            "--classifier",
            "x",
            "--attrs",
            "red",
            "--out",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 2 and "error: give --z-boundaries and/or --w-boundaries" in p.stderr
    assert not os.listdir(tmp_path)
