"""Named distribution metrics of a generator against a dataset, as StyleGAN2-ADA's `metric_main.py` names them.

    from latentlab.metrics.compute import compute_metrics
    res = compute_metrics(G, "ffhq.zip", ["fid50k_full", "kid50k_full", "pr50k3_full"])
    res["fid50k_full"]["fid50k_full"]                # the value, under NVIDIA's result key
    res["pr50k3_full"]["pr50k3_full_precision"], res["pr50k3_full"]["pr50k3_full_recall"]
    metric_values(res)                                # {result key: value} of every metric

Names (`parse_metric`): NVIDIA's fid50k_full, kid50k_full, pr50k3_full (50 000 generated images against the
whole dataset; KID and PR cap the real images at 1 000 000 and 200 000 as NVIDIA's do) and the legacy fid50k,
kid50k, pr50k3 (against the first 50 000 real images), and any count: fid<N>[k][_full], kid<N>[k][_full],
pr<N>k<K>[_full] (K nearest neighbours), e.g. fid2k_full, kid10k, pr1k3. Without _full the real images are
the first N (as the legacy names). Real images are never x-flipped.

Work is shared: each feature extractor sees each image once, however many metrics use it; generated images are
rendered once for all extractors (`sources.generator_images`: seeded, so runs are reproducible and the first n
images of a longer run are the same n), and dataset images are read once. The extractor is per metric:
'auto' resolves to Inception for FID/KID and VGG16 for precision/recall (toyfaces features for the embedded
model), a spec names one for all, or a dict {"fid"/"kid"/"pr": spec} per family.

Dataset statistics are cached in `<latentlab cache>/metrics-stats/` (`default_cache_dir`), one .npz per
dataset content (`sources.dataset_fingerprint`: a zip's CRCs, a folder's file hashes), extractor `cache_id`,
resolution, channels, item count and what is kept (mean/covariance and/or all features); a sweep computes
them once. Files are written atomically by one process and read back bounded and checked against their key
(a damaged or foreign file is recomputed and replaced).

torchrun: generated images and dataset items are split across ranks (`latentlab.utils.distributed.rank_items`:
item i on rank i % world_size), each chunk's features gathered back in item order (`gather_rows`) on every rank,
so every rank holds exactly the statistics a single process computes and every rank returns the same results;
precision/recall's distance rows are split and gathered likewise. Rank 0 alone writes the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..utils.validate import check_int
from .stats import FeatureStats, stats_bytes

__all__ = [
    "MetricSpec",
    "parse_metric",
    "parse_metrics",
    "compute_metrics",
    "metric_values",
    "default_cache_dir",
    "stats_cache_key",
    "FORMS",
]

KID_NUM_SUBSETS = 100
KID_MAX_SUBSET_SIZE = 1000
PR_ROW_BATCH = 10000
PR_COL_BATCH = 10000
FULL_REAL = {"fid": None, "kid": 1_000_000, "pr": 200_000}  # NVIDIA's max_real of the *_full metrics
MAX_COUNT = 10_000_000  # images one metric may ask for
FORMS = "fid<N>[k][_full], kid<N>[k][_full] or pr<N>k<K>[_full] (e.g. fid50k_full, kid50k_full, pr50k3_full, fid2k)"
CACHE_FORMAT = "latentlab-metrics-stats"
CACHE_VERSION = 1

_FID_KID = re.compile(r"^(fid|kid)(\d+)(k?)(_full)?$")
_PR = re.compile(r"^pr(\d+)k(\d+)(_full)?$")


@dataclass(frozen=True)
class MetricSpec:
    """A parsed metric name. kind: 'fid', 'kid' or 'pr'; num_gen: generated images; max_real: real images at
    most (None: all); k: precision/recall's neighbourhood size (0 otherwise)."""

    name: str
    kind: str
    num_gen: int
    max_real: Optional[int]
    k: int = 0

    @property
    def result_keys(self) -> Tuple[str, ...]:
        """NVIDIA's result keys of this metric."""
        if self.kind == "pr":
            return (f"{self.name}_precision", f"{self.name}_recall")
        return (self.name,)

    def num_real(self, available: int) -> int:
        """Real images used from a dataset of `available` images."""
        return available if self.max_real is None else min(available, self.max_real)


