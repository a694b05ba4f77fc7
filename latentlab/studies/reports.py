"""Study runs and their report folders: one implementation behind the CLI commands and analyses/ scripts.

Each `*_study` function computes; each `write_*_report` writes a folder with CSV and Markdown
tables, PNG/PDF figures and a short `summary.md`.
"""
import json
import os

import numpy as np
import torch

from ..utils.atomic import write_text


def markdown_table(df, floatfmt="{:.4f}"):
    """A DataFrame as a GitHub Markdown table (index included)."""
    cols = [df.index.name or ""] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        cells = [floatfmt.format(v) if isinstance(v, (float, np.floating)) else str(v) for v in row.tolist()]
        lines.append("| " + " | ".join([str(idx)] + cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(df, stem):
    """stem.csv and stem.md."""
    df.to_csv(stem + ".csv")
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
        raise ValueError(f"ALS pairs live in 'z', 'w' or 'w+', got {space!r}")
    w0, w1 = ws[0::2], ws[1::2]
    if direction is not None:
        if space == "z":
            raise ValueError("edit-linearity pairs move along a W direction: use space 'w'")
        n = torch.as_tensor(np.asarray(direction), dtype=w0.dtype, device=device)
        w1 = w0 + alpha * n
    return w0, w1


def als_study(G, classifier, pairs=100, steps=10, space="w", protocol="paper", direction=None, alpha=3.0, seed=0,
              batch_size=16, device="cpu", progress=None):
    """ALS over `pairs` pairs (random, or edits along `direction`), computed in batches of pairs."""
    from .als import als_from_logits, path_logits
    from .parallel import gather_rows, rank_items

    mine = rank_items(pairs)  # under torchrun each rank renders its share of the pairs
    chunks = []
    for k in range(0, len(mine), batch_size):
        idx = mine[k : k + batch_size]
        pair = [als_pairs(G, 1, seed, space, direction, alpha, device, start=p) for p in idx]
        w0, w1 = torch.cat([a for a, _ in pair]), torch.cat([b for _, b in pair])
        if space == "z":
            chunks.append(path_logits(G, classifier, w0, w1, steps, batch_size, mapping="slerp"))
        else:
            chunks.append(path_logits(G, classifier, w0, w1, steps, batch_size))
        if progress is not None:
            progress.update(len(idx))
    local = np.concatenate(chunks) if chunks else np.zeros((0, steps + 1, len(getattr(classifier, "names", []) or [])))
    return als_from_logits(gather_rows(mine, local, pairs), getattr(classifier, "names", None), protocol)


def als_table(res):
    import pandas as pd

    from .als import bootstrap_ci

    lo, hi = bootstrap_ci(res.attrs["per_pair"])
    return pd.DataFrame({"ALS": res.values[:-1], "ci_low": lo, "ci_high": hi}, index=pd.Index(res.index[:-1], name="attribute"))


def write_als_report(res, out_dir, title="Attribute Linearity Score"):
    import pandas as pd

    from .plots import _plt, save_figure

    os.makedirs(out_dir, exist_ok=True)
    res.to_frame().T.to_csv(os.path.join(out_dir, "als.csv"), index=False)
    table = als_table(res)
    write_table(table, os.path.join(out_dir, "als_ci"))
    pd.DataFrame(res.attrs["per_pair"], columns=res.index[:-1]).to_csv(os.path.join(out_dir, "per_pair.csv"), index_label="pair")
    t = np.linspace(0, 1, res.attrs["steps"] + 1)
    pd.DataFrame({"t": t, "mean_delta": res.attrs["curve"]}).to_csv(os.path.join(out_dir, "curve.csv"), index=False)
    np.save(os.path.join(out_dir, "logits.npy"), res.attrs["logits"])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(t, res.attrs["curve"], marker="o", ms=3)
    ax.set_xlabel("t")
    ax.set_ylabel("mean Delta")
    ax.set_title(f"{title} ({res.attrs['protocol']})")
    save_figure(fig, os.path.join(out_dir, "als_curve"))
    write_text(os.path.join(out_dir, "summary.md"),
               f"# {title}\n\nprotocol {res.attrs['protocol']}, {res.attrs['pairs']} pairs, {res.attrs['steps']} steps; "
               f"mean ALS **{res['mean']:.4f}**\n\n" + markdown_table(table))
    return table


# ---- PPL -------------------------------------------------------------------------------------
def write_ppl_report(res, out_dir, extremes=None, settings=None):
    from ..utils.images import make_grid, save_png, to_pil
    from .plots import _plt, save_figure

    os.makedirs(out_dir, exist_ok=True)
    counts, edges = res.histogram()
    write_text(os.path.join(out_dir, "ppl.json"), json.dumps(dict(mean=res.mean, samples=len(res.distances), **(settings or {}),
                                                                  histogram=dict(counts=counts.tolist(), edges=edges.tolist())), indent=1))
    np.save(os.path.join(out_dir, "distances.npy"), res.distances)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.hist(res.distances[res.kept], bins=50)
    ax.axvline(res.mean, color="k", ls="--", lw=1)
    ax.set_xlabel("path length")
    ax.set_title(f"PPL = {res.mean:.2f}")
    save_figure(fig, os.path.join(out_dir, "ppl_histogram"))
    for name, pairs in (extremes or {}).items():
        save_png(to_pil(make_grid(pairs.reshape(-1, *pairs.shape[2:]), cols=2)), os.path.join(out_dir, f"ppl_{name}.png"))
    write_text(os.path.join(out_dir, "summary.md"), f"# Perceptual path length\n\n{settings or {}}\n\nPPL **{res.mean:.3f}** "
               f"over {int(res.kept.sum())} of {len(res.distances)} pairs (1st-99th percentile band).\n")


# ---- correlations ----------------------------------------------------------------------------
def corr_study(G, classifier, directions, seeds, alphas, score_columns, reference=None, truncation_psi=1.0,
               batch_size=16, device="cpu", progress=None):
    """Scores of every edit, correlation matrices (vs `reference`, a label DataFrame) and linearity fits."""
    from .correlation import compare_correlations, correlation_matrix, edit_scores, linearity
    from .parallel import gather_frames, rank_items

    seeds = list(seeds)
    mine = [seeds[i] for i in rank_items(len(seeds))]  # under torchrun each rank edits its share of the faces
    frame = edit_scores(G, classifier, directions, mine, alphas, truncation_psi, batch_size, device=device, progress=progress)
    order = {s: i for i, s in enumerate(seeds)}
    frame = gather_frames(frame)
    frame = frame.assign(_o=frame["seed"].map(order)).sort_values(["space", "edited", "alpha", "_o"], kind="stable")
    frame = frame.drop(columns="_o").reset_index(drop=True)
    names = list(frame.columns[4:])
    mats = {"generated": correlation_matrix(frame, names)}
    if reference is not None:
        common = [n for n in names if n in reference.columns]
        if not common:
            raise ValueError(f"none of the classifier's attributes ({', '.join(names[:5])}, ...) are in the reference table")
        mats = compare_correlations(correlation_matrix(frame, common), correlation_matrix(reference, common))
    curves, fits = linearity(frame, score_columns)
    return dict(frame=frame, matrices=mats, curves=curves, fits=fits)


def write_corr_report(result, out_dir):
    from .plots import heatmap, linearity_plot

    os.makedirs(out_dir, exist_ok=True)
    result["frame"].to_csv(os.path.join(out_dir, "scores.csv"), index=False)
    for key, m in result["matrices"].items():
        write_table(m, os.path.join(out_dir, f"corr_{key}"))
        heatmap(m, f"attribute correlation: {key.replace('_', ' ')}", os.path.join(out_dir, f"corr_{key}"))
    result["curves"].to_csv(os.path.join(out_dir, "linearity.csv"), index=False)
    fits = result["fits"]
    fits.to_csv(os.path.join(out_dir, "linearity_fits.csv"), index=False)
    linearity_plot(result["curves"], fits, os.path.join(out_dir, "linearity"))
    write_text(os.path.join(out_dir, "summary.md"), "# Attribute correlation study\n\n" + markdown_table(fits.set_index("edited")))


# ---- truncation ------------------------------------------------------------------------------
@torch.no_grad()
def truncation_study(G, variants, seeds, classifier=None, batch_size=16, noise_mode="const", device="cpu"):
    """Images of every variant on the same seeds, plus per-variant attribute statistics when a classifier is given.

    variants: {name: Truncation}. Returns dict(images={name: uint8 [N, H, W, C]}, stats=DataFrame or None).
    """
    import pandas as pd

    from ..latents import z_from_seeds
    from ..utils.images import to_uint8

    z = z_from_seeds(seeds, G.z_dim, device)
    images, rows = {}, []
    for name, t in variants.items():
        ws = t(G, z)
        imgs, scores = [], []
        for i in range(0, len(ws), batch_size):
            x = G.synthesis(ws[i : i + batch_size], noise_mode=noise_mode)
            imgs.append(to_uint8(x))
            if classifier is not None:
                scores.append(torch.as_tensor(classifier(x)).float().cpu().numpy())
        images[name] = np.concatenate(imgs)
        if classifier is not None:
            s = np.concatenate(scores)
            for j, attr in enumerate(getattr(classifier, "names", None) or [f"attr{j}" for j in range(s.shape[1])]):
                rows.append(dict(variant=name, attribute=attr, mean=float(s[:, j].mean()), std=float(s[:, j].std())))
    return dict(images=images, stats=pd.DataFrame(rows) if rows else None)


def write_truncation_report(result, out_dir, columns):
    from ..utils.images import make_grid, save_png, to_pil

    os.makedirs(out_dir, exist_ok=True)
    rows = list(result["images"].values())
    save_png(to_pil(make_grid(np.concatenate(rows), cols=columns)), os.path.join(out_dir, "grid.png"))
    lines = "\n".join(f"- row {i}: {name}" for i, name in enumerate(result["images"]))
    text = f"# Truncation variants\n\nRows of grid.png (columns are seeds):\n\n{lines}\n"
    if result["stats"] is not None:
        table = result["stats"].pivot(index="variant", columns="attribute", values="std")
        write_table(result["stats"].set_index("variant"), os.path.join(out_dir, "attribute_stats"))
        text += "\nStd of each attribute's score per variant (lower = less diversity):\n\n" + markdown_table(table)
    write_text(os.path.join(out_dir, "summary.md"), text)
