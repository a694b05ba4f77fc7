"""Attribute Linearity Score (HSR paper, ECCV 2022): how linearly classifier logits follow a latent path.

For a pair (w0, w1), frames w_t = w0 + t (w1 - w0) at t = k/N, k = 0..N, rendered with
constant noise and scored by a classifier (logits a_t, one per attribute):

protocol='paper' (the paper's formula):
    Delta_tj = (a_tj - a_0j - t (a_1j - a_0j))^2
    ALS_j = (1/N) sum_{k=1..N} Delta_{k/N, j}, averaged over pairs; 'mean' averages attributes.
    Curve (ALS vs t): the mean of Delta_tj over pairs, per attribute and averaged over attributes.
protocol='hsr' (the HSR authors' evaluation code):
    logits are standardised per attribute by the mean and std over all frames of all pairs;
    delta_tj = (1-t) a_0j + t a_1j - a_tj (standardised); for each t the mean of |delta_tj|
    over pairs; ALS_j = sum over frames of that mean squared; 'mean' averages attributes.
    Curve (what the authors plot against t, the paper's figure 8): the mean of |delta_tj| over
    pairs, per attribute and averaged over attributes (not squared; ALS_j is the sum of the
    squares of the per-attribute curve).

Both curves are 0 at t = 0 and t = 1 by construction. Confidence intervals (`als_bootstrap_ci`)
resample pairs and recompute the protocol's statistic, standardisation included.

Units. An attribute's ALS is in its score's unit squared: logit^2 for a logit, or the square of a
bounded score's unit (e.g. the toyfaces classifier's regressed attributes, in [-1, 1]). Classifiers
say which (`score_units`); the result keeps them in `.attrs['units']` and the ALS's own unit in
`.attrs['als_units']`. Logits span far wider ranges than bounded scores, so the plain mean over
attributes is dominated by the logit-scale ones. `standardize=True` divides each attribute's scores
by their standard deviation over all frames of all pairs first (protocol 'paper'; 'hsr' already
does so): every ALS is then in sd^2 (squared standard deviations of that attribute's scores), and
the mean weighs the attributes alike.
"""

import numpy as np
import torch

from ..errors import ConfigError

PROTOCOLS = ("paper", "hsr")
LOGIT = "logit"
BOUNDED = "bounded"  # a regressed score in a fixed range, e.g. the toyfaces classifier's values in [-1, 1]
STD = "sd"  # standardised: standard deviations of the attribute's scores over all frames
CURVE_LABELS = {  # y axis of the ALS-vs-t curve, per protocol
    "paper": r"mean $\Delta_t = (a_t - (1-t)\,a_0 - t\,a_1)^2$",
    "hsr": r"mean $|\delta_t|$ (standardised logits)",
}


@torch.no_grad()
def path_logits(G, classifier, w0, w1, steps=10, batch_size=16, noise_mode="const", mapping=None):
    """Logits [P, steps+1, A] along the paths w0 -> w1 (w: [P, w_dim] or [P, num_ws, w_dim]).

    mapping=None: straight lines in W / W+. mapping='slerp': w0, w1 are z's; the path is the
    spherical interpolation between them (norms interpolated linearly), mapped to W frame by frame.
    """
    if w0.shape != w1.shape or w0.ndim not in (2, 3):
        raise ConfigError(
            f"w0 and w1 must both be [P, w_dim] or [P, num_ws, w_dim]; got {tuple(w0.shape)} and {tuple(w1.shape)}"
        )
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    t = torch.linspace(0, 1, steps + 1, device=w0.device, dtype=w0.dtype)
    if mapping == "slerp":
        from ..edits.mixing import slerp

        zs = slerp(w0, w1, t).transpose(0, 1).flatten(0, 1)  # [P*T, z_dim]
        flat = G.mapping(zs, torch.zeros([len(zs), G.c_dim], device=zs.device))
    elif mapping is None:
        frames = torch.lerp(w0[:, None], w1[:, None], t.reshape(1, -1, *([1] * (w0.ndim - 1))))  # [P, T, ...]
        flat = frames.flatten(0, 1)
    else:
        raise ConfigError(f"mapping must be None or 'slerp', got {mapping!r}")
    if flat.ndim == 2:
        flat = flat[:, None].repeat(1, G.num_ws, 1)
    from ..utils.render import render_batches

    out = [torch.as_tensor(classifier(x)).float().cpu() for x in render_batches(G, flat, batch_size, noise_mode)]
    logits = torch.cat(out).reshape(w0.shape[0], steps + 1, -1)
    return logits.numpy().astype(np.float64)


