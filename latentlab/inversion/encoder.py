"""GH-Feat's hierarchical encoder: images to per-layer style codes (Xu et al., "Generative Hierarchical
Features from Synthesizing Images", CVPR 2021).

The network (`HierarchicalEncoder`):

- a ResNet backbone with six stages: a stem (7x7 conv, batch norm, ReLU, 3x3 max pool) and five
  residual stages R2..R6, R3..R6 each halving the resolution. R2..R5 are the four stages of a ResNet
  (BasicBlocks for depths 10/18/34, Bottlenecks for 50/101; ResNet-50 is the paper's); R6 is the
  extra stage of one block of R5's width. The stem downsamples by `stem_down` (4 = stride-2 conv and
  stride-2 pool, ResNet's; `for_generator` takes less for small images, so that R6 is 4x4 at 64 px);
- a feature pyramid over R4, R5, R6 (3x3 lateral convs to `fpn_channels`, top-down nearest upsampling
  and addition, 3x3 output convs, as the official code);
- the spatial alignment module: R_i <- W_i(down(R_i)) + W_6 R_6 for i in {4, 5} and R_6 <- W_6 R_6,
  W_i 1x1 convs, down = average pooling to R6's resolution;
- each of the three outputs average-pooled to 4x4 (`HEAD_GRID`) and mapped by one fully connected
  layer per style layer of its level to that layer's code: R6 -> coarse, R5 -> middle, R4 -> fine.

Output space Y is latentlab's S space: the packed per-layer styles
`G.synthesis.pack_styles(G.synthesis.compute_styles(ws))` (StyleGAN2's affine outputs; StyleGAN v1's
AdaIN scale and bias). The encoder predicts residuals, y = y_avg + delta_y, with y_avg the styles of
w_avg (a buffer; `w_stats`: 10 000 z of RandomState(123), as the projector's) and the heads
zero-initialised, so an untrained encoder returns y_avg.

Levels (`level_split`): the ws indices 0..num_ws-1 split into coarse / middle / fine in GH-Feat's
proportions 4 : 4 : 6 of a 14-layer generator (boundaries at round(num_ws * 4/14) and
round(num_ws * 8/14), coarse first); every S layer belongs to the level of its ws index.

Differences from the official (TensorFlow) code, on purpose: the issue's 1x1 convolutions in the
alignment module (the official uses 3x3); plain batch norm (not synchronised across GPUs); one
linear layer per style layer from a residual around y_avg (the official uses one layer per level
followed by batch norm, without y_avg); ReLU throughout (the official BasicBlock uses LeakyReLU).

Files (`save_encoder` / `load_encoder`): .safetensors with the weights and, in the metadata, the
format tag, the constructor arguments (`init_kwargs`, the one record of the architecture) and the
generator's model id; `check_encoder_for(enc, G)` refuses an encoder made for another model.
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..latents.codes import LatentCodes
from ..models.identity import model_hash
from ..models.noise import noise_layers
from ..utils.atomic import atomic_path
from ..utils.safe_json import Anything, Int, Map, Obj, Str, loads_json, require_keys
from ..utils.safe_json import List as JsonList
from .projector import Distance, ProjectionResult, default_distance, pixel_metrics, w_stats

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator

FORMAT = "latentlab-ghfeat-encoder"
VERSION = 1
LEVELS = ("coarse", "middle", "fine")
GHFEAT_LAYERS = (4, 4, 6)  # coarse, middle, fine layers of GH-Feat's 14-layer generator
HEAD_GRID = 4  # every branch is pooled to 4x4 before its fully connected heads
RESNETS = {  # depth -> (block, units per stage R2..R5)
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}
STEM_DOWN = (1, 2, 4)


# ---- levels ------------------------------------------------------------------------------------
def level_split(num_ws: int) -> Dict[str, List[int]]:
    """{'coarse': [...], 'middle': [...], 'fine': [...]}: ws indices in GH-Feat's proportions 4 : 4 : 6.

    Boundaries at floor(num_ws * 4/14 + 1/2) and floor(num_ws * 8/14 + 1/2) (coarse = the first
    layers), moved so that every level keeps at least one layer; 14 layers give 4, 4, 6 and
    10 (the toyfaces model) give 3, 3, 4."""
    num_ws = int(num_ws)
    if num_ws < 3:
        raise ConfigError(f"a hierarchical encoder needs a generator with at least 3 ws layers, got {num_ws}")
    total = sum(GHFEAT_LAYERS)
    a = math.floor(num_ws * GHFEAT_LAYERS[0] / total + 0.5)
    b = math.floor(num_ws * (GHFEAT_LAYERS[0] + GHFEAT_LAYERS[1]) / total + 0.5)
    a = min(max(a, 1), num_ws - 2)
    b = min(max(b, a + 1), num_ws - 1)
    return {"coarse": list(range(a)), "middle": list(range(a, b)), "fine": list(range(b, num_ws))}


def style_levels(G: AnyGenerator) -> Dict[str, List[str]]:
    """level -> the names of its S layers (`G.synthesis.style_layers()`, each by its ws index), in S order."""
    split = level_split(G.num_ws)
    level_of = {i: level for level, idx in split.items() for i in idx}
    out: Dict[str, List[str]] = {level: [] for level in LEVELS}
    for name, _, i in G.synthesis.style_layers():
        out[level_of[i]].append(name)
    return out


def level_slices(levels: Mapping[str, List[str]], style_dims: Mapping[str, int]) -> Dict[str, slice]:
    """Where each level's layers lie in the packed S vector (levels follow S order, so they are contiguous)."""
    out, start = {}, 0
    for level in LEVELS:
        n = sum(style_dims[name] for name in levels[level])
        out[level] = slice(start, start + n)
        start += n
    return out


