"""Improved precision and recall (Kynkaanniemi et al. 2019), as StyleGAN2-ADA's `precision_recall.py` computes it.

    precision, recall = precision_recall(real_feats, gen_feats, k=3)

The manifold of a feature set is the union of balls around its points, each with the radius of the distance
to its k-th nearest neighbour. As NVIDIA's, that radius is the (k + 1)-th smallest distance to every point of
the set *including the point itself* (kthvalue(k + 1)), so duplicates count as neighbours. Precision is the
fraction of generated points inside the real manifold (some real point i with |g - r_i| <= radius_i), recall
the fraction of real points inside the generated manifold.

Precision, as NVIDIA's: the features are cast to float16 and distances are torch.cdist of float16 tensors, whose
matrix-product path (used when a block has more than 25 rows or columns, i.e. always at NVIDIA's batch sizes)
computes in float16: each x_i^2 rounded to float16, the norms |x|^2 summed and rounded to float16, one product of
the augmented matrices [-2a, |a|^2, 1] [b, 1, |b|^2]^T (float32 accumulation) rounded to float16, then
clamp(0) and the square root rounded to float16. That arithmetic is replicated here in float32 with the same
roundings (`half_distances`), on any device: on random 4096-d features it gives torch's float16 cdist bit for bit
for all but ~0.05 % of the distances (the product's accumulation order), where plain float32 distances rounded to
float16 differ from it in ~20 % (one float16 step; enough to move points across a ball's boundary). Not replicated:
torch's direct path for blocks of at most 25 x 25 points (only for sets that small), and the GPU GEMM's own
accumulation order. Features or squared distances beyond float16's range (|x| > 256 in some dimension, distances
above 256: NVIDIA's code would compare inf and count every point inside) are refused in one line.

Memory is flat in N: distances are computed `row_batch` x `col_batch` at a time; the k + 1 smallest distances
of each row are kept as the columns stream past (NVIDIA holds a row batch against every column), so the peak
is about 2 x row_batch x col_batch float32 values (800 MB at the default 10 000 x 10 000) plus one copy of the
manifold's features, never N x N.
`manifold_radii` and `coverage` take `rows` (indices) so that torchrun ranks can split the rows and gather.
"""

from __future__ import annotations

import contextlib
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import ConfigError
from ..utils.validate import check_int

__all__ = ["precision_recall", "manifold_radii", "coverage", "as_half_features", "half_distances"]


def as_half_features(x, what: str = "features", device=None) -> torch.Tensor:
    """Features [N, F] rounded to float16 (as NVIDIA's) and held as float32 on `device` for the arithmetic.
    Refused: non-finite values, and values whose float16 square overflows (|x| > 255.9: torch's float16 distances
    would be inf)."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float32) if not torch.is_tensor(x) else x.detach())
    if t.ndim != 2:
        raise ConfigError(f"precision/recall: {what} must be [N, F], got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ConfigError(f"precision/recall: {what} hold non-finite values")
    h = t.to(torch.float32).to(torch.float16).to(torch.float32)
    if not torch.isfinite((h * h).to(torch.float16)).all():
        raise ConfigError(
            f"precision/recall: {what} hold values whose square exceeds float16's range (|x| > 255.9); NVIDIA's metric "
            "computes distances in float16, where they would be inf"
        )
    return h.to(device=device if device is not None else t.device)


@contextlib.contextmanager
def _full_precision_matmul():
    """No TF32 in the distance products (its 10-bit mantissa would be coarser than the float16 result)."""
    if not torch.cuda.is_available():
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def _norms(x: torch.Tensor) -> torch.Tensor:
    """|x|^2 per row as torch computes x.pow(2).sum(-1) in float16: squares and the sum rounded to float16."""
    return (x * x).to(torch.float16).to(torch.float32).sum(dim=1).to(torch.float16).to(torch.float32)


def _row_operand(x: torch.Tensor) -> torch.Tensor:
    """[-2x, |x|^2, 1]: the left factor of torch's matrix-product distances."""
    return torch.cat([-2.0 * x, _norms(x)[:, None], torch.ones_like(x[:, :1])], dim=1)


def _col_operand(x: torch.Tensor) -> torch.Tensor:
    """[x, 1, |x|^2]: the right factor."""
    return torch.cat([x, torch.ones_like(x[:, :1]), _norms(x)[:, None]], dim=1)


