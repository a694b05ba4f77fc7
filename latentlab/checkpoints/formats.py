"""Read official StyleGAN checkpoint files into a neutral, code-free record.

`read_checkpoint(path)` reads `torch.save` files (zip or legacy, recognised by their first
bytes) with `torch_save.read_torch_save` and every other file with the restricted unpickler
of `safe_pickle`, detects the format (`detect_format`, a tag of `tags`) and hands the object to the
converter `CONVERTERS` lists for that tag. Each converter returns a `RawCheckpoint`
whose networks are described by class name, constructor kwargs (stylegan2-ada-pytorch
names) and a state dict under the official stylegan2-ada-pytorch parameter/buffer names.

Converters live in their own modules (`pytorch_pickle`, `tf_pickle`, `tf_stylegan1`,
`rosinality`) and import only `records`, `tags`, `tf_common` and `safe_pickle` (and, for
`rosinality`, `models`), never this module, so the
table below can import them without a cycle. A new format is one converter module, one tag
in `tags` and one entry here (plus its detection rule). The formats are described in
docs/FORMATS.md, docs/SG1_FORMAT.md and docs/ROSINALITY_FORMAT.md.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional, Union

from ..errors import CheckpointError
from . import pytorch_pickle, rosinality, tf_pickle, tf_stylegan1
from .records import NetworkRecord, RawCheckpoint, describe
from .safe_pickle import TFNetwork, load_pickle
from .tags import FORMAT_ROSINALITY, FORMAT_SG1_TF, FORMAT_SG2_PYTORCH, FORMAT_SG2_TF
from .torch_save import read_torch_save, torch_save_kind

__all__ = ["NetworkRecord", "RawCheckpoint", "CONVERTERS", "read_checkpoint", "detect_format"]

# format tag -> converter(path, unpickled object) -> RawCheckpoint
CONVERTERS: Dict[str, Callable[[str, Any], RawCheckpoint]] = {
    FORMAT_SG2_PYTORCH: pytorch_pickle.convert,
    FORMAT_SG2_TF: tf_pickle.convert,
    FORMAT_SG1_TF: tf_stylegan1.convert,
    FORMAT_ROSINALITY: rosinality.convert,
}


def detect_format(obj: object) -> Optional[str]:
    """The format tag of an unpickled object (a key of CONVERTERS), or None when it is no StyleGAN checkpoint."""
    if isinstance(obj, dict) and any(k in obj for k in ("G", "D", "G_ema")):
        return FORMAT_SG2_PYTORCH
    # lower-case state dicts g_ema/g/d, or a pSp/e4e state_dict with decoder.* keys
    if rosinality.detect(obj):
        return FORMAT_ROSINALITY
    # A TFNetwork whose BUILD never ran has no `state`: not a usable network.
    if (
        isinstance(obj, tuple)
        and len(obj) == 3
        and all(isinstance(n, TFNetwork) and isinstance(getattr(n, "state", None), dict) for n in obj)
    ):
        state = obj[0].state
        version = state.get("version")
        if state.get("build_func_name") == "G_style" or not isinstance(version, int) or version < 4:
            return FORMAT_SG1_TF
        return FORMAT_SG2_TF
    return None


def read_checkpoint(path: Union[str, os.PathLike]) -> RawCheckpoint:
    """Read an official StyleGAN checkpoint (v1 TF, v2 TF, v2 PyTorch pickles; rosinality .pt files)
    without running code from it.

    Raises CheckpointError (naming the file and the problem) for anything unsafe,
    damaged, or not a StyleGAN checkpoint.
    """
    path = os.fspath(path)
    obj = read_torch_save(path) if torch_save_kind(path) else load_pickle(path)
    fmt = detect_format(obj)
    converter = CONVERTERS.get(fmt) if fmt is not None else None
    if converter is None:
        raise CheckpointError(f"{path}: not a StyleGAN checkpoint (unpickled a {describe(obj)})")
    try:
        return converter(path, obj)
    except CheckpointError:
        raise
    except (MemoryError, RecursionError):
        raise CheckpointError(
            f"{path}: malformed {fmt} checkpoint (describes a network too large to convert)"
        ) from None
    except (ArithmeticError, ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as e:
        # absurd kwargs (a zero resolution, a negative fmap_base...) reaching the converter's arithmetic
        msg = str(e).splitlines()[0][:200] if str(e) else ""
        raise CheckpointError(
            f"{path}: malformed {fmt} checkpoint ({type(e).__name__}{': ' + msg if msg else ''})"
        ) from None
