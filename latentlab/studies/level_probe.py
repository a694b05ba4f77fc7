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
same images. Features are whatever the caller measured: `latentlab features` writes one array per
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
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n, n_test = _check_inputs(features, targets, test_fraction)
    kinds = dict(kinds) if kinds is not None else target_kinds(targets)
    unknown = {k for k in kinds.values()} - {"continuous", "binary"}
    if unknown or set(kinds) != set(targets):
        raise ConfigError(f"kinds must give 'continuous' or 'binary' for every target, got {kinds}")
    order = np.random.RandomState(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    rows = []
    for level, feats in features.items():
        X = np.asarray(feats, dtype=np.float64)
        for name, y in targets.items():
            y = np.asarray(y, dtype=np.float64)
            if kinds[name] == "continuous":
                model = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS))
                model.fit(X[train], y[train])
                score = float(model.score(X[test], y[test]))  # R^2
                chance, metric = 0.0, "r2"
            else:
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
                score = float((model.predict(X[test]) == labels[test]).mean())
                majority = int(labels[train].mean() >= 0.5)
                chance, metric = float((labels[test] == majority).mean()), "accuracy"
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
