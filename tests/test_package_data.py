"""The shipped data (the package `latentlab.shipped`: `checkpoints/` beside `latentlab/` in the repository) is found
from any working folder, also one that holds folders named `checkpoints/` or `cli/` of its own (which an
`import checkpoints` would pick up instead)."""

import os
import shutil
import subprocess
import sys

import pytest

from latentlab import defaults
from latentlab.checkpoints.download import registry

SCRIPT = r"""
import os, latentlab
from latentlab import defaults
from latentlab.checkpoints.download import registry
from latentlab.edits.registry import shipped_root
G = latentlab.load_generator("toyfaces")
clf = latentlab.load_classifier("toyfaces")
print("G", G.img_resolution, "classifier", ",".join(clf.names))
print("registry", len(registry()), len(registry("classifier")))
print("data", defaults.shipped_dir())
print("boundaries", os.path.isfile(os.path.join(shipped_root(), "models.json")), os.path.isdir(defaults.w_boundaries_dir()))
"""


@pytest.fixture
def shadowing_folder(tmp_path):
    """A working folder with its own checkpoints/ (no __init__.py, a decoy registry.json) and cli/ folders."""
    work = tmp_path / "project"
    for sub in ("checkpoints/toyfaces", "cli"):
        (work / sub).mkdir(parents=True)
    (work / "checkpoints" / "registry.json").write_text("{}")
    (work / "checkpoints" / "toyfaces" / "notes.txt").write_text("user data")
    return work


def test_library_finds_its_data_from_a_folder_with_checkpoints_and_cli(shadowing_folder):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=shadowing_folder, capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, res.stderr
    lines = dict(line.split(" ", 1) for line in res.stdout.strip().splitlines())
    assert lines["G"].startswith("64 classifier smile,age,eyeglasses")
    # the shipped registry, not the folder's empty one
    assert lines["registry"] == f"{len(registry())} {len(registry('classifier'))}" != "0 0"
    assert os.path.samefile(lines["data"], defaults.shipped_dir())
    assert not os.path.samefile(lines["data"], shadowing_folder / "checkpoints")
    assert lines["boundaries"] == "True True"


@pytest.mark.skipif(shutil.which("latentlab") is None, reason="the latentlab console script is not installed")
def test_command_works_from_such_a_folder(shadowing_folder):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(
        ["latentlab", "info"], cwd=shadowing_folder, capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert "toyfaces" in res.stdout and "64x64" in res.stdout


def test_shipped_dir_is_beside_the_package():
    import latentlab

    here = os.path.dirname(os.path.dirname(os.path.abspath(latentlab.__file__)))
    assert os.path.samefile(defaults.shipped_dir(), os.path.join(here, "checkpoints"))
    assert os.path.isfile(defaults.shipped_path("registry.json")) and os.path.isfile(defaults.model_path())
