"""Study runs and their report folders: one implementation behind the CLI commands and analyses/ scripts.

Each `*_study` function computes; each `write_*_report` writes a folder with CSV and Markdown
tables, PNG/PDF figures and a short `summary.md`.
"""

import json
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..errors import ConfigError
from ..utils import safe_json as sj
from ..utils.atomic import atomic_path, write_text
from ..utils.npy import load_npy
from ..utils.validate import check_number


def markdown_table(df, floatfmt="{:.4f}"):
    """A DataFrame as a GitHub Markdown table (index included)."""
    cols = [df.index.name or ""] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        cells = [floatfmt.format(v) if isinstance(v, (float, np.floating)) else str(v) for v in row.tolist()]
        lines.append("| " + " | ".join([str(idx)] + cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(df, path, **kwargs):
    """DataFrame.to_csv, atomically."""
    with atomic_path(path, ".csv") as tmp:
        df.to_csv(tmp, **kwargs)


def write_table(df, stem):
    """stem.csv and stem.md (atomically)."""
    write_csv(df, stem + ".csv")
    write_text(stem + ".md", markdown_table(df))


# ---- ALS -------------------------------------------------------------------------------------
@torch.no_grad()
def als_pairs(G, pairs, seed=0, space="w", direction=None, alpha=3.0, device="cpu", start=0):
    """(w0, w1) for pairs [start, start + pairs): seeds 2p + seed and 2p + 1 + seed.

    space 'z': the z's themselves (the path slerps, then maps); 'w': one w per code;
    'w+': per-layer codes mixing two seeds' ws layer by layer;
    with `direction` (unit W vector), w1 = w0 + alpha * direction (edit linearity).
    """
    from ..latents import z_from_seeds

    seeds = [seed + 2 * p + k for p in range(start, start + pairs) for k in (0, 1)]
    z = z_from_seeds(seeds, G.z_dim, device)
    if space == "z":
        return z[0::2], z[1::2]
    ws = G.mapping(z, torch.zeros([len(z), G.c_dim], device=device))
    if space == "w+":
        perm = torch.arange(len(z)).roll(1)
        ws = torch.where((torch.arange(G.num_ws, device=device) % 2 == 1)[None, :, None], ws[perm], ws)
    elif space == "w":
        ws = ws[:, 0]
    else:
        raise ConfigError(f"ALS pairs live in 'z', 'w' or 'w+', got {space!r}")
    w0, w1 = ws[0::2], ws[1::2]
    if direction is not None:
        if space == "z":
            raise ConfigError("edit-linearity pairs move along a W direction: use space 'w'")
        n = torch.as_tensor(np.asarray(direction), dtype=w0.dtype, device=device)
        w1 = w0 + alpha * n
    return w0, w1


def als_classifier(classifier, attrs=None, pair_attribute=None, device="cpu"):
    """The classifier an ALS study scores with: only `attrs` (comma-separated text or a list) when given, in
    eval mode on `device`. ValueError when `pair_attribute` (the per-pair figure's) is not one it scores."""
    if attrs:
        classifier = classifier.select(
            [a.strip() for a in (attrs.split(",") if isinstance(attrs, str) else attrs) if a.strip()]
        )
    names = list(getattr(classifier, "names", None) or [])
    if pair_attribute is not None and names and pair_attribute not in names:
        raise ConfigError(f"--pair-attr {pair_attribute!r} is not one of the scored attributes: {', '.join(names)}")
    return classifier.to(device).eval() if hasattr(classifier, "to") else classifier


def labelled(specs, labels=(), option="--compare"):
    """{label: path} of model files or report folders given as PATH or NAME=PATH (a path that exists is never
    split), in order; `labels` (one per spec) name them instead. Default label: the file's name without its
    extension, or the folder's name. ValueError (naming `option`) when two get one label."""
    labels = list(labels or ())
    if labels and len(labels) != len(specs):
        raise ConfigError(f"{len(labels)} labels for {len(specs)} {option}")
    out = {}
    for i, spec in enumerate(specs):
        spec = os.fspath(spec)
        name = labels[i] if labels else None
        if name is None and "=" in spec and not os.path.exists(spec):
            name, spec = spec.split("=", 1)
        if not name:
            base = os.path.basename(os.path.normpath(spec))
            name = base if os.path.isdir(spec) else os.path.splitext(base)[0]
        if name in out:
            raise ConfigError(f"{option}: two are labelled {name!r}; label them NAME=PATH")
        out[name] = spec
    return out


def read_als_reports(specs, labels=(), option="--compare"):
    """{label: ALS result} of saved report folders (`labelled` specs, `read_als_report` each)."""
    results = {}
    for name, folder in labelled(specs, labels, option).items():
        try:
            results[name] = read_als_report(folder)
        except ValueError as e:
            raise ConfigError(f"{option} {e}") from None
    return results


def als_study(
    G,
    classifier,
    pairs=100,
    steps=10,
    space="w",
    protocol="paper",
    direction=None,
    alpha=3.0,
    seed=0,
    batch_size=16,
    device="cpu",
    progress=None,
    standardize=False,
    latents=None,
):
    """ALS over `pairs` pairs (random, or edits along `direction`), computed in batches of pairs.

    The classifier's score units are recorded (`latentlab.studies.als.score_units`); standardize:
    each attribute's scores divided by their std over all frames (ALS in sd^2). latents: given codes
    (a LatentCodes, e.g. projected photos) instead of seeds: pairs of them, or with `direction` each
    code and its edit (`latentlab.studies.als.latent_pairs`; space None: the codes' own), rendered with
    their noise maps.
    """
    from ..utils.distributed import gather_rows, rank_items
    from .als import als_from_logits, check_latent_pairs, classifier_units, codes_path_logits, latent_pairs, path_logits

    if latents is not None:  # refusals (space, too few codes) before any rendering
        check_latent_pairs(G, latents, pairs, seed, space, direction, alpha)
    mine = rank_items(pairs)  # under torchrun each rank renders its share of the pairs
    chunks = []
    for k in range(0, len(mine), batch_size):
        idx = mine[k : k + batch_size]
        if latents is not None:
            a, b = latent_pairs(G, latents, idx, seed, space, direction, alpha)
            chunks.append(codes_path_logits(G, classifier, a, b, steps, batch_size))
            if progress is not None:
                progress.update(len(idx))
            continue
        pair = [als_pairs(G, 1, seed, space, direction, alpha, device, start=p) for p in idx]
        w0, w1 = torch.cat([a for a, _ in pair]), torch.cat([b for _, b in pair])
        if space == "z":
            chunks.append(path_logits(G, classifier, w0, w1, steps, batch_size, mapping="slerp"))
        else:
            chunks.append(path_logits(G, classifier, w0, w1, steps, batch_size))
        if progress is not None:
            progress.update(len(idx))
    local = np.concatenate(chunks) if chunks else np.zeros((0, steps + 1, len(getattr(classifier, "names", []) or [])))
    logits = gather_rows(mine, local, pairs)
    return als_from_logits(
        logits, getattr(classifier, "names", None), protocol, standardize, classifier_units(classifier, logits.shape[2])
    )


def als_table(res, n_boot=1000):
    """ALS per attribute with a 95% bootstrap interval over pairs (the protocol's statistic recomputed) and
    the ALS's unit (`unit`: the score's unit squared, e.g. logit^2, or sd^2 for standardised scores)."""
    import pandas as pd

    from .als import als_bootstrap_ci

    lo, hi = als_bootstrap_ci(res, n_boot)
    units = res.attrs.get("als_units") or ["logit^2"] * (len(res) - 1)
    return pd.DataFrame(
        {"ALS": res.values[:-1], "ci_low": lo, "ci_high": hi, "unit": units},
        index=pd.Index(res.index[:-1], name="attribute"),
    )


def write_als_report(
    res, out_dir, title="Attribute Linearity Score", settings=None, pair_attribute=None, pair_count=4, table=None
):
    """An ALS report folder.

    Files: als.csv (one row: attributes + mean), als.json (protocol, standardize, steps, pairs, names,
    score units and ALS units, scores, `settings`), als_ci.csv/.md (bootstrap intervals and units),
    per_pair.csv, curve.csv (t, mean, one column
    per attribute: the protocol's ALS-vs-t curve), als_curve.png/.pdf, als_pairs.csv/.png/.pdf
    (logits of the first `pair_count` pairs along t for `pair_attribute`, default the least linear
    attribute, with the straight line from a_0 to a_1), logits.npy and summary.md.
    `table`: an `als_table(res)` already computed (else computed here). `read_als_report` reads the
    folder back; `write_als_comparison` compares several.
    """
    import pandas as pd

    from ..utils.atomic import atomic_path
    from .als_figures import curve_frame, pair_paths, plot_curve, plot_pair_paths

    os.makedirs(out_dir, exist_ok=True)
    write_csv(res.to_frame().T, os.path.join(out_dir, "als.csv"), index=False)
    names = [str(n) for n in res.index[:-1]]
    meta = dict(
        protocol=res.attrs["protocol"],
        standardize=bool(res.attrs.get("standardize", False)),
        steps=res.attrs["steps"],
        pairs=res.attrs["pairs"],
        names=names,
        units=dict(zip(names, res.attrs.get("units") or ["logit"] * len(names))),
        als_units=dict(zip(names, res.attrs.get("als_units") or ["logit^2"] * len(names))),
        als={n: float(v) for n, v in zip(names + ["mean"], res.values)},
        settings=dict(settings or {}),
    )
    write_text(os.path.join(out_dir, "als.json"), json.dumps(meta, indent=1))
    table = als_table(res) if table is None else table
    write_table(table, os.path.join(out_dir, "als_ci"))
    write_csv(
        pd.DataFrame(res.attrs["per_pair"], columns=names), os.path.join(out_dir, "per_pair.csv"), index_label="pair"
    )
    write_csv(curve_frame(res), os.path.join(out_dir, "curve.csv"), index=False)
    with atomic_path(os.path.join(out_dir, "logits.npy"), ".npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, res.attrs["logits"])
    plot_curve(res, os.path.join(out_dir, "als_curve"), title)
    paths = pair_paths(res, pair_attribute, pair_count)
    write_csv(paths, os.path.join(out_dir, "als_pairs.csv"), index=False)
    plot_pair_paths(paths, os.path.join(out_dir, "als_pairs"))
    from .als import mixed_units_note

    note = mixed_units_note(res)
    scaled = " (standardised scores)" if res.attrs.get("standardize") else ""
    write_text(
        os.path.join(out_dir, "summary.md"),
        f"# {title}\n\nprotocol {res.attrs['protocol']}{scaled}, {res.attrs['pairs']} pairs, "
        f"{res.attrs['steps']} steps; mean ALS **{res['mean']:.4f}**\n\n"
        + markdown_table(table)
        + "\nunit: each attribute's ALS is in its score's unit squared: logit^2 for logits, bounded^2 for "
        "regressed scores in a fixed range (e.g. [-1, 1]), sd^2 for standardised scores (standard deviations "
        "of the attribute's scores over all frames: --standardize, and the hsr protocol)."
        + (f" Note: {note}." if note else "")
        + f"\n\nals_curve: {res.attrs['curve_label']} vs t; als_pairs: logits of {paths.attrs['attribute']} "
        "along t for a few pairs, dashed the straight line from a_0 to a_1.\n",
    )
    return table


# A saved ALS report's als.json (`write_als_report`), checked when read back (`latentlab.utils.safe_json`):
# the fields read are typed and bounded, the others free.
ALS_META_SCHEMA = sj.Obj(
    {
        "protocol": sj.Str(100),
        "standardize": sj.Bool(),
        "steps": sj.Int(1),
        "pairs": sj.Int(1),
        "names": sj.AnyOf(None, sj.List(sj.Str(1000), 1, 100_000)),
        "units": sj.AnyOf(None, sj.Map(sj.Str(100)), sj.List(sj.Str(100))),
        "settings": sj.Map(sj.Anything()),
    },
    required=["protocol"],
)


def read_als_report(folder):
    """The ALS result of a folder written by `write_als_report`, recomputed from its logits.npy."""
    import re

    import pandas as pd

    from .als import als_from_logits

    if not os.path.isdir(folder):
        raise ConfigError(f"{folder}: no such ALS report folder")
    if not os.path.isfile(os.path.join(folder, "logits.npy")):
        raise ConfigError(f"{folder}: not an ALS report folder (no logits.npy); write one with `latentlab als --out`")
    meta_path = os.path.join(folder, "als.json")
    if os.path.isfile(meta_path):
        meta = sj.load_json(meta_path, ALS_META_SCHEMA)  # size, depth and shape checked; one line naming the file
        protocol, names = meta.get("protocol"), meta.get("names")
        standardize, units = bool(meta.get("standardize", False)), meta.get("units")
        if isinstance(units, dict) and names:
            units = [units.get(n, "logit") for n in names]
    else:  # folders written before als.json: the protocol is in the summary, the names in als.csv
        summary, table = os.path.join(folder, "summary.md"), os.path.join(folder, "als.csv")
        found = None
        if os.path.isfile(summary):
            with open(summary) as f:
                found = re.search(r"protocol (\w+)", f.read())
        protocol = found.group(1) if found else None
        names = list(pd.read_csv(table).columns[:-1]) if os.path.isfile(table) else None
        standardize, units = False, None
    if protocol is None:
        raise ConfigError(f"{folder}: cannot tell the ALS protocol (no als.json)")
    # header checked before reading (an .npz named .npy, structured dtypes, claimed sizes beyond the file)
    logits = load_npy(os.path.join(folder, "logits.npy"), kinds="iuf", what="ALS logits array")
    try:
        return als_from_logits(logits, names, protocol, standardize, units if isinstance(units, list) else None)
    except ValueError as e:
        raise ConfigError(f"{folder}: {e}") from None


def write_als_comparison(results, out_dir, title="Attribute Linearity Score"):
    """Compare several models' ALS ({model name: ALS result}, one protocol, same attributes).

    Files: als_compare.csv/.md (models as rows, attributes + Mean as columns), als_compare_curves.csv
    (model, t, mean, one column per attribute), als_compare_curve.png/.pdf (the averaged curve over
    t, one line per model), als_compare_attributes.png/.pdf (one panel per attribute), summary.md.
    Results must agree on standardisation (ValueError otherwise: their units differ).
    """
    from .als_figures import compare_curves, compare_table, plot_compare_attributes, plot_compare_curve

    scaled = {name: bool(r.attrs.get("standardize", False)) for name, r in results.items()}
    if len(set(scaled.values())) > 1:
        raise ConfigError(
            "ALS results mix standardised and raw scores ("
            + ", ".join(f"{n}: {'standardised' if v else 'raw'}" for n, v in scaled.items())
            + "); compare results of one kind"
        )

    table = compare_table(results)
    os.makedirs(out_dir, exist_ok=True)
    write_table(table, os.path.join(out_dir, "als_compare"))
    write_csv(compare_curves(results), os.path.join(out_dir, "als_compare_curves.csv"), index=False)
    plot_compare_curve(results, os.path.join(out_dir, "als_compare_curve"), title)
    plot_compare_attributes(results, os.path.join(out_dir, "als_compare_attributes"))
    first = next(iter(results.values())).attrs
    pairs = ", ".join(f"{m}: {r.attrs['pairs']} pairs, {r.attrs['steps']} steps" for m, r in results.items())
    units = ", ".join(f"{n} {u}" for n, u in zip(table.columns, first.get("als_units") or []))
    write_text(
        os.path.join(out_dir, "summary.md"),
        f"# {title}: comparison\n\nprotocol {first['protocol']}"
        f"{' (standardised scores)' if first.get('standardize') else ''} ({pairs}); lower is more linear.\n\n"
        + markdown_table(table)
        + (f"\nunits: {units}.\n" if units else "")
        + f"\nals_compare_curve: {first['curve_label']} vs t, one line per model.\n",
    )
    return table


# ---- PPL -------------------------------------------------------------------------------------
def write_ppl_report(res, out_dir, extremes=None, settings=None, strips=None, compare=None, label=None, band=0.1):
    """PPL report folder: ppl.json, distances.npy, the histogram (overlaid with `compare`
    {label: distances or PPLResult} when given), lowest/highest pairs, band strips, summary.md."""
    from ..utils.images import save_png, to_pil
    from .ppl import extreme_indices, strip_indices
    from .ppl_figures import pair_grid, pair_labels, ppl_histograms, strip_grid

    os.makedirs(out_dir, exist_ok=True)
    settings = dict(res.settings, **(settings or {}))
    counts, edges = res.histogram()
    write_text(
        os.path.join(out_dir, "ppl.json"),
        json.dumps(
            dict(
                mean=res.mean,
                samples=len(res.distances),
                label=label,
                **settings,
                histogram=dict(counts=counts.tolist(), edges=edges.tolist()),
            ),
            indent=1,
            default=str,
        ),
    )
    with atomic_path(os.path.join(out_dir, "distances.npy"), ".npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, res.distances)
    ppl_histograms({label or "this model": res}, os.path.join(out_dir, "ppl_histogram"), title=f"PPL = {res.mean:.2f}")
    text = (
        f"# Perceptual path length\n\n{settings}\n\nPPL **{res.mean:.3f}** over {int(res.kept.sum())} of "
        f"{len(res.distances)} pairs (1st-99th percentile band).\n"
    )
    if compare:
        ppl_histograms({label or "this model": res, **compare}, os.path.join(out_dir, "ppl_histograms_compared"))
        text += "\nCompared (ppl_histograms_compared.png):\n\n" + "".join(
            f"- {name}: PPL {_band_mean(getattr(r, 'distances', r)):.3f}\n" for name, r in compare.items()
        )
    # Rows labelled with the pair's index and path length (the pairs `extreme_pairs` / `band_strips` chose).
    for name, pairs in (extremes or {}).items():
        rows = pair_labels(res, extreme_indices(res, len(pairs))[name])
        save_png(to_pil(pair_grid(pairs, rows)), os.path.join(out_dir, f"ppl_{name}.png"))
    for name, s in (strips or {}).items():
        rows = pair_labels(res, strip_indices(res, band, len(s))[name])
        save_png(to_pil(strip_grid(s, rows)), os.path.join(out_dir, f"ppl_strips_{name}.png"))
    if strips:
        text += (
            f"\nppl_strips_lowest.png / ppl_strips_highest.png: interpolation paths (t = 0 to 1) of pairs from the "
            f"lowest and highest {band:.0%} of path lengths, a row per pair.\n"
        )
    write_text(os.path.join(out_dir, "summary.md"), text)


def ppl_report(G, res, out_dir, band=0.1, latents=None, labels=None, compare=None, label=None, device="cpu"):
    """`write_ppl_report` with its images: the 8 lowest and 8 highest pairs (`extreme_pairs`) and interpolation
    strips of 4 pairs of the lowest and highest `band` (`band_strips`), re-rendered from G. latents / labels: as
    given to `perceptual_path_length` (a label table; None for uniform labels). The report behind `latentlab ppl
    --out` and analyses/ppl_report.py."""
    from .ppl import band_strips, extreme_pairs

    extremes = extreme_pairs(G, res, 8, latents=latents, labels=labels, device=device)
    strips = band_strips(G, res, band, k=4, frames=8, latents=latents, labels=labels, device=device)
    write_ppl_report(res, out_dir, extremes, strips=strips, compare=compare, band=band, label=label)


def _band_mean(distances):
    from .ppl_figures import kept_band

    return float(kept_band(distances).mean())


# ---- correlations ----------------------------------------------------------------------------
def corr_study(
    G,
    classifier,
    directions,
    seeds,
    alphas,
    score_columns,
    reference=None,
    truncation_psi=1.0,
    batch_size=16,
    device="cpu",
    progress=None,
    scores="logits",
):
    """Scores of every edit, per-space correlation matrices (vs `reference`, a label DataFrame) and linearity fits.

    scores: 'logits' or 'probabilities' (sigmoid of the logit columns, as the paper plots them):
    the units the matrices and linearity curves are computed in; result['frame'] keeps the logits.
    With a reference, every matrix covers the classifier attributes the reference also has.
    seeds: seeds, or given codes (a LatentCodes, e.g. projected photos; `correlation.edit_scores`);
    result['latents'] names their file.
    """
    from ..utils.distributed import gather_frames, rank_items
    from .correlation import (
        SCORE_TRANSFORMS,
        compare_spaces,
        edit_scores,
        linearity,
        space_correlations,
        transform_scores,
    )

    if scores not in SCORE_TRANSFORMS:
        raise ConfigError(f"scores must be one of {', '.join(SCORE_TRANSFORMS)}, got {scores!r}")
    from ..latents.codes import LatentCodes

    given = seeds if isinstance(seeds, LatentCodes) else None
    if given is not None:
        ids = given.seeds if given.seeds is not None else given.names()
        mine = given[rank_items(len(given))]  # under torchrun each rank edits its share of the faces
    else:
        ids = seeds = list(seeds)
        mine = [seeds[i] for i in rank_items(len(seeds))]
    frame = edit_scores(
        G, classifier, directions, mine, alphas, truncation_psi, batch_size, device=device, progress=progress
    )
    order = {s: i for i, s in enumerate(ids)}
    frame = gather_frames(frame)
    frame = frame.assign(_o=frame["seed"].map(order)).sort_values(["space", "edited", "alpha", "_o"], kind="stable")
    frame = frame.drop(columns="_o").reset_index(drop=True)
    names = list(frame.columns[4:])
    kinds = dict(getattr(classifier, "score_kinds", None) or {})
    scored, transformed = transform_scores(frame, names, scores, kinds)
    attrs = names
    if reference is not None:
        attrs = [n for n in names if n in reference.columns]
        if not attrs:
            raise ConfigError(
                f"none of the classifier's attributes ({', '.join(names[:5])}, ...) are in the reference table"
            )
    mats = space_correlations(scored, attrs, reference)
    curves, fits = linearity(scored, score_columns)
    return dict(
        frame=frame,
        scores=scores,
        score_kinds=kinds,
        transformed=transformed,
        matrices=mats,
        comparison=compare_spaces(mats),
        curves=curves,
        fits=fits,
        latents=None if given is None else given.source,
    )


def _corr_titles(key, what):
    """Heatmap title of matrix `key` (space_correlations' names); `what` names the score units."""
    if key == "reference":
        return "reference: correlation of the labels"
    if key == "z_minus_w":
        return f"Z edits - W edits ({what})"
    space, _, kind = key.partition("_")
    who = "Z and W edits pooled" if space == "pooled" else f"{space.upper()} edits"
    return {
        "generated": f"{who}: correlation of {what}",
        "difference": f"{who} - reference ({what})",
        "difference_cubed": f"({who} - reference)$^3$ ({what})",
    }[kind]


def write_corr_report(result, out_dir):
    """scores.csv (logits), corr_<key>.csv/.md/.png/.pdf per matrix, corr_comparison, linearity, summary.md.

    Heatmaps of one kind (correlations, differences, cubes) share one colour scale across spaces,
    so that Z and W compare at a glance.
    """
    from .correlation import score_unit
    from .plots import heatmap, linearity_plot

    os.makedirs(out_dir, exist_ok=True)
    write_csv(result["frame"], os.path.join(out_dir, "scores.csv"), index=False)
    scores, mats, kinds = result["scores"], result["matrices"], result.get("score_kinds") or {}
    kept = [n for n in result["frame"].columns[4:] if kinds.get(n, "logit") != "logit"]  # regressed: never transformed
    what = scores if not kept else f"{scores} + regressed scores"
    kind = {k: "corr" if k.endswith("generated") or k == "reference" else k.split("_", 1)[1] for k in mats}
    scale = {"corr": 1.0}
    for key, m in mats.items():
        if kind[key] != "corr":
            scale[kind[key]] = max(scale.get(kind[key], 1e-12), float(np.nanmax(np.abs(m.to_numpy()), initial=0.0)))
    for key, m in mats.items():
        write_table(m, os.path.join(out_dir, f"corr_{key}"))
        heatmap(m, _corr_titles(key, what), os.path.join(out_dir, f"corr_{key}"), vmax=scale[kind[key]])
    comparison = result["comparison"].astype({"pairs": object})  # object: Markdown prints the count as an integer
    if not comparison.empty:
        write_table(comparison, os.path.join(out_dir, "corr_comparison"))
    write_csv(result["curves"], os.path.join(out_dir, "linearity.csv"), index=False)
    fits = result["fits"]
    write_csv(fits, os.path.join(out_dir, "linearity_fits.csv"), index=False)
    ylabels = {c: f"{score_unit(scores) if kinds.get(c, 'logit') == 'logit' else 'score'} ({c})" for c in fits["score"]}
    linearity_plot(
        result["curves"],
        fits,
        os.path.join(out_dir, "linearity"),
        ylabels=ylabels,
        title=f"edited attribute's own score in alpha ({what})",
    )
    unit = "**logits** (the classifier's output" if scores == "logits" else "**probabilities** (sigmoid of the logits"
    unit += f"; {', '.join(kept)}: regressed scores, as they are)" if kept else ")"
    text = (
        f"# Attribute correlation study\n\nCorrelations and linearity of {unit}; correlations of probabilities differ "
        "from those of logits (the sigmoid is not affine). scores.csv holds the classifier's raw scores.\n\n"
        "- `corr_{z,w}_generated`: images edited in Z, in W (the paper's figures 6a, 6b)\n"
    )
    if "reference" in mats:
        text += (
            "- `corr_reference`: the reference labels\n"
            "- `corr_{z,w}_difference`, `corr_{z,w}_difference_cubed`: generated - reference and its cube (figure 7)\n"
        )
    if "z_minus_w" in mats:
        text += "- `corr_z_minus_w`: Z - W\n"
    text += "- `corr_pooled_*`: extra, Z and W rows pooled into one matrix\n\n"
    if result.get("latents"):
        text += f"Faces: the codes of `{result['latents']}` (scores.csv's `seed` column holds their names).\n\n"
    if not comparison.empty:
        text += "## Per space: |difference| over attribute pairs\n\n" + markdown_table(comparison) + "\n"
    text += "## Linearity\n\n" + markdown_table(fits.set_index("edited"))
    write_text(os.path.join(out_dir, "summary.md"), text)


# ---- truncation ------------------------------------------------------------------------------
DEFAULT_TRUNCATIONS = ("none", "w:0.7", "w:0.5", "z:2.0", "clamp:90")
EMBEDDINGS = ("tsne", "umap")


@dataclass
class TruncationRow:
    """One row of a truncation study: a variant, the spec it was given as, and what is asked of it.

    choose: {level: cluster id} to generate from chosen clusters (cluster variants only; levels not
    named keep their predicted cluster); psi: a psi that replaced the spec's (recorded in truncate.json).
    """

    spec: str
    truncation: object
    choose: Optional[dict] = None
    psi: Optional[float] = None

    @classmethod
    def parse(cls, spec):
        """The row of a spec string (`latentlab.truncation.FORMS`); a clusters file is read here, fitting waits."""
        from ..truncation import parse_truncation

        return cls(spec if isinstance(spec, str) else spec.name, parse_truncation(spec))

    @classmethod
    def clusters_file(cls, path, psi=None, choose=None):
        """The row of a clusters file (fitted or learned): `psi` replaces the file's, `choose` ({level: id} or
        'coarse=3,fine=1') generates from those clusters; both checked against the file (ValueError)."""
        from ..truncation.spec import parse_choice

        row = cls.parse(f"clusters:{path}")
        if psi is not None:
            row.truncation.psi = row.psi = check_number("psi", psi)
        if choose is not None:
            row.choose = row.truncation.check_clusters(parse_choice(choose) if isinstance(choose, str) else choose)
        return row

    @property
    def is_clusters(self):
        """A cluster variant (fitted or learned): it can generate from chosen clusters and be embedded."""
        from ..truncation import BaseClusterTruncation

        return isinstance(self.truncation, BaseClusterTruncation)

    @property
    def label(self):
        """The row's name in figures, tables and the printed list."""
        name = self.truncation.name
        if self.choose:
            name += " choose " + ",".join(f"{level}={k}" for level, k in self.choose.items())
        return name

    def ws(self, G, z):
        """ws [N, num_ws, w_dim] of this row for z."""
        if self.choose:
            return self.truncation.generate(G, z, self.choose)
        return self.truncation(G, z)


def truncation_rows(specs=(), clusters=None, psi=None, choose=None):
    """The rows of a study, every spec checked (and every clusters file read) before any work.

    specs: spec strings or TruncationRows [default: DEFAULT_TRUNCATIONS when no clusters file is given
    either]; clusters: a clusters file added as the last row, with `psi` / `choose` (which need it).
    """
    if (choose is not None or psi is not None) and not clusters:
        raise ConfigError("choose and psi apply to a clusters file: give clusters=FILE")
    rows = [r if isinstance(r, TruncationRow) else TruncationRow.parse(r) for r in specs]
    if not rows:
        rows = [TruncationRow.parse(s) for s in DEFAULT_TRUNCATIONS]
    if clusters:
        rows.append(TruncationRow.clusters_file(clusters, psi, choose))
    return rows


def fit_truncations(G, rows, n_samples=10000, seed=0, log=None):
    """Fit every row's variant that needs it and is not fitted, on `n_samples` samples of G (`log`: a callable
    told what is being fitted)."""
    for row in rows:
        t = row.truncation
        if t.requires_fit and not t.is_fitted:
            if log is not None:
                log(f"fitting {row.spec} on {n_samples} samples ...")
            t.fit(G, n_samples=n_samples, seed=seed, progress=log is not None)
    return rows


def _unique_labels(rows):
    names = []
    for row in rows:
        name, n = row.label, 2
        while name in names:  # two rows with one name would otherwise share a row of the tables
            name, n = f"{row.label} #{n}", n + 1
        names.append(name)
    return names


def check_truncation_codes(rows, codes):
    """Refuse (one line naming the file) given codes that rows cannot truncate: s codes (truncation acts on
    ws), and w/w+ codes for Z-only rows (Z resampling, generation from chosen clusters)."""
    from ..truncation import ZTruncatedNormal

    if codes is None or codes.space == "z":
        return
    source = codes.source or "the given codes"
    if codes.space == "s":
        raise ConfigError(
            f"{source}: truncation acts on ws, and s codes cannot become w+ codes "
            "(conversions go z -> w -> w+ -> s, never back)"
        )
    for row in rows:
        if isinstance(row.truncation, ZTruncatedNormal) or row.choose:
            what = "generates from chosen clusters" if row.choose else "resamples z"
            raise ConfigError(f"{source}: row {row.label!r} {what} and needs z codes; these are {codes.space} codes")


@torch.no_grad()
def truncation_study(G, rows, seeds, classifier=None, batch_size=16, noise_mode="const", device="cpu", progress=None):
    """Images of every row (TruncationRow, spec string or Truncation; fitted) on the same seeds, or on given
    codes (a LatentCodes, e.g. projected photos: z codes go through each row as seeds do, w/w+ codes through
    its `transform_ws`, rendered with their noise maps; `check_truncation_codes`), plus per-row attribute
    statistics when a classifier is given.

    Returns dict(rows=[TruncationRow], names=[unique label per row], seeds (None for given codes), columns
    (one name per column: seedNNNN or the codes' names), latents (the codes' file or None),
    images={name: uint8 [N, H, W, C]}, stats=DataFrame (variant, attribute, mean, std) or None).
    """
    import pandas as pd

    from ..latents import LatentCodes, z_from_seeds
    from ..utils.images import to_uint8

    rows = [r if isinstance(r, TruncationRow) else TruncationRow.parse(r) for r in rows]
    given = seeds if isinstance(seeds, LatentCodes) else None
    check_truncation_codes(rows, given)
    if given is None:
        seeds = [int(s) for s in seeds]
        codes = LatentCodes(z_from_seeds(seeds, G.z_dim, device), "z", seeds=seeds)
    else:
        seeds, codes = None, given.replace(data=given.data.to(device))
    names = _unique_labels(rows)
    images, stats = {}, []
    for name, row in zip(names, rows):
        if codes.space == "z":
            ws = row.ws(G, codes.data)
        else:
            ws = row.truncation.transform_ws(G, codes.to("w+", G).data)
        imgs, scores = [], []
        for x in codes.replace(data=ws, space="w+").render_batches(G, noise_mode, batch_size, progress):
            imgs.append(to_uint8(x))
            if classifier is not None:
                scores.append(torch.as_tensor(classifier(x)).float().cpu().numpy())
        images[name] = np.concatenate(imgs)
        if classifier is not None:
            s = np.concatenate(scores)
            for j, attr in enumerate(getattr(classifier, "names", None) or [f"attr{j}" for j in range(s.shape[1])]):
                stats.append(dict(variant=name, attribute=attr, mean=float(s[:, j].mean()), std=float(s[:, j].std())))
    return dict(
        rows=rows,
        names=names,
        seeds=seeds,
        columns=codes.names(),
        latents=None if given is None else given.source,
        images=images,
        stats=pd.DataFrame(stats) if stats else None,
    )


def truncation_figures(G, result, out_dir, methods=("tsne",), rows=None, n=1000, seed=0, log=None):
    """Per-level 2-D embeddings (t-SNE, UMAP) of cluster rows' codes, coloured by cluster (Katzir et al. 2022,
    figure 9): METHOD.png/.pdf for one row, METHOD_<row>.png/.pdf for several. rows: indices of the rows
    [default: every cluster row]. Returns the file names written."""
    from ..truncation.figures import cluster_embedding_figure

    for method in methods:
        _check_embedding(method)
    study_rows = result["rows"]
    rows = [i for i, r in enumerate(study_rows) if r.is_clusters] if rows is None else list(rows)
    for i in rows:
        if not study_rows[i].is_clusters:
            raise ConfigError(f"row {i} ({result['names'][i]}) has no clusters to embed")
    os.makedirs(out_dir, exist_ok=True)
    files = []
    for method in methods:
        for i in rows:
            stem = method if len(rows) == 1 else f"{method}_{i}"
            if log is not None:
                log(f"embedding {n} codes per level ({method}) of row {i} ...")
            cluster_embedding_figure(
                study_rows[i].truncation, G, os.path.join(out_dir, stem), n=n, seed=seed, method=method
            )
            files += [f"{stem}.png", f"{stem}.pdf"]
    return files


def _check_embedding(method):
    """Refuse an unknown embedding, or UMAP without umap-learn, before any work."""
    from ..utils.optional import require

    if method not in EMBEDDINGS:
        raise ConfigError(f"embedding must be one of {', '.join(EMBEDDINGS)}, got {method!r}")
    if method == "umap":
        require("umap", "umap-learn", "a UMAP embedding (t-SNE needs none)")


def truncation_picture(result, grid_scale=None):
    """grid.png of a `truncation_study` result: a row per variant (labelled with its name), a column per seed
    ('seed 12', or the codes' names), cells upscaled `grid_scale` times (None: auto, at least 128 px a cell;
    `latentlab.utils.grids`)."""
    from ..utils.grids import grid_scale_for
    from ..utils.images import labelled_grid

    if result["seeds"] is not None:
        cols = [f"seed {int(s)}" for s in result["seeds"]]
    else:
        cols = list(result.get("columns") or [])
    images = np.concatenate([result["images"][name] for name in result["names"]])
    _, h, w, ch = images.shape
    scale = grid_scale_for(len(result["names"]), len(cols), max(h, w), ch, grid_scale)
    return labelled_grid(
        images, cols=len(cols), row_labels=list(result["names"]), col_labels=cols, corner="variant", scale=scale
    )


def write_truncation_report(result, out_dir, save_fitted=False, figures=(), settings=None, grid_scale=None):
    """A truncation report folder: grid.png (a row per variant, a column per seed; labelled and upscaled
    `grid_scale` times, None: auto, `truncation_picture`), variantN.png (row N, at the generator's resolution),
    variantN.npz (with save_fitted: the fitted state of rows that were fitted, reusable as clusters:FILE),
    truncate.json (seeds, rows: spec, name, image, choose, psi, fitted; `figures`; `settings`; versions),
    summary.md, and with a classifier attribute_stats.csv/.md. Returns truncate.json's record."""
    from ..utils.images import make_grid, save_png, to_pil
    from ..utils.versions import versions

    os.makedirs(out_dir, exist_ok=True)
    columns = result.get("columns") or [f"seed{s:04d}" for s in result["seeds"]]
    cols = len(columns)
    entries = []
    for i, (name, row) in enumerate(zip(result["names"], result["rows"])):
        save_png(to_pil(make_grid(result["images"][name], cols=cols)), os.path.join(out_dir, f"variant{i}.png"))
        entry = dict(spec=row.spec, name=name, image=f"variant{i}.png")
        if row.choose:
            entry["choose"] = row.choose
        if row.psi is not None:
            entry["psi"] = row.psi
        if save_fitted and row.truncation.requires_fit:
            row.truncation.save(os.path.join(out_dir, f"variant{i}.npz"))
            entry["fitted"] = f"variant{i}.npz"
        entries.append(entry)
    save_png(to_pil(truncation_picture(result, grid_scale)), os.path.join(out_dir, "grid.png"))
    lines = "\n".join(f"- row {i}: {name}" for i, name in enumerate(result["names"]))
    if result["seeds"] is not None:
        what = f"columns are seeds {result['seeds']}"
    else:
        what = f"columns are the codes of {result.get('latents') or 'the given codes'}: {', '.join(columns)}"
    text = f"# Truncation variants\n\nRows of grid.png ({what}):\n\n{lines}\n"
    if result["stats"] is not None:
        table = result["stats"].pivot(index="variant", columns="attribute", values="std")
        write_table(result["stats"].set_index("variant"), os.path.join(out_dir, "attribute_stats"))
        text += "\nStd of each attribute's score per variant (lower = less diversity):\n\n" + markdown_table(table)
    if figures:
        text += "\nFigures: " + ", ".join(figures) + " (per-level embeddings of the cluster codes).\n"
    write_text(os.path.join(out_dir, "summary.md"), text)
    record = dict(settings or {}, seeds=result["seeds"], variants=entries, figures=list(figures), versions=versions())
    if result["seeds"] is None:
        record.update(latents=result.get("latents"), names=columns)
    write_text(os.path.join(out_dir, "truncate.json"), json.dumps(record, indent=1, default=str))
    return record


def truncation_report(
    G,
    rows,
    seeds,
    out_dir,
    classifier=None,
    fit_samples=10000,
    fit_seed=0,
    save_fitted=False,
    embeddings=(),
    embed_rows=None,
    embed_samples=1000,
    batch_size=16,
    noise_mode="const",
    device="cpu",
    settings=None,
    log=None,
    grid_scale=None,
):
    """The whole study behind `latentlab truncate` and analyses/truncation_report.py: fit the rows that need it
    (`fit_truncations`), render them on `seeds` or given codes (`truncation_study`), write the embeddings of cluster rows
    (`truncation_figures`, methods in `embeddings`, rows `embed_rows` [default: every cluster row]) and the
    folder (`write_truncation_report`; grid.png's cells upscaled `grid_scale` times, None: auto). Everything that
    can be checked is checked before any work. Returns (study result, truncate.json's record)."""
    rows = [r if isinstance(r, TruncationRow) else TruncationRow.parse(r) for r in rows]
    for method in embeddings:
        _check_embedding(method)
    if grid_scale is not None:  # a given scale that makes grid.png too large is refused before any work
        from ..utils.grids import check_grid

        check_grid(len(rows), len(seeds), G, "rows x seeds", scale=grid_scale, scale_option="grid_scale")
    for i in embed_rows or ():
        if not 0 <= i < len(rows) or not rows[i].is_clusters:
            raise ConfigError(f"row {i} has no clusters to embed")
    from ..latents import LatentCodes

    check_truncation_codes(rows, seeds if isinstance(seeds, LatentCodes) else None)
    fit_truncations(G, rows, fit_samples, fit_seed, log)
    result = truncation_study(G, rows, seeds, classifier, batch_size, noise_mode, device)
    figures = []
    if embeddings:
        figures = truncation_figures(G, result, out_dir, embeddings, embed_rows, embed_samples, fit_seed, log)
    settings = dict(settings or {}, noise_mode=noise_mode)
    record = write_truncation_report(result, out_dir, save_fitted, figures, settings=settings, grid_scale=grid_scale)
    return result, record
