"""Any classifier exported with TorchScript (`torch.jit.save`).

A TorchScript file is a program, not weights: loading and calling it runs whatever code its author compiled
into it. latentlab therefore loads one only on explicit trust (`trust_code=True`; `--trust-code` on the
command line). State dicts (`resnet:FILE`, `toyfaces:FILE.safetensors`, read without running code from the
file) are the recommended classifier format.
"""

import os

import torch

from ..errors import CheckpointError, ConfigError
from ..utils.trust import TRUST_CODE_HELP, TRUST_HINT, require_trust
from .base import AttributeClassifier
from .preprocess import Preprocess

__all__ = ["TorchScriptClassifier", "TRUST_CODE_HELP", "TRUST_HINT", "require_trust"]


class TorchScriptClassifier(AttributeClassifier):
    """A TorchScript module mapping preprocessed images [N, C, H, W] to logits [N, A].

    SECURITY: a TorchScript file is a program. Loading it runs no Python pickle
    code, but loading and calling it run whatever the author compiled into it;
    it is loaded only with `trust_code=True` (ConfigError otherwise, before the
    file is opened), which says that you trust the file.

    names: one per output; by default attr0 .. attrA-1, A found by running the model
    once on a zero batch of the preprocess size (so `preprocess.resize` must be set).
    The default preprocess (224 px, range [0, 1], no normalisation) is only a guess:
    pass the one the model was trained with.
    trust_code: must be True (an explicit opt-in: the file's code runs).
    """

    def __init__(self, path, names=None, preprocess=None, trust_code=False):
        path = os.fspath(path)
        require_trust(path, trust_code)  # before the file is even opened
        if preprocess is None:
            preprocess = Preprocess(resize=224, resize_mode="bilinear", input_range=(0, 1))
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such file")
        try:
            module = torch.jit.load(path, map_location="cpu")
        except Exception as e:  # not a TorchScript archive, or a damaged one
            raise CheckpointError(
                f"{path}: not a TorchScript file ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
            ) from None
        module.eval()
        if names is None:
            names = [f"attr{i}" for i in range(self._probe(module, preprocess, path))]
        super().__init__(names, preprocess)
        self.path = path
        self.module = module

    @staticmethod
    def _probe(module, preprocess, path):
        if preprocess.resize is None:
            raise ConfigError(
                f"{path}: pass names=, or a preprocess with a resize so that the number of outputs can be probed"
            )
        channels = len(preprocess.mean) if preprocess.mean is not None else 3
        x = torch.zeros([2, channels, *preprocess.resize])  # two images: batch-norm style layers need N > 1
        try:
            with torch.no_grad():
                out = module(x)
        except Exception as e:
            raise ConfigError(
                f"{path}: probing the model with a {list(x.shape)} batch failed ({type(e).__name__}: {e})"
            ) from None
        if not torch.is_tensor(out) or out.ndim not in (1, 2) or out.shape[0] != 2:
            shape = list(out.shape) if torch.is_tensor(out) else type(out).__name__
            raise ConfigError(f"{path}: the model returned {shape} for 2 images; expected logits [N, A] or [N]")
        return 1 if out.ndim == 1 else out.shape[1]

    def classify(self, x):
        out = self.module(x)
        return out[:, None] if torch.is_tensor(out) and out.ndim == 1 else out
