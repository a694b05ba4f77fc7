"""The sampling loop: seeds -> z -> ws -> image -> scores (+ styles, thumbnails), one chunk file at a time.

Chunk k holds seeds [seed_start + k*chunk_size, ...); rank r of world_size computes the
chunks with k % world_size == r, so the folder's content does not depend on the number of
processes. Only one batch of images exists at a time; a chunk's codes and scores are
gathered in preallocated arrays and written atomically when the chunk is complete.
"""

import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..generate import class_labels
from ..latents.seeds import MAX_SEED, z_from_seeds
from ..models.identity import model_hash
from ..utils import distributed
from ..utils.images import to_uint8
from ..utils.validate import check_int
from .manifest import build_manifest, check_matches, ensure_manifest, remove_stale_temporaries
from .store import chunk_name, chunk_problem, chunk_seeds, write_chunk

NOISE_MODES = ("const", "random", "none")


@dataclass
class SampleReport:
    """What one call of `sample` did in its share of the chunks."""

    out_dir: str
    computed: list[int] = field(default_factory=list)  # chunks written by this call
    skipped: list[int] = field(default_factory=list)  # chunks found complete and left alone
    repaired: list[int] = field(default_factory=list)  # damaged chunks found and recomputed (also in computed)
    samples_computed: int = 0
    samples_skipped: int = 0


def _check_classifier(classifier):
    """The classifier's names; it scores images when callable, else seeds through `scores_for(seeds)`."""
    if not callable(classifier) and not callable(getattr(classifier, "scores_for", None)):
        raise ConfigError(
            "the classifier must be callable (images -> logits) or have scores_for(seeds), "
            f"got {type(classifier).__name__}"
        )
    names = getattr(classifier, "names", None)
    if (
        not isinstance(names, (list, tuple))
        or not names
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) != len(names)
    ):
        raise ConfigError(f"the classifier needs `names`: a list of distinct non-empty strings, got {names!r}")
    return list(names)


def classifier_id(classifier):
    """What identifies a classifier beyond its names: its type, and its weights when it is a module.

    Two classifiers with the same attribute names (every CelebA model has them) give
    different scores; the manifest records this so that their chunks never mix.
    """
    kind = type(classifier)
    ident = dict(type=f"{kind.__module__}.{kind.__qualname__}", weights=None)
    if isinstance(classifier, torch.nn.Module) and classifier.state_dict():
        ident["weights"] = model_hash(classifier)
    source = getattr(classifier, "source", None) or getattr(classifier, "path", None)
    if isinstance(source, (str, os.PathLike)):
        ident["source"] = os.path.basename(os.fspath(source))
    return ident


def _to_device(classifier, device):
    mover = getattr(classifier, "to", None)
    if callable(mover):
        moved = mover(device)
        if moved is not None and callable(moved) and getattr(moved, "names", None) is not None:
            classifier = moved
    if isinstance(classifier, torch.nn.Module):
        classifier.eval()  # batch statistics would make a sample's score depend on its batch
    return classifier


def _fields(G, num_names, wplus, save_styles, save_images, thumb_size):
    """field -> (per-row shape, dtype) of every array in a chunk."""
    fields = dict(seeds=((), "int64"), z=((G.z_dim,), "float32"), w=((G.w_dim,), "float32"))
    if wplus:
        fields["wplus"] = ((G.num_ws, G.w_dim), "float32")
    if save_styles:
        fields["styles"] = ((sum(G.synthesis.style_dims.values()),), "float32")
    if save_images:
        res = min(thumb_size, G.img_resolution)
        fields["images"] = ((res, res, G.img_channels), "uint8")
    fields["scores"] = ((num_names,), "float32")
    return fields


def _thumbnail(img, size):
    if img.shape[-1] > size:  # area averaging: the thumbnail is the mean of each block of pixels
        img = F.adaptive_avg_pool2d(img, size)
    return to_uint8(img)


