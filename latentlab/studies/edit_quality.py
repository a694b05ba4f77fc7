"""Does a generator's attribute edit work? InterFaceGAN's recipe end to end, measured.

The distribution measures of a training run (Frechet distance, spreads, correlations) say whether a
generator draws the right faces, not whether its latent space can be edited: a run can come closer to
the data on every one of them while its smile stops being a direction in W. This study runs what
`latentlab sample` + `latentlab boundary` + `latentlab edit` do, on one generator and one attribute:

1. score `n_samples` faces (seeds 0..n-1, psi 1, constant noise) with the classifier;
2. fit the attribute's boundary in W (linear SVM on the top and bottom `ratio` of its score, as
   `latentlab boundary --ratio`);
3. edit the faces of `edit_seeds` by w + alpha n (every layer) and score them again.

Returned: `raised` (share of the edited faces whose attribute score rises), `mean_change` (of that score),
`max_flip` (the largest share of faces whose present/absent decision, score > 0, flips, over the other
attributes) and `max_flip_attribute`, `moves` (each other attribute's mean |score change|) and `max_move` /
`max_move_attribute` (the largest of them over `moved`: scores on one bounded scale, e.g. the toyfaces
classifier's regressed ones; logits move by several units without meaning more), plus the boundary's
validation accuracy and `w_std_along` (the standard deviation of the samples' w along the boundary's normal:
alpha in those units is alpha / w_std_along).

With `direction=` (a boundary fitted before, e.g. the 20000-sample ones `latentlab boundary` writes), steps 1-2
are skipped and only the edit is measured; `val_accuracy` then comes from the direction's report when it
carries one, and `w_std_along` is None (no samples were drawn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional

import numpy as np
import torch

from ..errors import ConfigError
from ..latents.directions import DirectionLike, load_direction

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator

# The bar the embedded model's smile edit is held to (tests/test_embedded_model.py, 20000 samples there):
# measure -> (sense, bound); max_move over the regressed scores (age, yaw, skin, background there).
EDIT_BARS = {"raised": (">=", 0.85), "max_flip": ("<=", 0.15), "max_move": ("<", 0.15)}


@torch.no_grad()
def _scores(G: AnyGenerator, classifier: Any, ws: torch.Tensor, batch_size: int) -> np.ndarray:
    """The classifier's scores [N, A] of G's images of ws [N, num_ws, w_dim], constant noise."""
    from ..truncation.base import generator_device

    device = generator_device(G)
    parts = [
        classifier(G.synthesis(p.to(device), noise_mode="const")).detach().float().cpu() for p in ws.split(batch_size)
    ]
    return torch.cat(parts).numpy()


@torch.no_grad()
def _w_and_scores(G: AnyGenerator, classifier: Any, seeds, batch_size: int):
    """ws of the seeds (psi 1, w_avg untouched) and their scores."""
    from ..latents import z_from_seeds
    from ..truncation.base import generator_device, map_z

    device = generator_device(G)
    seeds = list(seeds)
    ws = torch.cat(
        [
            map_z(G, z_from_seeds(seeds[i : i + batch_size], G.z_dim).to(device)).cpu()
            for i in range(0, len(seeds), batch_size)
        ]
    )
    return ws, _scores(G, classifier, ws, batch_size)


def edit_quality(
    G: AnyGenerator,
    classifier: Any,
    attribute: str,
    n_samples: int = 5000,
    ratio: float = 0.05,
    alpha: float = 2.0,
    edit_seeds: Iterable[int] = range(48),
    batch_size: int = 64,
    seed: int = 0,
    moved: Optional[Iterable[str]] = None,
    direction: Optional[DirectionLike] = None,
) -> Dict[str, Any]:
    """Fit `attribute`'s W boundary on G's own samples and measure the edit w + alpha n (module docstring).

    classifier: images -> scores [N, A] with `names` (positive = present), e.g. the toyfaces classifier.
    moved: the attributes `max_move` is taken over (default: every other one).
    direction: a W direction to edit along instead of fitting one (n_samples, ratio and seed are then unused).
    Unconditional generators only (the samples draw no labels)."""
    from ..boundaries.svm import train_boundary

    names = list(classifier.names)
    if attribute not in names:
        raise ConfigError(f"attribute {attribute!r} is not one of the classifier's: {', '.join(names)}")
    if getattr(G, "c_dim", 0):
        raise ConfigError("edit_quality needs an unconditional generator")
    edit_seeds = [int(s) for s in edit_seeds]
    if not edit_seeds:
        raise ConfigError("edit_seeds is empty")
    a = names.index(attribute)
    moved = [m for m in names if m != attribute] if moved is None else list(moved)
    unknown = [m for m in moved if m not in names or m == attribute]
    if unknown:
        accepted = ", ".join(n for n in names if n != attribute)
        raise ConfigError(f"moved: {', '.join(map(str, unknown))}: not among the other attributes ({accepted})")
    if direction is None:
        ws, scores = _w_and_scores(G, classifier, range(int(n_samples)), batch_size)
        codes = ws[:, 0].double().numpy()
        boundary = train_boundary(codes, scores[:, a], ratio=ratio, seed=seed, meta={"attribute": attribute})
        vector, val_accuracy = boundary.normal, boundary.val_accuracy
        w_std_along: Optional[float] = float((codes @ boundary.normal).std())
    else:
        d = load_direction(direction, name=attribute).check_dim(G.w_dim, "W")
        if d.space not in (None, "w"):
            raise ConfigError(f"direction {d.name!r} is in {d.space} space; edit_quality edits in W")
        vector, w_std_along, n_samples = d.vector, None, 0
        val_accuracy = d.meta.get("val_accuracy")
    normal = torch.as_tensor(vector, dtype=torch.float32)

    before_ws, before = _w_and_scores(G, classifier, edit_seeds, batch_size)
    after = _scores(G, classifier, before_ws + alpha * normal, batch_size)
    change = after[:, a] - before[:, a]
    flips = ((after > 0) != (before > 0)).mean(axis=0)
    others = [i for i in range(len(names)) if i != a]
    worst = max(others, key=lambda i: flips[i]) if others else None
    moves = np.abs(after - before).mean(axis=0)
    moved_idx = [names.index(m) for m in moved]
    most = max(moved_idx, key=lambda i: moves[i]) if moved_idx else None
    return {
        "attribute": attribute,
        "alpha": float(alpha),
        "raised": float((change > 0).mean()),
        "mean_change": float(change.mean()),
        "max_flip": float(flips[worst]) if worst is not None else 0.0,
        "max_flip_attribute": names[worst] if worst is not None else None,
        "flips": {names[i]: float(flips[i]) for i in others},
        "max_move": float(moves[most]) if most is not None else 0.0,
        "max_move_attribute": names[most] if most is not None else None,
        "moves": {names[i]: float(moves[i]) for i in others},
        "val_accuracy": val_accuracy,
        "w_std_along": w_std_along,
        "n_samples": int(n_samples),
        "n_edited": len(edit_seeds),
    }
