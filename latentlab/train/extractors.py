"""Frozen pretrained feature extractors for training-time regularisers (HSR).

Every extractor takes generator images ([N, C, H, W], about [-1, 1]) and returns a list of
feature maps [N, C_i, H_i, W_i], one per configured layer. Preprocessing is explicit and
recorded in `extractor.preprocess` (a `latentlab.attributes.preprocess.Preprocess`): by
default resize to the network's input size (bilinear, antialiased when shrinking), map
[-1, 1] to [0, 1], normalise with the network's mean/std (ImageNet's for DINO and torchvision).

Extractors are frozen: every parameter has `requires_grad=False` and the module stays in eval
mode whatever `train()` is called with (dropout, batch-norm statistics and drop-path stay off).
Gradients can still flow *through* an extractor to its input if the caller wants that; the HSR
loss computes its targets under `torch.no_grad()`.

Weights (of the extractor classes and `make_extractor`; `default_weights(name)` gives the pretrained
choice for a name, which `HSR.for_generator`, `train_hsr` and `latentlab train hsr` use when none is given):
    None / 'none'      random initialisation (seeded; a baseline, not what the paper uses)
    a file path        a state dict (.pth/.pt read with torch.load(weights_only=True), or .safetensors), read by
                       `latentlab.checkpoints.state_dicts.read_state_dict` and loaded by its `load_state_dict_strict`
    a known file name  e.g. 'dino_deitsmall16_pretrain.pth' (`latentlab.train.pretrained.KNOWN_WEIGHTS`):
                       the file from the latentlab cache or torch hub's, else downloaded and verified
    'timm'             timm's pretrained weights, downloaded into the user's cache (needs internet)
    'torchvision'      torchvision's default pretrained weights (TorchvisionExtractor only; needs internet)
Offline, a download that fails raises `latentlab.errors.MissingWeights`: one line naming the file to
fetch and where to put it.

`timm` is an optional dependency, imported only when a timm-based extractor is built.
"""

import argparse
import os
import re

import torch
from torch import nn

from ..attributes.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from ..checkpoints.state_dicts import WRAPPER_PREFIXES, load_state_dict_strict, read_state_dict
from ..errors import ConfigError
from ..utils.optional import require
from .pretrained import timm_pretrained, torchvision_pretrained, weights_file

__all__ = [
    "FeatureExtractor",
    "ViTExtractor",
    "TimmExtractor",
    "TorchvisionExtractor",
    "make_extractor",
    "resolve_extractor_name",
    "read_weights",
    "default_vit_blocks",
    "default_weights",
    "DEFAULT_EXTRACTOR",
    "ALIASES",
    "DINO_FILES",
]

DEFAULT_EXTRACTOR = "vit_small_patch16_224.dino"
# Names of the official DINO hub models -> the timm models with the same architecture and weights.
ALIASES = {
    "dino_vits16": "vit_small_patch16_224.dino",
    "dino_vits8": "vit_small_patch8_224.dino",
    "dino_vitb16": "vit_base_patch16_224.dino",
    "dino_vitb8": "vit_base_patch8_224.dino",
}
# timm's DINO models -> the file of Facebook's DINO release with the same weights (fetched by name).
DINO_FILES = {
    "vit_small_patch16_224.dino": "dino_deitsmall16_pretrain.pth",
    "vit_small_patch8_224.dino": "dino_deitsmall8_pretrain.pth",
    "vit_base_patch16_224.dino": "dino_vitbase16_pretrain.pth",
    "vit_base_patch8_224.dino": "dino_vitbase8_pretrain.pth",
}
WEIGHTS_HINT = "--extractor-weights FILE takes a file; --extractor-weights none trains with a random F"
ACCEPTED_FORMS = (
    "a timm ViT name ('vit_small_patch16_224.dino', 'vit_base_patch8_224', ...), "
    f"a DINO alias ({', '.join(ALIASES)}), 'timm:<model name>' or 'torchvision:<model name>'"
)
# Entries of training checkpoints that hold the weights, in order of preference (DINO releases its teacher).
NESTING = ("teacher", "state_dict", "model", "student")


def _timm():
    return require("timm", "timm", "timm-based feature extractors")


def _is_random(weights):
    return weights is None or (isinstance(weights, str) and weights.lower() == "none")