class _ChunkRunner:
    """Computes the arrays of one chunk in batches."""

    def __init__(
        self, G, classifier, names, fields, batch_size, psi, cutoff, noise_mode, class_idx, thumb_size, device
    ):
        self.G, self.classifier, self.names, self.fields = G, classifier, names, fields
        self.batch_size, self.psi, self.cutoff, self.noise_mode = batch_size, psi, cutoff, noise_mode
        self.class_idx, self.thumb_size, self.device = class_idx, thumb_size, device
        self.by_image = callable(classifier)  # else a table of precomputed scores: no rendering needed for them

    @torch.no_grad()
    def run(self, seeds, bar):
        G = self.G
        out = {f: np.empty((len(seeds), *shape), dtype=dtype) for f, (shape, dtype) in self.fields.items()}
        out["seeds"][:] = seeds
        for lo in range(0, len(seeds), self.batch_size):
            part = seeds[lo : lo + self.batch_size].tolist()
            hi = lo + len(part)
            z = z_from_seeds(part, G.z_dim, self.device)
            c = class_labels(G, len(part), self.class_idx, self.device)
            ws = G.mapping(z, c, truncation_psi=self.psi, truncation_cutoff=self.cutoff)
            if "wplus" not in out and not bool((ws == ws[:, :1]).all()):
                raise ConfigError(
                    "the generator's ws differ between layers, so w alone would not describe the "
                    "images; this sampler expects identical layers unless a truncation cutoff is given"
                )
            img = G.synthesis(ws, noise_mode=self.noise_mode) if self.by_image or "images" in out else None
            out["z"][lo:hi] = z.cpu().numpy()
            out["w"][lo:hi] = ws[:, 0].float().cpu().numpy()
            if "wplus" in out:
                out["wplus"][lo:hi] = ws.float().cpu().numpy()
            if "styles" in out:
                styles = G.synthesis.pack_styles(G.synthesis.compute_styles(ws))
                out["styles"][lo:hi] = styles.float().cpu().numpy()
            if "images" in out:
                out["images"][lo:hi] = _thumbnail(img, self.thumb_size)
            out["scores"][lo:hi] = self._score(img, part)
            del img
            if bar is not None:
                bar.update(len(part))
        return out

    def _score(self, img, seeds):
        logits = self.classifier(img) if self.by_image else self.classifier.scores_for(seeds)
        if torch.is_tensor(logits):
            logits = logits.detach().float().cpu().numpy()
        if not isinstance(logits, np.ndarray) or logits.shape != (len(seeds), len(self.names)):
            shape = list(logits.shape) if isinstance(logits, np.ndarray) else type(logits).__name__
            raise ConfigError(
                f"the classifier returned {shape} for {len(seeds)} images; expected "
                f"[{len(seeds)}, {len(self.names)}] (one logit per name)"
            )
        bad = ~np.isfinite(logits).all(axis=1)
        if bad.any():
            raise ConfigError(f"the classifier returned non-finite logits for seed {seeds[int(np.argmax(bad))]}")
        return logits.astype(np.float32, copy=False)


def _prepare_folder(out_dir, manifest, rank, world_size):
    """Rank 0 (or each rank, without a process group) writes or checks the manifest; the others wait, then check.

    Every rank reaches the barrier even when rank 0 fails, so that nobody hangs; the
    others then find the manifest missing or different and fail with the same message.
    """
    grouped = distributed.is_active()
    if rank == 0 or not grouped:
        error = None
        try:
            ensure_manifest(out_dir, manifest)
            if world_size == 1 or grouped:  # no other writer can be active yet
                remove_stale_temporaries(out_dir)
        except BaseException as e:  # re-raised after the barrier
            error = e
        distributed.barrier()
        if error is not None:
            raise error
    else:
        distributed.barrier()
        check_matches(out_dir, manifest)