def latent_pairs(G, codes, indices, seed=0, space=None, direction=None, alpha=3.0):
    """Path ends (a, b), LatentCodes in the path's space, of the ALS pairs `indices` over given codes.

    Random pairs: pair i joins two distinct codes drawn by RandomState(seed + i) (as PPL's pairs of given
    codes), in `space` (None: the codes' own; forward conversions only: z -> w -> w+ -> s; Z paths slerp
    and are mapped frame by frame). With `direction` (a unit W vector): pair i is code i and its edit
    code + alpha * direction (edit linearity), in W or W+ (z codes are mapped first; s codes refused).
    """
    from ..latents.codes import check_forward

    source = codes.source or "the given codes"
    indices = [int(i) for i in indices]
    if direction is not None:
        if codes.space == "s" or space == "s":
            raise ConfigError(
                f"{source}: --boundary moves codes along a W direction, and s codes cannot become w codes "
                "(conversions go z -> w -> w+ -> s, never back); drop --boundary to measure paths between codes"
            )
        space = space or ("w" if codes.space == "z" else codes.space)
        if space == "z":
            raise ConfigError("edit-linearity pairs move along a W direction: use space 'w'")
        check_forward(codes.space, space, source)
        if indices and max(indices) >= len(codes):
            raise ConfigError(f"{source}: {max(indices) + 1} edit pairs need as many codes, the file has {len(codes)}")
        with torch.no_grad():
            a = codes[indices].to(space, G)
        n = torch.as_tensor(np.asarray(direction), dtype=a.data.dtype, device=a.data.device)
        return a, a.replace(data=a.data + alpha * n)
    space = space or codes.space
    check_forward(codes.space, space, source)
    if len(codes) < 2:
        raise ConfigError(f"{source}: ALS pairs of given codes need at least 2 codes, got {len(codes)}")
    ends = [np.random.RandomState(seed + i).choice(len(codes), 2, replace=False) for i in indices]
    with torch.no_grad():
        return tuple(codes[[int(e[k]) for e in ends]].to(space, G) for k in (0, 1))


def check_latent_pairs(G, codes, pairs, seed=0, space=None, direction=None, alpha=3.0):
    """Every refusal of `latent_pairs` for `pairs` pairs (space, too few codes), before any rendering."""
    latent_pairs(G, codes, [pairs - 1] if direction is not None else [0], seed, space, direction, alpha)


@torch.no_grad()
def codes_path_logits(G, classifier, a, b, steps=10, batch_size=16, noise_mode="const"):
    """Logits [P, steps+1, A] along the paths a -> b of LatentCodes (`latent_pairs`): slerp then mapping
    in Z, straight lines in W / W+ / S; codes with noise maps render with them, lerped along the path
    (`latentlab.edits.mixing.code_path`: an edit pair keeps its image's noise)."""
    from ..edits.mixing import code_path

    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    frames = code_path(a, b, torch.linspace(0, 1, steps + 1))
    if frames.space == "z":
        frames = frames.to("w", G)
    out = [torch.as_tensor(classifier(x)).float().cpu() for x in frames.render_batches(G, noise_mode, batch_size)]
    return torch.cat(out).reshape(len(a), steps + 1, -1).numpy().astype(np.float64)