def _sanitize(name):
    """A layer name usable as an nn.ModuleDict key (no dots)."""
    return re.sub(r"[^0-9A-Za-z_]", "_", str(name))


# ------------------------------------------------------------------------------------------------
# Weight files


def read_weights(path):
    """A state dict {name: tensor} from a .pth/.pt (torch.load, weights_only) or .safetensors file.

    Read by `state_dicts.read_state_dict`, which unwraps the nestings of training checkpoints (a
    'teacher' entry, preferred: DINO releases its teacher, then 'state_dict', 'model' or 'student')
    and strips 'module.' / 'model.' prefixes; when keys then carry DINO's MultiCropWrapper prefix
    'backbone.', only those are kept (DINO's projection head, 'head.*', is not part of the backbone).
    Never runs code from the file: besides tensors and containers, only `argparse.Namespace` (the
    'args' entry of DINO's full checkpoints) is allowed.
    Raises FileNotFoundError for a missing file and CheckpointError for an unreadable one.
    """
    state, _ = read_state_dict(path, nesting=NESTING, prefixes=WRAPPER_PREFIXES, safe_globals=[argparse.Namespace])
    if any(k.startswith("backbone.") for k in state):
        state = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    return state


def _create_seeded(build, seed):
    """Run `build()` with the global RNG seeded, restoring the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _timm_model(model, weights, seed):
    """(name or None, module): a timm model built from its name (weights='timm': timm downloads them) or given."""
    if isinstance(model, str):
        timm = _timm()
        pretrained = isinstance(weights, str) and weights == "timm"

        def build():
            return _create_seeded(lambda: timm.create_model(model, pretrained=pretrained, num_classes=0), seed)

        return model, timm_pretrained(model, build, WEIGHTS_HINT) if pretrained else build()
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a timm model name or an nn.Module, got {type(model).__name__}")
    if isinstance(weights, str) and weights == "timm":
        raise ConfigError("weights='timm' needs a model name, not a model instance")
    return None, model


def _weights_label(weights):
    if _is_random(weights):
        return None
    return os.fspath(weights) if isinstance(weights, os.PathLike) else weights


# ------------------------------------------------------------------------------------------------
# Base class


class FeatureExtractor(nn.Module):
    """Frozen network: images in [-1, 1] -> list of feature maps [N, C_i, H_i, W_i].

    Subclasses implement `extract(x)` on preprocessed inputs and set, through `_setup`:
      layers      the configured layers (block numbers or module names), in output order
      layer_names short names used in HSR predictor keys ('l3', 'layer2', ...)
      channels    C_i per layer
      input_size  (h, w) the network sees after preprocessing
      preprocess  the `Preprocess` applied in `forward`
      spec        dict(name, weights, layers, input_size, seed): what `make_extractor` needs to rebuild it
                  (name None when built from a model instance)
    """

    def _setup(self, net, layers, layer_names, input_size, preprocess, spec):
        self.net = net
        self.layers = list(layers)
        self.layer_names = [_sanitize(n) for n in layer_names]
        self.input_size = tuple(input_size)
        self.preprocess = preprocess
        self.spec = spec
        self.requires_grad_(False)
        self.eval()

    def train(self, mode=True):
        """Always eval: a frozen extractor never switches dropout or batch-norm updates on."""
        return super().train(False)

    def forward(self, images):
        """images [N, C, H, W] in about [-1, 1] (any float dtype) -> [N, C_i, H_i, W_i] float32 per layer."""
        if not torch.is_tensor(images) or images.ndim != 4:
            raise ConfigError(
                f"expected images [N, C, H, W], got {tuple(images.shape) if torch.is_tensor(images) else type(images).__name__}"
            )
        x = self.preprocess(images.float())
        return [f.float() for f in self.extract(x)]

    def extract(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _probe_channels(self):
        """C_i and (H_i, W_i) of each layer, from one forward pass on a dummy input."""
        device = next(self.net.parameters(), torch.empty(0)).device
        with torch.no_grad():
            feats = self.extract(torch.zeros(1, 3, *self.input_size, device=device))
        self.channels = [int(f.shape[1]) for f in feats]
        self.feature_sizes = [tuple(int(s) for s in f.shape[-2:]) for f in feats]

    def extra_repr(self):
        return f"layers={self.layers}, channels={getattr(self, 'channels', None)}, input_size={self.input_size}"


def _tokens_to_grid(t, num_prefix, grid=None, where="layer"):
    """[N, T, C] tokens -> [N, C, gh, gw], dropping the first `num_prefix` (CLS, register) tokens."""
    t = t[:, num_prefix:]
    n = t.shape[1]
    if grid is None:
        g = int(round(n**0.5))
        if g * g != n:
            raise ConfigError(f"{where}: {n} patch tokens do not form a square grid; give the grid size")
        grid = (g, g)
    gh, gw = grid
    if gh * gw != n:
        raise ConfigError(f"{where}: {n} patch tokens after dropping {num_prefix} prefix tokens, expected {gh}x{gw}")
    return t.reshape(t.shape[0], gh, gw, t.shape[2]).permute(0, 3, 1, 2).contiguous()


class _StopForward(Exception):
    """Raised by the hook on the deepest wanted block: the rest of the network is not needed."""


def _image_preprocess(input_size, mean, std):
    return Preprocess(resize=tuple(input_size), resize_mode="bilinear", input_range=(0, 1), mean=mean, std=std)


def _cfg_mean_std(model):
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean, std = cfg.get("mean"), cfg.get("std")
    if mean is None or std is None or len(mean) != 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(mean), tuple(std)


# ------------------------------------------------------------------------------------------------
# Vision transformers (timm)


def default_vit_blocks(depth):
    """The blocks at a quarter, half, three quarters and all of the depth (1-based): 3, 6, 9, 12 for 12."""
    return sorted({max(1, round(depth * k / 4)) for k in (1, 2, 3, 4)})


class ViTExtractor(FeatureExtractor):
    """Patch tokens of a timm vision transformer after chosen blocks, as [N, embed_dim, gh, gw].

    model:   a timm model name (e.g. 'vit_small_patch16_224.dino') or a timm VisionTransformer
             instance (anything with `blocks`, `patch_embed` and `num_prefix_tokens`).
    weights: None/'none' (random init with `seed`), 'timm' (timm's pretrained weights, downloaded),
             or a state-dict file. DINO's own files (`dino_deitsmall16_pretrain.pth`, and the full
             checkpoints with 'teacher'/'student' and 'module.'/'backbone.' nesting) use timm's key
             names for ViT-S/B, so they load directly.
    blocks:  1-based block numbers; the output of `model.blocks[b - 1]` is taken (before the final
             norm), the `num_prefix_tokens` CLS/register tokens are dropped and the patch tokens
             reshaped to the patch grid. Default: `default_vit_blocks(depth)` (3, 6, 9, 12 for ViT-S).
    input_size: must be the model's own image size (None: use it) unless the model was built with
             `dynamic_img_size=True`.
    mean, std: normalisation after mapping [-1, 1] to [0, 1]; default the model's pretrained_cfg
             (ImageNet's for DINO), or ImageNet's.
    """

    def __init__(
        self, model=DEFAULT_EXTRACTOR, weights=None, blocks=None, input_size=None, mean=None, std=None, seed=0
    ):
        super().__init__()
        name, model = _timm_model(ALIASES.get(model, model) if isinstance(model, str) else model, weights, seed)
        for attr in ("blocks", "patch_embed"):
            if not hasattr(model, attr):
                raise ConfigError(
                    f"{type(model).__name__} is not a timm vision transformer (no {attr!r}); use TimmExtractor"
                )
        if not _is_random(weights) and weights != "timm":
            path = weights_file(weights, hint=WEIGHTS_HINT)
            load_state_dict_strict(
                model,
                read_weights(path),
                path,
                f"a {name or type(model).__name__} ViT",
                ignore_unexpected=("head.", "fc_norm.", "head_drop."),
            )
        depth = len(model.blocks)
        blocks = default_vit_blocks(depth) if blocks is None else [int(b) for b in blocks]
        if not blocks or any(b < 1 or b > depth for b in blocks):
            raise ConfigError(f"ViT blocks are 1-based numbers in 1..{depth}, got {blocks}")
        self.num_prefix_tokens = int(getattr(model, "num_prefix_tokens", 1))
        pe = model.patch_embed
        native = tuple(pe.img_size) if getattr(pe, "img_size", None) is not None else None
        if input_size is None:
            if native is None:
                raise ConfigError("the model has no fixed image size; give input_size")
            input_size = native
        input_size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if native is not None and input_size != native and not getattr(model, "dynamic_img_size", False):
            raise ConfigError(
                f"this ViT takes {native[0]}x{native[1]} images, not {input_size[0]}x{input_size[1]} "
                f"(build it with dynamic_img_size=True to change the input size)"
            )
        self.patch_size = tuple(pe.patch_size)
        self.grid = (input_size[0] // self.patch_size[0], input_size[1] // self.patch_size[1])
        if mean is None or std is None:
            cfg_mean, cfg_std = _cfg_mean_std(model)
            mean, std = mean or cfg_mean, std or cfg_std
        self._setup(
            model,
            blocks,
            [f"l{b}" for b in blocks],
            input_size,
            _image_preprocess(input_size, mean, std),
            dict(
                name=name, weights=_weights_label(weights), layers=list(blocks), input_size=list(input_size), seed=seed
            ),
        )
        self.channels = [int(getattr(model, "embed_dim", getattr(model, "num_features", 0)))] * len(blocks)
        self.feature_sizes = [self.grid] * len(blocks)

    def extract(self, x):
        grid = (x.shape[-2] // self.patch_size[0], x.shape[-1] // self.patch_size[1])
        out, last = {}, max(self.layers)

        def hook(b):
            def fn(module, inputs, output):
                out[b] = output
                if b == last:
                    raise _StopForward

            return fn

        handles = [self.net.blocks[b - 1].register_forward_hook(hook(b)) for b in sorted(set(self.layers))]
        try:
            self.net.forward_features(x)
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()
        return [_tokens_to_grid(out[b], self.num_prefix_tokens, grid, f"block {b}") for b in self.layers]


# ------------------------------------------------------------------------------------------------
# Any timm model, by module name


class TimmExtractor(FeatureExtractor):
    """Outputs of named modules of any timm model (forward hooks).

    A 4-D output is taken as [N, C, H, W] ('NCHW', timm's CNNs) or [N, H, W, C] (output_fmt='NHWC',
    e.g. Swin stages); a 3-D output [N, T, C] is token-shaped: `model.num_prefix_tokens` tokens are
    dropped and the rest reshaped to a square grid. Default layers: for ViT-like models (with
    `blocks`) the blocks of `default_vit_blocks`; otherwise the last four `feature_info` modules.
    input_size: default the model's pretrained_cfg input size, or 224.
    """

    def __init__(
        self, model, weights=None, layers=None, input_size=None, mean=None, std=None, output_fmt="NCHW", seed=0
    ):
        super().__init__()
        name, model = _timm_model(model, weights, seed)
        if output_fmt not in ("NCHW", "NHWC"):
            raise ConfigError(f"output_fmt must be 'NCHW' or 'NHWC', got {output_fmt!r}")
        if not _is_random(weights) and weights != "timm":
            path = weights_file(weights, hint=WEIGHTS_HINT)
            load_state_dict_strict(
                model,
                read_weights(path),
                path,
                f"a {name or type(model).__name__}",
                ignore_unexpected=("head.", "fc.", "classifier."),
            )
        modules = dict(model.named_modules())
        if layers is None:
            if hasattr(model, "blocks") and isinstance(model.blocks, nn.Sequential):
                layers = [f"blocks.{b - 1}" for b in default_vit_blocks(len(model.blocks))]
            elif getattr(model, "feature_info", None):
                layers = [f["module"] for f in model.feature_info][-4:]
            else:
                raise ConfigError(f"give layers (module names) for {name or type(model).__name__}")
        layers = [str(n) for n in layers]
        unknown = [n for n in layers if n not in modules or n == ""]
        if unknown:
            top = [n for n in modules if n and "." not in n]
            raise ConfigError(f"unknown module {unknown[0]!r}; top-level modules: {', '.join(top)}")
        self.num_prefix_tokens = int(getattr(model, "num_prefix_tokens", 0))
        self.output_fmt = output_fmt
        if input_size is None:
            cfg = getattr(model, "pretrained_cfg", None) or {}
            input_size = tuple(cfg.get("input_size", (3, 224, 224))[-2:])
        input_size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if mean is None or std is None:
            cfg_mean, cfg_std = _cfg_mean_std(model)
            mean, std = mean or cfg_mean, std or cfg_std
        self._setup(
            model,
            layers,
            layers,
            input_size,
            _image_preprocess(input_size, mean, std),
            dict(
                name=f"timm:{name}" if name else None,
                weights=_weights_label(weights),
                layers=list(layers),
                input_size=list(input_size),
                seed=seed,
            ),
        )
        self._probe_channels()

    def extract(self, x):
        out = {}
        modules = dict(self.net.named_modules())

        def hook(n):
            def fn(module, inputs, output):
                out[n] = output[0] if isinstance(output, (tuple, list)) else output

            return fn

        handles = [modules[n].register_forward_hook(hook(n)) for n in dict.fromkeys(self.layers)]
        try:
            self.net(x)
        finally:
            for h in handles:
                h.remove()
        feats = []
        for n in self.layers:
            f = out[n]
            if f.ndim == 3:
                f = _tokens_to_grid(f, self.num_prefix_tokens, where=n)
            elif f.ndim == 4 and self.output_fmt == "NHWC":
                f = f.permute(0, 3, 1, 2).contiguous()
            elif f.ndim != 4:
                raise ConfigError(
                    f"module {n!r} gave a {f.ndim}-D output {tuple(f.shape)}; expected a feature map or tokens"
                )
            feats.append(f)
        return feats


# ------------------------------------------------------------------------------------------------
# torchvision backbones


TORCHVISION_DEFAULT_LAYERS = {
    **{f"resnet{d}": ["layer1", "layer2", "layer3", "layer4"] for d in (18, 34, 50, 101, 152)},
    **{n: ["layer1", "layer2", "layer3", "layer4"] for n in ("resnext50_32x4d", "wide_resnet50_2")},
    # the ReLU before each max-pool of the last four stages
    "vgg16": ["features.8", "features.15", "features.22", "features.29"],
    "vgg19": ["features.8", "features.17", "features.26", "features.35"],
}


class TorchvisionExtractor(FeatureExtractor):
    """Named graph nodes of a torchvision backbone (`create_feature_extractor`).

    model:   a torchvision model name ('resnet18', 'vgg16', ...) or an instance.
    weights: None/'none' (random init with `seed`), 'torchvision' (the default pretrained weights,
             downloaded), or a local state-dict file.
    layers:  node names as `torchvision.models.feature_extraction.get_graph_node_names` lists them;
             defaults exist for ResNets (layer1..layer4) and VGG16/19.
    input_size: default 224.
    """

    def __init__(self, model, weights=None, layers=None, input_size=None, mean=IMAGENET_MEAN, std=IMAGENET_STD, seed=0):
        super().__init__()
        import torchvision
        from torchvision.models.feature_extraction import (
            create_feature_extractor,
            get_graph_node_names,
        )

        name = None
        if isinstance(model, str):
            name = model
            if name not in torchvision.models.list_models(module=torchvision.models):
                raise ConfigError(f"unknown torchvision classification model {name!r}")
            if isinstance(weights, str) and weights == "torchvision":
                model = torchvision_pretrained(
                    name,
                    lambda: _create_seeded(lambda: torchvision.models.get_model(name, weights="DEFAULT"), seed),
                    WEIGHTS_HINT,
                )
            else:
                model = _create_seeded(lambda: torchvision.models.get_model(name, weights=None), seed)
        elif not isinstance(model, nn.Module):
            raise ConfigError(f"model must be a torchvision model name or an nn.Module, got {type(model).__name__}")
        elif isinstance(weights, str) and weights == "torchvision":
            raise ConfigError("weights='torchvision' needs a model name, not a model instance")
        if not _is_random(weights) and weights != "torchvision":
            path = weights_file(weights, hint=WEIGHTS_HINT)
            load_state_dict_strict(model, read_weights(path), path, f"a {name or type(model).__name__}")
        if layers is None:
            layers = TORCHVISION_DEFAULT_LAYERS.get(name)
        model.eval()
        nodes = get_graph_node_names(model)[1]
        if layers is None:
            raise ConfigError(
                f"give layers for {name or type(model).__name__}; graph nodes include: "
                f"{', '.join(nodes[:40])}{' ...' if len(nodes) > 40 else ''}"
            )
        layers = [str(n) for n in layers]
        # a module name (e.g. 'layer1') stands for the last node inside it, as create_feature_extractor takes it
        unknown = [n for n in layers if n not in nodes and not any(m.startswith(n + ".") for m in nodes)]
        if unknown:
            raise ConfigError(
                f"unknown graph node {unknown[0]!r} of {name or type(model).__name__}; nodes include: "
                f"{', '.join(nodes[:40])}{' ...' if len(nodes) > 40 else ''}"
            )
        net = create_feature_extractor(model, return_nodes={n: n for n in layers})
        input_size = 224 if input_size is None else input_size
        input_size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        self._setup(
            net,
            layers,
            layers,
            input_size,
            _image_preprocess(input_size, mean, std),
            dict(
                name=f"torchvision:{name}" if name else None,
                weights=_weights_label(weights),
                layers=list(layers),
                input_size=list(input_size),
                seed=seed,
            ),
        )
        self._probe_channels()

    def extract(self, x):
        out = self.net(x)
        return [out[n] for n in self.layers]


# ------------------------------------------------------------------------------------------------
# Factory


def resolve_extractor_name(name):
    """(kind, model name) for an extractor name: kind is 'vit', 'timm' or 'torchvision'."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"extractor name must be {ACCEPTED_FORMS}; got {name!r}")
    if name in ALIASES:
        return "vit", ALIASES[name]
    if name.startswith("timm:") and len(name) > 5:
        model = ALIASES.get(name[5:], name[5:])
        return ("vit" if model.startswith("vit_") else "timm"), model
    if name.startswith("torchvision:") and len(name) > 12:
        return "torchvision", name[12:]
    if name.startswith("vit_"):
        return "vit", name
    raise ConfigError(f"unknown extractor {name!r}; accepted: {ACCEPTED_FORMS}")


def default_weights(name=DEFAULT_EXTRACTOR):
    """The pretrained weights of an extractor name, for callers that must not train against a random F.

    DINO models (the default 'vit_small_patch16_224.dino', the DINO aliases): the file of Facebook's DINO
    release ('dino_deitsmall16_pretrain.pth', ...; fetched by name and verified); other timm models:
    'timm' (timm's download); torchvision models: 'torchvision' (their default weights).
    """
    kind, model = resolve_extractor_name(name)
    if model in DINO_FILES:
        return DINO_FILES[model]
    return "torchvision" if kind == "torchvision" else "timm"


def make_extractor(name=DEFAULT_EXTRACTOR, weights=None, layers=None, input_size=None, seed=0):
    """Build a frozen extractor from a name.

    name:    'vit_small_patch16_224.dino' (the HSR paper's DINO ViT-S/16; the default) or any timm ViT
             name, a DINO alias ('dino_vits16', 'dino_vits8', 'dino_vitb16', 'dino_vitb8'),
             'timm:<model>' (ViTs by block number, others by module name), 'torchvision:<model>'.
    weights: None/'none' (random, seeded), 'timm' / 'torchvision' (download pretrained), a file, or a
             known file name such as 'dino_deitsmall16_pretrain.pth' (see the module docstring);
             `default_weights(name)` is the pretrained choice.
    layers:  ViT: 1-based block numbers (default 3, 6, 9, 12 for 12 blocks); timm: module names;
             torchvision: graph node names.
    input_size: None = the ViT's own image size, 224 for the others.
    """
    kind, model = resolve_extractor_name(name)
    if kind == "vit":
        if layers is not None and not all(isinstance(b, int) or (isinstance(b, str) and b.isdigit()) for b in layers):
            return TimmExtractor(model, weights=weights, layers=layers, input_size=input_size, seed=seed)
        return ViTExtractor(model, weights=weights, blocks=layers, input_size=input_size, seed=seed)
    if kind == "timm":
        return TimmExtractor(model, weights=weights, layers=layers, input_size=input_size, seed=seed)
    return TorchvisionExtractor(model, weights=weights, layers=layers, input_size=input_size, seed=seed)
