"""One namespace and one registry: everything installs under `latentlab` (the CLI as `latentlab.cli`, the
shipped data as `latentlab.shipped`), and the embedded toyfaces model is an entry of the same registry as
the official checkpoints."""

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest
import tomllib

from conftest import run_cli
from latentlab import defaults
from latentlab.checkpoints import download as dl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]


def _files(folder):
    """Paths (relative to `folder`, with '/') of the files in a folder, caches left out."""
    out = set()
    for dirpath, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        out |= {
            os.path.relpath(os.path.join(dirpath, f), folder).replace(os.sep, "/")
            for f in files
            if not f.endswith(".pyc")
        }
    return out


# ------------------------------------------------------------------------------------------ layout


def test_pyproject_installs_everything_under_latentlab():
    cfg = _pyproject()
    assert cfg["package-dir"] == {"latentlab.cli": "cli", "latentlab.shipped": "checkpoints"}
    packages = set(cfg["packages"])
    assert all(p == "latentlab" or p.startswith("latentlab.") for p in packages), packages
    on_disk = {
        os.path.relpath(d, ROOT).replace(os.sep, ".")
        for d, _, files in os.walk(os.path.join(ROOT, "latentlab"))
        if "__init__.py" in files
    }
    on_disk |= {"latentlab.cli", "latentlab.shipped"}
    assert packages == on_disk, f"pyproject.toml [tool.setuptools] packages: missing {sorted(on_disk - packages)}"
    assert "latentlab.shipped" in cfg["package-data"] and "checkpoints" not in cfg["package-data"]


