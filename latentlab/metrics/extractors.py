"""Feature extractors of the distribution metrics: uint8 images -> one feature vector per image.

    ext = get_extractor("inception", device="cuda")   # or "vgg16", "toyfaces", "clip:WEIGHTS", "inception-untrained"
    feats = ext(images)              # images: torch.uint8 [N, 3, H, W] (1 channel is repeated) -> float32 [N, F]
    ext.name, ext.feature_dim, ext.cache_id
    spec = resolve_extractor_spec("auto", G, purpose="fid")   # 'toyfaces' for the embedded model, else 'inception'

Images come in as NVIDIA's metrics hand them to their detector: uint8 [N, 3, H, W] (generator output
x * 127.5 + 128, clamped), any size; each extractor resizes and normalises on its own.

Specs (`SPEC_FORMS`):

  * "inception": the FID network. torch-fidelity's `FeatureExtractorInceptionV3`, the port of the TensorFlow
    Inception-v3 graph (2015-12-05) that FID is defined with, 2048-d pool3 features ('2048'). It takes the uint8
    images as they are, resizes them to 299 x 299 with TensorFlow 1's bilinear resize (align_corners=False: source
    pixel = output pixel * in / out, no half-pixel offset) and maps them to (x - 128) / 128, as the TF graph did.
    NVIDIA's StyleGAN2-ADA metrics feed the same uint8 images to their TorchScript port of the same graph
    (inception-2015-12-05.pt), which is not used here because loading TorchScript runs code from the file.
  * "vgg16": the precision/recall network. torch-fidelity's `FeatureExtractorVGG16`: torchvision's ImageNet VGG16,
    images resized to 224 (TF1 bilinear) and ImageNet-normalised, 4096-d fc2 features after their ReLU
    ('fc2_relu', torch-fidelity's layer for precision/recall). NVIDIA's pr50k3 uses its own TorchScript vgg16.pt,
    converted from the TensorFlow VGG16 of Kynkaanniemi et al. (2019), with other weights and resizing: precision
    and recall here differ slightly from NVIDIA's values. A documented, deliberate difference: that file is
    TorchScript, and loading it runs code.
  * "toyfaces" (or "toyfaces:FILE"): the embedded model's attribute classifier (or a toyfaces classifier file),
    its 256-d penultimate features (`ToyFacesClassifier.features`), the uint8 images mapped back to the generator's
    range as u / 127.5 - 1 and resized to the classifier's 64 x 64. Offline and meaningful for the embedded model.
  * "clip:WEIGHTS" or "clip:MODEL:WEIGHTS": an open_clip image encoder (default ViT-B-32) from a LOCAL weights file
    (nothing is downloaded; open_clip reads it with weights_only=True), its image embedding (`encode_image`, not
    normalised), images resized and normalised as CLIP expects (`latentlab.attributes.clip.clip_preprocess`).
    Needs the optional package open_clip_torch; plain "clip" says so, or asks for the weights file.
    (torch-fidelity's CLIP extractor is not used: its weights are TorchScript archives, which run code.)
  * "inception-untrained", "vgg16-untrained": the same architectures and input handling with seeded random
    weights (seed 0; the Inception's convolutions He-initialised so that activations keep their scale through its
    depth), for offline tests. Their numbers mean nothing; their `cache_id` says 'untrained-seed0'.

The pretrained weights of "inception" and "vgg16" are downloaded once, sha256-verified and read without running
code (`latentlab.metrics.weights`); torch-fidelity is never allowed to fetch or read them itself (see
`_build_inception` for how its constructors are kept from doing so).

`cache_id` names the features, not the run: network, layer and weights identity (the weights file's sha256
prefix, or 'untrained-seed0'), in [a-z0-9_.-]; statistics cached under one cache_id are valid for every
extractor with that cache_id.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from typing import Any, Callable, Union

import torch

from ..errors import ConfigError, MissingDependency
from ..utils.optional import require
from . import weights as W

__all__ = [
    "SPECS",
    "SPEC_FORMS",
    "UNTRAINED_SEED",
    "FeatureExtractor",
    "get_extractor",
    "resolve_extractor_spec",
]

SPECS = ("inception", "vgg16", "clip", "toyfaces", "inception-untrained", "vgg16-untrained")
SPEC_FORMS = (
    "auto",
    "inception",
    "vgg16",
    "toyfaces",
    "toyfaces:FILE",
    "clip",
    "clip:WEIGHTS",
    "clip:MODEL:WEIGHTS",
    "inception-untrained",
    "vgg16-untrained",
)
PURPOSES = ("fid", "kid", "pr")
UNTRAINED_SEED = 0
DEFAULT_CLIP_MODEL = "ViT-B-32"


class FeatureExtractor:
    """A feature network behind one call: uint8 images [N, C, H, W] (C = 1 or 3) -> float32 features [N, F].

    name: the spec it was built from ('inception', 'vgg16-untrained', 'clip', ...).
    feature_dim: F.
    cache_id: what the features are (network, layer, weights identity), for keys of cached statistics.
    device: where the network runs; images are moved there, and the features come back there.
    network: the torch module inside (for inspection; called through `forward`, not directly).
    """

    def __init__(
        self,
        name: str,
        feature_dim: int,
        cache_id: str,
        device: Union[str, torch.device],
        network: torch.nn.Module,
        forward: Callable[[torch.Tensor], torch.Tensor],
    ):
        if not re.fullmatch(r"[a-z0-9_.-]+", cache_id):
            raise ConfigError(f"cache_id {cache_id!r}: only a-z, 0-9, '_', '.' and '-' are allowed")
        self.name = name
        self.feature_dim = int(feature_dim)
        self.cache_id = cache_id
        self.device = torch.device(device)
        self.network = network
        self._forward = forward

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if (
            not torch.is_tensor(images)
            or images.dtype != torch.uint8
            or images.ndim != 4
            or images.shape[1] not in (1, 3)
        ):
            what = (
                f"a {images.dtype} tensor of shape {list(images.shape)}"
                if torch.is_tensor(images)
                else type(images).__name__
            )
            raise ConfigError(f"{self.name} features need uint8 images [N, 3, H, W] (or [N, 1, H, W]), got {what}")
        x = images.to(self.device)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)  # as NVIDIA's metrics feed grayscale images to their detectors
        feats = self._forward(x).float()
        if feats.shape != (x.shape[0], self.feature_dim):
            raise ConfigError(
                f"{self.name}: the network returned features of shape {list(feats.shape)}, "
                f"expected [{x.shape[0]}, {self.feature_dim}]"
            )
        return feats

    def __repr__(self):
        return f"FeatureExtractor({self.name!r}, feature_dim={self.feature_dim}, cache_id={self.cache_id!r}, device={self.device})"


# ------------------------------------------------------------------------------------------------ spec handling


def _bad_spec(spec):
    return ConfigError(f"unknown feature extractor {spec!r}; use one of: {', '.join(SPEC_FORMS)}")


def resolve_extractor_spec(spec: str = "auto", G: Any = None, purpose: str = "fid", model_spec: Any = None) -> str:
    """The extractor spec to use: `spec` itself (checked), or for "auto" the default of the model and purpose.

    auto: "toyfaces" for the embedded model (`latentlab.edits.registry.is_default_model(G, model_spec)`: its
    weights, its registry name or file), else "inception" for purpose 'fid' or 'kid', "vgg16" for 'pr'.
    """
    if purpose not in PURPOSES:
        raise ConfigError(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}")
    if not isinstance(spec, str) or not spec:
        raise _bad_spec(spec)
    if spec != "auto":
        kind, sep, rest = spec.partition(":")
        if (not sep and spec in SPECS) or (sep and kind in ("clip", "toyfaces") and rest):
            return spec
        raise _bad_spec(spec)
    from ..edits.registry import is_default_model

    if is_default_model(G, model_spec):
        return "toyfaces"
    return "vgg16" if purpose == "pr" else "inception"


def get_extractor(spec: str, device: Union[str, torch.device] = "cpu", progress: bool = True) -> FeatureExtractor:
    """Build the feature extractor `spec` names (see the module doc and `SPEC_FORMS`) on `device`.

    progress: show a progress bar while pretrained weights are downloaded (first use only).
    Raises ConfigError for an unknown spec, MissingDependency (one line, with the pip command) when the package
    the extractor needs is missing, MissingWeights when its weights cannot be downloaded, CheckpointError for
    a weights file that fails its checks.
    """
    if not isinstance(spec, str) or spec == "auto":
        raise ConfigError(f"feature extractor {spec!r}: resolve 'auto' first (resolve_extractor_spec)")
    spec = resolve_extractor_spec(spec)
    device = torch.device(device)
    kind, _, rest = spec.partition(":")
    if kind in ("inception", "inception-untrained"):
        return _build_inception(device, trained=kind == "inception", progress=progress)
    if kind in ("vgg16", "vgg16-untrained"):
        return _build_vgg16(device, trained=kind == "vgg16", progress=progress)
    if kind == "toyfaces":
        return _build_toyfaces(device, rest or None)
    return _build_clip(device, rest)


def _to_generator_range(u8):
    """uint8 [0, 255] -> the generator's [-1, 1] (u / 127.5 - 1), the inverse of NVIDIA's x * 127.5 + 128 rounding."""
    return u8.float() / 127.5 - 1.0


# ----------------------------------------------------------------------------------- torch-fidelity networks
#
# torch-fidelity's constructors load weights themselves: `FeatureExtractorInceptionV3` calls its module's
# `load_state_dict_from_url` (torch.hub: a download, then torch.load without weights_only), and
# `FeatureExtractorVGG16` its module's `torchvision_load_pretrained_vgg16` (torchvision's download). Neither may
# run. While the network is constructed (under a lock, restored afterwards) that module-level loader is replaced:
# for the Inception by one returning a marker that a small subclass's `load_state_dict` skips, for the VGG16 by one
# returning the torchvision VGG16 latentlab has built and loaded itself. The alternative, re-declaring the two
# architectures here, would copy torch-fidelity's code. A replacement that is never called means torch-fidelity
# changed how it loads, and is an error rather than a silent download.

_PATCH_LOCK = threading.Lock()
_DEFERRED = object()  # "no weights yet": latentlab loads them after construction


@contextlib.contextmanager
def _replaced(module, name, value):
    with _PATCH_LOCK:
        original = getattr(module, name)
        setattr(module, name, value)
        try:
            yield
        finally:
            setattr(module, name, original)


def _torch_fidelity(purpose):
    return require("torch_fidelity", "torch-fidelity", purpose)


def _unsupported(tf, what):
    version = getattr(tf, "__version__", "?")
    return MissingDependency(
        f"torch-fidelity {version} no longer builds its {what} the way latentlab expects (0.4.x); "
        "pip install 'torch-fidelity>=0.4,<0.5'"
    )


@contextlib.contextmanager
def _seeded(seed):
    with torch.random.fork_rng(devices=[]):  # the caller's CPU random state is left as it was
        torch.manual_seed(seed)
        yield


_INCEPTION_CLASS = None


def _inception_class(mod):
    global _INCEPTION_CLASS
    if _INCEPTION_CLASS is None:

        class Inception(mod.FeatureExtractorInceptionV3):
            """torch-fidelity's Inception-v3 whose constructor leaves the weights to latentlab (`_DEFERRED`)."""

            def load_state_dict(self, state_dict, *args, **kwargs):
                if state_dict is _DEFERRED:
                    return None
                return super().load_state_dict(state_dict, *args, **kwargs)

        _INCEPTION_CLASS = Inception
    return _INCEPTION_CLASS


