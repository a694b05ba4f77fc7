"""The interface every attribute classifier shares: named logits for generator images."""

import torch
from torch import nn

from ..errors import ConfigError
from .celeba import resolve_name
from .preprocess import Preprocess

__all__ = ["AttributeClassifier", "NamedAttributes", "SelectedAttributes", "check_names"]


def check_names(names):
    names = list(names)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"attribute names must be a non-empty list of non-empty strings, got {names!r}")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"attribute names must be unique; repeated: {', '.join(dup)}")
    return names


class NamedAttributes:
    """`names` plus name lookup: exact names, other spellings ('wavy-hair') and the CelebA aliases."""

    names: list

    def index(self, name):
        """Position of `name`'s logit. ValueError listing the names when unknown.

        Inverted aliases ('age' is the opposite of Young) have no index of their own:
        use `select([name])`, which negates the logit.
        """
        i, sign = resolve_name(name, self.names)
        if sign < 0:
            raise ConfigError(
                f"{name!r} is the opposite of {self.names[i]!r}: use index({self.names[i]!r}) "
                f"and negate, or select([{name!r}])"
            )
        return i

    def _resolve_all(self, names):
        if isinstance(names, str):
            names = [names]
        names = check_names(names)
        return names, [resolve_name(n, self.names) for n in names]


class AttributeClassifier(NamedAttributes, nn.Module):
    """images [N, C, H, W] in the generator's range (about [-1, 1]) -> logits [N, A] float32.

    Subclasses implement `classify(x)` on already preprocessed images; `forward`
    applies `self.preprocess` first and checks the output. Positive logit = attribute
    present (for inverted aliases selected with `select`, the alias's meaning).
    """

    def __init__(self, names, preprocess=None):
        super().__init__()
        self.names = check_names(names)
        if preprocess is None:
            preprocess = Preprocess()
        if not isinstance(preprocess, Preprocess):
            raise ConfigError(f"preprocess must be a Preprocess, got {type(preprocess).__name__}")
        self.preprocess = preprocess

    def classify(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, images):
        logits = self.classify(self.preprocess(images))
        if not torch.is_tensor(logits) or logits.shape != (images.shape[0], len(self.names)):
            shape = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
            raise ConfigError(
                f"{type(self).__name__} returned {shape}, expected [{images.shape[0]}, {len(self.names)}]"
            )
        return logits.float()

    def select(self, names):
        """A view keeping only `names` (in that order); aliases allowed, inverted ones negate their logit."""
        names, resolved = self._resolve_all(names)
        return SelectedAttributes(self, names, [i for i, _ in resolved], [s for _, s in resolved])

    def extra_repr(self):
        shown = ", ".join(self.names[:6]) + (", ..." if len(self.names) > 6 else "")
        return f"{len(self.names)} attributes [{shown}]"


class SelectedAttributes(AttributeClassifier):
    """Some logits of another classifier, reordered and possibly negated; shares its weights."""

    def __init__(self, parent, names, indices, signs):
        super().__init__(names, parent.preprocess)
        self.parent = parent
        self.register_buffer("_indices", torch.tensor(indices, dtype=torch.long), persistent=False)
        self.register_buffer("_signs", torch.tensor(signs, dtype=torch.float32), persistent=False)

    @property
    def preprocess(self):
        return self.parent.preprocess

    @preprocess.setter
    def preprocess(self, value):  # set by AttributeClassifier.__init__; the parent's stays the truth
        pass

    def forward(self, images):
        logits = self.parent(images)
        return logits.index_select(1, self._indices.to(logits.device)) * self._signs.to(logits.device)