def test_console_script_and_imports_use_the_package_names():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        assert tomllib.load(f)["project"]["scripts"] == {"latentlab": "latentlab.cli.main:main"}
    import latentlab.cli.main
    import latentlab.shipped

    assert os.path.samefile(os.path.dirname(latentlab.cli.main.__file__), os.path.join(ROOT, "cli"))
    assert os.path.samefile(os.path.dirname(latentlab.shipped.__file__), defaults.shipped_dir())
    offenders = []
    for folder in ("latentlab", "cli", "tests", "analyses", "benchmarks", "examples"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(dirpath, f)
                    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
                        names = (
                            [a.name for a in node.names]
                            if isinstance(node, ast.Import)
                            else [node.module or ""]
                            if isinstance(node, ast.ImportFrom) and node.level == 0
                            else []
                        )
                        if any(n.split(".")[0] in ("cli", "checkpoints") for n in names):
                            offenders.append(f"{os.path.relpath(path, ROOT)}:{node.lineno}")
    assert not offenders, f"imports of the top-level names cli/checkpoints: {offenders}"


def test_defaults_is_a_leaf():
    """latentlab.defaults imports nothing of latentlab (at module level or inside functions)."""
    tree = ast.parse(open(os.path.join(ROOT, "latentlab", "defaults.py"), encoding="utf-8").read())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
    assert not [m for m in imported if m.startswith(".") or m.split(".")[0] == "latentlab"], imported


# ---------------------------------------------------------------------------------- one registry


def test_toyfaces_is_a_shipped_registry_entry():
    every = dl.registry(shipped=True)
    entry = every[defaults.NAME]
    assert dl.is_shipped(entry) and "url" not in entry and entry["resolution"] == 64
    assert defaults.NAME not in dl.registry()  # registry(): what can be downloaded
    assert set(every) - set(dl.registry()) == {defaults.NAME}
    assert not set(every) & set(dl.registry("classifier"))  # classifier entries stay classifier entries
    # the entry's file is the embedded model: by name, by its file, through resolve and fetch
    assert os.path.samefile(dl.local_path(defaults.NAME), defaults.model_path())
    assert os.path.samefile(dl.fetch(defaults.NAME), defaults.model_path())
    assert os.path.samefile(dl.resolve(defaults.NAME), defaults.model_path())
    assert dl.entry_for(defaults.model_path())[0] == defaults.NAME
    assert dl.entry_for("generator.safetensors") is None  # its bare file name is not an official name
    assert dl.entry_for("toyfaces", "classifier") is None


def test_a_shipped_entry_is_never_downloaded(tmp_path, monkeypatch):
    """Shipped entries come from the registry's data, not from the name 'toyfaces': another one works the same,
    and a missing shipped file is an error naming it, not a download."""
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    reg = {
        "mine": {"shipped": "toyfaces/classifier.json", "resolution": 8, "description": "x"},
        "gone": {"shipped": "toyfaces/nothing-here.safetensors", "resolution": 8, "description": "y"},
    }
    monkeypatch.setattr(dl, "_all_entries", lambda: reg)
    assert os.path.samefile(dl.resolve("mine"), defaults.shipped_path("toyfaces", "classifier.json"))
    with pytest.raises(dl.CheckpointError, match="nothing-here.safetensors ships with latentlab but is missing"):
        dl.fetch("gone")
    assert not (tmp_path / "cache").exists()


def test_models_lists_the_shipped_model_first_then_the_downloads(capsys):
    code, out, err = run_cli(capsys, "models")
    assert code == 0, err
    lines = out.strip().splitlines()
    first = lines[0].split()
    assert first[:3] == [defaults.NAME, "64px", "shipped"] and "embedded default model" in lines[0]
    names = [line.split()[0] for line in lines[1:-1]]
    assert names == sorted(dl.registry()) and len(names) > 11  # the whole zoo (docs/MODELS.md)
    assert lines[-1].startswith("cache: ")


def test_default_model_checks_by_name_file_and_weights():
    from latentlab import load_generator
    from latentlab.edits.registry import is_default_model

    G = load_generator(defaults.NAME)
    assert is_default_model(None, defaults.NAME) and is_default_model(None, defaults.model_path())
    assert is_default_model(G) and is_default_model(G, "elsewhere.safetensors")  # its weights
    assert not is_default_model(None, "ffhq") and not is_default_model(None, None)


# --------------------------------------------------------------------------------- wheel, editable


def _isolated(unzipped, *args, cwd, cache):
    """Run Python on the unzipped wheel alone: no site processing (so no editable-install finder), the
    interpreter's site-packages only for the dependencies, neither the working folder nor the repository."""
    paths = [unzipped] + list(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=os.pathsep.join(paths), OMP_NUM_THREADS="1", LATENTLAB_CACHE=str(cache))
    return subprocess.run(
        [sys.executable, "-S", "-P", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


PROBE = r"""
import os, sys
import latentlab, latentlab.cli.main
from latentlab import defaults
from latentlab.checkpoints.download import registry
G = latentlab.load_generator("toyfaces")
clf = latentlab.load_classifier("toyfaces")
print("files", latentlab.__file__, latentlab.cli.main.__file__, defaults.shipped_dir())
print("model", G.img_resolution, ",".join(clf.names[:2]), len(registry()), "cli" in sys.modules, "checkpoints" in sys.modules)
"""


@pytest.mark.slow
def test_wheel_installs_under_latentlab_only_and_works_from_its_own_files(tmp_path):
    src, dist, unzipped, work = (tmp_path / n for n in ("src", "dist", "unzipped", "work"))
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache", "latentlab-out", "runs", "out"
        ),
    )
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(dist),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (wheel,) = dist.glob("latentlab-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(unzipped)
        entry_points = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"latentlab"}
    assert "latentlab = latentlab.cli.main:main" in entry_points
    assert {"latentlab/cli/" + f for f in _files(src / "cli")} <= names
    assert {"latentlab/" + f for f in _files(src / "latentlab")} <= names
    assert {"latentlab/shipped/" + f for f in _files(src / "checkpoints")} <= names  # every shipped file
    for f in (
        "registry.json",
        "toyfaces/generator.safetensors",
        "toyfaces/classifier.safetensors",
        "boundaries/models.json",
        "boundaries/toyfaces/index.json",
        "toyfaces/boundaries_z/index.json",
    ):
        assert "latentlab/shipped/" + f in names, f

    # a working folder with folders named like the repository's, which must not be picked up
    for sub in ("cli", "checkpoints/toyfaces"):
        (work / sub).mkdir(parents=True)
    (work / "checkpoints" / "registry.json").write_text("{}")
    res = _isolated(str(unzipped), "-c", PROBE, cwd=work, cache=tmp_path / "cache")
    assert res.returncode == 0, res.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in res.stdout.strip().splitlines())
    files = lines["files"].split()
    assert all(os.path.realpath(f).startswith(os.path.realpath(unzipped) + os.sep) for f in files), files
    assert lines["model"] == f"64 smile,age {len(dl.registry())} False False"

    res = _isolated(str(unzipped), "-m", "latentlab.cli.main", "--help", cwd=work, cache=tmp_path / "cache")
    assert res.returncode == 0 and res.stdout.startswith("Usage: latentlab "), res.stderr[-3000:]
    res = _isolated(str(unzipped), "-m", "latentlab", "models", cwd=work, cache=tmp_path / "cache")
    assert res.returncode == 0 and res.stdout.split()[:3] == ["toyfaces", "64px", "shipped"], res.stderr[-3000:]
    res = _isolated(
        str(unzipped),
        "-m",
        "latentlab",
        "generate",
        "--seeds",
        "0",
        "--out",
        str(tmp_path / "g"),
        cwd=work,
        cache=tmp_path / "cache",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "g" / "seed0000.png").is_file()


SCRIPT = os.path.join(sysconfig.get_path("scripts"), "latentlab")


@pytest.mark.skipif(not os.path.isfile(SCRIPT), reason="the latentlab console script is not installed")
def test_installed_console_script_runs_the_package_cli(tmp_path):
    """The installed `latentlab` (editable here) is the one of pyproject.toml: latentlab.cli.main:main."""
    assert "from latentlab.cli.main import main" in open(SCRIPT, encoding="utf-8").read(), "reinstall: pip install -e ."
    env = dict(os.environ, OMP_NUM_THREADS="1", LATENTLAB_CACHE=str(tmp_path / "cache"))
    res = subprocess.run([SCRIPT, "models"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[:3] == ["toyfaces", "64px", "shipped"]