def _build_inception(device, trained, progress):
    tf = _torch_fidelity("the Inception-v3 feature extractor (FID, KID)")
    from torch_fidelity import feature_extractor_inceptionv3 as mod

    path = W.weights_file(W.KNOWN_WEIGHTS["inception"], progress) if trained else None
    calls = []

    def deferred(*args, **kwargs):
        calls.append(args)
        return _DEFERRED

    with _replaced(mod, "load_state_dict_from_url", deferred), _seeded(UNTRAINED_SEED):
        net = _inception_class(mod)("inception-v3-compat", features_list=["2048"])
        if not trained:  # He-normal convolutions: activations keep their scale through the ~50 layers of depth
            for m in net.modules():
                if isinstance(m, torch.nn.Conv2d):
                    torch.nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    if len(calls) != 1:
        raise _unsupported(tf, "Inception-v3")
    if trained:
        W.read_weights(path, net, W.KNOWN_WEIGHTS["inception"].description)
        identity = "sha256_" + W.KNOWN_WEIGHTS["inception"].sha256_prefix
    else:
        identity = f"untrained-seed{UNTRAINED_SEED}"
    net = net.to(device).eval().requires_grad_(False)
    return FeatureExtractor(
        "inception" if trained else "inception-untrained",
        2048,
        f"inception-pool3-{identity}",
        device,
        net,
        lambda x: net(x)[0],
    )