def _distances(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """float16 distances (held as float32) [len(rows), len(cols)] of `_row_operand` x `_col_operand` blocks."""
    d2 = (rows @ cols.T).to(torch.float16)
    if not torch.isfinite(d2).all():
        raise ConfigError(
            "precision/recall: squared feature distances exceed float16's range (NVIDIA's metric computes them in "
            "float16, where they would become inf): the features are too large for this metric"
        )
    return d2.clamp_min_(0).to(torch.float32).sqrt_().to(torch.float16).to(torch.float32)


def half_distances(a, b) -> torch.Tensor:
    """torch.cdist(a.half(), b.half()) as its matrix-product path computes it (see the module docstring), as float32
    values; a, b: [N, F] features (rounded to float16 first)."""
    a = as_half_features(a, "features")
    b = as_half_features(b, "features", a.device)
    return _distances(_row_operand(a), _col_operand(b))


def _rows(rows: Optional[Sequence[int]], n: int) -> torch.Tensor:
    if rows is None:
        return torch.arange(n)
    return torch.as_tensor(np.asarray(list(rows), dtype=np.int64))


def manifold_radii(
    manifold: torch.Tensor,
    k: int = 3,
    rows: Optional[Sequence[int]] = None,
    row_batch: int = 10000,
    col_batch: int = 10000,
    progress=None,
) -> torch.Tensor:
    """Radius of each manifold point in `rows` (all by default): its (k + 1)-th smallest float16 distance to
    the set itself, self included (NVIDIA's kthvalue(k + 1)); float32 [len(rows)] holding float16 values.

    manifold: float32 [N, F] from `as_half_features`. progress: anything with update(n), advanced per row.
    """
    n = manifold.shape[0]
    k = check_int("k", k, lo=1)
    if n < k + 1:
        raise ConfigError(f"precision/recall with k = {k} needs at least {k + 1} images per set, got {n}")
    idx = _rows(rows, n)
    out = []
    with torch.no_grad(), _full_precision_matmul():
        cols = _col_operand(manifold)
        for r0 in range(0, len(idx), row_batch):
            ri = idx[r0 : r0 + row_batch].to(manifold.device)
            a = _row_operand(manifold[ri])
            best = None  # the k + 1 smallest distances of each row so far
            for c0 in range(0, n, col_batch):
                d = _distances(a, cols[c0 : c0 + col_batch])
                cand = d if best is None else torch.cat([best, d], dim=1)
                best = cand.topk(min(k + 1, cand.shape[1]), dim=1, largest=False).values
            out.append(best.max(dim=1).values)
            if progress is not None:
                progress.update(len(ri))
    return torch.cat(out) if out else torch.zeros([0], device=manifold.device)


def coverage(
    probes: torch.Tensor,
    manifold: torch.Tensor,
    radii: torch.Tensor,
    rows: Optional[Sequence[int]] = None,
    row_batch: int = 10000,
    col_batch: int = 10000,
    progress=None,
) -> torch.Tensor:
    """For each probe in `rows` (all by default): inside the manifold, i.e. within radii[j] of some manifold
    point j (float16 distances, `<=` as NVIDIA's); bool [len(rows)]."""
    if radii.shape[0] != manifold.shape[0]:
        raise ConfigError(f"{radii.shape[0]} radii for {manifold.shape[0]} manifold points")
    if probes.shape[1] != manifold.shape[1]:
        raise ConfigError(f"precision/recall: features of {probes.shape[1]} and {manifold.shape[1]} dimensions")
    idx = _rows(rows, probes.shape[0])
    radii = radii.to(manifold.device)
    out = []
    with torch.no_grad(), _full_precision_matmul():
        cols = _col_operand(manifold)
        for r0 in range(0, len(idx), row_batch):
            ri = idx[r0 : r0 + row_batch].to(probes.device)
            p = _row_operand(probes[ri])
            hit = torch.zeros(len(ri), dtype=torch.bool, device=probes.device)
            for c0 in range(0, manifold.shape[0], col_batch):
                d = _distances(p, cols[c0 : c0 + col_batch])
                hit |= (d <= radii[c0 : c0 + col_batch][None, :]).any(dim=1)
            out.append(hit)
            if progress is not None:
                progress.update(len(ri))
    return torch.cat(out) if out else torch.zeros([0], dtype=torch.bool, device=probes.device)


def precision_recall(
    real, gen, k: int = 3, row_batch: int = 10000, col_batch: int = 10000, device=None, progress=None
) -> Tuple[float, float]:
    """(precision, recall) of generated vs real features ([N, F] arrays or tensors); see the module docstring.

    row_batch / col_batch: distances computed per block (memory ~ 2 x row_batch x col_batch float32);
    the result does not depend on them. device: where to compute (default: the features' own, CPU for arrays).
    progress: anything with update(n), advanced by rows: 2 x (N_real + N_gen) in all.
    """
    row_batch = check_int("row_batch", row_batch, lo=1)
    col_batch = check_int("col_batch", col_batch, lo=1)
    r = as_half_features(real, "real features", device)
    g = as_half_features(gen, "generated features", r.device)
    if r.shape[1] != g.shape[1]:
        raise ConfigError(f"precision/recall: real features have {r.shape[1]} dimensions, generated ones {g.shape[1]}")
    out = []
    for manifold, probes in ((r, g), (g, r)):  # precision: generated in the real manifold; recall: the reverse
        radii = manifold_radii(manifold, k, None, row_batch, col_batch, progress)
        inside = coverage(probes, manifold, radii, None, row_batch, col_batch, progress)
        out.append(float(inside.sum().item()) / max(len(inside), 1))
    return out[0], out[1]
