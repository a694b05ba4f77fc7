"""ALS figures and tables (HSR paper, figures 7-9): curves over t, per-pair paths, model comparisons.

Every function takes ALS results as returned by `latentlab.als` / `als_from_logits` (a pandas
Series per attribute plus 'mean', details in `.attrs`). The `*_frame` / `*_table` functions
return the data each figure shows, so that it can be saved as CSV and checked; the `plot_*`
functions write path_stem.png and path_stem.pdf.
"""

import numpy as np

from ..errors import ConfigError
from .als import CURVE_LABELS
from .plots import _plt, save_figure


def _attributes(res):
    return [str(a) for a in res.index[:-1]]


def curve_frame(res):
    """The ALS-vs-t curve of one result: columns t, mean (averaged over attributes), one per attribute."""
    import pandas as pd

    t = np.linspace(0, 1, res.attrs["steps"] + 1)
    frame = pd.DataFrame(res.attrs["curves"], columns=_attributes(res))
    frame.insert(0, "mean", res.attrs["curve"])
    frame.insert(0, "t", t)
    return frame


def plot_curve(res, path_stem, title="Attribute Linearity Score"):
    """The averaged curve (bold) over the per-attribute curves (thin; named in a legend when 10 or fewer)."""
    plt = _plt()
    frame = curve_frame(res)
    names = _attributes(res)
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for name in names:
        ax.plot(frame["t"], frame[name], lw=0.8, alpha=0.6, label=name if len(names) <= 10 else None)
    ax.plot(frame["t"], frame["mean"], marker="o", ms=3, lw=2, color="k", label="mean over attributes")
    ax.set_xlabel("t")
    ax.set_ylabel(CURVE_LABELS[res.attrs["protocol"]])
    ax.set_title(f"{title} ({res.attrs['protocol']})")
    ax.legend(fontsize=6)
    return save_figure(fig, path_stem)


def _attribute_index(res, attribute):
    names = _attributes(res)
    if attribute is None:  # the least linear attribute shows the most
        return int(np.argmax(res.values[:-1]))
    if isinstance(attribute, (int, np.integer)):
        if not 0 <= attribute < len(names):
            raise ConfigError(f"attribute index {attribute} out of range: there are {len(names)} attributes")
        return int(attribute)
    if attribute not in names:
        raise ConfigError(f"no attribute {attribute!r} in the ALS result; it has: {', '.join(names)}")
    return names.index(attribute)


def pair_paths(res, attribute=None, pairs=4):
    """Per-pair logits along t and the straight line from a_0 to a_1 (the paper's figures 7 and 9).

    attribute: a name or index (default: the attribute with the highest ALS); pairs: how many of the
    first pairs, or a list of pair indices. Returns a DataFrame with columns pair, t, logit
    (the classifier's raw logit at w_t) and line ((1 - t) a_0 + t a_1), and `.attrs['attribute']`.
    """
    import pandas as pd

    logits = np.asarray(res.attrs["logits"], dtype=np.float64)
    j = _attribute_index(res, attribute)
    if isinstance(pairs, (int, np.integer)):
        if pairs < 1:
            raise ConfigError(f"pairs must be >= 1, got {pairs}")
        pairs = list(range(min(int(pairs), len(logits))))
    pairs = [int(p) for p in pairs]
    bad = [p for p in pairs if not 0 <= p < len(logits)]
    if bad or not pairs:
        raise ConfigError(f"pair indices must lie in [0, {len(logits)}), got {bad or pairs}")
    t = np.linspace(0, 1, logits.shape[1])
    rows = []
    for p in pairs:
        a = logits[p, :, j]
        rows.append(pd.DataFrame({"pair": p, "t": t, "logit": a, "line": (1 - t) * a[0] + t * a[-1]}))
    frame = pd.concat(rows, ignore_index=True)
    frame.attrs["attribute"] = _attributes(res)[j]
    return frame


def plot_pair_paths(frame, path_stem):
    """One panel per pair: the logit along t (dots) and the straight line from a_0 to a_1 (dashed)."""
    plt = _plt()
    pairs = list(dict.fromkeys(frame["pair"]))
    cols = min(4, len(pairs))
    rows = -(-len(pairs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat[len(pairs) :]:
        ax.set_visible(False)
    for ax, p in zip(axes.flat, pairs):
        part = frame[frame["pair"] == p]
        ax.plot(part["t"], part["logit"], marker="o", ms=3, label="logit $a_t$")
        ax.plot(part["t"], part["line"], ls="--", color="k", lw=1, label="$(1-t)\\,a_0 + t\\,a_1$")
        ax.set_title(f"pair {p}", fontsize=9)
        ax.set_xlabel("t")
    axes[0, 0].set_ylabel(f"logit ({frame.attrs.get('attribute', '')})")
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, path_stem)


def _check_comparable(results):
    if not results:
        raise ConfigError("no ALS results to compare")
    protocols = {name: r.attrs["protocol"] for name, r in results.items()}
    if len(set(protocols.values())) > 1:
        raise ConfigError(
            f"ALS results use different protocols ({', '.join(f'{n}: {p}' for n, p in protocols.items())}); "
            "compare results of one protocol"
        )
    first, names = next(iter(results)), None
    for name, r in results.items():
        if names is None:
            names = _attributes(r)
        elif sorted(_attributes(r)) != sorted(names):
            raise ConfigError(
                f"{name!r} scores attributes {', '.join(_attributes(r))} but {first!r} scores "
                f"{', '.join(names)}; compare results over the same attributes"
            )
    return names


def compare_table(results):
    """Models as rows, attributes as columns plus Mean (the average over attributes), as in the paper's table."""
    import pandas as pd

    names = _check_comparable(results)
    table = pd.DataFrame(
        [[float(r[n]) for n in names] for r in results.values()],
        columns=names,
        index=pd.Index(list(results), name="model"),
    )
    table["Mean"] = table[names].mean(axis=1)
    return table


def compare_curves(results):
    """Long table of every model's curve: columns model, t, mean, one per attribute (models may differ in steps)."""
    import pandas as pd

    names = _check_comparable(results)
    frames = []
    for model, r in results.items():
        f = curve_frame(r)[["t", "mean"] + names]
        f.insert(0, "model", model)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def plot_compare_curve(results, path_stem, title="Attribute Linearity Score"):
    """ALS vs t, one line per model (averaged over attributes; the paper's figure 8)."""
    curves = compare_curves(results)
    protocol = next(iter(results.values())).attrs["protocol"]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for model, part in curves.groupby("model", sort=False):
        ax.plot(part["t"], part["mean"], marker="o", ms=3, label=str(model))
    ax.set_xlabel("t")
    ax.set_ylabel(CURVE_LABELS[protocol])
    ax.set_title(f"{title} ({protocol})")
    ax.legend(fontsize=7)
    return save_figure(fig, path_stem)


def plot_compare_attributes(results, path_stem):
    """One panel per attribute: its curve over t, one line per model."""
    curves = compare_curves(results)
    names = list(curves.columns[3:])
    protocol = next(iter(results.values())).attrs["protocol"]
    plt = _plt()
    cols = min(5, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        for model, part in curves.groupby("model", sort=False):
            ax.plot(part["t"], part[name], lw=1.2, label=str(model))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("t", fontsize=8)
    axes[0, 0].set_ylabel(CURVE_LABELS[protocol], fontsize=7)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, path_stem)
