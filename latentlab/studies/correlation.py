"""Attribute correlation study ("Exploring the latent space of StyleGAN-type models", Tronchon & Cadiou).

Edit a set of faces along each attribute's direction in Z and in W for a range of alphas,
score every image with a multi-attribute classifier, and compare:
  * per latent space, the attribute correlation matrix of the images edited in that space
    (the paper's figures 6a for Z and 6b for W) with that of a reference label table (e.g.
    CelebA's list_attr_celeba.txt), their difference and the difference cubed (figure 7: the
    cube brings out the large deviations); the Z - W difference; the matrix of Z and W rows
    pooled together only as an extra (`space_correlations`);
  * the linearity of each edited attribute's own score in alpha (mean, std, least-squares
    line and R^2), Z next to W.

Scores are the classifier's logits, or with scores='probabilities' their sigmoid, as the paper
plots them (`transform_scores`). The two give different correlations (the sigmoid is not
affine), so every table and figure says which one it shows.
"""

from dataclasses import dataclass

import numpy as np
import torch

from ..edits.linear import edit, parse_alphas
from ..edits.pipeline import start_codes
from ..errors import ConfigError

SCORE_TRANSFORMS = ("logits", "probabilities")
SPACES = ("z", "w")


@torch.no_grad()
def edit_scores(
    G,
    classifier,
    directions,
    seeds,
    alphas,
    truncation_psi=1.0,
    batch_size=16,
    noise_mode="const",
    device="cpu",
    progress=None,
):
    """Long table of classifier scores for every (space, edited attribute, alpha, seed).

    directions: {(space, attr): Direction-like}, space in {'z', 'w'}. seeds: seeds, or given codes (a
    LatentCodes, e.g. projected photos: z codes are edited in Z and W, w and w+ codes in W only, with their
    noise maps; the 'seed' column then holds the codes' names, `LatentCodes.names`, unless they have seeds).
    Returns a pandas DataFrame with columns space, edited, alpha, seed and one column per classifier attribute.
    """
    import pandas as pd

    from ..latents.codes import LatentCodes

    given = seeds if isinstance(seeds, LatentCodes) else None
    ids = list(seeds) if given is None else (given.seeds if given.seeds is not None else given.names())
    names = list(getattr(classifier, "names", None) or [])
    rows, alphas = [], parse_alphas(alphas)
    for (space, attr), direction in directions.items():
        edit_space = "w+" if given is not None and given.space == "w+" and space == "w" else space  # W moves W+
        codes = start_codes(G, seeds, edit_space, truncation_psi, None, device=device)
        for a in alphas:
            edited = edit(codes, direction, a, G)
            edited = edited.to("w+", G, truncation_psi=truncation_psi) if space == "z" else edited.to("w+", G)
            i = 0
            for x in edited.render_batches(G, noise_mode, batch_size, progress):
                logits = torch.as_tensor(classifier(x)).float().cpu()
                if not names:
                    names = [f"attr{j}" for j in range(logits.shape[1])]
                for k, row in enumerate(logits.numpy()):
                    rows.append([space, attr, a, ids[i + k], *row.tolist()])
                i += len(logits)
    return pd.DataFrame(rows, columns=["space", "edited", "alpha", "seed", *names])


def reachable_directions(directions, codes):
    """The directions {(space, attr): ...} that given codes can be edited along: z codes in Z and W, w and
    w+ codes in W only (conversions go forward: z -> w -> w+ -> s). ConfigError (naming the file) for s
    codes, or when none is left."""
    source = codes.source or "the given codes"
    if codes.space == "s":
        raise ConfigError(
            f"{source}: the correlation study edits in Z and W, and s codes cannot become z or w codes "
            "(conversions go z -> w -> w+ -> s, never back)"
        )
    keep = {k: d for k, d in directions.items() if codes.space == "z" or k[0] != "z"}
    if not keep:
        raise ConfigError(f"{source}: Z edits need z codes, these are {codes.space} codes; give W directions")
    return keep


def correlation_matrix(frame, attrs):
    """Pearson correlation between attribute columns (a DataFrame attrs x attrs)."""
    return frame[list(attrs)].astype(float).corr()


def compare_correlations(generated, reference):
    """{'generated', 'reference', 'difference', 'difference_cubed'} for two aligned correlation matrices."""
    reference = reference.loc[generated.index, generated.columns]
    diff = generated - reference
    return {"generated": generated, "reference": reference, "difference": diff, "difference_cubed": diff**3}


