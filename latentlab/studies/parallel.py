"""Splitting a study's items (pairs) across torchrun ranks and gathering the results on every rank."""
import numpy as np
import torch.distributed as dist


def rank_items(total, rank=None, world_size=None):
    """Indices of the items this rank computes: i % world_size == rank (all of them without a process group)."""
    rank, world_size = _ranks(rank, world_size)
    return list(range(rank, total, world_size))


def _ranks(rank, world_size):
    if rank is None or world_size is None:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1
    return rank, world_size


def gather_rows(indices, rows, total):
    """Every rank's (indices, rows) assembled into one array of `total` rows, in item order, on every rank."""
    rows = np.asarray(rows)
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        out = np.empty((total, *rows.shape[1:]), dtype=rows.dtype)
        out[list(indices)] = rows
        return out
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (list(indices), rows))
    out = np.empty((total, *rows.shape[1:]), dtype=rows.dtype)
    for idx, part in parts:
        out[idx] = part
    return out


def gather_frames(frame):
    """Concatenate every rank's DataFrame (rank order) on every rank; the frame itself without a process group."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return frame
    import pandas as pd

    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, frame)
    return pd.concat(parts, ignore_index=True)
