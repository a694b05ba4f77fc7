"""Our CUDA kernels (bias_act, upfirdn2d, filtered_lrelu), compiled with torch.utils.cpp_extension on first use.

Importing this package compiles nothing. `load_extension(name)` builds (or reuses the
cached build in ~/.cache/torch_extensions) and returns the module, or None when the
kernels cannot be had; the callers then fall back to the reference PyTorch ops.
"""

from __future__ import annotations

import os
import shutil
import threading
import warnings
from types import ModuleType
from typing import Dict, Optional

import torch

from ...errors import ConfigError

__all__ = ["OPS", "cuda_available_for", "load_extension"]

_HERE = os.path.dirname(os.path.abspath(__file__))

# op name -> source files; each op becomes its own extension module.
OPS = {
    "bias_act": ["bias_act.cpp", "bias_act.cu"],
    "upfirdn2d": ["upfirdn2d.cpp", "upfirdn2d.cu"],
    "filtered_lrelu": ["filtered_lrelu.cpp", "filtered_lrelu.cu"],
}
# bias_act is memory-bound, so exact expf/tanhf cost nothing there, while
# --use_fast_math would turn tanhf into a 1e-3-accurate approximation.
_CUDA_FLAGS = {
    "bias_act": ["-O3"],
    "upfirdn2d": ["-O3", "--use_fast_math"],
    # Only multiply-adds and compares: fast math would gain nothing but flush denormals to zero.
    "filtered_lrelu": ["-O3"],
}

_lock = threading.Lock()
# op name -> module, or None after a failure (never retried in this process)
_cache: Dict[str, Optional[ModuleType]] = {}


class ExtensionUnavailable(RuntimeError):
    """Raised internally with a human-readable reason why a build cannot work."""


def _ref_forced() -> bool:
    return os.environ.get("LATENTLAB_OPS", "").strip().lower() == "ref"


def _has_toolkit(home: Optional[str]) -> bool:
    if not home:
        return False
    return os.path.isfile(os.path.join(home, "bin", "nvcc")) and os.path.isfile(
        os.path.join(home, "include", "cuda_runtime.h")
    )


def _find_cuda_home() -> str:
    """The CUDA toolkit to build with.

    Read at call time rather than trusting cpp_extension.CUDA_HOME, which is fixed
    when torch is imported and, with an nvcc wrapper script on PATH (as in
    /usr/local/bin), points at a directory without the CUDA headers.
    """
    from torch.utils import cpp_extension

    for var in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(var)
        if home:
            if not os.path.isdir(home):
                raise ExtensionUnavailable(f"{var}={home} does not exist")
            if not _has_toolkit(home):
                raise ExtensionUnavailable(f"{var}={home} has no bin/nvcc or include/cuda_runtime.h")
            return home
    candidates = [getattr(cpp_extension, "CUDA_HOME", None)]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    candidates.append("/usr/local/cuda")
    for home in candidates:
        if home and _has_toolkit(home):
            return home
    raise ExtensionUnavailable("no CUDA toolkit found (nvcc not on PATH and CUDA_HOME not set)")


def _build(name: str) -> ModuleType:
    from torch.utils import cpp_extension

    if torch.version.cuda is None:
        raise ExtensionUnavailable("this PyTorch build has no CUDA support")
    home = _find_cuda_home()
    if not cpp_extension.is_ninja_available():
        raise ExtensionUnavailable("ninja is not installed (pip install ninja)")
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and torch.cuda.device_count() == 0:
        raise ExtensionUnavailable("no CUDA device is visible and TORCH_CUDA_ARCH_LIST is not set")
    sources = [os.path.join(_HERE, s) for s in OPS[name]]
    # cpp_extension reads its module-level CUDA_HOME; point it at the toolkit found above.
    saved = cpp_extension.CUDA_HOME
    cpp_extension.CUDA_HOME = home
    try:
        return cpp_extension.load(
            name=f"latentlab_{name}",
            sources=sources,
            extra_include_paths=[_HERE],
            extra_cflags=["-O3"],
            extra_cuda_cflags=_CUDA_FLAGS[name],
            with_cuda=True,
            verbose=False,
        )
    finally:
        cpp_extension.CUDA_HOME = saved


def _short(exc: BaseException, limit: int = 2000) -> str:
    msg = f"{type(exc).__name__}: {exc}".strip()
    return msg if len(msg) <= limit else "..." + msg[-limit:]  # compiler errors are at the end


def load_extension(name: str) -> Optional[ModuleType]:
    """Return the compiled module for op `name` (a key of OPS), or None.

    None without a warning when LATENTLAB_OPS=ref. On the first failure to build or
    import, warns once (saying why) and returns None for the rest of the process.
    """
    if name not in OPS:
        raise ConfigError(f"unknown op {name!r}; choose from {sorted(OPS)}")
    if _ref_forced():
        return None
    if name in _cache:
        return _cache[name]
    with _lock:
        if name in _cache:
            return _cache[name]
        try:
            module = _build(name)
        except Exception as exc:  # any failure means: use the reference path
            reason = str(exc) if isinstance(exc, ExtensionUnavailable) else _short(exc)
            warnings.warn(
                f"latentlab: cannot build the CUDA kernels for {name} ({reason}); "
                "using the reference PyTorch implementation instead.",
                RuntimeWarning,
                stacklevel=2,
            )
            module = None
        _cache[name] = module
        return module


def cuda_available_for(x: torch.Tensor, name: Optional[str] = None) -> bool:
    """True when `x` is a CUDA tensor and the kernels (of op `name`, or of all ops) load."""
    if not x.is_cuda:
        return False
    names = list(OPS) if name is None else [name]
    return all(load_extension(n) is not None for n in names)


def _reset_cache() -> None:
    """Forget built modules and past failures (for tests)."""
    with _lock:
        _cache.clear()
