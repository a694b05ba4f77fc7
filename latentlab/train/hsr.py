"""Hierarchical Semantic Regulariser (HSR; Karmali et al., "Hierarchical Semantic Regularization of
Latent Spaces in StyleGANs", ECCV 2022).

A frozen pretrained feature extractor F (the paper: DINO ViT-S/16) looks at the generated image;
small predictors q_i map the generator's own intermediate features at chosen synthesis
resolutions to F's features at chosen layers, so that coarse generator blocks are pushed towards
deep (semantic) features and finer blocks towards shallower ones:

    L_HSR = sum_i  mean_{n, c, y, x} ( q_i(resize(G_feat_i)) - stopgrad(resize(F_i(G(z)))) )^2

Reduction, pinned by the tests: for each (generator resolution, extractor layer) pair the squared
error is averaged over every element (batch, channels, grid positions); the pair losses are then
*summed*. The training loop adds `lambda * L_HSR` to the generator's loss once HSR is switched on
(`HSRSchedule`: 0 before `warmup_kimg`, lambda after).

Details:
  * F's input: the image in [-1, 1] mapped to [0, 1], resized to F's input size (bilinear,
    antialiased when shrinking), normalised with F's mean/std (ImageNet's for DINO).
  * Paper pairs: generator blocks 64, 32, 16, 8 <- ViT blocks 3, 6, 9, 12 (1-based; patch tokens
    only, reshaped to the 14x14 patch grid, channels first).
  * Both sides are brought to a `grid` x `grid` map (14 by default): adaptive average pooling when
    shrinking (generator 64 -> 14, 32 -> 14, CNN features), bilinear interpolation when enlarging
    (generator 8 -> 14). The generator features are resized *before* the predictor: its 1x1 convs
    then run on 14x14 maps, not 64x64 ones (a 4096-wide hidden layer on 64x64 maps would cost
    ~20x the memory), and the loss compares maps on the same grid either way.
  * Stop-gradient: F's targets are computed under `torch.no_grad()` on the detached image, so no
    gradient reaches F's parameters or flows back into the image through F; the generator gets
    HSR's gradient only through its captured block features.
  * Generator features may be float16 (fp16 blocks on CUDA): they are cast to float32.

Usage in a training loop::

    hsr = HSR.for_generator(G)   # DINO ViT-S/16, dino_deitsmall16_pretrain.pth (fetched by name); or weights=FILE
    with capture_block_features(G, hsr.resolutions) as feats:
        img = G.synthesis(ws)                     # the G main pass
        ...
    loss, parts = hsr(feats, img)                 # parts: {'b64_l3': tensor, ...} (detached)
    (g_loss + lam * loss).backward()              # optimise G and hsr.predictors.parameters()

`HSRTerm` packages an HSR and its schedule behind the interface `latentlab.train.loop.Trainer`
expects of a `regularizer`.
"""

import contextlib
import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .extractors import DEFAULT_EXTRACTOR, FeatureExtractor, default_weights, make_extractor

__all__ = [
    "Predictor",
    "HSR",
    "HSRSchedule",
    "HSRTerm",
    "capture_block_features",
    "default_gen_resolutions",
    "resize_to_grid",
    "PAPER_RESOLUTIONS",
    "PAPER_VIT_BLOCKS",
]

# The paper's pairing: generator synthesis block resolution -> 1-based DINO ViT-S/16 block.
PAPER_RESOLUTIONS = (64, 32, 16, 8)
PAPER_VIT_BLOCKS = (3, 6, 9, 12)


# ------------------------------------------------------------------------------------------------
# Generator side


def _synthesis(G):
    """The SynthesisNetwork of a Generator (or a DDP-wrapped one, or the synthesis network itself)."""
    from ..models.stylegan3 import StyleGAN3Synthesis

    for _ in range(3):
        if hasattr(G, "block_resolutions"):
            return G
        if getattr(G, "generation", None) == 3 or isinstance(G, StyleGAN3Synthesis):
            raise ConfigError(
                "HSR supervises the features of StyleGAN2 synthesis blocks (b{R}.hook_x): a StyleGAN3 generator "
                "has no blocks (its layers are alias-free L0..LN), and latentlab cannot train StyleGAN3"
            )
        if hasattr(G, "synthesis"):
            return G.synthesis
        if hasattr(G, "module"):
            G = G.module
    raise ConfigError(f"expected a latentlab Generator or SynthesisNetwork, got {type(G).__name__}")


