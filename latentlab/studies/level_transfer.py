"""What each level of per-layer style codes controls: level transfer between pairs of images.

The level-wise linear probes (`level_probe`) ask what a level's codes *contain*; with a shared
backbone every level can contain nearly everything linearly (GH-Feat's alignment module even adds the
deepest features to every branch). This study asks what a level *controls* in the generator: for pairs
(a, b) of packed S codes (e.g. an encoder's codes of two images), render a with one level's layers
taken from b, score the three renders with an attribute classifier and measure, per attribute, the
share of the change from a to b that the swapped level carries:

    share(level, attribute) = sum_pairs (s_mix - s_a)(s_b - s_a) / sum_pairs (s_b - s_a)^2

(the least-squares slope of the mixed score's change on the full change): about 1 when the level alone
decides the attribute, about 0 when it has no say. The shares of all levels of an attribute need not
sum to 1 (the generator is not additive), but they rank the levels. This is the style-mixing analysis
of StyleGAN (coarse styles carry pose and shape, fine ones colour) applied to encoded real images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import torch

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator


@torch.no_grad()
def _scores(G: AnyGenerator, classifier: Any, styles: torch.Tensor, batch_size: int) -> np.ndarray:
    device = next(G.parameters()).device
    out = []
    for part in styles.split(batch_size):
        img = G.synthesis(styles=part.to(device), noise_mode="const")
        out.append(classifier.scores(img).detach().cpu().double().numpy())
    return np.concatenate(out)


def level_transfer(
    G: AnyGenerator,
    classifier: Any,
    codes_a: torch.Tensor,
    codes_b: torch.Tensor,
    level_slices: Mapping[str, slice],
    batch_size: int = 64,
):
    """DataFrame levels x classifier attributes of the share of the a -> b score change that swapping one
    level's codes carries (see the module docstring). codes_a, codes_b: packed S codes [P, D] of P pairs;
    level_slices: level -> slice of the packed vector (contiguous levels, e.g. `HierarchicalEncoder.level_slices`)."""
    import pandas as pd

    if codes_a.shape != codes_b.shape or codes_a.ndim != 2:
        raise ConfigError(
            f"codes_a and codes_b must be [P, D] of one shape, got {tuple(codes_a.shape)} and {tuple(codes_b.shape)}"
        )
    dim = sum(G.synthesis.style_dims.values())
    if codes_a.shape[1] != dim:
        raise ConfigError(f"packed S codes of this generator have {dim} entries, got {codes_a.shape[1]}")
    if len(codes_a) < 2:
        raise ConfigError("level transfer needs at least 2 pairs")
    sa = _scores(G, classifier, codes_a, batch_size)
    sb = _scores(G, classifier, codes_b, batch_size)
    change = sb - sa
    den = np.square(change).sum(0)
    rows = {}
    for level, sl in level_slices.items():
        mixed = codes_a.clone()
        mixed[:, sl] = codes_b[:, sl]
        sm = _scores(G, classifier, mixed, batch_size)
        with np.errstate(invalid="ignore", divide="ignore"):
            rows[level] = np.where(den > 0, ((sm - sa) * change).sum(0) / den, np.nan)
    table = pd.DataFrame(rows, index=list(classifier.names)).T
    table.index.name = "level"
    return table


def generator_level_transfer(
    G: AnyGenerator,
    classifier: Any,
    level_slices: Mapping[str, slice],
    pairs: int = 500,
    seed: int = 0,
    batch_size: int = 64,
):
    """`level_transfer` on the generator's own samples: pairs of packed S codes of mapped z (drawn from `seed`,
    psi 1). What each level controls in the generator itself, with no encoder in between: the baseline an
    encoder's transfer table compares with. level_slices as for `level_transfer` (GH-Feat's levels:
    `inversion.encoder.level_slices(style_levels(G), G.synthesis.style_dims)`)."""
    from ..truncation.base import map_z

    if pairs < 2:
        raise ConfigError("level transfer needs at least 2 pairs")
    if G.c_dim:
        raise ConfigError("level transfer on a generator's own samples takes an unconditional generator")
    device = next(G.parameters()).device
    z = torch.randn([2 * pairs, G.z_dim], generator=torch.Generator().manual_seed(seed)).to(device)
    with torch.no_grad():
        ws = map_z(G, z)
        codes = G.synthesis.pack_styles(G.synthesis.compute_styles(ws)).cpu()
    return level_transfer(G, classifier, codes[:pairs], codes[pairs:], level_slices, batch_size=batch_size)


def plot_level_transfer(table, path_stem: str, title: str = "What each level controls") -> list:
    """Heatmap levels x attributes of the transfer shares (PNG and PDF)."""
    from .plots import _plt, save_figure

    plt = _plt()
    fig, ax = plt.subplots(figsize=(0.7 * table.shape[1] + 2, 0.5 * table.shape[0] + 1.6))
    im = ax.imshow(table.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(table.shape[1]), labels=list(table.columns), rotation=40, ha="right")
    ax.set_yticks(range(table.shape[0]), labels=list(table.index))
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            v = float(table.iloc[i, j])
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k", fontsize=7)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return save_figure(fig, path_stem)