def parse_metric(name: str) -> MetricSpec:
    """A metric name (see FORMS) -> MetricSpec; ConfigError naming it otherwise."""
    text = str(name).strip().lower()
    m = _FID_KID.match(text)
    if m:
        kind, count, full = m.group(1), int(m.group(2)) * (1000 if m.group(3) else 1), bool(m.group(4))
        k = 0
    else:
        m = _PR.match(text)
        if not m:
            hint = " (PPL is `latentlab ppl`)" if text.startswith("ppl") else ""
            raise ConfigError(f"unknown metric {name!r}{hint}; use {FORMS}")
        kind, count, k, full = "pr", int(m.group(1)) * 1000, int(m.group(2)), bool(m.group(3))
        if k < 1:
            raise ConfigError(f"metric {name!r}: precision/recall needs k >= 1 neighbours")
    if count < 2 or count > MAX_COUNT:
        raise ConfigError(f"metric {name!r}: the image count must be in 2..{MAX_COUNT}, got {count}")
    return MetricSpec(text, kind, count, FULL_REAL[kind] if full else count, k)


def parse_metrics(names: Union[str, Sequence[str]]) -> List[MetricSpec]:
    """'fid50k_full,pr50k3_full' or a list -> MetricSpecs in order (repeats dropped); ConfigError for none."""
    items = names.split(",") if isinstance(names, str) else list(names)
    specs: List[MetricSpec] = []
    for item in items:
        if str(item).strip():
            spec = parse_metric(item)
            if spec.name not in [s.name for s in specs]:
                specs.append(spec)
    if not specs:
        raise ConfigError(f"no metric given; use {FORMS}")
    return specs


def metric_values(results: Dict[str, Dict[str, Any]]) -> Dict[str, float]:
    """{NVIDIA result key: value} of every metric in a `compute_metrics` result (metadata left out)."""
    out = {}
    for name, entry in results.items():
        for key in parse_metric(name).result_keys:
            out[key] = entry[key]
    return out


def default_cache_dir() -> str:
    """<latentlab cache>/metrics-stats ($LATENTLAB_CACHE or ~/.cache/latentlab)."""
    from ..checkpoints.download import cache_dir

    return os.path.join(cache_dir(), "metrics-stats")


# ---- torchrun helpers ---------------------------------------------------------------------------------------------
def _ranks() -> Tuple[int, int]:
    from ..utils.distributed import world

    return world() or (0, 1)


def _from_rank0(obj):
    """rank 0's `obj` on every rank (itself without a process group)."""
    from ..utils import distributed

    if not distributed.is_active() or distributed.world()[1] == 1:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


# ---- extractors ---------------------------------------------------------------------------------------------------
def load_extractor(spec, G, purpose: str, device, model_spec=None, progress: bool = False):
    """(key, build) of the extractor for one metric family: build() returns it. An object is used as is; 'auto'
    or a spec string goes through `extractors.resolve_extractor_spec` and `extractors.get_extractor`; a dict picks
    by family ('fid', 'kid', 'pr'; a missing family: 'auto'). key: the resolved spec (or the object's id), so
    metrics that resolve to the same extractor share it."""
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"fid", "kid", "pr"})
        if unknown:
            raise ConfigError(f"extractor dict keys must be fid, kid or pr, got {unknown}")
        spec = spec.get(purpose, "auto")
    if not isinstance(spec, str):
        if not callable(spec) or not hasattr(spec, "feature_dim"):
            raise ConfigError(f"a feature extractor must be callable and have feature_dim and cache_id, got {spec!r}")
        return f"object-{id(spec)}", lambda: spec
    from .extractors import get_extractor, resolve_extractor_spec

    resolved = resolve_extractor_spec(spec, G, purpose, model_spec)
    return resolved, lambda: get_extractor(resolved, device=device, progress=progress)


