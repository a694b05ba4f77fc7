"""InterFaceGAN boundaries: a linear SVM separating the most positive from the most negative codes.

Procedure (Shen et al., InterFaceGAN), with a seeded RNG in place of the global one:
sort by score (highest first); take the top and bottom `ratio` of the samples (or
`count` each; at most half of the samples each); shuffle each side and put `split`
of it into training, the rest into validation; fit a linear SVM (positives = 1);
the codes in between are labelled by the midpoint of the highest and lowest score
and give the "remaining" accuracy; the boundary is the SVM's unit normal.
"""

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from ..errors import ConfigError
from ..latents.directions import Direction, json_default, orthogonalize
from ..utils.atomic import write_text
from .labels import ImbalancedLabelsWarning, imbalance_message

SOLVERS = ("linear", "svc")


@dataclass
class Boundary:
    normal: np.ndarray  # unit vector, shape (d,), float64
    offset: float  # signed distance of the origin: n.x + offset = 0 is the hyperplane
    val_accuracy: Optional[float]
    remaining_accuracy: Optional[float]
    train_accuracy: float
    n_train: int
    n_val: int
    n_remaining: int
    solver: str
    ratio: Optional[float]
    split: float
    seed: int
    fit_seconds: float
    meta: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)  # e.g. labels of the chosen samples nearly all one class

    def direction(self, name=None, space=None):
        """The normal as a `Direction` (the type edits use); name defaults to the attribute in `meta`."""
        return Direction(
            self.normal, name=name or str(self.meta.get("attribute", "boundary")), space=space, meta=self.report()
        )

    def save(self, path):
        """InterFaceGAN's layout: float64 (1, d), unit norm (`Direction.save`)."""
        return self.direction().save(path)

    def report(self):
        d = asdict(self)
        d.pop("normal")
        d["dim"] = int(self.normal.shape[0])
        return d

    def save_report(self, path):
        write_text(path, json.dumps(self.report(), indent=1, default=json_default))


def _make_svm(solver, C, max_iter, seed):
    from sklearn import svm

    if solver == "linear":
        # liblinear scales to hundreds of thousands of 512-d codes
        return svm.LinearSVC(C=C, max_iter=max_iter, random_state=seed)
    if solver == "svc":
        return svm.SVC(kernel="linear", C=C)  # the exact kernel SVM InterFaceGAN used
    raise ConfigError(f"unknown solver {solver!r}; choose from {', '.join(SOLVERS)}")


def _split_indices(scores, n_codes, ratio, split, seed, count):
    """Row indices and labels of the train / validation / remaining sets (codes are never copied whole)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if n_codes != len(scores):
        raise ConfigError(f"{n_codes} codes but {len(scores)} scores")
    if not np.isfinite(scores).all():
        raise ConfigError("scores contain NaN or infinite values")
    if not 0 < split <= 1:
        raise ConfigError(f"split must be in (0, 1], got {split}")
    n = len(scores)
    order = np.argsort(-scores, kind="stable")  # highest first
    if count is None:
        if not 0 < ratio <= 1:
            raise ConfigError(f"ratio must be in (0, 1], got {ratio}")
        chosen = int(n * ratio)
    else:  # an explicit count is never silently cut down (the ratio, a fraction, cannot overshoot)
        chosen = int(count)
        if chosen < 1 or chosen > n // 2:
            raise ConfigError(
                f"count {count}: {n} samples give at most {n // 2} from each end (count takes that many from each)"
                if chosen >= 1
                else f"count must be >= 1, got {count}"
            )
    chosen = min(chosen, n // 2)
    train_n = int(chosen * split)
    if train_n < 1 and count is not None:
        raise ConfigError(f"too few samples: count {count} with split {split} leaves no training pair")
    if train_n < 1:
        raise ConfigError(
            f"too few samples: {n} samples with ratio {ratio} leave no training pair (need at least 2 / ratio)"
        )
    rng = np.random.RandomState(seed)
    pos_idx, neg_idx = rng.permutation(chosen), rng.permutation(chosen)
    pos, neg = order[:chosen], order[n - chosen :]
    train = (
        np.concatenate([pos[pos_idx[:train_n]], neg[neg_idx[:train_n]]]),
        np.concatenate([np.ones(train_n), np.zeros(train_n)]),
    )
    val = (
        np.concatenate([pos[pos_idx[train_n:]], neg[neg_idx[train_n:]]]),
        np.concatenate([np.ones(chosen - train_n), np.zeros(chosen - train_n)]),
    )
    midpoint = (scores[order[0]] + scores[order[-1]]) / 2
    rem_rows = order[chosen : n - chosen]
    remaining = (rem_rows, (scores[rem_rows] >= midpoint).astype(np.float64))
    return train, val, remaining


def _check_codes(codes):
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ConfigError(f"codes must be [N, d], got shape {codes.shape}")
    return codes


def split_samples(codes, scores, ratio=0.02, split=0.7, seed=0, count=None):
    """The train / validation / remaining sets (codes, labels) of InterFaceGAN's procedure."""
    codes = _check_codes(codes)
    sets = _split_indices(scores, len(codes), ratio, split, seed, count)
    return tuple((codes[rows].astype(np.float64), labels) for rows, labels in sets)


