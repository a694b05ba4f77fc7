"""Per-level 2-D embeddings of cluster codes, coloured by cluster (Katzir et al. 2022, figure 9).

    from latentlab.truncation.figures import cluster_embedding_figure
    cluster_embedding_figure(t, G, "out/tsne")            # out/tsne.png and out/tsne.pdf

What is embedded (`cluster_codes`):
- learned clusters: n codes per level sampled from the mixture, M_l(mu_k + sigma_k eps) with
  k = i mod K (every Gaussian equally often), coloured by the Gaussian that produced them;
- fitted clusters: the level features (PCA-reduced styles, or the mean w for the 'w'
  baseline) of n seeded codes of G, coloured by the cluster `assign` gives them.
The embedding is t-SNE (scikit-learn) or UMAP (`method='umap'`, needs umap-learn).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, List, Tuple, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..utils.atomic import atomic_path
from .base import check_int, check_is_fitted, generator_device, map_z
from .learned_clusters import LearnedClusterTruncation

if TYPE_CHECKING:
    from ..models.aliases import AnyGenerator
    from .cluster_base import BaseClusterTruncation

EMBEDDINGS = ("tsne", "umap")


def cluster_codes(
    t: BaseClusterTruncation, G: AnyGenerator, n: int = 1000, seed: int = 0
) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{level: (X [n, d] float64, ids [n] int64)} for a fitted ClusterTruncation or a LearnedClusterTruncation."""
    n = check_int("n", n, lo=5)
    check_is_fitted(t)
    out = {}
    with torch.no_grad():
        if isinstance(t, LearnedClusterTruncation):
            x_dim = next(iter(t.nets_.values()))["mu"].shape[1]
            eps = torch.randn(n, x_dim, generator=torch.Generator().manual_seed(seed))
            for level in t.layers_:
                ids = torch.arange(n) % t.k_for(level)
                out[level] = (t.sample_codes(level, ids, eps).double().numpy(), ids.numpy())
            return out
        z = torch.from_numpy(np.random.RandomState(seed).standard_normal((n, G.z_dim)).astype(np.float32))
        ws = map_z(G, z.to(generator_device(G)), None)
        feats = t._level_features(G, ws, list(t.layers_))
        for level, x in feats.items():
            out[level] = (x.double().cpu().numpy(), t.assign(level, x).cpu().numpy())
    return out


def embed(X: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """[n, d] -> [n, 2]: t-SNE (perplexity min(30, (n - 1) / 3), PCA init) or UMAP."""
    if method not in EMBEDDINGS:
        raise ConfigError(f"embedding must be one of {', '.join(EMBEDDINGS)}, got {method!r}")
    X = np.asarray(X, dtype=np.float64)
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ConfigError(
                "a UMAP embedding needs the umap-learn package (pip install umap-learn); t-SNE needs none"
            ) from None
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(X)
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise ImportError("t-SNE needs scikit-learn: pip install 'latentlab[analysis]'") from None
    perplexity = min(30.0, max(1.0, (len(X) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(X)


def cluster_colors(k: int) -> List[Tuple[float, float, float, float]]:
    """k distinct RGBA colours: tab10 up to 10 clusters, tab20 up to 20, evenly spaced hues beyond."""
    import matplotlib

    if k <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(k)]
    if k <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(k)]
    return [matplotlib.colormaps["hsv"](i / k) for i in range(k)]


def cluster_embedding_figure(
    t: BaseClusterTruncation,
    G: AnyGenerator,
    path_stem: Union[str, os.PathLike],
    n: int = 1000,
    seed: int = 0,
    method: str = "tsne",
) -> Dict[str, Any]:
    """Embed each level's codes (`cluster_codes`) in 2-D and scatter them, one panel per level, one colour per cluster.

    Writes path_stem.png and path_stem.pdf atomically. Returns dict(paths=[png, pdf],
    levels={level: dict(xy [n, 2], ids [n], colors [k RGBA])}).
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    codes = cluster_codes(t, G, n, seed)
    levels: Dict[str, Dict[str, Any]] = {}
    for level, (X, ids) in codes.items():
        levels[level] = dict(xy=embed(X, method, seed), ids=ids, colors=cluster_colors(t.k_for(level)))
    fig = Figure(figsize=(4.2 * len(levels), 4.0))
    axes = fig.subplots(1, len(levels), squeeze=False)[0]
    label = "t-SNE" if method == "tsne" else "UMAP"
    for ax, (level, d) in zip(axes, levels.items()):
        for j, color in enumerate(d["colors"]):
            sel = d["ids"] == j
            ax.scatter(d["xy"][sel, 0], d["xy"][sel, 1], s=10, color=color, linewidths=0, label=str(j))
        ax.set_title(f"{level} (k={len(d['colors'])})")
        ax.set_xticks([])
        ax.set_yticks([])
        if len(d["colors"]) <= 20:
            ax.legend(title="cluster", fontsize=7, title_fontsize=7, markerscale=1.5, loc="best")
    fig.suptitle(f"{label} of the codes per level: {t.name}", fontsize=9)
    fig.tight_layout()
    paths = []
    for ext in ("png", "pdf"):
        path = f"{path_stem}.{ext}"
        with atomic_path(path, f".{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=150)
        paths.append(path)
    return dict(paths=paths, levels=levels)
