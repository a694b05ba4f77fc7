"""How a toyfaces training run approaches the embedded model's targets: the model report's measures
(`fidelity.toyfaces_measures`) at each snapshot of a run, as a table and a figure.

    curve = toyfaces_training_curve("runs/toy", classifier, "reports/curve", every=1000, n=500)

Each snapshot's G_ema draws n faces (seeds 0..n-1, constant noise) that are compared with the same n fresh
renders. curve.csv gains a row per snapshot and is rewritten atomically after each, so a rerun (while the
run goes on, or after a stop) evaluates only the snapshots not yet in it. With n below the model card's 2000
the Frechet distance reads higher (its bias grows as 1/n); compare curves at one n.
"""

import os
import re

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .edit_quality import EDIT_BARS, edit_quality
from .fidelity import (
    RENDER_SEEDS,
    TOYFACES_TARGETS,
    fidelity_report,
    generated_images,
    target_line,
    toyfaces_measures,
    toyfaces_renders,
)

SNAPSHOT = re.compile(r"^network-snapshot-(\d{6})\.safetensors$")
COLUMNS = ["step", "kimg", "model", "n", *TOYFACES_TARGETS, "all_met"]
EDIT_KEYS = ("raised", "max_flip", "max_move")  # edit_quality's measures a curve keeps, each with its EDIT_BARS bar


def run_snapshots(run_dir, every=1):
    """[(step, path)] of the run's snapshots whose step is a multiple of `every`, by step."""
    found = []
    for name in os.listdir(run_dir):
        m = SNAPSHOT.match(name)
        if m and int(m.group(1)) % every == 0:
            found.append((int(m.group(1)), os.path.join(run_dir, name)))
    return sorted(found)


def toyfaces_training_curve(
    run_dir,
    classifier,
    out_dir,
    every=1000,
    n=500,
    start=None,
    device="cpu",
    log=print,
    edits=(),
    edit_samples=5000,
):
    """Evaluate the snapshots of the training run in `run_dir` (every `every` steps) and, when `start` (a model
    spec) is given, the model the run started from, as step 0; write curve.csv and curve.png into `out_dir` and
    return the table (columns COLUMNS: kimg from the run's batch size; the TOYFACES_TARGETS measures).

    edits: attributes whose edit is measured too (`edit_quality.edit_quality`: the W boundary fitted on
    `edit_samples` of the snapshot's faces, then +2 on seeds 0-47): columns ATTR_edit_raised,
    ATTR_edit_max_flip and ATTR_edit_max_move (over the regressed scores), the three measures the embedded
    model's edit is held to (EDIT_BARS). A run can come closer to the renders on every target while an
    attribute stops being a direction in W; these columns show that."""
    import latentlab
    from latentlab.attributes.toyfaces import LOGITS
    from latentlab.train import Trainer

    from .reports import write_csv

    if every < 1 or n < 2:
        raise ConfigError(f"every must be >= 1 and n >= 2 (got every={every}, n={n})")
    batch = int(Trainer.peek(run_dir)["options"]["batch_size"])
    todo = [(0, start)] if start is not None else []
    todo += run_snapshots(run_dir, every)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "curve.csv")
    columns = curve_columns(edits)
    rows = _read_curve(path, columns) if os.path.exists(path) else []
    if rows and int(rows[0]["n"]) != n:
        raise ConfigError(f"{path}: evaluated with n={rows[0]['n']}; use the same --n or another folder")
    done = {int(r["step"]) for r in rows}
    real = None
    for step, model in todo:
        if step in done:
            continue
        G = latentlab.load_generator(model, device=device)
        if real is None:  # the same renders for every snapshot
            real = toyfaces_renders(n, RENDER_SEEDS[0], G.img_resolution)
        fake = generated_images(G, range(n), device=device)
        m = toyfaces_measures(fidelity_report(classifier, fake, real, logit_names=LOGITS))
        row = (
            {"step": step, "kimg": step * batch / 1000, "model": str(model), "n": n}
            | {k: m[k] for k in TOYFACES_TARGETS}
            | {"all_met": m["all_met"]}
        )
        line = target_line(m)
        for attr in edits:
            regressed = [a for a in classifier.names if a not in LOGITS and a != attr]
            e = edit_quality(G, classifier, attr, n_samples=edit_samples, moved=regressed)
            row |= {f"{attr}_edit_{k}": e[k] for k in EDIT_KEYS}
            line += (
                f"; {attr} +2 raises {e['raised']:.2f}, flips {e['max_flip_attribute']} {e['max_flip']:.2f}, "
                f"moves {e['max_move_attribute']} {e['max_move']:.2f}"
            )
        rows.append(row)
        rows.sort(key=lambda r: r["step"])
        write_csv(pd.DataFrame(rows, columns=columns), path, index=False)
        log(f"step {step}: {line}")
    table = pd.DataFrame(rows, columns=columns)
    if len(table):
        plot_curve(table, os.path.join(out_dir, "curve.png"), edits)
    return table


def curve_columns(edits=()):
    """COLUMNS, then ATTR_edit_KEY for each attribute in `edits` and KEY in EDIT_KEYS."""
    return COLUMNS + [f"{a}_edit_{k}" for a in edits for k in EDIT_KEYS]


def _read_curve(path, columns=COLUMNS):
    """The rows of an earlier curve.csv; ConfigError naming the file when it is not one (or lacks `columns`)."""
    try:
        table = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as e:  # pandas' parser errors are ValueErrors
        raise ConfigError(
            f"{path}: not a curve.csv ({str(e).splitlines()[0][:120]}); remove it or use another folder"
        ) from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ConfigError(f"{path}: not a curve.csv (no column {', '.join(missing)}); remove it or use another folder")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ConfigError(f"{path}: measured without these edits (no column {', '.join(missing)}); use another folder")
    return table[columns].to_dict("records")


def plot_curve(table, path, edits=()):
    """One panel per target measure against kimg, its bound dashed, and one per edited attribute (share of faces
    raised, largest share of another attribute's decisions flipped, largest mean move of a regressed score; the
    embedded model's bars EDIT_BARS dashed);
    written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..utils.atomic import atomic_path

    names = list(TOYFACES_TARGETS)
    panels = len(names) + len(edits)
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 3), constrained_layout=True)
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names):
        sense, bound = TOYFACES_TARGETS[name]
        ax.plot(table["kimg"], table[name], marker="o", ms=3)
        ax.axhline(bound, ls="--", color="grey", lw=1)
        ax.set_title(f"{name.replace('_', ' ')} ({sense} {bound:g})", fontsize=9)
        ax.set_xlabel("kimg")
    for ax, attr in zip(axes[len(names) :], edits):
        for key, colour in zip(EDIT_KEYS, ("C0", "C3", "C2")):
            ax.plot(table["kimg"], table[f"{attr}_edit_{key}"], marker="o", ms=3, color=colour, label=key)
            ax.axhline(EDIT_BARS[key][1], ls="--", color=colour, lw=1, alpha=0.6)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
        ax.set_title(f"{attr} +2: raised (>= {EDIT_BARS['raised'][1]:g}), max flip, max move", fontsize=9)
        ax.set_xlabel("kimg")
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
