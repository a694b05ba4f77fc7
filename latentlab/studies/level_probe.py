"""Level-wise linear probing of hierarchical features (GH-Feat's level-wise analysis).

GH-Feat (Xu et al., CVPR 2021) reads an encoder's per-layer style codes as features and shows that
they are hierarchical: codes of the coarse layers carry layout and pose, those of the fine layers
colour and texture. This study measures that on labelled images: for each level group (e.g. coarse,
middle, fine) and each target, a linear model is fitted on one part of the images and scored on the
rest.

- Continuous targets: ridge regression on standardised features, the penalty chosen by
  leave-one-out cross-validation on the training part (`RidgeCV`); score = R^2 on the held-out part.
  Chance is 0 (predicting the training mean scores about 0).
- Binary targets (two distinct values): L2 logistic regression on standardised features, C chosen by
  5-fold cross-validation on the training part; score = accuracy on the held-out part; chance = the
  held-out share of the training part's majority class.

The split is one seeded permutation shared by every level and target, so levels are compared on the
same images.

`probe_curve` repeats the probes with only n labelled training images, for several n (random subsets of
the training part, the held-out part fixed): a label-efficiency curve per level. With many labels every
level of an in-domain encoder reaches the same ceiling (its codes are all functions of one latent, so
each holds the same information); how few labels a level needs says how directly it carries an
attribute, which is what features for downstream tasks with few labels depend on.

Features are whatever the caller measured: `latentlab features` writes one array per
level (`latentlab.inversion.encoder.level_features`), and any other per-level representation works.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from ..errors import ConfigError

RIDGE_ALPHAS = np.logspace(-3, 4, 15)  # searched by leave-one-out on the training part
LOGISTIC_CS = np.logspace(-3, 2, 6)  # searched by 5-fold cross-validation on the training part


def target_kinds(targets: Mapping[str, np.ndarray]) -> Dict[str, str]:
    """'binary' for targets with exactly two distinct values, 'continuous' otherwise."""
    kinds = {}
    for name, y in targets.items():
        values = np.unique(np.asarray(y, dtype=np.float64))
        if len(values) < 2:
            raise ConfigError(f"target {name!r} is constant: nothing to probe")
        kinds[name] = "binary" if len(values) == 2 else "continuous"
    return kinds


def _check_inputs(features, targets, test_fraction):
    if not features:
        raise ConfigError("no feature levels given")
    if not targets:
        raise ConfigError("no targets given")
    sizes = {len(np.asarray(f)) for f in features.values()} | {len(np.asarray(y)) for y in targets.values()}
    if len(sizes) != 1:
        raise ConfigError(f"features and targets must have one row per image; got row counts {sorted(sizes)}")
    n = sizes.pop()
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = int(round(n * test_fraction))
    if n_test < 2 or n - n_test < 10:
        raise ConfigError(f"{n} images are too few to probe (need >= 10 for training and >= 2 held out)")
    for level, f in features.items():
        f = np.asarray(f)
        if f.ndim != 2 or not np.isfinite(f).all():
            raise ConfigError(f"features of level {level!r} must be a finite [N, D] array, got shape {f.shape}")
    for name, y in targets.items():
        if not np.isfinite(np.asarray(y, dtype=np.float64)).all():
            raise ConfigError(f"target {name!r} has non-finite values")
    return n, n_test


def _check_kinds(kinds, targets):
    kinds = dict(kinds) if kinds is not None else target_kinds(targets)
    unknown = {k for k in kinds.values()} - {"continuous", "binary"}
    if unknown or set(kinds) != set(targets):
        raise ConfigError(f"kinds must give 'continuous' or 'binary' for every target, got {kinds}")
    return kinds


def _fit_and_score(X, y, kind, train, test, name):
    """(score, chance, metric) of one linear probe fitted on rows `train` and scored on rows `test`."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "continuous":
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS))
        model.fit(X[train], y[train])
        return float(model.score(X[test], y[test])), 0.0, "r2"
    values = np.unique(y)
    if len(values) != 2:
        raise ConfigError(f"binary target {name!r} has {len(values)} distinct values")
    labels = (y == values[1]).astype(int)
    if len(np.unique(labels[train])) < 2:
        raise ConfigError(f"target {name!r} has one class only in the training part")
    folds = int(min(5, np.bincount(labels[train]).min()))
    search = GridSearchCV(LogisticRegression(max_iter=2000), {"C": list(LOGISTIC_CS)}, cv=max(2, folds))
    model = make_pipeline(StandardScaler(), search)
    model.fit(X[train], labels[train])
    majority = int(labels[train].mean() >= 0.5)
    return float((model.predict(X[test]) == labels[test]).mean()), float((labels[test] == majority).mean()), "accuracy"


