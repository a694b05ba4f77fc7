"""Attribute correlation study ("Exploring the latent space of StyleGAN-type models").

Edit a set of faces along each attribute's direction in Z and in W for a range of alphas,
score every image with a multi-attribute classifier, and compare:
  * the attribute correlation matrix of the generated images with that of a reference label
    table (e.g. CelebA's list_attr_celeba.txt), their difference, and the difference cubed
    (which brings out the large deviations);
  * the linearity of each edited attribute's own score in alpha (mean, std, least-squares
    line and R^2), Z next to W.
"""
import numpy as np
import torch

from ..edits.linear import edit, parse_alphas
from ..edits.pipeline import start_codes


@torch.no_grad()
def edit_scores(G, classifier, directions, seeds, alphas, truncation_psi=1.0, batch_size=16, noise_mode="const",
                device="cpu", progress=None):
    """Long table of classifier scores for every (space, edited attribute, alpha, seed).

    directions: {(space, attr): Direction-like}, space in {'z', 'w'}. Returns a pandas DataFrame
    with columns space, edited, alpha, seed and one column per classifier attribute.
    """
    import pandas as pd

    names = list(getattr(classifier, "names", None) or [])
    rows, alphas = [], parse_alphas(alphas)
    for (space, attr), direction in directions.items():
        codes = start_codes(G, seeds, space, truncation_psi, None, device=device)
        for a in alphas:
            edited = edit(codes, direction, a, G)
            ws = edited.to("w+", G, truncation_psi=truncation_psi).data if space == "z" else edited.wplus(G)
            for i in range(0, len(ws), batch_size):
                logits = torch.as_tensor(classifier(G.synthesis(ws[i : i + batch_size], noise_mode=noise_mode))).float().cpu()
                if not names:
                    names = [f"attr{j}" for j in range(logits.shape[1])]
                for k, row in enumerate(logits.numpy()):
                    rows.append([space, attr, a, seeds[i + k], *row.tolist()])
                if progress is not None:
                    progress.update(len(logits))
    return pd.DataFrame(rows, columns=["space", "edited", "alpha", "seed", *names])


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
