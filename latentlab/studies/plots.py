"""Report figures (matplotlib, Agg): correlation heatmaps and linearity plots, saved as PNG and PDF."""

import os


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path_stem):
    """Write path_stem.png and path_stem.pdf; returns both paths."""
    os.makedirs(os.path.dirname(os.path.abspath(path_stem)), exist_ok=True)
    paths = [f"{path_stem}.{ext}" for ext in ("png", "pdf")]
    from ..utils.atomic import atomic_path

    for p in paths:
        with atomic_path(p, os.path.splitext(p)[1]) as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format=os.path.splitext(p)[1][1:])
    _plt().close(fig)
    return paths


def heatmap(matrix, title, path_stem, vmax=None, cmap="RdBu_r"):
    """A square DataFrame as a heatmap with attribute names on both axes."""
    plt = _plt()
    n = len(matrix)
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * n + 2), max(3.5, 0.35 * n + 1.5)))
    v = vmax if vmax is not None else max(1e-12, float(abs(matrix.to_numpy()).max()))
    im = ax.imshow(matrix.to_numpy(), cmap=cmap, vmin=-v, vmax=v)
    ax.set_xticks(range(n), labels=list(matrix.columns), rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels=list(matrix.index), fontsize=7)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return save_figure(fig, path_stem)


def linearity_plot(curves, fits, path_stem, ylabels=None, title=None):
    """One panel per edited attribute: mean score vs alpha with a std band and the fitted line, per space.

    ylabels: {score column: y axis label} (default 'score (<column>)'), to name the units plotted
    (logit, probability); title: an optional title over all panels.
    """
    plt = _plt()
    attrs = list(dict.fromkeys(curves["edited"]))
    fig, axes = plt.subplots(1, len(attrs), figsize=(3.6 * len(attrs), 3.2), squeeze=False)
    for ax, attr in zip(axes[0], attrs):
        for space, part in curves[curves["edited"] == attr].groupby("space", sort=False):
            fit = fits[(fits["edited"] == attr) & (fits["space"] == space)].iloc[0]
            x = part["alpha"].to_numpy()
            line = ax.plot(x, part["mean"], marker="o", ms=3, label=f"{space.upper()} (R$^2$={fit['r2']:.3f})")[0]
            ax.fill_between(
                x, part["mean"] - part["std"], part["mean"] + part["std"], alpha=0.2, color=line.get_color()
            )
            ax.plot(x, fit["slope"] * x + fit["intercept"], ls="--", color=line.get_color(), lw=1)
        ax.set_title(attr)
        ax.set_xlabel("alpha")
        col = fits[fits["edited"] == attr].iloc[0]["score"]
        ax.set_ylabel((ylabels or {}).get(col, f"score ({col})"))
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path_stem)