def linearity(frame, score_columns):
    """Per (space, edited attribute): mean/std of the attribute's own score per alpha, and the
    least-squares line through the mean curve with its R^2.

    score_columns: {edited attr: classifier column}. Returns (curves DataFrame, fits DataFrame).
    """
    import pandas as pd

    curves, fits = [], []
    for (space, attr), part in frame.groupby(["space", "edited"], sort=False):
        col = score_columns[attr]
        g = part.groupby("alpha")[col]
        stats = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=0)}).reset_index()
        stats.insert(0, "edited", attr)
        stats.insert(0, "space", space)
        curves.append(stats)
        x, y = stats["alpha"].to_numpy(float), stats["mean"].to_numpy(float)  # the plotted curve: mean score per alpha
        slope, intercept = np.polyfit(x, y, 1)
        resid = y - (slope * x + intercept)
        ss_tot = float(((y - y.mean()) ** 2).sum())
        r2 = 1 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
        fits.append(dict(space=space, edited=attr, score=col, slope=slope, intercept=intercept, r2=r2))
    return pd.concat(curves, ignore_index=True), pd.DataFrame(fits)


def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow warnings for large |x| (float64)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))  # in (0, 1]: no overflow, full precision at both tails
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def transform_scores(frame, names, scores="logits", score_kinds=None):
    """(frame with the classifier columns in `scores` units, list of the columns transformed).

    scores: 'logits' (the classifier's output, unchanged) or 'probabilities' (sigmoid of each
    logit). score_kinds: {column: kind} as toyfaces classifiers declare it; only 'logit'
    columns (all columns without it) become probabilities, regressed scores stay as they are.
    """
    if scores not in SCORE_TRANSFORMS:
        raise ConfigError(f"scores must be one of {', '.join(SCORE_TRANSFORMS)}, got {scores!r}")
    if scores == "logits":
        return frame, []
    kinds = score_kinds or {}
    cols = [n for n in names if kinds.get(n, "logit") == "logit"]
    out = frame.copy()
    out[cols] = sigmoid(out[cols].to_numpy())
    return out, cols


def score_unit(scores):
    """'logit' or 'probability': the word for one score, for titles and axis labels."""
    return {"logits": "logit", "probabilities": "probability"}[scores]


def space_correlations(frame, attrs, reference=None):
    """The study's correlation matrices, keyed by their report names (corr_<key>.csv).

    For each space s in the frame's 'space' column (z, w): 's_generated' (Pearson correlation of
    the rows edited in s) and, with `reference` (a DataFrame of labels), 's_difference' and
    's_difference_cubed' against 'reference'. With both spaces: 'z_minus_w'. Extra:
    'pooled_generated' (Z and W rows together) and its difference and cube.
    """
    spaces = [s for s in SPACES if (frame["space"] == s).any()]
    spaces += [s for s in dict.fromkeys(frame["space"]) if s not in spaces]
    ref = correlation_matrix(reference, attrs) if reference is not None else None
    mats = {"reference": ref} if ref is not None else {}
    gen = {s: correlation_matrix(frame[frame["space"] == s], attrs) for s in spaces}
    gen["pooled"] = correlation_matrix(frame, attrs)
    for key, m in gen.items():
        if ref is None:
            mats[f"{key}_generated"] = m
        else:
            mats.update({f"{key}_{k}": v for k, v in compare_correlations(m, ref).items() if k != "reference"})
        if key == "w" and "z" in gen:
            mats["z_minus_w"] = gen["z"] - gen["w"]
    return mats


def off_diagonal(matrix):
    """The upper-triangle entries (attribute pairs, diagonal excluded) of a square DataFrame."""
    m = np.asarray(matrix, dtype=np.float64)
    return m[np.triu_indices(len(m), k=1)]


def compare_spaces(matrices):
    """Mean and max |entry| over attribute pairs of each difference matrix, one row per comparison.

    Rows: 'z - reference', 'w - reference', 'pooled - reference' (where a reference was given)
    and 'z - w'; columns mean_abs, max_abs, pairs (NaN entries, from constant scores, are skipped).
    """
    import pandas as pd

    keys = [(f"{s} - reference", f"{s}_difference") for s in (*SPACES, "pooled")] + [("z - w", "z_minus_w")]
    rows = {}
    for label, key in keys:
        if key in matrices:
            v = np.abs(off_diagonal(matrices[key]))
            v = v[np.isfinite(v)]
            rows[label] = dict(
                mean_abs=float(v.mean()) if v.size else float("nan"),
                max_abs=float(v.max()) if v.size else float("nan"),
                pairs=int(v.size),
            )
    return pd.DataFrame.from_dict(rows, orient="index", columns=["mean_abs", "max_abs", "pairs"]).rename_axis(
        "comparison"
    )


def comparison_lines(comparison, scores):
    """Short text lines of `compare_spaces`' table, for the command line."""
    if comparison.empty:
        return []
    lines = [f"correlations of {scores}: mean |difference| over attribute pairs (max)"]
    for label, row in comparison.iterrows():
        lines.append(f"  {label:<18} {row['mean_abs']:.4f} ({row['max_abs']:.4f})")
    return lines


