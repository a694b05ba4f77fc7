"""torchrun in one place: ranks from the environment, the device of a rank, joining and leaving the process group,
and splitting a study's items across ranks.

    from latentlab.utils import distributed
    device, rank, world = distributed.join("auto")   # under torchrun: cuda:LOCAL_RANK, the process group joined
    mine = distributed.rank_items(total)             # this rank's items: i % world_size == rank
    rows = distributed.gather_rows(mine, local, total)   # every rank's rows, in item order, on every rank
    distributed.shutdown()

Without torchrun (WORLD_SIZE unset or 1) every function is the single-process identity: rank 0 of 1,
all items, no process group. Sample folders never exchange data between ranks (each writes its own
chunks); studies gather their rows; training averages gradients.
"""

import os

import numpy as np
import torch
import torch.distributed as dist

from ..errors import ConfigError


# ---- ranks and devices -----------------------------------------------------------------------------------------
def _env_int(name, default):
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"environment variable {name}={text!r} is not an integer") from None


def env_ranks():
    """(rank, world_size, local_rank) from torchrun's RANK, WORLD_SIZE, LOCAL_RANK (0, 1, 0 when unset)."""
    rank, world, local = _env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(f"inconsistent process ranks: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}")
    return rank, world, local


def resolve_device(name="auto"):
    """The device a single process uses: 'auto' is cuda when CUDA is present, else cpu; a cuda device without
    CUDA is refused in one line."""
    name = str(name)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine")
    return name


def _wants_cuda(device):
    return torch.cuda.is_available() and (device is None or str(device).startswith("cuda") or device == "auto")


def rank_device(device="auto"):
    """This process's device: cuda:LOCAL_RANK when CUDA is present and wanted ('auto' or 'cuda'), else as given."""
    _, _, local = env_ranks()
    if device in ("auto", "cuda"):
        if torch.cuda.is_available():
            if local >= torch.cuda.device_count():
                raise ConfigError(f"LOCAL_RANK={local} but only {torch.cuda.device_count()} CUDA devices are visible")
            return f"cuda:{local}"
        if device == "cuda":
            raise ConfigError("--device cuda: CUDA is not available on this machine")
        return "cpu"
    return str(device)


# ---- the process group -----------------------------------------------------------------------------------------
def init_from_env(device="auto"):
    """(rank, world_size); with WORLD_SIZE > 1 also joins the process group (nccl on CUDA, gloo on the CPU)."""
    rank, world, local = env_ranks()
    if world > 1 and not is_active():
        missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
        if missing:
            raise ConfigError(f"WORLD_SIZE={world} but {' and '.join(missing)} is not set; launch with torchrun")
        cuda = _wants_cuda(device)
        if cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    return rank, world


def join(device="auto"):
    """(device, rank, world_size) of this process, the one way every command joins a torchrun launch.

    Under torchrun (WORLD_SIZE > 1) the device is `rank_device(device)` (cuda:LOCAL_RANK for 'auto' or 'cuda')
    and the process group is joined; alone, the device is `resolve_device(device)` and nothing is joined.
    """
    _, world, _ = env_ranks()
    dev = rank_device(device) if world > 1 else resolve_device(device)
    rank, world = init_from_env(dev)
    return dev, rank, world


def is_active():
    return dist.is_available() and dist.is_initialized()


def world():
    """(rank, world_size) of the process group, or None without one."""
    return (dist.get_rank(), dist.get_world_size()) if is_active() else None


def barrier():
    """Wait for every rank (no-op without a process group)."""
    if not is_active():
        return
    if dist.get_backend() == "nccl":  # tell NCCL our device, else it guesses and warns
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def shutdown(wait=True):
    """Leave the process group (after a final barrier when `wait`)."""
    if is_active():
        if wait:
            barrier()
        dist.destroy_process_group()


# ---- splitting a study's items across ranks ----------------------------------------------------------------------
def rank_items(total, rank=None, world_size=None):
    """Indices of the items this rank computes: i % world_size == rank (all of them without a process group)."""
    rank, world_size = _ranks(rank, world_size)
    return list(range(rank, total, world_size))


def _ranks(rank, world_size):
    if rank is None or world_size is None:
        return world() or (0, 1)
    return rank, world_size


def _grouped():
    return is_active() and dist.get_world_size() > 1


def gather_rows(indices, rows, total):
    """Every rank's (indices, rows) assembled into one array of `total` rows, in item order, on every rank."""
    rows = np.asarray(rows)
    parts = [(list(indices), rows)]
    if _grouped():
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, (list(indices), rows))
    out = np.empty((total, *rows.shape[1:]), dtype=rows.dtype)
    for idx, part in parts:
        out[idx] = part
    return out


def gather_frames(frame):
    """Concatenate every rank's DataFrame (rank order) on every rank; the frame itself without a process group."""
    if not _grouped():
        return frame
    import pandas as pd

    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, frame)
    return pd.concat(parts, ignore_index=True)