def _build_vgg16(device, trained, progress):
    tf = _torch_fidelity("the VGG16 feature extractor (precision and recall)")
    import torchvision
    from torch_fidelity import feature_extractor_vgg16 as mod

    path = W.weights_file(W.KNOWN_WEIGHTS["vgg16"], progress) if trained else None
    with _seeded(UNTRAINED_SEED):
        vgg = torchvision.models.vgg16(weights=None)  # torchvision's own initialisation; no download
    if trained:
        W.read_weights(path, vgg, W.KNOWN_WEIGHTS["vgg16"].description)
    calls = []

    def ours(*args, **kwargs):
        calls.append(args)
        return vgg

    with _replaced(mod, "torchvision_load_pretrained_vgg16", ours):
        net = mod.FeatureExtractorVGG16("vgg16", features_list=["fc2_relu"])
    if len(calls) != 1 or net.model is not vgg:
        raise _unsupported(tf, "VGG16")
    identity = "sha256_" + W.KNOWN_WEIGHTS["vgg16"].sha256_prefix if trained else f"untrained-seed{UNTRAINED_SEED}"
    net = net.to(device).eval().requires_grad_(False)
    return FeatureExtractor(
        "vgg16" if trained else "vgg16-untrained",
        4096,
        f"vgg16-fc2relu-{identity}",
        device,
        net,
        lambda x: net(x)[0],
    )


