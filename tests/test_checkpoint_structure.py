"""The structure of latentlab.checkpoints: a table from format tag to converter, one constant per tag,
public TF helpers in one module, no import cycles, no borrowed underscore names, cited docs that exist."""

import ast
import json
import os
import re
import subprocess
import sys

import pytest

import latentlab
from conftest import fixture_path
from latentlab.checkpoints import formats, tags
from latentlab.checkpoints.safe_pickle import load_pickle
from latentlab.checkpoints.tags import (
    ALL_FORMATS,
    FORMAT_LATENTLAB,
    FORMAT_ROSINALITY,
    FORMAT_SG1_TF,
    FORMAT_SG2_PYTORCH,
    FORMAT_SG2_TF,
    OFFICIAL_FORMATS,
)

PACKAGE = os.path.dirname(latentlab.__file__)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKPOINTS = os.path.join(PACKAGE, "checkpoints")
CONVERTERS = ("pytorch_pickle", "tf_pickle", "tf_stylegan1", "rosinality")


def modules():
    return sorted(f[:-3] for f in os.listdir(CHECKPOINTS) if f.endswith(".py") and f != "__init__.py")


def tree(name):
    with open(os.path.join(CHECKPOINTS, name + ".py"), encoding="utf-8") as f:
        return ast.parse(f.read())


def sibling_imports(name):
    """{sibling module: imported names} for every `from .x import ...` / `from . import x` in a checkpoints module,
    at module level or inside functions."""
    out = {}
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.setdefault(node.module, set()).update(a.name for a in node.names)
            else:
                for a in node.names:
                    out.setdefault(a.name, set())
    return out


# ------------------------------------------------------------------------------------------------ tags


def test_tag_values_are_the_published_ones():
    # the strings are an interface: `latentlab info` prints them, the registry and converted files store them
    assert (FORMAT_SG2_PYTORCH, FORMAT_SG2_TF, FORMAT_SG1_TF, FORMAT_ROSINALITY, FORMAT_LATENTLAB) == (
        "stylegan2-ada-pytorch",
        "stylegan2-tf",
        "stylegan1-tf",
        "rosinality-stylegan2-pytorch",
        "latentlab",
    )
    assert len(set(ALL_FORMATS)) == len(ALL_FORMATS) == 5 and set(OFFICIAL_FORMATS) == set(ALL_FORMATS) - {"latentlab"}
    docs = open(os.path.join(REPO, "docs", "FORMATS.md"), encoding="utf-8").read()
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    for tag in ALL_FORMATS:
        assert f"`{tag}`" in docs and f"`{tag}`" in readme, tag


def test_each_official_tag_is_written_once_in_the_code():
    """No string literal repeats an official tag outside tags.py (the generic word 'latentlab' is exempt)."""
    found = []
    for root in (PACKAGE, os.path.join(REPO, "cli")):
        for folder, _, files in os.walk(root):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
                    if isinstance(node, ast.Constant) and node.value in OFFICIAL_FORMATS:
                        found.append(os.path.relpath(path, REPO))
    assert found == [os.path.join("latentlab", "checkpoints", "tags.py")] * len(OFFICIAL_FORMATS)


def test_checkpoint_modules_compare_no_tag_literals():
    for name in modules():
        if name in ("tags", "download"):
            continue
        for node in ast.walk(tree(name)):
            if isinstance(node, ast.Constant) and node.value == FORMAT_LATENTLAB:
                pytest.fail(f"checkpoints/{name}.py writes the tag {FORMAT_LATENTLAB!r} as a literal; use tags")


# ------------------------------------------------------------------------------------------------ the table


def test_converter_table_covers_every_official_format():
    assert set(formats.CONVERTERS) == set(OFFICIAL_FORMATS)
    for tag, converter in formats.CONVERTERS.items():
        assert callable(converter) and converter.__name__ == "convert", tag


@pytest.mark.parametrize(
    "fixture,tag",
    [("sg2ada_skip32.pkl", FORMAT_SG2_PYTORCH), ("tf_sg2_16.pkl", FORMAT_SG2_TF), ("sg1_32.pkl", FORMAT_SG1_TF)],
)
def test_detection_and_conversion_agree_on_the_tag(fixture, tag):
    path = fixture_path(fixture)
    assert formats.detect_format(load_pickle(path)) == tag
    assert formats.read_checkpoint(path).format == tag


