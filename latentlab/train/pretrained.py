"""Pretrained weights of feature networks: known files fetched by name, and torchvision/timm downloads
that end in one clear line when they fail.

Known files (`KNOWN_WEIGHTS`): the four DINO ViT backbones of Facebook's DINO release (Caron et al.
2021), e.g. `dino_deitsmall16_pretrain.pth`, the DINO ViT-S/16 the HSR paper uses as its frozen
feature network. `weights_file(name)` returns a local path for a weights argument:

  * an existing file: itself;
  * a known file name: `<cache>/weights/<name>` (cache: $LATENTLAB_CACHE or ~/.cache/latentlab), or
    torch hub's copy (`<torch hub dir>/checkpoints/<name>`, where DINO's own torch.hub entry points
    put it); otherwise downloaded into `<cache>/weights/` (resumable) and verified before it is
    used. Facebook publishes no checksum of these files, so the verification is structural: the
    file must hold exactly the ViT's parameters (every key, every shape, floating point), as the
    architecture prescribes (`vit_shapes`). A download that fails it is removed. Offline,
    `MissingWeights` says in one line which URL to fetch and where to put the file.

`torchvision_pretrained` and `timm_pretrained` build a model with its library's pretrained weights;
offline they raise `MissingWeights` naming the file to download and where to put it (torch hub's
checkpoints folder for torchvision; for timm's Hugging Face hosted weights, the file to pass as a
weights file), and torchvision's warnings (e.g. deprecation notices) are not shown.
"""

import os
import re
import urllib.parse
import warnings
from dataclasses import dataclass

from ..errors import CheckpointError, MissingWeights

__all__ = [
    "KNOWN_WEIGHTS",
    "WeightsFile",
    "weights_dir",
    "weights_file",
    "vit_shapes",
    "check_shapes",
    "torchvision_pretrained",
    "timm_pretrained",
    "hub_checkpoints_dir",
]


@dataclass(frozen=True)
class WeightsFile:
    """A published weights file: where it comes from and the parameter shapes it must hold."""

    url: str
    description: str
    vit: dict  # architecture of the ViT backbone: depth, dim, patch, img_size (see `vit_shapes`)
    sha256: str = None  # none is published for DINO's files: verified by structure instead

    def shapes(self):
        return vit_shapes(**self.vit)


_DINO = "https://dl.fbaipublicfiles.com/dino/{0}/{0}.pth"
KNOWN_WEIGHTS = {
    "dino_deitsmall16_pretrain.pth": WeightsFile(
        _DINO.format("dino_deitsmall16_pretrain"),
        "DINO ViT-S/16, the HSR paper's feature network",
        dict(depth=12, dim=384, patch=16, img_size=224),
    ),
    "dino_deitsmall8_pretrain.pth": WeightsFile(
        _DINO.format("dino_deitsmall8_pretrain"), "DINO ViT-S/8", dict(depth=12, dim=384, patch=8, img_size=224)
    ),
    "dino_vitbase16_pretrain.pth": WeightsFile(
        _DINO.format("dino_vitbase16_pretrain"), "DINO ViT-B/16", dict(depth=12, dim=768, patch=16, img_size=224)
    ),
    "dino_vitbase8_pretrain.pth": WeightsFile(
        _DINO.format("dino_vitbase8_pretrain"), "DINO ViT-B/8", dict(depth=12, dim=768, patch=8, img_size=224)
    ),
}


def weights_dir():
    """<cache>/weights: where known weights files are downloaded."""
    from ..checkpoints.download import cache_dir

    return os.path.join(cache_dir(), "weights")


def hub_checkpoints_dir():
    """torch hub's checkpoints folder (torchvision and torch.hub.load_state_dict_from_url download there)."""
    import torch

    return os.path.join(torch.hub.get_dir(), "checkpoints")


