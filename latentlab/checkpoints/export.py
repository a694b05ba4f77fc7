"""Write networks as a stylegan2-ada-pytorch-style pickle (the layout NVIDIA's training code saves).

The file is a pickled dict {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs', ...};
every module is a `torch_utils.persistence._reconstruct_persistent_obj(meta)` call whose
meta holds the official class name and the module's state (`_parameters`, `_buffers`,
`_modules`, `training`, plain attributes, and `_init_args` / `_init_kwargs` on the
top-level networks). Parameter names are the official ones, so any reader of the
format (latentlab's safe loader among them) rebuilds the networks from it.

`module_src` is where NVIDIA's pickles carry their Python source, which their loader
executes. We ship none: ours holds only a comment, and latentlab never executes it.
Modules are written under their official class names (`OFFICIAL_CLASS_NAMES` maps the StyleGAN3
classes, whose official names clash with StyleGAN2's, to NVlabs/stylegan3's); our analysis-only
HookPoint modules (no weights) are left out, as the official networks have none.
A training run's `augment_pipe` (`latentlab.train.augment.AugmentPipe`) is written the same way: its
constructor arguments (the augmentation settings), p and its filter buffers, as data.
"""

from __future__ import annotations

import collections
import os
import pickle
from typing import Any, Dict, Mapping, Optional, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..models.layers import HookPoint
from ..utils.atomic import atomic_path

MODULE_SRC = "# Written by latentlab (weights and constructor arguments only); no code to run.\n"
PERSISTENCE_VERSION = 6  # version tag of the persistence metadata in official pickles


# latentlab class -> the official class name (the others already have it)
OFFICIAL_CLASS_NAMES = {
    "StyleGAN3Generator": "Generator",
    "StyleGAN3Synthesis": "SynthesisNetwork",
    "StyleGAN3Layer": "SynthesisLayer",
}
# Networks with an official pickle layout: StyleGAN2 (and ADA) generators and discriminators, StyleGAN3 generators.
EXPORTABLE = ("Generator", "Discriminator", "StyleGAN3Generator", "AugmentPipe")


def _reconstruct_persistent_obj(meta):  # pragma: no cover - only its pickled name matters
    raise RuntimeError("placeholder: written into pickles as torch_utils.persistence._reconstruct_persistent_obj")


_PLAIN = (bool, int, float, str, type(None))


def _plain_attrs(module):
    """Plain attributes (numbers, strings, tuples of them) as the official state dict keeps them."""
    out = {}
    for k, v in vars(module).items():
        if k.startswith("_") or k == "init_kwargs":
            continue
        if isinstance(v, _PLAIN) or (isinstance(v, (tuple, list)) and all(isinstance(x, _PLAIN) for x in v)):
            out[k] = v
    return out


class _PersistentModule:
    """Stand-in that pickles as the official persistent-object reconstruction call."""

    def __init__(self, module, top_level):
        params = collections.OrderedDict(
            (k, None if p is None else nn.Parameter(p.detach().to("cpu", torch.float32).clone(), requires_grad=False))
            for k, p in module._parameters.items()
        )
        buffers = collections.OrderedDict(
            (k, None if b is None else b.detach().to("cpu").clone()) for k, b in module._buffers.items()
        )
        children = collections.OrderedDict(
            (k, _PersistentModule(m, False))
            for k, m in module._modules.items()
            if m is not None and not isinstance(m, HookPoint)
        )
        state = {
            "training": False,
            "_parameters": params,
            "_buffers": buffers,
            "_non_persistent_buffers_set": set(module._non_persistent_buffers_set),
            "_modules": children,
            **_plain_attrs(module),
        }
        if top_level:
            state["_init_args"] = ()
            state["_init_kwargs"] = dict(module.init_kwargs)
        self.meta = {
            "type": "class",
            "version": PERSISTENCE_VERSION,
            "module_src": MODULE_SRC,
            "class_name": OFFICIAL_CLASS_NAMES.get(type(module).__name__, type(module).__name__),
            "state": state,
        }


class _Pickler(pickle._Pickler):
    """Pure-Python pickler that writes the persistence global by name (it need not be importable here)."""

    def reducer_override(self, obj):
        if isinstance(obj, _PersistentModule):
            return _reconstruct_persistent_obj, (obj.meta,)
        return NotImplemented

    def save(self, obj, save_persistent_id=True):
        if obj is _reconstruct_persistent_obj:  # the dispatch table would bypass a save_global override
            if id(obj) in self.memo:
                self.write(self.get(self.memo[id(obj)][0]))
                return
            self.save("torch_utils.persistence")
            self.save("_reconstruct_persistent_obj")
            self.write(pickle.STACK_GLOBAL)
            self.memoize(obj)
            return
        super().save(obj, save_persistent_id)


def save_official_pickle(
    path: Union[str, os.PathLike],
    networks: Mapping[str, Optional[nn.Module]],
    extras: Optional[Mapping[str, Any]] = None,
) -> None:
    """Write {'G', 'D', 'G_ema', 'augment_pipe': module} (any subset) atomically as an ADA-style .pkl.

    extras: plain-data entries added to the top-level dict (e.g. {'progress': {...}}).
    """
    data: Dict[str, Any] = {"G": None, "D": None, "G_ema": None, "augment_pipe": None, "training_set_kwargs": None}
    for name, net in networks.items():
        if name not in ("G", "D", "G_ema", "augment_pipe"):
            raise ConfigError(f"unknown network name {name!r} (expected G, D, G_ema or augment_pipe)")
        data[name] = None if net is None else _PersistentModule(net, True)
    data.update(extras or {})
    with atomic_path(path, ".pkl") as tmp:
        with open(tmp, "wb") as f:
            _Pickler(f, protocol=4).dump(data)