def test_read_checkpoint_dispatches_through_the_table(monkeypatch, tmp_path):
    """A format added to CONVERTERS (with its detection rule) is read without touching read_checkpoint."""
    import pickle

    path = tmp_path / "new.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=2))
    calls = []

    def convert(p, obj):
        calls.append((p, obj))
        return "converted"

    monkeypatch.setattr(formats, "detect_format", lambda obj: "brand-new" if "weights" in obj else None)
    monkeypatch.setitem(formats.CONVERTERS, "brand-new", convert)
    assert formats.read_checkpoint(path) == "converted" and calls == [(str(path), {"weights": [1.0, 2.0]})]
    monkeypatch.delitem(formats.CONVERTERS, "brand-new")
    with pytest.raises(latentlab.CheckpointError, match=r"new\.pkl: not a StyleGAN checkpoint \(unpickled a dict"):
        formats.read_checkpoint(path)


# ------------------------------------------------------------------------------------------------ imports


def test_converters_never_import_formats_and_formats_imports_them():
    for conv in CONVERTERS:
        assert "formats" not in sibling_imports(conv), conv
    assert set(CONVERTERS) <= set(sibling_imports("formats"))


def test_no_import_cycle_inside_the_checkpoints_package():
    graph = {m: set(sibling_imports(m)) & set(modules()) for m in modules()}
    state = {}

    def visit(m, stack):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(n) :] + [n]))
            if n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in modules():
        if m not in state:
            visit(m, [m])


def test_every_module_imports_first_in_a_fresh_interpreter():
    """Each checkpoints module imported before any other of the package (heavy dependencies preloaded)."""
    script = (
        "import importlib, sys, numpy, torch, safetensors.torch\n"
        f"for name in {modules()!r}:\n"
        "    for k in [k for k in sys.modules if k == 'latentlab' or k.startswith('latentlab.')]:\n"
        "        del sys.modules[k]\n"
        "    importlib.import_module('latentlab.checkpoints.' + name)\n"
        "print('ok')\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]


def _private_imports(path):
    """`from x import _y` (by name) and `module._y` uses of imported modules, in one file."""
    src = ast.parse(open(path, encoding="utf-8").read())
    bad, imported_modules = [], set()
    for node in ast.walk(src):
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("latentlab")):
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    bad.append(f"from {'.' * node.level}{node.module or ''} import {a.name}")
                elif node.module is None:
                    imported_modules.add(a.asname or a.name)  # from . import module
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("latentlab"):
                    imported_modules.add(a.asname or a.name.split(".")[0])
    for node in ast.walk(src):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported_modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            bad.append(f"{node.value.id}.{node.attr}")
    return bad


def test_no_checkpoints_module_borrows_underscore_names():
    for name in modules():
        assert not _private_imports(os.path.join(CHECKPOINTS, name + ".py")), name


def test_nobody_borrows_underscore_names_from_the_checkpoints_package():
    for folder, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                borrowed = [b for b in _private_imports(path) if "checkpoints" in b or "tf_" in b or "pickle" in b]
                assert not borrowed, (os.path.relpath(path, REPO), borrowed)


def test_tf_converters_share_public_helpers():
    from latentlab.checkpoints import tf_common

    for conv in ("tf_pickle", "tf_stylegan1"):
        used = sibling_imports(conv).get("tf_common", set())
        assert {"collect_variables", "convert_variables", "drop_lod", "static_kwargs", "tf_error"} <= used, conv
    assert all(not n.startswith("_") and hasattr(tf_common, n) for n in tf_common.__all__)


def test_private_import_check_sees_violations(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("from .tf_pickle import _apply, convert\nfrom . import formats\nx = formats._hidden\ny = formats.ok\n")
    assert _private_imports(p) == ["from .tf_pickle import _apply", "formats._hidden"]


# ------------------------------------------------------------------------------------------------ docs


def test_docs_cited_in_the_code_exist():
    cited = set()
    for root in (PACKAGE, os.path.join(REPO, "cli")):
        for folder, _, files in os.walk(root):
            for f in files:
                if f.endswith(".py"):
                    src = open(os.path.join(folder, f), encoding="utf-8").read()
                    cited |= {(f, m) for m in re.findall(r"docs/([\w./-]*\w\.md)", src)}
                    cited |= {(f, m) for m in re.findall(r"(?<![\w/.-])([A-Z][A-Z0-9_]+\.md)\b", src)}
    assert ("formats.py", "FORMATS.md") in cited and ("tf_stylegan1.py", "SG1_FORMAT.md") in cited
    for where, doc in sorted(cited):
        assert os.path.isfile(os.path.join(REPO, "docs", doc)) or os.path.isfile(os.path.join(REPO, doc)), (where, doc)


def test_registry_formats_are_tags():
    registry = os.path.join(REPO, "checkpoints", "registry.json")
    if not os.path.exists(registry):
        pytest.skip("the registry moved")
    entries = json.load(open(registry))
    formats_used = {e["format"] for e in entries.values() if isinstance(e, dict) and "format" in e}
    assert formats_used and formats_used <= set(tags.ALL_FORMATS)