def score_units(classifier, names=None):
    """The unit of each attribute's score: a list of strings, one per name (default: the classifier's names).

    A classifier declares them with a `score_units` attribute ({name: unit} or a list); the toyfaces
    classifier's `score_kinds` ('logit' for the binary attributes, regressed values in [-1, 1] for the
    rest) are read too. A view made by `select` takes its parent's units. Other latentlab classifiers
    give logits ('logit'); a plain callable's unit is unknown ('score').
    """
    names = list(names if names is not None else getattr(classifier, "names", None) or [])
    declared = getattr(classifier, "score_units", None)
    if declared is None and hasattr(classifier, "parent") and hasattr(classifier, "_indices"):  # SelectedAttributes
        parent = classifier.parent
        units = score_units(parent)
        return [units[int(i)] for i in classifier._indices.tolist()]
    if declared is None and isinstance(getattr(classifier, "score_kinds", None), dict):
        declared = {n: LOGIT if k == "logit" else BOUNDED for n, k in classifier.score_kinds.items()}
    if isinstance(declared, dict):
        return [str(declared.get(n, LOGIT)) for n in names]
    if declared is not None:
        declared = [str(u) for u in declared]
        if len(declared) != len(names):
            raise ConfigError(f"the classifier declares {len(declared)} score units for {len(names)} attributes")
        return declared
    from ..attributes.base import AttributeClassifier

    return [LOGIT if isinstance(classifier, AttributeClassifier) else "score"] * len(names)


def _check_logits(logits):
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 3 or logits.shape[1] < 2:
        raise ConfigError(f"logits must be [pairs, steps+1, attributes], got {logits.shape}")
    return logits


def _standardized(logits):
    """Logits [P, T, A] divided by each attribute's std over all frames of all pairs (a constant attribute: by 1)."""
    std = logits.reshape(-1, logits.shape[2]).std(axis=0)
    return logits / np.where(std > 0, std, 1.0)


def _als_arrays(logits, protocol, standardize=False):
    """(scores [A], per_pair [P, A], curves [T, A]) of logits [P, T, A] under `protocol`."""
    if standardize and protocol == "paper":
        logits = _standardized(logits)
    frames, a = logits.shape[1], logits.shape[2]
    t = np.linspace(0, 1, frames)[None, :, None]
    linear = (1 - t) * logits[:, :1] + t * logits[:, -1:]
    if protocol == "paper":
        delta = (logits - linear) ** 2  # [P, T, A]
        per_pair = delta[:, 1:].sum(axis=1) / (frames - 1)  # [P, A]; t = 0 adds nothing and is not counted
        scores = per_pair.mean(axis=0)
        curves = delta.mean(axis=0)  # [T, A]
    else:
        std = logits.reshape(-1, a).std(axis=0)
        std = np.where(std > 0, std, 1.0)
        delta = (linear - logits) / std  # the means cancel in the difference
        curves = np.abs(delta).mean(axis=0)  # [T, A]: mean |delta| over pairs, the authors' plotted curve
        scores = (curves**2).sum(axis=0)
        per_pair = (delta**2).sum(axis=1)  # a per-pair analogue; its mean over pairs is not the ALS
    return scores, per_pair, curves


def als_from_logits(logits, names=None, protocol="paper", standardize=False, units=None):
    """ALS per attribute (+ 'mean') from logits [P, N+1, A].

    standardize: divide each attribute's scores by their std over all frames first (see the module
    docstring; the 'hsr' protocol always does). units: each attribute's score unit (`score_units`;
    default 'logit').
    `.attrs` holds protocol, standardize, steps (N), pairs (P), per_pair [P, A], curves [N+1, A]
    (the protocol's ALS-vs-t curve per attribute; see the module docstring), curve [N+1] (curves
    averaged over attributes), curve_label (a y-axis label for it), units (score units), als_units
    (the ALS's unit per attribute, e.g. 'logit^2', 'sd^2') and the raw logits.
    """
    import pandas as pd

    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    logits = _check_logits(logits)
    p, frames, a = logits.shape
    names = list(names) if names is not None else [f"attr{j}" for j in range(a)]
    if len(names) != a:
        raise ConfigError(f"{len(names)} names for {a} attributes")
    units = [LOGIT] * a if units is None else [str(u) for u in units]
    if len(units) != a:
        raise ConfigError(f"{len(units)} score units for {a} attributes")
    standardize = bool(standardize)
    scores, per_pair, curves = _als_arrays(logits, protocol, standardize)
    scaled = standardize or protocol == "hsr"
    out = pd.Series(np.append(scores, scores.mean()), index=names + ["mean"], name=f"ALS ({protocol})")
    out.attrs.update(
        protocol=protocol,
        standardize=standardize,
        steps=frames - 1,
        pairs=p,
        per_pair=per_pair,
        curves=curves,
        curve=curves.mean(axis=1),
        curve_label=curve_label(protocol, standardize),
        units=units,
        als_units=[f"{STD if scaled else u}^2" for u in units],
        logits=logits,
    )
    return out


