"""The layering rule of docs/ARCHITECTURE.md: a module never imports a package above its layer.

Imports are read from the source (every `import`/`from ... import`, also those inside functions,
which are deferred imports but dependencies all the same), so the check needs no torch.
"""

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "latentlab")

# Bottom to top; a unit may import its own layer's other units only where listed in SAME_LAYER.
LAYERS = [
    {"errors", "defaults", "utils"},  # leaves: no latentlab imports but errors
    {"ops"},
    {"models"},
    {"checkpoints"},
    {"latents", "datasets"},
    {"edits", "truncation", "boundaries", "generate"},
    {"attributes", "sampling"},
    {"train"},
    {"studies"},
    {"metrics"},  # FID, KID, precision/recall: uses studies.frechet; train gets its metrics as callables
    {"inversion"},  # the projector uses studies.ppl's LPIPS distance
    {"cli", "__main__", "explore"},  # explore: the web explorer, beside the CLI (imports every layer; none imports it)
]
SAME_LAYER = {
    ("__main__", "cli"),
    ("utils", "errors"),
    ("defaults", "errors"),
    ("sampling", "generate"),
    ("checkpoints", "defaults"),
    ("edits", "defaults"),
    ("attributes", "defaults"),
    ("studies", "defaults"),
}
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def unit_of(module):
    """latentlab.a.b -> 'a' (the package or top-level module a dotted name belongs to)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def imports(path, module, is_package):
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "latentlab":  # `from .. import defaults`: the names are modules of the package
                for alias in node.names:
                    yield f"latentlab.{alias.name}", node.lineno
            elif target.startswith("latentlab."):
                yield target, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("latentlab."):
                    yield alias.name, node.lineno


def modules():
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                is_package = rel.endswith(".__init__")
                yield path, rel[: -len(".__init__")] if is_package else rel, is_package


def test_every_unit_has_a_layer():
    units = {unit_of(m) for _, m, _ in modules()} - {None}
    assert units <= set(RANK), f"packages/modules without a layer in docs/ARCHITECTURE.md: {sorted(units - set(RANK))}"


def test_no_module_imports_a_package_above_its_layer():
    wrong = []
    for path, module, is_package in modules():
        me = unit_of(module)
        if me is None:  # latentlab/__init__.py: the facade, which loads public names lazily from every layer
            continue
        for target, line in imports(path, module, is_package):
            other = unit_of(target)
            if other is None or other == me or other not in RANK:
                continue
            if RANK[other] > RANK[me] or (RANK[other] == RANK[me] and (me, other) not in SAME_LAYER):
                wrong.append(f"{os.path.relpath(path, os.path.dirname(ROOT))}:{line} ({me}) imports {target} ({other})")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_the_rule_catches_an_upward_import(tmp_path):
    """The checker itself: an upward import in a module is found."""
    path = tmp_path / "m.py"
    path.write_text("from ..studies import ppl\n")
    found = list(imports(str(path), "latentlab.models.m", False))
    assert found == [("latentlab.studies", 1)]
    assert RANK[unit_of(found[0][0])] > RANK["models"]
