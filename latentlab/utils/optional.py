"""Optional dependencies: imported only when a feature needs them, with the install command in the error.

    from latentlab.utils.optional import require, available
    open_clip = require("open_clip", "open_clip_torch", "ClipZeroShotClassifier")
    # MissingDependency: ClipZeroShotClassifier needs the optional package 'open_clip_torch':
    #                    pip install open_clip_torch (or pip install 'latentlab[clip]')

Every optional import of the package goes through `require` (a feature that cannot work without the
package) or `available` (a feature that is skipped without it, e.g. TensorBoard logging).
"""

import importlib

from ..errors import MissingDependency

__all__ = ["EXTRAS", "MissingDependency", "available", "require"]

# pip package -> the latentlab extra that installs it (pyproject.toml's [project.optional-dependencies];
# tests/test_structure_helpers.py checks that the two agree).
EXTRAS = {
    "open_clip_torch": "clip",
    "pyarrow": "parquet",
    "timm": "hsr",
    "tensorboard": "tensorboard",
    "torch-fidelity": "metrics",
    "huggingface_hub": "hub",
}


def require(module, package=None, purpose=None):
    """Import and return `module`; MissingDependency (one line: what needs it, the pip command, the latentlab
    extra that installs it when there is one) if it is not installed. package: the pip name [default: module]."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = package or module
        extra = EXTRAS.get(package)
        hint = f" (or pip install 'latentlab[{extra}]')" if extra else ""
        raise MissingDependency(
            f"{purpose or module} needs the optional package {package!r}: pip install {package}{hint}"
        ) from None


def available(module):
    """Whether `module` can be imported."""
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False