def _check_resolutions(syn, resolutions):
    available = list(syn.block_resolutions)
    resolutions = [int(r) for r in resolutions]
    missing = [r for r in resolutions if r not in available]
    if missing:
        fallback = tuple(r for r in PAPER_RESOLUTIONS if r in available)
        raise ConfigError(
            f"the generator has synthesis blocks at resolutions {', '.join(map(str, available))}; "
            f"HSR asked for {', '.join(map(str, missing))}"
            + (f" (default_gen_resolutions(G) gives {fallback})" if fallback else "")
        )
    return resolutions


def default_gen_resolutions(G, wanted=PAPER_RESOLUTIONS):
    """The resolutions of `wanted` (the paper's 64, 32, 16, 8) that G has: (32, 16, 8) for a 32x32 G.

    `HSR.for_generator` pairs them with the extractor's layers by the paper's table, so a 32x32
    generator gets 32 <- block 6, 16 <- block 9, 8 <- block 12. ValueError when none is present.
    """
    syn = _synthesis(G)
    out = tuple(r for r in wanted if r in syn.block_resolutions)
    if not out:
        raise ConfigError(
            f"the generator has synthesis blocks at resolutions "
            f"{', '.join(map(str, syn.block_resolutions))}: none of {tuple(wanted)}"
        )
    return out


@contextlib.contextmanager
def capture_block_features(G, resolutions):
    """Record the output features of synthesis blocks while G runs.

    Registers forward hooks on `G.synthesis.b{R}.hook_x` (the block's features after its convs,
    before ToRGB) and yields a dict R -> the latest tensor [N, C_R, R, R] that went through, with
    its autograd graph. The hooks are removed on exit (also on an exception). Channels per
    resolution: `G.synthesis.b{R}.out_channels`.
    """
    syn = _synthesis(G)
    resolutions = _check_resolutions(syn, resolutions)
    feats = {}
    handles = []

    def hook(res):
        def fn(module, inputs, output):
            feats[res] = output

        return fn

    try:
        for r in dict.fromkeys(resolutions):
            handles.append(getattr(syn, f"b{r}").hook_x.register_forward_hook(hook(r)))
        yield feats
    finally:
        for h in handles:
            h.remove()


def resize_to_grid(x, grid):
    """[N, C, H, W] -> [N, C, gh, gw]: adaptive average pooling when shrinking, bilinear when enlarging."""
    gh, gw = grid
    H, W = x.shape[-2:]
    if (H, W) == (gh, gw):
        return x
    if H >= gh and W >= gw:
        return F.adaptive_avg_pool2d(x, (gh, gw))
    return F.interpolate(x, size=(gh, gw), mode="bilinear", align_corners=False, antialias=H > gh or W > gw)


# ------------------------------------------------------------------------------------------------
# Predictors and the loss


