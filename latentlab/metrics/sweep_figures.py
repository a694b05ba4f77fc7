"""The figures of a truncation sweep, drawn as the multi-level structuring paper draws its evaluation (Katzir et al.
2022): precision against recall and precision against FID, one curve per truncation variant through its points in
psi order, each point labelled with its psi.

    from latentlab.metrics.sweep_figures import sweep_figures
    sweep_figures(df, "out/sweep")     # precision_recall, precision_fid and sweep (both panels), .png and .pdf

`df` is `truncation_sweep`'s table (columns label or variant, psi, and fid / precision / recall). A panel is drawn
when its columns were measured: precision vs recall needs precision/recall, precision vs FID needs both; a sweep of
FID alone gets FID against psi. Files are written atomically (`studies.plots.save_figure`).
"""

from __future__ import annotations

import os
from typing import List, Optional

__all__ = ["PANELS", "sweep_panels", "sweep_figures"]

# (file stem, x column, y column, x label, y label)
PANELS = (
    ("precision_recall", "recall", "precision", "recall", "precision"),
    ("precision_fid", "fid", "precision", "FID", "precision"),
    ("fid_psi", "psi", "fid", "psi", "FID"),
)


def sweep_panels(df) -> List[tuple]:
    """The PANELS this table can fill: the paper's two when precision/recall was measured, else FID vs psi."""
    cols = set(df.columns)
    out = [p for p in PANELS[:2] if {p[1], p[2]} <= cols]
    if not out and {"psi", "fid"} <= cols:
        out = [PANELS[2]]
    return out


def _draw(ax, df, panel):
    _, x, y, xlabel, ylabel = panel
    name = "label" if "label" in df.columns else "variant"
    for label, part in df.groupby(name, sort=False):
        part = part.sort_values("psi")
        line = ax.plot(part[x], part[y], marker="o", ms=4, lw=1.5, label=str(label))[0]
        for _, r in part.iterrows():
            ax.annotate(
                f"{r['psi']:g}",
                (r[x], r[y]),
                textcoords="offset points",
                xytext=(4, 3),
                fontsize=6,
                color=line.get_color(),
            )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def sweep_figures(df, out_dir: str, title: Optional[str] = None) -> List[str]:
    """Write each panel as its own figure (out_dir/<stem>.png and .pdf) and all panels side by side as
    out_dir/sweep.png and .pdf; returns the paths written (none for an empty table)."""
    from ..studies.plots import _plt, save_figure

    panels = sweep_panels(df)
    if df is None or len(df) == 0 or not panels:
        return []
    plt = _plt()
    paths = []
    for panel in panels:
        fig, ax = plt.subplots(figsize=(4.6, 3.8))
        _draw(ax, df, panel)
        ax.set_title(f"{panel[4]} vs {panel[3]} (labels: psi)", fontsize=9)
        fig.tight_layout()
        paths += save_figure(fig, os.path.join(out_dir, panel[0]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.9), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        _draw(ax, df, panel)
        ax.set_title(f"{panel[4]} vs {panel[3]}", fontsize=9)
    if title:
        fig.suptitle(f"{title}; point labels: psi", fontsize=9)
    fig.tight_layout()
    paths += save_figure(fig, os.path.join(out_dir, "sweep"))
    return paths