def curve_label(protocol, standardize=False):
    """y-axis label of the ALS-vs-t curve."""
    if protocol == "paper" and standardize:
        return CURVE_LABELS["paper"] + " (standardised scores)"
    return CURVE_LABELS[protocol]


def mixed_units_note(res):
    """None, or one line saying that the mean over attributes mixes units (and how to avoid it)."""
    units = list(dict.fromkeys(res.attrs.get("als_units") or []))
    if len(units) < 2:
        return None
    return (
        f"the mean over attributes mixes ALS units ({', '.join(units)}): logit-scale attributes dominate it; "
        "standardised scores (--standardize) put every attribute in sd^2"
    )


def als(
    G, classifier, w0, w1, steps=10, names=None, protocol="paper", batch_size=16, noise_mode="const", standardize=False
):
    """Attribute Linearity Score of `classifier` along the lines w0 -> w1 through generator G.

    classifier: any callable images -> logits [N, A] (a latentlab classifier supplies its names and
    its score units, `score_units`). standardize: each attribute's scores divided by their std over
    all frames (ALS in sd^2, comparable across attributes; see the module docstring).
    Returns a pandas Series indexed by attribute name (attr0, attr1, ... when unknown) plus 'mean';
    `.attrs` holds per-pair values, the ALS-vs-t curves (per attribute and averaged) and the raw
    logits (see `als_from_logits`). Also available as `latentlab.als`.

    Example::

        w = G.mapping(latentlab.z_from_seeds(range(200), G.z_dim), None)[:, 0]
        res = latentlab.als(G, classifier, w[0::2], w[1::2], steps=10, protocol="hsr")
        res["mean"], res.attrs["curve"]
    """
    logits = path_logits(G, classifier, w0, w1, steps, batch_size, noise_mode)
    if names is None:
        names = getattr(classifier, "names", None)
    return als_from_logits(logits, names, protocol, standardize, classifier_units(classifier, logits.shape[2]))


def classifier_units(classifier, count):
    """`score_units(classifier)` when the classifier names its `count` outputs, else None (ALS's default: logits)."""
    if not getattr(classifier, "names", None):
        return None
    units = score_units(classifier)
    return units if len(units) == count else None


def bootstrap_ci(per_pair, n_boot=1000, level=0.95, seed=0):
    """Percentile bootstrap over pairs of the mean of per-pair values [P, A] -> (low [A], high [A])."""
    per_pair = np.asarray(per_pair, dtype=np.float64)
    rng = np.random.RandomState(seed)
    idx = rng.randint(0, len(per_pair), size=(n_boot, len(per_pair)))
    means = per_pair[idx].mean(axis=1)  # [B, A]
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    return np.quantile(means, lo, axis=0), np.quantile(means, hi, axis=0)


def als_bootstrap_ci(res, n_boot=1000, level=0.95, seed=0):
    """Percentile bootstrap over pairs of an ALS result: (low [A], high [A]) per attribute.

    Each replicate resamples the pairs and recomputes the protocol's statistic from the logits
    (the standardisation too, for 'hsr' and standardised results), so the interval is about the
    reported ALS itself. For plain 'paper' this equals `bootstrap_ci(res.attrs["per_pair"])`.
    """
    logits = _check_logits(res.attrs["logits"])
    protocol, standardize = res.attrs["protocol"], bool(res.attrs.get("standardize", False))
    if protocol == "paper" and not standardize:
        return bootstrap_ci(res.attrs["per_pair"], n_boot, level, seed)
    rng = np.random.RandomState(seed)
    idx = rng.randint(0, len(logits), size=(n_boot, len(logits)))
    scores = np.stack([_als_arrays(logits[i], protocol, standardize)[0] for i in idx])  # [B, A]
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    return np.quantile(scores, lo, axis=0), np.quantile(scores, hi, axis=0)