# ------------------------------------------------------------------------------------------ toyfaces and CLIP


def _build_toyfaces(device, path=None):
    from .. import defaults
    from ..attributes.toyfaces import ToyFacesClassifier

    path = os.fspath(path) if path is not None else defaults.classifier_path()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such toyfaces classifier file")
    clf = ToyFacesClassifier.from_file(path, device=device)
    identity = "sha256_" + W.sha256_of(path)[:16]
    return FeatureExtractor(
        "toyfaces",
        clf.num_features,
        f"toyfaces-penultimate-{identity}",
        device,
        clf,
        lambda x: clf.features(_to_generator_range(x)),
    )


_CLIP_NEEDS_WEIGHTS = (
    "feature extractor 'clip' needs a local open_clip weights file: clip:WEIGHTS (ViT-B-32) or clip:MODEL:WEIGHTS "
    "(nothing is downloaded)"
)


def _build_clip(device, rest):
    open_clip = require("open_clip", "open_clip_torch", "the CLIP feature extractor")
    if not rest:
        raise ConfigError(_CLIP_NEEDS_WEIGHTS)
    from ..attributes.clip import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, clip_preprocess

    head, sep, tail = rest.partition(":")
    model_name, weights = (head, tail) if sep and head in open_clip.list_models() else (DEFAULT_CLIP_MODEL, rest)
    if not os.path.isfile(weights):  # a tag such as 'openai' would make open_clip download (and its files are JIT)
        raise FileNotFoundError(f"{weights}: no such CLIP weights file (only local files are used)")
    model = open_clip.create_model(model_name, pretrained=weights, device="cpu").to(device).eval()
    model.requires_grad_(False)
    visual = model.visual
    size = getattr(visual, "image_size", 224)
    size = tuple(size) if isinstance(size, (list, tuple)) else int(size)
    cfg = getattr(visual, "preprocess_cfg", None) or {}
    pre = clip_preprocess(size, cfg.get("mean", OPENAI_CLIP_MEAN), cfg.get("std", OPENAI_CLIP_STD))
    dim = getattr(visual, "output_dim", None)
    if dim is None:
        with torch.no_grad():
            dim = model.encode_image(torch.zeros(1, 3, *pre.resize, device=device)).shape[1]
    identity = "sha256_" + W.sha256_of(weights)[:16]
    model_id = re.sub(r"[^a-z0-9_.-]", "_", model_name.lower())
    return FeatureExtractor(
        "clip",
        int(dim),
        f"clip-{model_id}-image-{identity}",
        device,
        model,
        lambda x: model.encode_image(pre(_to_generator_range(x))),
    )