def probe_levels(
    features: Mapping[str, np.ndarray],
    targets: Mapping[str, np.ndarray],
    kinds: Optional[Mapping[str, str]] = None,
    test_fraction: float = 0.3,
    seed: int = 0,
):
    """Held-out score of a linear probe for every (level, target): a DataFrame with columns level,
    target, kind ('continuous' | 'binary'), metric ('r2' | 'accuracy'), score, chance, dims, n_train,
    n_test, in the order of `features` then `targets`.

    features: level -> [N, D] array; targets: name -> [N] values; kinds: name -> 'continuous' or
    'binary' (default: `target_kinds`)."""
    import pandas as pd

    n, n_test = _check_inputs(features, targets, test_fraction)
    kinds = _check_kinds(kinds, targets)
    order = np.random.RandomState(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    rows = []
    for level, feats in features.items():
        X = np.asarray(feats, dtype=np.float64)
        for name, y in targets.items():
            score, chance, metric = _fit_and_score(X, np.asarray(y, dtype=np.float64), kinds[name], train, test, name)
            rows.append(
                dict(
                    level=level,
                    target=name,
                    kind=kinds[name],
                    metric=metric,
                    score=score,
                    chance=chance,
                    dims=X.shape[1],
                    n_train=len(train),
                    n_test=len(test),
                )
            )
    return pd.DataFrame(rows)


def probe_curve(
    features: Mapping[str, np.ndarray],
    targets: Mapping[str, np.ndarray],
    sizes: Sequence[int],
    repeats: int = 10,
    kinds: Optional[Mapping[str, str]] = None,
    test_fraction: float = 0.3,
    seed: int = 0,
):
    """Label-efficiency curves: the probes of `probe_levels` fitted on n training images only, for each n
    in `sizes`, `repeats` times (each a seeded random subset of the training part, shared by every level
    and target so that levels are compared on the same images), always scored on the same held-out part
    (the split of `probe_levels` with the same seed and test_fraction). A DataFrame with columns level,
    target, kind, metric, n_train, repeat, score, chance. A binary target whose subset holds fewer than two
    images of either class (too few to cross-validate C) scores NaN there. With n the whole training part,
    one repeat is made (all would be equal)."""
    import pandas as pd

    n, n_test = _check_inputs(features, targets, test_fraction)
    kinds = _check_kinds(kinds, targets)
    pool = n - n_test
    sizes = sorted({int(k) for k in sizes})
    if not sizes or sizes[0] < 10 or sizes[-1] > pool:
        raise ConfigError(f"training sizes must lie in [10, {pool}] (the training part of {n} images), got {sizes}")
    if int(repeats) < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    order = np.random.RandomState(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    X = {level: np.asarray(f, dtype=np.float64) for level, f in features.items()}
    Y = {name: np.asarray(y, dtype=np.float64) for name, y in targets.items()}
    rows = []
    for size in sizes:
        for r in range(1 if size == pool else int(repeats)):
            subset = np.random.RandomState([seed, size, r]).choice(train, size, replace=False)
            too_few = set()  # binary targets whose subset cannot cross-validate C (2 folds of each class)
            for name, y in Y.items():
                counts = np.unique(y[subset], return_counts=True)[1]
                if kinds[name] == "binary" and (len(counts) < 2 or counts.min() < 2):
                    too_few.add(name)
            for level, feats in X.items():
                for name, y in Y.items():
                    if name in too_few:
                        score, chance, metric = float("nan"), float("nan"), "accuracy"
                    else:
                        score, chance, metric = _fit_and_score(feats, y, kinds[name], subset, test, name)
                    rows.append(dict(level=level, target=name, kind=kinds[name], metric=metric, n_train=size,
                                     repeat=r, score=score, chance=chance))  # fmt: skip
    return pd.DataFrame(rows)


def curve_summary(curve):
    """Per (target, n_train, level): mean score over the repeats, its standard error, the repeats counted,
    and the chance level; targets, sizes and levels in their order of appearance."""
    import pandas as pd

    rows = []
    for (target, size, level), g in curve.groupby(["target", "n_train", "level"], sort=False):
        scores = g["score"].dropna().to_numpy()
        k = len(scores)
        rows.append(dict(target=target, n_train=size, level=level, metric=g["metric"].iloc[0],
                         mean=float(scores.mean()) if k else float("nan"),
                         sem=float(scores.std(ddof=1) / np.sqrt(k)) if k > 1 else float("nan"),
                         repeats=k, chance=float(g["chance"].mean())))  # fmt: skip
    return pd.DataFrame(rows)


def curve_best(curve):
    """Per (target, n_train): the level with the best mean score and how far it leads the runner-up, as the
    mean paired difference over the repeats (the same images for both) and that difference over its standard
    error (NaN with one repeat); ties go to the level listed first."""
    import pandas as pd

    levels = list(dict.fromkeys(curve["level"]))
    rows = []
    for (target, size), g in curve.groupby(["target", "n_train"], sort=False):
        wide = g.pivot(index="repeat", columns="level", values="score")[levels].dropna()
        means = wide.mean()
        ranked = sorted(levels, key=lambda lv: (-means[lv], levels.index(lv)))
        best, second = ranked[0], ranked[1] if len(ranked) > 1 else None
        diff = (wide[best] - wide[second]).to_numpy() if second else np.zeros(len(wide))
        sd = diff.std(ddof=1) if len(diff) > 1 else float("nan")
        z = float(diff.mean() / (sd / np.sqrt(len(diff)))) if len(diff) > 1 and sd > 0 else float("nan")
        rows.append(dict(target=target, n_train=size, best=best, runner_up=second, lead=float(diff.mean()),
                         lead_over_se=z, repeats=len(wide)))  # fmt: skip
    return pd.DataFrame(rows)


def plot_probe_curve(curve, path_stem: str, title: Optional[str] = None) -> Sequence[str]:
    """One panel per target: mean held-out score against the number of training labels (log axis), one line
    per level with standard-error bars, chance dotted for binary targets; writes PNG and PDF."""
    from .plots import _plt, save_figure

    plt = _plt()
    summary = curve_summary(curve)
    targets = list(dict.fromkeys(summary["target"]))
    levels = list(dict.fromkeys(summary["level"]))
    cols = min(4, len(targets))
    rows = (len(targets) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, target in zip(axes.flat, targets):
        part = summary[summary["target"] == target]
        for level in levels:
            line = part[part["level"] == level]
            ax.errorbar(line["n_train"], line["mean"], yerr=line["sem"].fillna(0), marker="o", ms=3, capsize=2,
                        label=level)  # fmt: skip
        if part["metric"].iloc[0] == "accuracy":
            ax.plot(part["n_train"].unique(), part.groupby("n_train", sort=False)["chance"].mean(), "k:", lw=1)
        ax.set_xscale("log")
        ax.minorticks_off()
        sizes = sorted(part["n_train"].unique())
        ax.set_xticks(sizes, labels=[str(k) for k in sizes])
        ax.set_title(target, fontsize=9)
        ax.set_xlabel("training labels", fontsize=8)
        ax.set_ylabel("held-out R$^2$" if part["metric"].iloc[0] == "r2" else "held-out accuracy", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(targets) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title or "Linear probes per level against the number of training labels", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path_stem)


def write_probe_curve_report(curve, out_dir: str, title: Optional[str] = None, settings: Optional[dict] = None):
    """curve.csv (every fit), curve_summary.csv/.md, curve_best.csv/.md, probe_curve.png/.pdf and
    curve_summary.json; returns the curve_best table."""
    import json
    import os

    from ..utils.atomic import write_text
    from .reports import write_csv, write_table

    os.makedirs(out_dir, exist_ok=True)
    write_csv(curve.set_index("level"), os.path.join(out_dir, "curve.csv"))
    write_table(curve_summary(curve).set_index("target"), os.path.join(out_dir, "curve_summary"))
    best = curve_best(curve)
    write_table(best.set_index("target"), os.path.join(out_dir, "curve_best"))
    plot_probe_curve(curve, os.path.join(out_dir, "probe_curve"), title)
    summary = dict(settings or {}, sizes=sorted(int(k) for k in curve["n_train"].unique()),
                   best={f"{r.target}@{r.n_train}": r.best for r in best.itertuples()})  # fmt: skip
    write_text(os.path.join(out_dir, "curve_summary.json"), json.dumps(summary, indent=2) + "\n")
    return best


def score_matrix(table):
    """targets x levels DataFrame of the probe scores (levels in their order of appearance)."""
    levels = list(dict.fromkeys(table["level"]))
    targets = list(dict.fromkeys(table["target"]))
    return table.pivot(index="target", columns="level", values="score").loc[targets, levels]


def plot_level_probe(table, path_stem: str, title: Optional[str] = None) -> Sequence[str]:
    """Grouped bars, one group per target and one bar per level, in two panels (R^2 of continuous
    targets, accuracy of binary ones, with the chance level marked); writes PNG and PDF."""
    from .plots import _plt, save_figure

    plt = _plt()
    panels = [(m, table[table["metric"] == m]) for m in ("r2", "accuracy")]
    panels = [(m, t) for m, t in panels if len(t)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
    for ax, (metric, part) in zip(axes[0], panels):
        mat = score_matrix(part)
        levels, targets = list(mat.columns), list(mat.index)
        width = 0.8 / len(levels)
        x = np.arange(len(targets))
        for i, level in enumerate(levels):
            ax.bar(x + (i - (len(levels) - 1) / 2) * width, mat[level].to_numpy(), width, label=level)
        if metric == "accuracy":
            chance = part.groupby("target", sort=False)["chance"].first().loc[targets].to_numpy()
            ax.scatter(x, chance, marker="_", s=400, color="k", zorder=3, label="chance")
            ax.set_ylim(min(0.4, float(np.nanmin(chance)) - 0.05), 1.0)
        else:
            ax.axhline(0, color="k", lw=0.8)
            ax.set_ylim(min(-0.1, float(np.nanmin(mat.to_numpy())) - 0.05), 1.0)
        ax.set_xticks(x, labels=targets, rotation=30, ha="right")
        ax.set_ylabel("held-out R$^2$" if metric == "r2" else "held-out accuracy")
        ax.legend(fontsize=7)
    fig.suptitle(title or "Linear probes per level")
    fig.tight_layout()
    return save_figure(fig, path_stem)


def write_level_probe_report(table, out_dir: str, title: Optional[str] = None, settings: Optional[dict] = None):
    """probe.csv/.md (every row), scores.csv/.md (targets x levels), level_probe.png/.pdf, summary.json."""
    import json
    import os

    from ..utils.atomic import write_text
    from .reports import write_table

    os.makedirs(out_dir, exist_ok=True)
    write_table(table.set_index("level"), os.path.join(out_dir, "probe"))
    write_table(score_matrix(table), os.path.join(out_dir, "scores"))
    plot_level_probe(table, os.path.join(out_dir, "level_probe"), title)
    best = {t: str(g.loc[g["score"].idxmax(), "level"]) for t, g in table.groupby("target", sort=False)}
    summary = dict(settings or {}, best_level=best, rows=len(table))
    write_text(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2) + "\n")
    return best