# ---- the cache of dataset statistics ---------------------------------------------------------------------------------
def stats_cache_key(fingerprint, num_images, resolution, channels, count, cache_id, capture_all, capture_mean_cov):
    """The settings a cached dataset statistics file is valid for (a JSON-able dict)."""
    return {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "dataset": fingerprint,
        "dataset_images": int(num_images),
        "resolution": int(resolution),
        "channels": int(channels),
        "items": int(count),
        "xflip": False,
        "extractor": cache_id,
        "capture_all": bool(capture_all),
        "capture_mean_cov": bool(capture_mean_cov),
    }


def _cache_path(folder, data_name, key):
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", data_name)[:40] or "data"
    return os.path.join(folder, f"{stem}-{key['extractor'][:40]}-{digest}.npz")


def _try_load(path, key, feature_dim, log):
    if not os.path.isfile(path):
        return None
    try:
        stats = FeatureStats.load(
            path, max_bytes=stats_bytes(key["items"], feature_dim, key["capture_all"], key["capture_mean_cov"])
        )
    except (ConfigError, OSError) as e:
        _log(log, f"ignoring a damaged statistics cache file ({e}); recomputing")
        return None
    if stats.info.get("key") != key or stats.num_items != key["items"] or stats.num_features != feature_dim:
        _log(log, f"{path}: cached statistics of other settings; recomputing")
        return None
    return stats


def _log(log, text):
    if log is not None:
        log(text)


# ---- streaming features across ranks ---------------------------------------------------------------------------------
class _Consumer:
    """One extractor's statistics fed from one image stream (several FeatureStats of different max_items)."""

    def __init__(self, extractor, stats: List[FeatureStats]):
        self.extractor = extractor
        self.stats = stats

    @property
    def done(self):
        return all(s.is_full() for s in self.stats)


def _stream(batches, total, batch_size, consumers, rank, world):
    """Feed `total` items to every consumer in item order: chunks of batch_size * world items, rank r computing
    the features of the chunk's items i with i % world == r (the next batch of `batches`, this rank's images in
    order), then every rank gathering the chunk's rows in order (`gather_rows`)."""
    from ..utils.distributed import gather_rows

    chunk = batch_size * world
    for c0 in range(0, total, chunk):
        if all(c.done for c in consumers):
            break
        n = min(chunk, total - c0)
        mine = [i for i in range(c0, c0 + n) if i % world == rank]
        images = next(batches) if mine else None
        if images is not None and len(images) != len(mine):
            raise RuntimeError(f"image stream out of step: {len(images)} images for {len(mine)} items")
        for c in consumers:
            if c.done:
                continue
            ext = c.extractor
            if mine:
                feats = ext(images.to(getattr(ext, "device", images.device)))
                rows = feats.detach().to("cpu", torch.float32).numpy()
            else:
                rows = np.zeros([0, int(ext.feature_dim)], dtype=np.float32)
            rows = gather_rows([i - c0 for i in mine], rows, n)
            for s in c.stats:
                s.append(rows)


# ---- precision / recall across ranks --------------------------------------------------------------------------------
def _precision_recall_split(real, gen, k, row_batch, col_batch, device, rank, world, progress=None):
    """NVIDIA's precision and recall (`precision_recall.precision_recall`), the distance rows split across ranks."""
    from ..utils.distributed import gather_rows, rank_items
    from .precision_recall import as_half_features, coverage, manifold_radii

    r = as_half_features(real, "real features", device)
    g = as_half_features(gen, "generated features", device)
    if r.shape[1] != g.shape[1]:
        raise ConfigError(f"precision/recall: real features have {r.shape[1]} dimensions, generated ones {g.shape[1]}")
    out = []
    for manifold, probes in ((r, g), (g, r)):
        mine = rank_items(len(manifold), rank, world)
        radii = manifold_radii(manifold, k, mine, row_batch, col_batch, progress)
        radii = torch.from_numpy(gather_rows(mine, radii.cpu().numpy(), len(manifold))).to(manifold.device)
        mine = rank_items(len(probes), rank, world)
        inside = coverage(probes, manifold, radii, mine, row_batch, col_batch, progress)
        inside = gather_rows(mine, inside.cpu().numpy(), len(probes))
        out.append(float(inside.sum()) / len(probes))
    return out[0], out[1]


