"""torchrun helpers: rank and world size from the environment, the process group, barriers.

Ranks never exchange data: each writes its own chunks into the shared folder. The
process group only orders the manifest (rank 0 writes it, the others check it) and the end.
"""
import os

import torch
import torch.distributed as dist


def _env_int(name, default):
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r} is not an integer") from None


def env_ranks():
    """(rank, world_size, local_rank) from torchrun's RANK, WORLD_SIZE, LOCAL_RANK (0, 1, 0 when unset)."""
    rank, world, local = _env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"inconsistent process ranks: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}")
    return rank, world, local


def _wants_cuda(device):
    return torch.cuda.is_available() and (device is None or str(device).startswith("cuda") or device == "auto")


def rank_device(device="auto"):
    """This process's device: cuda:LOCAL_RANK when CUDA is present and wanted ('auto' or 'cuda'), else as given."""
    _, _, local = env_ranks()
    if device in ("auto", "cuda"):
        if torch.cuda.is_available():
            if local >= torch.cuda.device_count():
                raise ValueError(f"LOCAL_RANK={local} but only {torch.cuda.device_count()} CUDA devices are visible")
            return f"cuda:{local}"
        if device == "cuda":
            raise ValueError("--device cuda: CUDA is not available on this machine")
        return "cpu"
    return str(device)


def init_from_env(device="auto"):
    """(rank, world_size); with WORLD_SIZE > 1 also joins the process group (nccl on CUDA, gloo on the CPU)."""
    rank, world, local = env_ranks()
    if world > 1 and not is_active():
        missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
        if missing:
            raise ValueError(f"WORLD_SIZE={world} but {' and '.join(missing)} is not set; launch with torchrun")
        cuda = _wants_cuda(device)
        if cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    return rank, world


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