def _accuracy(coef, intercept, codes, rows, labels, chunk=65536):
    """Accuracy of the linear rule [coef.x + intercept > 0] over `rows` of `codes`, in chunks (flat memory).

    Same predictions as the fitted SVM's predict() (both solvers are linear), without
    a kernel evaluation per support vector.
    """
    if len(rows) == 0:
        return None
    hits = 0
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        pred = (codes[part].astype(np.float64) @ coef + intercept > 0).astype(np.float64)
        hits += int(np.sum(pred == labels[i : i + chunk]))
    return hits / len(rows)


def train_boundary(
    codes, scores, ratio=0.02, split=0.7, solver="linear", seed=0, count=None, C=1.0, max_iter=10000, meta=None
):
    """Fit an InterFaceGAN boundary.

    Args:
        codes: [N, d] latent codes (z, w, one w+ layer, or s).
        scores: [N] attribute scores (classifier logits).
        ratio / count: how many of the most positive and most negative samples to use.
        split: training fraction of the chosen samples (the rest validates).
        solver: 'linear' (LinearSVC, scales to 500k x 512) or 'svc' (kernel SVM, as InterFaceGAN).
    Returns a Boundary with `.normal` (unit, shape (d,)), accuracies and counts. When the chosen
    samples are nearly all one class by the classifier (minority of score > 0 vs <= 0 under 5 %:
    both ends hold the same class), an `ImbalancedLabelsWarning` is issued and recorded in
    `.warnings`; the boundary is still fitted.
    """
    codes = _check_codes(codes)
    (tr, ty), (vr, vy), (rr, ry) = _split_indices(scores, len(codes), ratio, split, seed, count)
    used = np.concatenate([tr, vr])
    name = str((meta or {}).get("attribute", "scores"))
    note = imbalance_message(
        np.asarray(scores, dtype=np.float64).reshape(-1)[used] > 0,
        name,
        f"the {len(used)} samples used ({len(used) // 2} from each end)",
        "both ends are one class, so the boundary separates degrees of it and its accuracy means little",
    )
    if note is not None:
        warnings.warn(note, ImbalancedLabelsWarning, stacklevel=2)
    clf = _make_svm(solver, C, max_iter, seed)
    t0 = time.perf_counter()
    clf.fit(codes[tr].astype(np.float64), ty)
    seconds = time.perf_counter() - t0
    coef = np.asarray(clf.coef_, dtype=np.float64).reshape(-1)
    norm = np.linalg.norm(coef)
    if norm == 0 or not np.isfinite(norm):
        raise ConfigError("the SVM found no separating direction (all weights zero); are the scores constant?")
    intercept = float(np.asarray(clf.intercept_).reshape(-1)[0])
    acc = lambda rows, labels: _accuracy(coef, intercept, codes, rows, labels)  # noqa: E731
    return Boundary(
        normal=coef / norm,
        offset=intercept / norm,
        val_accuracy=acc(vr, vy),
        remaining_accuracy=acc(rr, ry),
        train_accuracy=acc(tr, ty),
        n_train=len(tr),
        n_val=len(vr),
        n_remaining=len(rr),
        solver=solver,
        ratio=None if count is not None else ratio,
        split=split,
        seed=seed,
        fit_seconds=seconds,
        meta=dict(meta or {}),
        warnings=[note] if note else [],
    )


def train_boundaries(codes, scores, names, attrs=None, conditions=None, **kwargs):
    """Boundaries for several attributes from one table: {name: Boundary}.

    scores: [N, A] with column names `names`; attrs: which to train (all by default);
    conditions: {attr: [other attrs]} makes those normals orthogonal to the others'
    (InterFaceGAN's conditional boundaries); the condition boundaries are trained too.
    """
    scores = np.asarray(scores)
    names = list(names)
    if scores.ndim != 2 or scores.shape[1] != len(names):
        raise ConfigError(f"scores must be [N, {len(names)}] for {len(names)} names, got {scores.shape}")
    attrs = list(attrs or names)
    conditions = conditions or {}
    needed = list(dict.fromkeys(attrs + [c for cs in conditions.values() for c in cs]))
    for a in needed:
        if a not in names:
            raise ConfigError(f"unknown attribute {a!r}; the samples have {', '.join(names)}")
    plain = {a: train_boundary(codes, scores[:, names.index(a)], meta={"attribute": a}, **kwargs) for a in needed}
    out = {}
    for a in attrs:
        b = plain[a]
        if conditions.get(a):
            d = orthogonalize(b.normal, [plain[c].normal for c in conditions[a]])
            b = Boundary(**{**asdict(b), "normal": d.vector, "meta": dict(b.meta, conditions=list(conditions[a]))})
        out[a] = b
    return out


def write_boundary(boundary, path, space=None, extra=None):
    """Save the (1, d) .npy, a JSON report beside it, and register it in the folder's index.json.

    The layout of `Direction.save` (a boundary folder, as `latentlab.edits.registry` reads it);
    returns the report.
    """
    path = os.fspath(path)
    if not path.endswith(".npy"):
        raise ConfigError(f"{path}: a boundary file must end in .npy")
    report = dict(boundary.report(), space=space, **(extra or {}))
    name = os.path.basename(path)[:-4]
    boundary.direction(name=name, space=space).save(
        path,
        report=report,
        index={"val_accuracy": boundary.val_accuracy, "remaining_accuracy": boundary.remaining_accuracy},
    )
    return report