def vit_shapes(depth, dim, patch, img_size, in_chans=3, mlp_ratio=4, num_prefix_tokens=1):
    """{key: shape} of a plain ViT backbone (timm's and DINO's key names, no classifier head).

    patch_embed (a patch x patch conv), a CLS token, learned position embeddings for the CLS and
    (img_size / patch)^2 patch tokens, `depth` pre-norm blocks (LayerNorm, qkv and output
    projection, LayerNorm, MLP with mlp_ratio * dim hidden units), and a final LayerNorm.
    """
    tokens = (img_size // patch) ** 2 + num_prefix_tokens
    hidden = mlp_ratio * dim
    shapes = {
        "cls_token": (1, 1, dim),
        "pos_embed": (1, tokens, dim),
        "patch_embed.proj.weight": (dim, in_chans, patch, patch),
        "patch_embed.proj.bias": (dim,),
    }
    for b in range(depth):
        p = f"blocks.{b}."
        shapes.update(
            {
                p + "norm1.weight": (dim,),
                p + "norm1.bias": (dim,),
                p + "attn.qkv.weight": (3 * dim, dim),
                p + "attn.qkv.bias": (3 * dim,),
                p + "attn.proj.weight": (dim, dim),
                p + "attn.proj.bias": (dim,),
                p + "norm2.weight": (dim,),
                p + "norm2.bias": (dim,),
                p + "mlp.fc1.weight": (hidden, dim),
                p + "mlp.fc1.bias": (hidden,),
                p + "mlp.fc2.weight": (dim, hidden),
                p + "mlp.fc2.bias": (dim,),
            }
        )
    shapes.update({"norm.weight": (dim,), "norm.bias": (dim,)})
    return shapes


def check_shapes(state, shapes, where, what):
    """CheckpointError naming the first key that is missing, unexpected, misshapen or not floating point."""
    missing = [k for k in shapes if k not in state]
    unexpected = [k for k in state if k not in shapes]
    if missing:
        raise CheckpointError(
            f"{where}: not the {what}: key {missing[0]!r} is missing ({len(missing)} missing, "
            f"{len(unexpected)} unexpected)"
        )
    if unexpected:
        raise CheckpointError(
            f"{where}: not the {what}: unexpected key {unexpected[0]!r} ({len(unexpected)} unexpected)"
        )
    for k, shape in shapes.items():
        if tuple(state[k].shape) != tuple(shape):
            raise CheckpointError(
                f"{where}: not the {what}: {k!r} has shape {list(state[k].shape)}, expected {list(shape)}"
            )
        if not state[k].is_floating_point():
            raise CheckpointError(f"{where}: not the {what}: {k!r} is {state[k].dtype}, expected floating point")


def _verify(path, name, entry):
    from .extractors import read_weights  # unwraps DINO's nestings ('teacher', 'module.', 'backbone.')

    check_shapes(read_weights(path), entry.shapes(), path, f"{name} ({entry.description})")


def weights_file(weights, progress=True, hint=None):
    """Local path of a weights argument: an existing file, or a known file name (cached, or downloaded and verified).

    hint: what else the caller can do, appended to the offline message (e.g. which option takes a file).
    Raises FileNotFoundError for an unknown name that is not a file, MissingWeights when a known file
    cannot be downloaded, CheckpointError when the download is not the expected file (it is removed).
    """
    path = os.fspath(weights)
    if os.path.isfile(path):
        return path
    name = os.path.basename(path)
    entry = KNOWN_WEIGHTS.get(name)
    if entry is None or name != path:
        known = ", ".join(KNOWN_WEIGHTS)
        raise FileNotFoundError(f"{path}: no such file (known weights downloaded by name: {known})")
    dest = os.path.join(weights_dir(), name)
    for candidate in (dest, os.path.join(hub_checkpoints_dir(), name)):
        if os.path.isfile(candidate):
            return candidate
    from ..checkpoints.download import download

    staging = dest + ".download"  # verified before it takes the final name; `.part` beside it resumes
    try:
        download(entry.url, staging, entry.sha256, progress)
    except CheckpointError as e:
        msg = str(e).split(": ", 1)[-1]
        found = re.fullmatch(r"download failed \((.*)\)", msg)
        reason = found.group(1) if found else msg
        raise MissingWeights(
            f"{name} ({entry.description}) could not be downloaded ({reason}): download "
            f"{entry.url} and put it into {weights_dir()}{os.sep}" + (f" ({hint})" if hint else "")
        ) from None
    try:
        _verify(staging, name, entry)
    except CheckpointError as e:
        os.unlink(staging)
        raise CheckpointError(f"{str(e).replace(staging, entry.url)}; the download was removed") from None
    os.replace(staging, dest)
    return dest


# ------------------------------------------------------------------------------------------------
# torchvision and timm


def _reason(e):
    """The first line (and for long messages the first sentence) of an exception's message."""
    text = str(getattr(e, "reason", "") or e).strip().splitlines()
    text = text[0] if text else type(e).__name__
    return text.split(". ")[0] if len(text) > 100 else text


def torchvision_pretrained(name, build, hint=None):
    """`build()` a torchvision model with its pretrained weights (e.g. get_model(name, weights='DEFAULT')).

    torchvision's warnings are silenced; a failed download raises MissingWeights naming the file
    (the default weights' URL) and torch hub's checkpoints folder, where torchvision looks for it.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"torchvision(\.|$)")
            return build()
    except OSError as e:  # urllib's URLError, socket errors
        folder = hub_checkpoints_dir()
        try:
            from torchvision.models import get_model_weights

            url = get_model_weights(name).DEFAULT.url
            what = f"download {url} and put it into {folder}{os.sep}"
        except Exception:  # noqa: BLE001 - no registered weights: say where they would go
            what = f"put its weights file into {folder}{os.sep}"
        raise MissingWeights(
            f"torchvision's pretrained {name} weights could not be downloaded ({_reason(e)}): "
            f"{what}" + (f" ({hint})" if hint else "")
        ) from None


def timm_pretrained(name, build, hint=None):
    """`build()` a timm model with pretrained weights; a failed download raises MissingWeights naming the file.

    Weights hosted on the Hugging Face hub: the message gives the file's URL, to download and pass as
    a weights file (`hint` says how); weights from a plain URL: the URL and torch hub's checkpoints folder.
    """
    try:
        return build()
    except OSError as e:  # huggingface_hub's offline errors and requests' connection errors are OSErrors
        cfg = None
        try:
            import timm

            cfg = timm.models.get_pretrained_cfg(name)
        except Exception:  # noqa: BLE001 - an unknown tag: no file to name
            pass
        hf, url = getattr(cfg, "hf_hub_id", None), getattr(cfg, "url", None)
        if hf:
            file = getattr(cfg, "hf_hub_filename", None) or "model.safetensors"
            what = f"download https://huggingface.co/{hf}/resolve/main/{file} and pass it as the weights file"
            what += f" ({hint})" if hint else ""
        elif url:
            base = os.path.basename(urllib.parse.urlparse(url).path)
            what = f"download {url} and put it into {hub_checkpoints_dir()}{os.sep} (as {base})"
        else:
            what = "download its weights file and pass it as the weights file" + (f" ({hint})" if hint else "")
        raise MissingWeights(
            f"timm's pretrained {name} weights could not be downloaded ({_reason(e)}): {what}"
        ) from None
