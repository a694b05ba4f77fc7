"""PPL figures: overlaid path-length histograms of several models, interpolation strips, saved report folders."""

import os

import numpy as np

from ..errors import ConfigError
from ..utils.npy import load_npy
from ..utils.safe_json import AnyOf, Obj, Str, load_json
from .plots import _plt, save_figure

# A PPL report's ppl.json (`write_ppl_report`) as read back: only the label is used (other fields are free).
PPL_META_SCHEMA = Obj({"label": AnyOf(None, Str(1000))})


def kept_band(distances):
    """The values inside the metric's [1st, 99th] percentile band (what the PPL averages)."""
    from .ppl import kept_mask

    d = np.asarray(distances, dtype=np.float64)
    return d[kept_mask(d)]


def ppl_histograms(results, path_stem, bins=50, title="Perceptual path length", log=False):
    """One figure with the path-length histograms of several models overlaid.

    results: {label: PPLResult or array of per-pair path lengths}; each histogram shows the
    values the PPL averages (1st-99th percentile band), on shared bins, with its mean dashed.
    """
    if not results:
        raise ConfigError("no PPL results to plot")
    kept = {name: (r.distances[r.kept] if hasattr(r, "kept") else kept_band(r)) for name, r in results.items()}
    everything = np.concatenate(list(kept.values()))
    edges = np.histogram_bin_edges(np.log10(np.maximum(everything, 1e-12)) if log else everything, bins=bins)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, d in kept.items():
        x = np.log10(np.maximum(d, 1e-12)) if log else d
        line = ax.hist(x, bins=edges, histtype="step", lw=1.5, density=True, label=f"{name} (PPL {d.mean():.1f})")[2][0]
        ax.axvline(np.log10(d.mean()) if log else d.mean(), color=line.get_edgecolor(), ls="--", lw=1)
    ax.set_xlabel("log10 path length" if log else "path length")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return save_figure(fig, path_stem)


def read_ppl_report(folder):
    """(label, distances) of a report folder written by `write_ppl_report` (label: its model or folder name)."""
    path = os.path.join(folder, "distances.npy")
    if not os.path.isfile(path):
        raise ConfigError(
            f"{folder}: not a PPL report folder (no distances.npy; write one with `latentlab ppl --out DIR`)"
        )
    distances = load_npy(path, what="array of path lengths")  # header checked before the data is read
    if distances.ndim != 1 or len(distances) < 2 or not np.issubdtype(distances.dtype, np.floating):
        raise ConfigError(
            f"{path}: expected a 1-D float array of path lengths, got {distances.dtype} {distances.shape}"
        )
    label = os.path.basename(os.path.normpath(folder))
    meta_path = os.path.join(folder, "ppl.json")
    if os.path.isfile(meta_path):  # without one, the folder's name; a broken one is refused in one line
        label = load_json(meta_path, PPL_META_SCHEMA).get("label") or label
    return str(label), distances


def strip_grid(strips, row_labels=None):
    """uint8 [k, frames, H, W, C] -> one labelled image: a row per pair (`row_labels`), columns t = 0 .. 1."""
    from ..utils.images import labelled_grid

    k, frames = strips.shape[:2]
    cols = [f"t={t:.2f}" for t in np.linspace(0, 1, frames)]
    return labelled_grid(
        strips.reshape(k * frames, *strips.shape[2:]), cols=frames, row_labels=row_labels, col_labels=cols
    )


def pair_grid(pairs, row_labels=None):
    """uint8 [k, 2, H, W, C] (each pair's two images, t and t + epsilon) -> one labelled image, a row per pair."""
    from ..utils.images import labelled_grid

    return labelled_grid(
        pairs.reshape(-1, *pairs.shape[2:]), cols=2, row_labels=row_labels, col_labels=["t", "t + epsilon"]
    )


def pair_labels(result, indices):
    """Row labels of pairs: their index in the run and their path length."""
    return [f"pair {int(i)}: {float(result.distances[i]):.4g}" for i in indices]
