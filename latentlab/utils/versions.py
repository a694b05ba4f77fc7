"""What produced a file: the versions every record (generate.json, edit.json, sample manifests, ...) writes."""

import platform
from importlib import metadata


def package_version():
    """latentlab's version from the installed package metadata (pyproject.toml is the one place it is written)."""
    try:
        return metadata.version("latentlab")
    except metadata.PackageNotFoundError:  # a source checkout that was never installed
        return "0+unknown"


def versions():
    """{'latentlab', 'torch', 'numpy', 'python'}: version strings of this run's software."""
    import numpy as np
    import torch

    return {
        "latentlab": package_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