class Predictor(nn.Sequential):
    """q: 1x1 conv (in -> hidden), LeakyReLU(0.2), 1x1 conv (hidden -> out), on [N, C, H, W] maps.

    Plain `nn.Conv2d` with PyTorch's default initialisation (uniform in +-1/sqrt(fan_in)): the
    predictors are a fresh two-layer head trained from scratch, not part of G, so StyleGAN's
    equalised learning rate is not needed; the default init keeps activations O(1) for O(1)
    inputs, and Adam's per-parameter step size does not depend on the weights' scale.
    """

    def __init__(self, in_channels, out_channels, hidden=4096):
        super().__init__(
            nn.Conv2d(in_channels, hidden, kernel_size=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(hidden, out_channels, kernel_size=1),
        )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden = hidden


def _grid_pair(grid):
    if isinstance(grid, int) and not isinstance(grid, bool):
        grid = (grid, grid)
    grid = tuple(int(g) for g in grid)
    if len(grid) != 2 or min(grid) < 1:
        raise ConfigError(f"grid must be a positive int or (h, w), got {grid!r}")
    return grid


class HSR(nn.Module):
    """The HSR loss: a frozen extractor plus one predictor per (generator resolution, extractor layer).

    extractor:    a `FeatureExtractor` (frozen; its forward gives one map per configured layer).
    gen_channels: {resolution: channels} of the generator blocks used (`G.synthesis.b{R}.out_channels`).
    pairs:        [(gen_res, layer_index)], layer_index the 0-based position in `extractor.layers`
                  (so for the paper's ViT extractor with blocks [3, 6, 9, 12], (64, 0) pairs block 64
                  with ViT block 3).
    hidden:       width of the predictors' hidden layer (4096 in the paper).
    grid:         both sides are resized to grid x grid before comparing (14: ViT-S/16's patch grid).

    `predictors` is an nn.ModuleDict keyed f"b{res}_{extractor.layer_names[i]}" ('b64_l3', ...);
    it is the only trainable part (save/restore `hsr.predictors.state_dict()`). `init_kwargs`
    records what `HSR.from_init_kwargs` needs to rebuild the module (JSON-friendly).
    """

    def __init__(self, extractor, gen_channels, pairs, hidden=4096, grid=14):
        super().__init__()
        if not isinstance(extractor, FeatureExtractor):
            raise ConfigError(f"extractor must be a FeatureExtractor, got {type(extractor).__name__}")
        gen_channels = {int(r): int(c) for r, c in dict(gen_channels).items()}
        pairs = [(int(r), int(i)) for r, i in pairs]
        if not pairs:
            raise ConfigError("HSR needs at least one (generator resolution, extractor layer) pair")
        self.extractor = extractor
        self.grid = _grid_pair(grid)
        self.hidden = int(hidden)
        self.pairs = pairs
        self.predictors = nn.ModuleDict()
        self._keys = []
        for res, idx in pairs:
            if res not in gen_channels:
                raise ConfigError(
                    f"pair ({res}, {idx}): no channel count for generator resolution {res} "
                    f"(gen_channels has {sorted(gen_channels)})"
                )
            if not 0 <= idx < len(extractor.layers):
                raise ConfigError(
                    f"pair ({res}, {idx}): layer index must be in 0..{len(extractor.layers) - 1} "
                    f"(positions in extractor.layers = {extractor.layers})"
                )
            key = f"b{res}_{extractor.layer_names[idx]}"
            if key in self.predictors:
                raise ConfigError(f"pair ({res}, {idx}) is given twice")
            self.predictors[key] = Predictor(gen_channels[res], extractor.channels[idx], self.hidden)
            self._keys.append(key)
        self.gen_channels = {r: gen_channels[r] for r, _ in pairs}
        self.resolutions = list(dict.fromkeys(r for r, _ in pairs))
        self.init_kwargs = copy.deepcopy(
            dict(
                extractor=dict(extractor.spec),
                gen_channels=self.gen_channels,
                pairs=[list(p) for p in pairs],
                hidden=self.hidden,
                grid=list(self.grid),
            )
        )

    @property
    def keys(self):
        """Predictor keys in pair order ('b64_l3', 'b32_l6', ...)."""
        return list(self._keys)

    def capture(self, G):
        """`capture_block_features(G, self.resolutions)`."""
        return capture_block_features(G, self.resolutions)

    def targets(self, images):
        """Stop-gradient targets: {layer_index: [N, C_i, gh, gw] float32} for the layers in use."""
        with torch.no_grad():
            feats = self.extractor(images.detach())
            used = dict.fromkeys(i for _, i in self.pairs)
            return {i: resize_to_grid(feats[i].float(), self.grid) for i in used}

    def forward(self, gen_features, images):
        """(loss, parts): loss = sum over pairs of the per-element mean squared error, a scalar with
        gradients into the predictors and the generator features; parts = {key: detached pair loss}.

        gen_features: {resolution: [N, C, R, R]} as `capture_block_features` yields it.
        images:       the generated images [N, C, H, W] in about [-1, 1] (only seen by F, no gradient).
        """
        missing = [r for r in self.resolutions if r not in gen_features]
        if missing:
            raise ConfigError(
                f"no generator features for resolution(s) {missing}: run the generator inside "
                f"capture_block_features(G, {self.resolutions}) (or hsr.capture(G))"
            )
        targets = self.targets(images)
        loss = None
        parts = {}
        for key, (res, idx) in zip(self._keys, self.pairs):
            x = gen_features[res]
            if x.ndim != 4 or x.shape[0] != images.shape[0]:
                raise ConfigError(
                    f"generator features at {res}: expected [{images.shape[0]}, C, H, W] "
                    f"(the images' batch), got {tuple(x.shape)}"
                )
            q = self.predictors[key]
            if x.shape[1] != q.in_channels:
                raise ConfigError(
                    f"generator features at {res} have {x.shape[1]} channels, predictor {key} takes {q.in_channels}"
                )
            pred = q(resize_to_grid(x.float(), self.grid))
            part = (pred - targets[idx]).square().mean()
            parts[key] = part.detach()
            loss = part if loss is None else loss + part
        return loss, parts

    # -------------------------------------------------------------------------------- factories

    @classmethod
    def for_generator(
        cls,
        G,
        extractor=None,
        *,
        extractor_name=DEFAULT_EXTRACTOR,
        weights=None,
        gen_resolutions=PAPER_RESOLUTIONS,
        layers=None,
        pairs=None,
        hidden=4096,
        grid=14,
        input_size=None,
        seed=0,
    ):
        """HSR for a latentlab Generator, with the paper's defaults.

        extractor:       a FeatureExtractor, or None to build `make_extractor(extractor_name, weights,
                         layers, input_size, seed)` (DINO ViT-S/16, blocks 3, 6, 9, 12).
        weights:         for the built extractor: None (the default: its pretrained weights,
                         `default_weights(extractor_name)`, for the paper's F DINO's
                         dino_deitsmall16_pretrain.pth, downloaded by name and verified), a
                         state-dict file, 'timm' (download), or 'none' (a random F: the explicit
                         baseline; HSR never falls back to it silently).
        gen_resolutions: generator block resolutions to supervise, or 'auto' for
                         `default_gen_resolutions(G)`; ValueError when G lacks one. Pairing with the
                         extractor's layers: one layer each, in order, when the counts match; with a
                         four-layer extractor and resolutions among 64, 32, 16, 8, by the paper's
                         table (64 <- 1st layer, 32 <- 2nd, 16 <- 3rd, 8 <- 4th).
        pairs:           explicit [(gen_res, layer_index)] instead (gen_resolutions is then ignored).
        """
        syn = _synthesis(G)
        if pairs is None:
            if isinstance(gen_resolutions, str):
                if gen_resolutions != "auto":
                    raise ConfigError(f"gen_resolutions must be resolutions or 'auto', got {gen_resolutions!r}")
                gen_resolutions = default_gen_resolutions(syn)
            gen_resolutions = _check_resolutions(syn, gen_resolutions)
        else:
            pairs = [(int(r), int(i)) for r, i in pairs]
            _check_resolutions(syn, [r for r, _ in pairs])
        if extractor is None:
            if weights is None:
                weights = default_weights(extractor_name)
            extractor = make_extractor(extractor_name, weights=weights, layers=layers, input_size=input_size, seed=seed)
        elif layers is not None or weights is not None:
            raise ConfigError("give layers/weights when HSR builds the extractor, not with an extractor instance")
        if pairs is None:
            k = len(extractor.layers)
            if len(gen_resolutions) == k:
                pairs = [(r, i) for i, r in enumerate(gen_resolutions)]
            elif k == len(PAPER_RESOLUTIONS) and all(r in PAPER_RESOLUTIONS for r in gen_resolutions):
                pairs = [(r, PAPER_RESOLUTIONS.index(r)) for r in gen_resolutions]
            else:
                raise ConfigError(
                    f"cannot pair generator resolutions {list(gen_resolutions)} with the extractor's "
                    f"{k} layers {extractor.layers}: give as many resolutions as layers, or pairs="
                )
        gen_channels = {r: getattr(syn, f"b{r}").out_channels for r, _ in pairs}
        return cls(extractor, gen_channels, pairs, hidden=hidden, grid=grid)

    @classmethod
    def from_init_kwargs(cls, init_kwargs, extractor=None):
        """Rebuild from `hsr.init_kwargs` (e.g. read back from a snapshot's JSON); then load
        `predictors.state_dict()`. The extractor is rebuilt with `make_extractor` from its recorded
        name/weights/layers unless given (needed when it was built from a model instance)."""
        kw = dict(init_kwargs)
        spec = dict(kw.pop("extractor", None) or {})
        if extractor is None:
            if not spec.get("name"):
                raise ConfigError(
                    "the extractor was built from a model instance and cannot be rebuilt from its "
                    "record: pass extractor="
                )
            weights = spec.get("weights")
            extractor = make_extractor(
                spec["name"],
                weights="none" if weights is None else weights,
                layers=spec.get("layers"),
                input_size=spec.get("input_size"),
                seed=spec.get("seed", 0),
            )
        return cls(
            extractor,
            {int(r): int(c) for r, c in kw["gen_channels"].items()},
            [tuple(p) for p in kw["pairs"]],
            hidden=kw.get("hidden", 4096),
            grid=kw.get("grid", 14),
        )

    def extra_repr(self):
        return f"pairs={self.pairs}, hidden={self.hidden}, grid={self.grid}"


# ------------------------------------------------------------------------------------------------
# Schedule and the training-loop adapter


@dataclass(frozen=True)
class HSRSchedule:
    """lambda(kimg): 0 before `warmup_kimg`, `weight` from then on (HSR switched on after a warm-up)."""

    weight: float = 1.0
    warmup_kimg: float = 0.0

    def __post_init__(self):
        for name in ("weight", "warmup_kimg"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"HSR {name} must be a finite number >= 0, got {v!r}")

    def lambda_at(self, kimg):
        return float(self.weight) if kimg >= self.warmup_kimg else 0.0

    __call__ = lambda_at


class HSRTerm:
    """An HSR loss and its schedule behind the interface `latentlab.train.loop.Trainer` takes as
    `regularizer`: `resolutions`, `weight(kimg)`, `capture(G)`, `__call__(features, images) ->
    (loss, stats)` with float stats named in `log_keys`, and `parameters()` / `buffers()` /
    `state_dict()` / `load_state_dict()` / `to()` covering the predictors only (F is frozen and is
    not saved in training state). `config` is a JSON-friendly record; `HSRTerm.from_config`
    rebuilds the term from it.
    """

    def __init__(self, hsr, schedule=None):
        if not isinstance(hsr, HSR):
            raise ConfigError(f"expected an HSR, got {type(hsr).__name__}")
        self.hsr = hsr
        self.schedule = schedule if schedule is not None else HSRSchedule()

    @classmethod
    def for_generator(cls, G, weight=1.0, warmup_kimg=0.0, **hsr_kwargs):
        return cls(HSR.for_generator(G, **hsr_kwargs), HSRSchedule(weight, warmup_kimg))

    @classmethod
    def from_config(cls, config, extractor=None):
        config = dict(config)
        schedule = HSRSchedule(config.pop("weight", 1.0), config.pop("warmup_kimg", 0.0))
        config.pop("kind", None)
        return cls(HSR.from_init_kwargs(config, extractor=extractor), schedule)

    @property
    def resolutions(self):
        return list(self.hsr.resolutions)

    @property
    def log_keys(self):
        return ["hsr_loss"] + [f"hsr_{k}" for k in self.hsr.keys]

    @property
    def config(self):
        return {
            "kind": "hsr",
            **copy.deepcopy(self.hsr.init_kwargs),
            "weight": float(self.schedule.weight),
            "warmup_kimg": float(self.schedule.warmup_kimg),
        }

    def weight(self, kimg):
        return self.schedule.lambda_at(kimg)

    def capture(self, G):
        return self.hsr.capture(G)

    def __call__(self, features, images):
        loss, parts = self.hsr(features, images)
        stats = {"hsr_loss": float(loss.detach())}
        stats.update({f"hsr_{k}": float(v) for k, v in parts.items()})
        return loss, stats

    def parameters(self):
        return self.hsr.predictors.parameters()

    def buffers(self):
        return self.hsr.predictors.buffers()

    def state_dict(self):
        return self.hsr.predictors.state_dict()

    def load_state_dict(self, state):
        mine = self.hsr.predictors.state_dict()
        missing = [k for k in mine if k not in state]
        unexpected = [k for k in state if k not in mine]
        if missing or unexpected:
            raise ConfigError(
                f"HSR predictor state does not match this HSR (keys {sorted(mine)[:4]}...): "
                f"{len(missing)} missing, {len(unexpected)} unexpected "
                f"(e.g. {(missing or unexpected)[0]!r}); use the same HSR settings as the run"
            )
        for k, v in mine.items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise ConfigError(
                    f"HSR predictor state: {k!r} has shape {list(state[k].shape)}, expected {list(v.shape)}"
                )
        self.hsr.predictors.load_state_dict(state, strict=True)

    def to(self, device):
        self.hsr.to(device)
        return self

    def train(self, mode=True):
        self.hsr.train(mode)
        return self