def parse_score_map(text):
    """'smile=Smiling,age=Young' -> {'smile': 'Smiling', 'age': 'Young'} ('' or None -> {})."""
    out = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--score-map: expected attr=ClassifierColumn, got {item.strip()!r}")
        out[key.strip()] = value.strip()
    return out


def score_columns(edited, names, score_map=None):
    """{edited attr: classifier column} whose score rises along the attr's direction.

    Names resolve as `resolve_name` does (exact, respelt, alias); an alias that is the opposite
    of a column (e.g. 'age' for Young) is refused, since the study plots the column itself: map
    it explicitly (e.g. age=Young) to plot that column falling.
    """
    from ..attributes.celeba import resolve_name

    names = list(names)
    columns = {}
    for a in edited:
        idx, sign = resolve_name((score_map or {}).get(a, a), names)
        if sign < 0:
            raise ConfigError(
                f"{a!r} is the opposite of {names[idx]!r}; map it explicitly with --score-map {a}={names[idx]}"
            )
        columns[a] = names[idx]
    return columns


def load_directions(folders, edited):
    """{(space, attr): Direction} from {space: boundary folder} for every edited attribute."""
    from ..edits import load_direction
    from ..edits.registry import attributes_in

    directions = {}
    for space, folder in folders.items():
        found = attributes_in(folder)
        for a in edited:
            if a not in found:
                raise ConfigError(f"no direction {a!r} in {folder}; it has: {', '.join(sorted(found)) or 'none'}")
            directions[(space, a)] = load_direction(found[a]["file"], name=a)
    return directions


# ---- the study's inputs, as `latentlab corr` and analyses/correlation_report.py resolve them ---------------------
EMBEDDED_ATTRIBUTES = ("smile", "age", "eyeglasses", "male")  # what the embedded model's study edits by default


class MissingInput(ConfigError):
    """A correlation study lacks an input that has no default (the command line reports it as a usage error)."""


@dataclass
class StudyInputs:
    """What a correlation study edits and compares: the edited attributes, their directions {(space, attr):
    Direction}, the classifier column map {attr: column}, the reference label table (a DataFrame or None) and
    whether the model is the embedded one (whose boundaries, attributes and labels are the defaults)."""

    edited: list
    directions: dict
    score_map: dict
    reference: object = None
    embedded: bool = False

    @property
    def classifier_attributes(self):
        """The classifier columns the study needs (for a default classifier that loads only some)."""
        return [self.score_map.get(a, a) for a in self.edited]

    def columns(self, names):
        """{edited attr: classifier column} among the classifier's `names` (`score_columns`)."""
        return score_columns(self.edited, names, self.score_map)


def study_inputs(model=None, attrs=None, z_boundaries=None, w_boundaries=None, score_map=None, reference=None):
    """Resolve the options of a correlation study, every file read and checked before any model is loaded.

    model: the model spec (None or the embedded model's name: its Z and W boundaries, the attributes
    EMBEDDED_ATTRIBUTES and its renderer's own labels are the defaults); attrs: comma-separated text or a
    list; z_boundaries / w_boundaries: folders of <attr>.npy directions; score_map: 'attr=Column,...' or a
    dict; reference: a CelebA-style label table (list_attr_celeba.txt). MissingInput when attributes or
    boundaries are missing and have no default; ValueError for a bad score map, direction or table.
    """
    from .. import defaults

    embedded = model is None or model == defaults.NAME
    if embedded and not (z_boundaries or w_boundaries):
        z_boundaries, w_boundaries = defaults.z_boundaries_dir(), defaults.w_boundaries_dir()
    if attrs is None:
        if not embedded:
            raise MissingInput("--attrs is required for models other than the embedded toyfaces model")
        attrs = list(EMBEDDED_ATTRIBUTES)
    edited = [a.strip() for a in (attrs.split(",") if isinstance(attrs, str) else attrs) if a.strip()]
    if not edited:
        raise MissingInput("--attrs names no attribute")
    folders = {s: f for s, f in (("z", z_boundaries), ("w", w_boundaries)) if f}
    if not folders:
        raise MissingInput("give --z-boundaries and/or --w-boundaries")
    directions = load_directions(folders, edited)
    mapping = dict(score_map) if isinstance(score_map, dict) else parse_score_map(score_map)
    if reference:
        from ..attributes.celeba import read_attr_table

        table = read_attr_table(reference)
    elif embedded:
        from ..attributes.toyfaces import reference_table

        table = reference_table()
    else:
        table = None
    return StudyInputs(edited, directions, mapping, table, embedded)
