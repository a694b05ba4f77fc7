"""Optional dependencies: imported only when used, with the pip command in the error."""
import importlib

__all__ = ["MissingDependency", "require"]


class MissingDependency(ImportError, ValueError):
    """An optional package is not installed. Also a ValueError so the CLI prints it as one line."""


def require(module, pip_name, purpose):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(f"{purpose} needs the optional package {pip_name!r}: pip install {pip_name}") from None


def available(module):
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False