# ---- the entry point ------------------------------------------------------------------------------------------------
def _check_counts(specs, num_real_available, data_name):
    for s in specs:
        nr = s.num_real(num_real_available)
        if s.kind == "fid" and nr < 2:
            raise ConfigError(f"{s.name}: FID needs at least 2 real images for a covariance; {data_name} holds {nr}")
        if s.kind == "kid" and nr < 2:
            raise ConfigError(
                f"{s.name}: KID needs at least 2 real images for its subsets (subsets of "
                f"min(generated, real, {KID_MAX_SUBSET_SIZE})); {data_name} holds {nr}"
            )
        if s.kind == "pr" and nr < s.k + 1:
            raise ConfigError(
                f"{s.name}: precision/recall with k = {s.k} needs at least {s.k + 1} real images; {data_name} holds {nr}"
            )


def compute_metrics(
    G,
    data,
    names: Union[str, Sequence[str]] = ("fid50k_full",),
    extractor: Any = "auto",
    truncation=None,
    seed: int = 0,
    batch_size: int = 64,
    device=None,
    cache: bool = True,
    cache_dir: Optional[str] = None,
    progress: bool = False,
    noise_mode: str = "random",
    fit_samples: int = 10000,
    model_spec: Optional[str] = None,
    pr_row_batch: int = PR_ROW_BATCH,
    pr_col_batch: int = PR_COL_BATCH,
    log: Optional[Callable[[str], None]] = None,
) -> Dict[str, Dict[str, Any]]:
    """Compute the named metrics of generator G against the images of `data` (a folder or zip at G's resolution).

    names: metric names or one comma-separated string (see the module docstring and `FORMS`).
    extractor: 'auto', a spec ('inception', 'vgg16', 'toyfaces', 'clip', '*-untrained', ...), a dict
      {'fid'/'kid'/'pr': spec}, or an extractor object (callable uint8 [N, 3, H, W] -> float32 [N, F] with
      name, feature_dim and cache_id).
    truncation: None, a `latentlab.truncation.Truncation` or a spec ('w:0.7', 'clusters:FILE.npz', ...); one that
      needs fitting is fitted on `fit_samples` samples (seed `seed`).
    seed: the generated images' random stream (`sources.generator_images`) and KID's subsets.
    batch_size: images per batch per process. device: where G and the extractors run [default: G's device];
      G is copied there when it is elsewhere. cache / cache_dir: the dataset-statistics cache [default folder:
      `default_cache_dir()`]. progress: show progress bars (rank 0). noise_mode: 'random' (NVIDIA's), 'const',
      'none'. model_spec: the --model string, so that 'auto' recognises the embedded model by name.
    pr_row_batch / pr_col_batch: precision/recall's distance blocks (memory ~ 2 x row x col float32 values).
    log: a callable told about cache use and fitting (e.g. a line on stderr).

    Returns {name: {result key(s): value, 'num_gen', 'num_real', 'extractor' (cache_id), ...}}: NVIDIA's result
    keys (fid50k_full; kid50k_full; pr50k3_full_precision and pr50k3_full_recall), the same on every rank.
    """
    import copy

    from ..truncation.base import generator_device
    from ..utils.progress import progress_bar, rank_share
    from .fid import fid_from_stats
    from .kid import kid
    from .sources import (
        _truncation,
        check_dataset_resolution,
        check_image_channels,
        dataset_fingerprint,
        dataset_images,
        generator_images,
        open_dataset,
    )

    specs = parse_metrics(names)
    batch_size = check_int("batch_size", batch_size, lo=1)
    if noise_mode not in ("random", "const", "none"):
        raise ConfigError(f"noise_mode must be random, const or none, got {noise_mode!r}")
    seed = check_int("seed", seed, lo=0)
    channels = check_image_channels(G)
    resolution = int(G.img_resolution)
    rank, world = _ranks()

    # -- inputs, checked before any work
    dev = torch.device(device) if device is not None else generator_device(G)
    if generator_device(G) != dev:
        G = copy.deepcopy(G).to(dev)
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    ds = open_dataset(data, resolution, channels, use_labels=c_dim > 0)
    data_name = os.path.basename(os.path.normpath(os.fspath(data)))
    if c_dim and ds.label_dim != c_dim:
        raise ConfigError(f"{data}: dataset labels have {ds.label_dim} values, the generator expects {c_dim}")
    check_dataset_resolution(ds, resolution)
    available = len(ds.names)
    _check_counts(specs, available, data)
    t = None
    if truncation is not None:
        from ..truncation import Truncation, parse_truncation

        t = truncation
        if hasattr(truncation, "truncation") and hasattr(truncation, "spec"):  # a studies.reports.TruncationRow
            if getattr(truncation, "choose", None):
                raise ConfigError(f"{truncation.spec}: metrics of chosen clusters (choose) are not supported")
            t = truncation.truncation
        t = t if isinstance(t, Truncation) else parse_truncation(t)
        if t.requires_fit and not t.is_fitted:
            _log(log, f"fitting truncation {t.name} on {fit_samples} samples ...")
            t.fit(G, n_samples=fit_samples, seed=seed, progress=progress)
        t = _truncation(t)

    # -- extractors, one per distinct resolved spec
    extractors: Dict[str, Any] = {}
    spec_extractor: Dict[str, str] = {}
    for s in specs:
        key, build = load_extractor(extractor, G, s.kind, dev, model_spec, progress)
        if key not in extractors:
            extractors[key] = build()
        spec_extractor[s.name] = key

    # -- what each extractor needs: {count: [capture_all, capture_mean_cov]} for generated and real images
    gen_need: Dict[str, Dict[int, List[bool]]] = {k: {} for k in extractors}
    real_need: Dict[str, Dict[int, List[bool]]] = {k: {} for k in extractors}
    for s in specs:
        ek = spec_extractor[s.name]
        for need, count in ((gen_need[ek], s.num_gen), (real_need[ek], s.num_real(available))):
            flags = need.setdefault(count, [False, False])
            flags[0] |= s.kind in ("kid", "pr")
            flags[1] |= s.kind == "fid"

    # -- real statistics: from the cache, else one pass over the dataset for every extractor
    folder = cache_dir or default_cache_dir()
    fingerprint = None
    if cache:
        with progress_bar(
            total=available if os.path.isdir(ds.path) else 0,
            desc="metrics: hashing the dataset",
            unit="img",
            enabled=progress and os.path.isdir(ds.path),
            what="dataset files",
        ) as bar:
            fingerprint = dataset_fingerprint(ds, progress=bar)
    real_stats: Dict[Tuple[str, int], FeatureStats] = {}
    to_compute: Dict[str, List[Tuple[int, FeatureStats, Optional[dict]]]] = {}
    for ek, need in real_need.items():
        ext = extractors[ek]
        cache_id = getattr(ext, "cache_id", None)
        for count, (cap_all, cap_mc) in need.items():
            key = None
            found = None
            if cache and cache_id:
                key = stats_cache_key(fingerprint, available, resolution, channels, count, cache_id, cap_all, cap_mc)
                candidates = [key, dict(key, capture_all=True, capture_mean_cov=True)]
                hit = None
                if rank == 0:  # rank 0 decides (all ranks must agree), the others read the same file
                    for i, kk in enumerate(candidates):
                        found = _try_load(_cache_path(folder, data_name, kk), kk, ext.feature_dim, log)
                        if found is not None:
                            hit = i
                            break
                hit = _from_rank0(hit)
                if hit is not None:
                    path = _cache_path(folder, data_name, candidates[hit])
                    if rank != 0:
                        found = _try_load(path, candidates[hit], ext.feature_dim, log)
                        if found is None:
                            raise ConfigError(f"{path}: cached statistics could not be read on rank {rank}")
                    _log(log, f"real-image statistics ({cache_id}, {count} images): from the cache {path}")
            if found is not None:
                real_stats[(ek, count)] = found
            else:
                st = FeatureStats(capture_all=cap_all, capture_mean_cov=cap_mc, max_items=count)
                real_stats[(ek, count)] = st
                to_compute.setdefault(ek, []).append((count, st, key))
    if to_compute:
        total = max(count for items in to_compute.values() for count, _, _ in items)
        consumers = [_Consumer(extractors[ek], [st for _, st, _ in items]) for ek, items in to_compute.items()]
        with progress_bar(
            total=rank_share(total), desc="metrics: real images", unit="img", enabled=progress, what="real images"
        ) as bar:
            batches = dataset_images(
                ds,
                resolution,
                channels,
                max_items=total,
                batch_size=batch_size,
                indices=[i for i in range(total) if i % world == rank],
                progress=bar,
            )
            _stream(batches, total, batch_size, consumers, rank, world)
        for items in to_compute.values():
            for count, st, key in items:
                if st.num_items != count:
                    raise RuntimeError(f"{st.num_items} real features for {count} items")
                if key is not None and rank == 0:
                    st.info = {"key": key, "data": os.fspath(data)}
                    path = _cache_path(folder, data_name, key)
                    try:
                        st.save(path)
                        _log(log, f"real-image statistics cached in {path}")
                    except OSError as e:
                        _log(log, f"could not write the statistics cache ({e}); continuing without it")

    # -- generated statistics: one pass, every extractor fed from the same images
    gen_stats: Dict[Tuple[str, int], FeatureStats] = {}
    consumers = []
    for ek, need in gen_need.items():
        group = []
        for count, (cap_all, cap_mc) in need.items():
            gen_stats[(ek, count)] = st = FeatureStats(capture_all=cap_all, capture_mean_cov=cap_mc, max_items=count)
            group.append(st)
        consumers.append(_Consumer(extractors[ek], group))
    num_gen = max(s.num_gen for s in specs)
    with progress_bar(
        total=rank_share(num_gen),
        desc="metrics: generated images",
        unit="img",
        enabled=progress,
        what="generated images",
    ) as bar:
        batches = generator_images(
            G,
            num_gen,
            seed=seed,
            batch_size=batch_size,
            truncation=t,
            noise_mode=noise_mode,
            labels=ds.labels if c_dim else None,
            indices=[i for i in range(num_gen) if i % world == rank],
            device=dev,
            progress=bar,
        )
        _stream(batches, num_gen, batch_size, consumers, rank, world)

    # -- the metrics
    results: Dict[str, Dict[str, Any]] = {}
    for s in specs:
        ek = spec_extractor[s.name]
        ext = extractors[ek]
        nr = s.num_real(available)
        g, r = gen_stats[(ek, s.num_gen)], real_stats[(ek, nr)]
        entry: Dict[str, Any] = {}
        if s.kind == "fid":
            entry[s.name] = fid_from_stats(*g.get_mean_cov(), *r.get_mean_cov())
        elif s.kind == "kid":
            entry[s.name] = kid(g.get_all(), r.get_all(), KID_NUM_SUBSETS, KID_MAX_SUBSET_SIZE, seed=seed)
            entry["kid_subset_size"] = min(s.num_gen, nr, KID_MAX_SUBSET_SIZE)
        else:
            rows = 2 * (s.num_gen + nr)
            with progress_bar(
                total=rank_share(rows), desc=f"metrics: {s.name}", unit="row", enabled=progress, what="distance rows"
            ) as bar:
                p, rc = _precision_recall_split(
                    r.get_all(), g.get_all(), s.k, pr_row_batch, pr_col_batch, dev, rank, world, bar
                )
            entry[f"{s.name}_precision"], entry[f"{s.name}_recall"] = p, rc
            entry["k"] = s.k
        entry.update(num_gen=s.num_gen, num_real=nr, extractor=getattr(ext, "cache_id", None) or ek)
        results[s.name] = entry
    return results
