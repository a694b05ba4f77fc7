"""Zero-shot attribute scores from CLIP: one (positive, negative) prompt pair per attribute.

score = s * (cos(image, positive) - cos(image, negative)), with s = exp(logit_scale),
the temperature CLIP was trained with: the difference of the two CLIP logits. So
softmax over the pair gives P(positive prompt) = sigmoid(score).
"""

import os

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..utils.optional import require
from .base import AttributeClassifier
from .preprocess import Preprocess

__all__ = ["ClipZeroShotClassifier", "read_prompts", "clip_preprocess", "OPENAI_CLIP_MEAN", "OPENAI_CLIP_STD"]

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

DEFAULT_PROMPTS = {
    "smile": ("a photo of a smiling person", "a photo of a person with a neutral face"),
}


def clip_preprocess(size=224, mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD):
    return Preprocess(resize=size, resize_mode="bicubic", input_range=(0, 1), clamp=True, mean=mean, std=std)


def read_prompts(prompts):
    """{name: (positive, negative)} from a dict or a JSON file holding one; checked."""
    source = "prompts"
    if isinstance(prompts, (str, os.PathLike)):
        source = os.fspath(prompts)
        if not os.path.exists(source):
            raise FileNotFoundError(f"{source}: no such prompts file")
        from ..utils.safe_json import load_json

        prompts = load_json(source)  # size and depth checked before parsing; one line naming the file
    if not isinstance(prompts, dict) or not prompts:
        raise ConfigError(f"{source}: expected a non-empty mapping {{attribute: [positive prompt, negative prompt]}}")
    out = {}
    for name, pair in prompts.items():
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not all(isinstance(p, str) and p.strip() for p in pair)
        ):
            raise ConfigError(f"{source}: attribute {name!r} needs [positive prompt, negative prompt], got {pair!r}")
        out[str(name)] = (pair[0], pair[1])
    return out


class ClipZeroShotClassifier(AttributeClassifier):
    """CLIP zero-shot scores (logit differences of prompt pairs) as attribute logits.

    With `encoder=None`, builds `open_clip.create_model(model_name, pretrained=weights)`
    from a LOCAL weights file (open_clip is an optional extra: pip install open_clip_torch).
    Any object with `encode_image(x)`, `encode_text(tokens)` and `logit_scale` (log of the
    temperature, as in CLIP) can be injected as `encoder`, with a `tokenizer` turning a list
    of prompts into what `encode_text` takes (default: the list itself).
    """

    def __init__(
        self, prompts=None, model_name="ViT-B-32", weights=None, preprocess=None, encoder=None, tokenizer=None
    ):
        if encoder is None:
            require("open_clip", "open_clip_torch", "ClipZeroShotClassifier")  # say so before anything else
        prompts = read_prompts(DEFAULT_PROMPTS if prompts is None else prompts)
        if encoder is None:
            encoder, tokenizer, preprocess = self._open_clip(model_name, weights, preprocess)
        elif tokenizer is None:
            tokenizer = lambda texts: texts  # noqa: E731
        super().__init__(list(prompts), clip_preprocess() if preprocess is None else preprocess)
        self.prompts = prompts
        self.model_name = model_name
        self.encoder = encoder
        if hasattr(encoder, "eval"):
            encoder.eval()
        texts = [p for pair in prompts.values() for p in pair]
        with torch.no_grad():
            feats = encoder.encode_text(tokenizer(texts)).float()
        if feats.ndim != 2 or feats.shape[0] != len(texts):
            raise ConfigError(f"encode_text returned {list(feats.shape)} for {len(texts)} prompts")
        # [A, 2, D]: unit text embeddings of (positive, negative) per attribute, fixed once.
        self.register_buffer("text_features", F.normalize(feats, dim=-1).reshape(len(prompts), 2, -1), persistent=False)

    @staticmethod
    def _open_clip(model_name, weights, preprocess):
        open_clip = require("open_clip", "open_clip_torch", "ClipZeroShotClassifier")
        if weights is None:
            raise ConfigError(
                "ClipZeroShotClassifier needs weights=PATH, a local open_clip/CLIP weights file (nothing is downloaded)"
            )
        weights = os.fspath(weights)
        if not os.path.isfile(weights):  # a tag such as 'openai' would make open_clip download
            raise FileNotFoundError(f"{weights}: no such weights file (only local files are used)")
        model = open_clip.create_model(model_name, pretrained=weights, device="cpu")
        tokenizer = open_clip.get_tokenizer(model_name)
        if preprocess is None:
            size = getattr(getattr(model, "visual", None), "image_size", 224)
            size = tuple(size) if isinstance(size, (list, tuple)) else int(size)
            cfg = getattr(getattr(model, "visual", None), "preprocess_cfg", None) or {}
            preprocess = clip_preprocess(size, cfg.get("mean", OPENAI_CLIP_MEAN), cfg.get("std", OPENAI_CLIP_STD))
        return model, tokenizer, preprocess

    def logit_scale(self):
        s = self.encoder.logit_scale
        s = s if torch.is_tensor(s) else torch.tensor(float(s))
        return s.float().exp()

    def classify(self, x):
        img = F.normalize(self.encoder.encode_image(x).float(), dim=-1)  # [N, D]
        text = self.text_features.to(img.device)
        sims = torch.einsum("nd,apd->nap", img, text)  # [N, A, 2] cosine similarities
        return self.logit_scale().to(img.device) * (sims[..., 0] - sims[..., 1])
