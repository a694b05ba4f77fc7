"""Linear separability (StyleGAN paper, section 4.2), computed as the official metric does.

Per attribute: the classifier's probability of each class is softmax([logit, -logit]);
the most confident `keep` fraction of the samples is kept; a LinearSVC is fitted on
their codes and predicts on that same set; H(Y|X), the conditional entropy of the
classifier labels Y given the SVM side X, comes from the 2x2 confusion counts (in nats).
The score is exp(sum over attributes of H): 1 when every attribute is linearly
separable, 2^A for labels the codes say nothing about.
"""
from dataclasses import dataclass
from typing import Any

import numpy as np


def _entropy(p):
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def conditional_entropy(svm_side, labels):
    """H(Y | X) in nats from binary arrays X (svm_side) and Y (labels)."""
    joint = np.array([[np.mean((svm_side == x) & (labels == y)) for y in (0, 1)] for x in (0, 1)])
    return _entropy(joint.ravel()) - _entropy(joint.sum(axis=1))


@dataclass
class SeparabilityResult:
    score: float  # exp(sum of entropies)
    entropies: Any  # pandas.Series: per attribute, in nats
    kept: int

    def to_dict(self):
        return {"score": self.score, "kept": self.kept, "entropies": self.entropies.to_dict()}


def linear_separability(codes, logits, names=None, keep=0.5, max_iter=1000, seed=0):
    """codes [N, d]; logits [N, A] (one logit per attribute, positive = attribute present)."""
    import pandas as pd
    from sklearn.svm import LinearSVC

    codes = np.asarray(codes, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 1:
        logits = logits[:, None]
    if codes.ndim != 2 or len(codes) != len(logits):
        raise ValueError(f"codes must be [N, d] and logits [N, A]; got {codes.shape} and {logits.shape}")
    names = list(names) if names is not None else [f"attr{i}" for i in range(logits.shape[1])]
    if len(names) != logits.shape[1]:
        raise ValueError(f"{len(names)} names for {logits.shape[1]} attributes")
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    n_keep = max(2, int(len(codes) * keep))
    entropies = {}
    for a, name in enumerate(names):
        z = logits[:, a]
        p_pos = 1 / (1 + np.exp(-2 * z))  # softmax([z, -z])[0]
        confidence = np.maximum(p_pos, 1 - p_pos)
        idx = np.argsort(-confidence, kind="stable")[:n_keep]
        labels = (p_pos[idx] > 0.5).astype(int)
        if labels.min() == labels.max():
            side = labels  # one class only: any SVM predicts it perfectly
        else:
            svm = LinearSVC(max_iter=max_iter, random_state=seed)
            svm.fit(codes[idx], labels)
            side = svm.predict(codes[idx]).astype(int)
        entropies[name] = conditional_entropy(side, labels)
    ent = pd.Series(entropies, name="conditional_entropy_nats")
    return SeparabilityResult(score=float(np.exp(ent.sum())), entropies=ent, kept=n_keep)