def sample(
    G,
    classifier,
    out_dir,
    n,
    seed_start=0,
    chunk_size=1000,
    batch_size=32,
    truncation_psi=1.0,
    truncation_cutoff=None,
    noise_mode="const",
    save_styles=False,
    save_images=False,
    device="cpu",
    progress=True,
    rank=0,
    world_size=1,
    class_idx=None,
    thumb_size=64,
):
    """Sample n seeds from seed_start on, score them with `classifier`, write chunk files into out_dir.

    classifier: any callable images [N, C, H, W] (generator range) -> logits [N, A] with
    `names` (A strings), moved with `.to(device)` when it has one; or an object with
    `names` and `scores_for(seeds) -> [N, A]` (precomputed scores, e.g. a TableScores).
    Resumable: rerunning the same call skips valid chunks and recomputes missing or damaged ones. With
    world_size > 1 (see latentlab.utils.distributed.init_from_env), rank r computes chunks k % world_size == r.
    class_idx: the class of conditional generators; thumb_size: thumbnail side with save_images.
    Returns a SampleReport (chunks computed, skipped and repaired by this process).
    """
    n = check_int("n", n, 1)
    seed_start = check_int("seed_start", seed_start, 0)
    if seed_start + n - 1 > MAX_SEED:
        raise ConfigError(f"seeds {seed_start}..{seed_start + n - 1} exceed the largest seed {MAX_SEED}")
    chunk_size = check_int("chunk_size", chunk_size, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    world_size = check_int("world_size", world_size, 1)
    rank = check_int("rank", rank, 0, world_size - 1)
    grouped = distributed.world()
    if grouped is not None and grouped != (rank, world_size):
        raise ConfigError(
            f"torch.distributed runs rank {grouped[0]} of {grouped[1]}, but sample() got rank={rank}, "
            f"world_size={world_size}; pass the values from init_from_env()"
        )
    if (
        isinstance(truncation_psi, bool)
        or not isinstance(truncation_psi, (int, float))
        or not math.isfinite(truncation_psi)
    ):
        raise ConfigError(f"truncation_psi must be a finite number, got {truncation_psi!r}")
    if truncation_cutoff is not None:
        truncation_cutoff = check_int("truncation_cutoff", truncation_cutoff, 0, G.num_ws)
    if noise_mode not in NOISE_MODES:
        raise ConfigError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
    if save_images:
        thumb_size = check_int("thumb_size", thumb_size, 1)
        if thumb_size < G.img_resolution and G.img_resolution % thumb_size:
            raise ConfigError(f"thumb_size {thumb_size} must divide the image resolution {G.img_resolution}")
    class_labels(G, 1, class_idx)  # refuses a missing or wrong class before any work
    names = _check_classifier(classifier)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"

    # Layers differ only when a cutoff leaves some of them untruncated.
    wplus = truncation_psi != 1 and truncation_cutoff is not None and 0 < truncation_cutoff < G.num_ws
    fields = _fields(G, len(names), wplus, save_styles, save_images, thumb_size)
    manifest = build_manifest(
        model_hash(G),
        classifier_id(classifier),
        names,
        n,
        seed_start,
        chunk_size,
        truncation_psi,
        truncation_cutoff,
        noise_mode,
        class_idx,
        save_styles,
        save_images,
        thumb_size,
        fields,
    )
    out_dir = os.fspath(out_dir)
    _prepare_folder(out_dir, manifest, rank, world_size)

    report, todo = SampleReport(out_dir), []
    for k in range(rank, manifest["num_chunks"], world_size):
        why = chunk_problem(out_dir, k, manifest)
        if why is None:
            report.skipped.append(k)
            report.samples_skipped += len(chunk_seeds(manifest, k))
        else:
            todo.append((k, why))

    G = G.to(device)
    classifier = _to_device(classifier, device)
    runner = _ChunkRunner(
        G,
        classifier,
        names,
        fields,
        batch_size,
        float(truncation_psi),
        truncation_cutoff,
        noise_mode,
        class_idx,
        thumb_size,
        device,
    )
    from ..utils.progress import progress_bar

    desc = "sample" if world_size == 1 else f"sample (rank 0 of {world_size})"  # other ranks stay quiet
    total = report.samples_skipped + sum(len(chunk_seeds(manifest, k)) for k, _ in todo)
    with progress_bar(
        total=total,
        initial=report.samples_skipped,
        desc=desc,
        unit="img",
        enabled=progress,
        rank=rank,
        what="samples",
        hint="use --n to reduce (a rerun resumes)",
    ) as bar:
        for k, why in todo:
            if why != "missing":
                bar.write(f"{chunk_name(k)}: {why}; recomputing it")
                report.repaired.append(k)
            seeds = chunk_seeds(manifest, k)
            write_chunk(out_dir, k, runner.run(seeds, bar))
            report.computed.append(k)
            report.samples_computed += len(seeds)
    distributed.barrier()
    return report