# ---- the backbone ------------------------------------------------------------------------------
def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels)


class BasicBlock(nn.Module):
    """Two 3x3 convs with batch norm and ReLU; a 1x1 conv (+ BN) shortcut when the shape changes."""

    def __init__(
        self,
        in_channels: int,  # Input channels.
        out_channels: int,  # Output channels.
        stride: int = 1,  # Stride of the first conv (2 halves the resolution).
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = _bn(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = _bn(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), _bn(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 conv to out/4 channels, 3x3 conv (strided), 1x1 conv to out; batch norm, ReLU; projected shortcut."""

    def __init__(
        self,
        in_channels: int,  # Input channels.
        out_channels: int,  # Output channels (the hidden width is a quarter of it).
        stride: int = 1,  # Stride of the 3x3 conv.
    ) -> None:
        super().__init__()
        hidden = max(1, out_channels // 4)
        self.conv1 = nn.Conv2d(in_channels, hidden, 1, bias=False)
        self.bn1 = _bn(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, stride, 1, bias=False)
        self.bn2 = _bn(hidden)
        self.conv3 = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self.bn3 = _bn(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), _bn(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.shortcut(x))


def _stage(block: str, in_channels: int, out_channels: int, units: int, stride: int) -> nn.Sequential:
    cls = BasicBlock if block == "basic" else Bottleneck
    layers = [cls(in_channels, out_channels, stride)]
    layers += [cls(out_channels, out_channels, 1) for _ in range(units - 1)]
    return nn.Sequential(*layers)


def stage_widths(depth: int, width: int) -> List[int]:
    """Output channels of R2..R6: width x (1, 2, 4, 8, 8), x4 for Bottleneck ResNets (50: 256 ... 2048, 2048)."""
    block, _ = RESNETS[depth]
    mult = 4 if block == "bottleneck" else 1
    w = [width * mult * f for f in (1, 2, 4, 8)]
    return w + [w[-1]]


# ---- the encoder -------------------------------------------------------------------------------
class HierarchicalEncoder(nn.Module):
    """GH-Feat's encoder: images [N, C, R, R] in [-1, 1] -> packed S codes [N, sum of style channels].

    Build one for a generator with `HierarchicalEncoder.for_generator(G, depth=...)`; see the module
    docstring for the architecture. `delta(images)` gives the predicted residuals, `forward` y_avg +
    delta, `level_codes(images)` the codes split by level.
    """

    y_avg: torch.Tensor  # buffer: the styles of w_avg, packed
    info: Dict[str, Any]  # what the file recorded about its training (`load_encoder`), else {}

    def __init__(
        self,
        img_resolution: int,  # Input image size (square, a power of two >= 8).
        img_channels: int,  # Input image channels (1 or 3).
        style_dims: Sequence[Tuple[str, int]],  # The generator's S layers in packed order: [(name, channels), ...].
        levels: Mapping[str, Sequence[str]],  # Level ('coarse', 'middle', 'fine') -> the names of its S layers.
        depth: int = 50,  # ResNet depth of R2..R5: 10, 18, 34 (BasicBlock) or 50, 101 (Bottleneck; 50 is the paper's).
        width: int = 64,  # Stem width; stages R2..R5 have width x 1, 2, 4, 8 (x4 with Bottlenecks), R6 as R5.
        fpn_channels: int = 512,  # Channels of the feature pyramid, the alignment module and the heads' input.
        stem_down: int = 4,  # Downsampling of the stem: 4 = stride-2 conv + stride-2 max pool (ResNet's), 2, or 1.
        model_id: str = "",  # model_hash of the generator the encoder belongs to ('' = unknown).
    ) -> None:
        super().__init__()
        style_dims = [(str(n), int(c)) for n, c in style_dims]
        levels = {str(k): [str(n) for n in v] for k, v in levels.items()}
        if int(depth) not in RESNETS:
            raise ConfigError(f"encoder depth must be one of {', '.join(map(str, RESNETS))}, got {depth}")
        if int(width) < 1 or int(fpn_channels) < 1:
            raise ConfigError(f"encoder width and fpn_channels must be >= 1, got {width} and {fpn_channels}")
        if int(stem_down) not in STEM_DOWN:
            raise ConfigError(f"stem_down must be one of {STEM_DOWN}, got {stem_down}")
        res = int(img_resolution)
        if res < 8 or res & (res - 1):
            raise ConfigError(f"the encoder's image size must be a power of two >= 8, got {img_resolution}")
        if int(img_channels) not in (1, 3):
            raise ConfigError(f"img_channels must be 1 or 3, got {img_channels}")
        names = [n for n, _ in style_dims]
        if not names or min(c for _, c in style_dims) < 1 or len(set(names)) != len(names):
            raise ConfigError("style_dims must list distinct S layers, each with at least one channel")
        if set(levels) != set(LEVELS):
            raise ConfigError(f"levels must name exactly {', '.join(LEVELS)}, got {sorted(levels)}")
        assigned = [n for level in LEVELS for n in levels[level]]
        if assigned != names:
            raise ConfigError("levels must assign every S layer once, coarse before middle before fine, in S order")
        self.init_kwargs: Dict[str, Any] = dict(
            img_resolution=res,
            img_channels=int(img_channels),
            style_dims=[[n, c] for n, c in style_dims],
            levels={level: list(levels[level]) for level in LEVELS},
            depth=int(depth),
            width=int(width),
            fpn_channels=int(fpn_channels),
            stem_down=int(stem_down),
            model_id=str(model_id),
        )
        self.img_resolution = res
        self.img_channels = int(img_channels)
        self.style_dims = OrderedDict(style_dims)
        self.levels = {level: list(levels[level]) for level in LEVELS}
        self.model_id = str(model_id)
        self.depth = int(depth)
        block, units = RESNETS[self.depth]
        widths = stage_widths(self.depth, int(width))

        conv_stride, pool_stride = (2, 2) if stem_down == 4 else (2, 1) if stem_down == 2 else (1, 1)
        self.stem = nn.Sequential(
            nn.Conv2d(self.img_channels, int(width), 7, conv_stride, 3, bias=False),
            _bn(int(width)),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, pool_stride, 1),
        )
        stages, c_in = [], int(width)
        for i, (c_out, n) in enumerate(zip(widths, list(units) + [1])):
            stages.append(_stage(block, c_in, c_out, n, 1 if i == 0 else 2))
            c_in = c_out
        self.stages = nn.ModuleList(stages)  # R2, R3, R4, R5, R6
        c = int(fpn_channels)
        self.lateral = nn.ModuleList([nn.Conv2d(w, c, 3, 1, 1) for w in widths[2:]])  # R4, R5, R6
        self.smooth = nn.ModuleList([nn.Conv2d(c, c, 3, 1, 1) for _ in range(3)])
        self.align = nn.ModuleList([nn.Conv2d(c, c, 1) for _ in range(3)])  # W_4, W_5, W_6
        self.heads = nn.ModuleList()
        for _, dim in style_dims:
            head = nn.Linear(c * HEAD_GRID * HEAD_GRID, dim)
            nn.init.zeros_(head.weight)  # an untrained encoder predicts y_avg
            nn.init.zeros_(head.bias)
            self.heads.append(head)
        level_of = {n: level for level in LEVELS for n in levels[level]}
        self.head_levels = [level_of[n] for n in names]
        self.register_buffer("y_avg", torch.zeros(sum(c for _, c in style_dims)))
        self.info = {}

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def for_generator(
        cls,
        G: AnyGenerator,
        depth: int = 50,
        width: int = 64,
        fpn_channels: int = 512,
        stem_down: Optional[int] = None,
        w_avg_samples: int = 10000,
    ) -> HierarchicalEncoder:
        """An encoder for G: its S layers and levels, its model id, y_avg = styles of w_avg (`w_stats`).

        stem_down None: 4 (ResNet's stem) from 256 px up, else the largest of 1, 2, 4 that keeps R6
        at 4x4 or more (64 px: 1). The weights are drawn from torch's global RNG (seed it first).
        """
        if getattr(G, "c_dim", 0):
            raise ConfigError("the encoder supports unconditional generators only (c_dim > 0)")
        res = int(G.img_resolution)
        if stem_down is None:
            stem_down = max([s for s in STEM_DOWN if res // (16 * s) >= HEAD_GRID] or [1])
        enc = cls(
            img_resolution=res,
            img_channels=G.img_channels,
            style_dims=list(G.synthesis.style_dims.items()),
            levels=style_levels(G),
            depth=depth,
            width=width,
            fpn_channels=fpn_channels,
            stem_down=stem_down,
            model_id=model_hash(G),
        )
        device = next(G.parameters()).device
        w_avg, _ = w_stats(G, w_avg_samples, device)
        with torch.no_grad():
            ws = w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
            y = G.synthesis.pack_styles(G.synthesis.compute_styles(ws))[0]
            enc.y_avg.copy_(y.detach().cpu())
        return enc

    # ---- forward ------------------------------------------------------------------------------
    def _check_images(self, images: torch.Tensor) -> None:
        want = (self.img_channels, self.img_resolution, self.img_resolution)
        if images.ndim != 4 or tuple(images.shape[1:]) != want:
            raise ConfigError(
                f"the encoder takes images [N, {want[0]}, {want[1]}, {want[2]}], got {tuple(images.shape)}"
            )

    def features(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """{'coarse': R6, 'middle': R5, 'fine': R4} after the pyramid and the alignment module,
        each pooled to [N, fpn_channels, 4, 4]."""
        self._check_images(images)
        x = self.stem(images.to(self.y_avg.dtype))
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        lat = [conv(f) for conv, f in zip(self.lateral, feats[2:])]  # R4, R5, R6
        for i in (1, 0):  # top-down: R5 += up(R6), R4 += up(R5)
            lat[i] = lat[i] + F.interpolate(lat[i + 1], size=lat[i].shape[-2:], mode="nearest")
        r4, r5, r6 = [conv(t) for conv, t in zip(self.smooth, lat)]
        size = r6.shape[-2:]
        w6 = self.align[2](r6)
        r4 = self.align[0](F.adaptive_avg_pool2d(r4, size)) + w6
        r5 = self.align[1](F.adaptive_avg_pool2d(r5, size)) + w6
        pool = lambda t: F.adaptive_avg_pool2d(t, HEAD_GRID)  # noqa: E731
        return {"coarse": pool(w6), "middle": pool(r5), "fine": pool(r4)}

    def delta(self, images: torch.Tensor) -> torch.Tensor:
        """The predicted residuals delta_y [N, sum of style channels] (packed S order)."""
        feats = {k: v.flatten(1) for k, v in self.features(images).items()}
        return torch.cat([head(feats[level]) for head, level in zip(self.heads, self.head_levels)], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Packed S codes y = y_avg + delta_y [N, sum of style channels] for images in [-1, 1]."""
        return self.y_avg + self.delta(images)

    def level_slices(self) -> Dict[str, slice]:
        """Where each level's layers lie in the packed S vector (contiguous: levels follow S order)."""
        return level_slices(self.levels, self.style_dims)

    def level_codes(self, codes: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Packed S codes [N, D] -> {level: [N, D_level]}: each level's layers' codes, concatenated."""
        return {level: codes[:, s] for level, s in self.level_slices().items()}

    def extra_repr(self) -> str:
        k = self.init_kwargs
        return (
            f"resolution={k['img_resolution']}, depth={k['depth']}, width={k['width']}, "
            f"fpn_channels={k['fpn_channels']}, stem_down={k['stem_down']}, layers={len(self.style_dims)}"
        )


# ---- files -------------------------------------------------------------------------------------
def save_encoder(enc: HierarchicalEncoder, path: Union[str, os.PathLike], info: Optional[Mapping] = None) -> str:
    """Write the encoder atomically to `path` (.safetensors: weights, buffers, and in the metadata the
    format tag, init_kwargs, the model id and `info`, e.g. the training steps); returns the path."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in enc.state_dict().items()}
    meta = {
        "format": FORMAT,
        "version": str(VERSION),
        "init_kwargs": json.dumps(enc.init_kwargs),
        "model_id": enc.model_id,
        "info": json.dumps(dict(info or {}), default=str),
    }
    with atomic_path(path, ".safetensors") as tmp:
        save_file(tensors, tmp, metadata=meta)
    return os.fspath(path)


# An encoder file's init_kwargs, checked before any network is built (`latentlab.utils.safe_json`): sizes bounded
# so that a small header cannot describe a network of terabytes (the built network must then match the file).
ENCODER_KWARGS = Obj(
    {
        "img_resolution": Int(8, 4096),
        "img_channels": Int(1, 3),
        "style_dims": JsonList(JsonList(Anything(), 2, 2), 1, 1024),
        "levels": Map(JsonList(Str(256), max_len=1024), max_items=16),
        "depth": Int(1, 200),
        "width": Int(1, 1024),
        "fpn_channels": Int(1, 4096),
        "stem_down": Int(1, 4),
        "model_id": Str(256),
    },
    required=["img_resolution", "img_channels", "style_dims", "levels"],
    extra=False,
)


def load_encoder(path: Union[str, os.PathLike], device: Union[torch.device, str] = "cpu") -> HierarchicalEncoder:
    """Read a file written by `save_encoder` (eval mode, on `device`); one-line errors naming the file."""
    from ..checkpoints.state_dicts import check_state_dict, load_state_dict_strict, read_state_dict

    path = os.fspath(path)
    try:
        state, meta = read_state_dict(path, what="GH-Feat encoder", allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError) as e:
        raise ConfigError(f"--encoder {path}: {e.strerror or e}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: a safetensors file, but not a latentlab encoder (no '{FORMAT}' format tag)")
    require_keys(meta, ("init_kwargs",), f"{path}: encoder metadata", error=CheckpointError)
    try:
        version = int(meta.get("version", "0"))
        where = f"{path}: damaged encoder metadata"
        kwargs = loads_json(meta["init_kwargs"], f"{where} 'init_kwargs'", ENCODER_KWARGS, error=CheckpointError)
        info = loads_json(meta.get("info", "{}"), f"{where} 'info'", Map(Anything()), error=CheckpointError)
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: damaged encoder metadata ({type(e).__name__}: {e})") from None
    if not 1 <= version <= VERSION:
        raise CheckpointError(f"{path}: encoder format version {version}; this latentlab reads up to {VERSION}")
    try:
        with torch.device("meta"):  # the metadata's network without memory: its shapes must be the file's
            check_state_dict(
                HierarchicalEncoder(**kwargs).state_dict(), state, path, "the encoder its metadata describes"
            )
        enc = HierarchicalEncoder(**kwargs)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad encoder architecture ({e})") from None
    load_state_dict_strict(enc, state, path, "the encoder its metadata describes")
    enc.info = info
    return enc.to(device).eval()


def check_encoder_for(enc: HierarchicalEncoder, G: AnyGenerator, where: str = "the encoder") -> None:
    """Refuse (ConfigError, one line) an encoder made for another generator than G."""
    mine = model_hash(G)
    if enc.model_id and enc.model_id != mine[: len(enc.model_id)]:
        raise ConfigError(
            f"{where} belongs to another model (id {enc.model_id}, this one is {mine[: len(enc.model_id)]}); "
            "give the --model it was trained for"
        )
    if (
        list(enc.style_dims.items()) != list(G.synthesis.style_dims.items())
        or enc.img_resolution != G.img_resolution
        or enc.img_channels != G.img_channels
    ):
        raise ConfigError(f"{where} does not fit this generator (other S layers or image size)")


# ---- using an encoder --------------------------------------------------------------------------
def _as_pm1(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [-1, 1] images -> float32 [-1, 1]."""
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1
    return images.float()


@torch.no_grad()
def predict(enc: HierarchicalEncoder, images: torch.Tensor, batch_size: int = 16, progress: Any = None) -> torch.Tensor:
    """Packed S codes [N, D] of images (uint8 or [-1, 1] float), in eval mode, `batch_size` at a time."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    enc._check_images(images)
    was_training = enc.training
    enc.eval()
    device = enc.y_avg.device
    try:
        out = []
        for part in images.split(int(batch_size)):
            out.append(enc(_as_pm1(part).to(device)))
            if progress is not None:
                progress.update(len(part))
    finally:
        enc.train(was_training)
    return torch.cat(out) if out else enc.y_avg.new_zeros([0, len(enc.y_avg)])


def encode(
    G: AnyGenerator,
    enc: HierarchicalEncoder,
    images: torch.Tensor,
    batch_size: int = 16,
    names: Optional[Sequence[str]] = None,
    progress: Any = None,
) -> LatentCodes:
    """LatentCodes in space 's' (packed styles, model id of G) for images [N, C, R, R] (uint8 or [-1, 1]).

    Refuses an encoder of another model. `names` go into the meta ('targets'), as the projector's."""
    check_encoder_for(enc, G)
    if names is not None and len(names) != len(images):
        raise ConfigError(f"{len(names)} names for {len(images)} images")
    codes = predict(enc, images, batch_size, progress)
    meta: Dict[str, Any] = {"encoder": dict(enc.init_kwargs, info=getattr(enc, "info", {}))}
    meta["encoder"].pop("style_dims", None)
    meta["encoder"].pop("levels", None)
    if names is not None:
        meta["targets"] = [str(n) for n in names]
    return LatentCodes(codes.float(), "s", model_id=model_hash(G), meta=meta)


def level_features(
    enc: HierarchicalEncoder, images: torch.Tensor, batch_size: int = 16, progress: Any = None
) -> Dict[str, np.ndarray]:
    """GH-Feat features: {'coarse': [N, d_c], 'middle': [N, d_m], 'fine': [N, d_f]} float32, the predicted
    S codes of each level's layers, concatenated (`enc.levels` names the layers)."""
    codes = predict(enc, images, batch_size, progress)
    return {k: v.cpu().numpy().astype(np.float32) for k, v in enc.level_codes(codes).items()}


def const_noise(G: AnyGenerator, n: int) -> List[torch.Tensor]:
    """The generator's own constant noise buffers as per-image maps [n, 1, R, R] (noise_layers order):
    rendering with them (`noise_override`) equals rendering with noise_mode='const'."""
    return [
        module._buffers["noise_const"].detach().reshape(1, 1, r, r).expand(n, 1, r, r).clone()  # type: ignore[union-attr]
        for module, r in noise_layers(G.synthesis)
    ]


def reconstruction_metrics(
    images: torch.Tensor, targets: torch.Tensor, distance: Optional[Distance] = None
) -> Dict[str, np.ndarray]:
    """Per image, as the projector reports them: 'distance' (distance(synth, target) on [0, 255] images,
    area-downsampled to 256 px when larger; skipped when distance is None), and on [0, 1] pixels 'mse',
    'psnr' (10 log10(1 / mse)) and 'ssim'. images: renders in about [-1, 1]; targets: uint8 or [-1, 1]."""
    t_pm1 = _as_pm1(targets).to(images.device)
    out: Dict[str, np.ndarray] = {}
    if distance is not None:
        down = lambda x: F.interpolate(x, size=(256, 256), mode="area") if x.shape[-1] > 256 else x  # noqa: E731
        with torch.no_grad():
            d = distance(down((images.float() + 1) * 127.5), down((t_pm1 + 1) * 127.5))
        out["distance"] = d.detach().cpu().double().numpy()
    out.update(pixel_metrics(images, t_pm1))
    return out


def encode_images(
    G: AnyGenerator,
    enc: HierarchicalEncoder,
    targets: torch.Tensor,
    names: Optional[Sequence[str]] = None,
    batch_size: int = 16,
    distance: Optional[Distance] = None,
    pretrained_backbone: bool = True,
    progress: Any = None,
) -> ProjectionResult:
    """The encoder's inversion of targets as a ProjectionResult (what `write_projection` writes):
    S codes, the generator's constant noise per image, the renders and the projector's metrics
    (`reconstruction_metrics`, LPIPS-VGG by default as `project`; pretrained_backbone=False: untrained VGG)."""
    from ..utils.render import render_batches

    dist = distance if distance is not None else default_distance(pretrained_backbone)  # first: may fail offline
    codes = encode(G, enc, targets, batch_size, names, progress)
    device = next(G.parameters()).device
    images = torch.cat(list(render_batches(G, styles=codes.data.to(device), batch_size=batch_size)))
    metrics = reconstruction_metrics(images, targets.to(device), dist)
    settings = dict(
        method="encoder",
        distance="lpips-vgg" if distance is None else getattr(distance, "__name__", "custom"),
        pretrained_backbone=pretrained_backbone if distance is None else None,  # a given distance decides
        encoder={k: v for k, v in enc.init_kwargs.items() if k not in ("style_dims", "levels")},
    )
    return ProjectionResult(codes, const_noise(G, len(targets)), images, metrics, settings)


def write_features(
    enc: HierarchicalEncoder,
    images: torch.Tensor,
    names: Sequence[str],
    path: Union[str, os.PathLike],
    batch_size: int = 16,
    progress: Any = None,
) -> Dict[str, np.ndarray]:
    """Write `level_features` to an .npz (atomically): arrays coarse, middle, fine [N, d], names (str),
    model_id (the encoder's generator) and levels (JSON: level -> S layer names); returns the features."""
    from ..utils.atomic import save_npz

    if len(names) != len(images):
        raise ConfigError(f"{len(names)} names for {len(images)} images")
    feats = level_features(enc, images, batch_size, progress)
    arrays: Dict[str, np.ndarray] = dict(feats)
    arrays["names"] = np.asarray([str(n) for n in names])
    arrays["model_id"] = np.asarray(enc.model_id)
    arrays["levels"] = np.asarray(json.dumps(enc.levels))
    save_npz(path, arrays)
    return feats
