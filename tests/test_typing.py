"""The typed public API: every public callable of the core packages carries annotations, and mypy passes.

The core packages (ops -> models -> checkpoints -> latents/edits/truncation) are the library's
public API; `[tool.mypy]` in pyproject.toml checks them with `disallow_incomplete_defs`, which only
catches half-annotated functions. The walk below also catches functions with no annotations at all,
which mypy would silently skip.
"""

import importlib
import importlib.util
import inspect
import os
import pkgutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TYPED_PACKAGES = ["ops", "models", "checkpoints", "latents", "edits", "truncation"]


def _public_modules():
    """Every importable module of the typed packages whose dotted name has no part with a leading underscore."""
    for pkg_name in TYPED_PACKAGES:
        pkg = importlib.import_module(f"latentlab.{pkg_name}")
        yield pkg
        for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + "."):
            if any(part.startswith("_") for part in info.name.split(".")):
                continue
            yield importlib.import_module(info.name)


def _callables(module):
    """(qualified name, function) for each public function, method and constructor defined in `module`."""
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue  # private, or imported from elsewhere
        if inspect.isfunction(obj):
            yield f"{module.__name__}.{name}", obj
        elif inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                elif isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member) and member.__module__ == module.__name__:
                    yield f"{module.__name__}.{name}.{attr}", member


def _missing_annotations(func):
    """The parameters of `func` (bar a leading self/cls) without an annotation, plus 'return' if that lacks one."""
    sig = inspect.signature(func)
    missing = []
    for i, (pname, param) in enumerate(sig.parameters.items()):
        if i == 0 and pname in ("self", "cls"):
            continue
        if param.annotation is inspect.Parameter.empty:
            missing.append(pname)
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def test_walk_finds_the_public_api():
    """The walk sees the API it is meant to check (a walk that finds nothing would pass vacuously)."""
    names = {name for module in _public_modules() for name, _ in _callables(module)}
    for expected in [
        "latentlab.ops.bias_act.bias_act",
        "latentlab.models.generator.Generator.forward",
        "latentlab.models.generator.Generator.__init__",
        "latentlab.checkpoints.loader.load_generator",
        "latentlab.truncation.base.Truncation.fit",
    ]:
        assert expected in names
    assert len(names) > 100


def test_missing_annotations_detects_gaps():
    def bare(self, x, y: int = 1):
        return x

    def full(x: int, *args: int, **kw: str) -> int:
        return x

    assert _missing_annotations(bare) == ["x", "return"]
    assert _missing_annotations(full) == []


def test_public_api_is_fully_annotated():
    gaps = []
    for module in _public_modules():
        for name, func in _callables(module):
            missing = _missing_annotations(func)
            if missing:
                gaps.append(f"{name}: {', '.join(missing)}")
    assert not gaps, "public callables without type hints:\n" + "\n".join(sorted(gaps))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_passes():
    """mypy with the project's [tool.mypy] config (pyproject.toml) reports no errors on the typed packages."""
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
