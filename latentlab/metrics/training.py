"""Metrics during training: evaluators for the training loop, and a run's metrics over training.

    from latentlab.metrics.training import training_evaluators
    from latentlab.train.runs import train_gan

    ev = training_evaluators("fid50k_full,pr50k3_full,ppl_wend", data="ffhq256.zip")
    train_gan("ffhq256.zip", "runs/ffhq", 100000, resolution=256, evaluators=ev)   # metrics-eval.csv in the run

The training loop (`latentlab.train.loop.Trainer`) calls each evaluator on G_ema at its snapshots (as StyleGAN2-ADA
does) and logs the values to the run's metrics-eval.csv and TensorBoard; `train` never imports this package, so the
evaluators are built here and handed over.

Names: those of `latentlab metrics` (`compute.parse_metric`: fid50k_full, kid50k_full, pr50k3_full, fid50k, kid50k,
pr50k3, any count such as fid2k_full) and StyleGAN2-ADA's PPL metrics, 50 000 pairs each (`ppl_samples`), epsilon
1e-4, computed by `latentlab.studies.ppl.perceptual_path_length`: ppl_zfull, ppl_wfull, ppl_zend, ppl_wend (with
the FFHQ face crop, as NVIDIA's) and ppl2_wend (no crop, for other datasets). FID/KID/PR metrics are computed
together in one pass (`compute.compute_metrics`: images rendered once, dataset statistics cached on disk); the
values are kept for the G_ema they belong to, so calling the evaluators one after the other on the same networks
computes them once.

`read_training_metrics` and `plot_training_metrics` turn a run's metrics-eval.csv into StyleGAN's
metric-over-training figure (`latentlab metrics --run DIR`).
"""

from __future__ import annotations

import itertools
import os
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from ..errors import ConfigError
from ..utils.validate import check_int

__all__ = [
    "PPL_METRICS",
    "PPL_SAMPLES",
    "TrainingEvaluators",
    "parse_training_metrics",
    "training_evaluators",
    "read_training_metrics",
    "plot_training_metrics",
]

# StyleGAN2-ADA's PPL metrics: name -> (space, sampling, crop); 50 000 pairs, epsilon 1e-4 (metric_main.py).
PPL_METRICS = {
    "ppl_zfull": ("z", "full", True),
    "ppl_wfull": ("w", "full", True),
    "ppl_zend": ("z", "end", True),
    "ppl_wend": ("w", "end", True),
    "ppl2_wend": ("w", "end", False),
}
PPL_SAMPLES = 50_000
PPL_EPSILON = 1e-4
# What a run records (options.metrics_settings) to rebuild its evaluators on resume.
SETTINGS_KEYS = ("extractor", "seed", "noise_mode", "ppl_samples", "ppl_random_backbone")


def _forms():
    from .compute import FORMS

    return f"{FORMS}, or {', '.join(PPL_METRICS)}"


def parse_training_metrics(names: Union[str, Sequence[str]]) -> List[str]:
    """'fid50k_full,ppl_wend' or a list -> the metric names, lower case, in order, repeats dropped; ConfigError
    naming the first unknown one (one line)."""
    from .compute import parse_metric

    items = names.split(",") if isinstance(names, str) else list(names)
    out: List[str] = []
    for item in items:
        text = str(item).strip().lower()
        if not text or text in out:
            continue
        if text not in PPL_METRICS:
            try:
                parse_metric(text)
            except ConfigError as e:
                if str(e).startswith("unknown metric"):
                    raise ConfigError(f"unknown metric {str(item).strip()!r}; use {_forms()}") from None
                raise
        out.append(text)
    if not out:
        raise ConfigError(f"no metric given; use {_forms()}")
    return out


class TrainingEvaluators(dict):
    """{metric name: evaluator} for `Trainer(evaluators=...)`; `settings` (JSON) and `data` are recorded in the
    run's options so that a resumed run rebuilds the same evaluators (`training_evaluators(names, data,
    **settings)`) or refuses other settings."""

    settings: Dict[str, Any]
    data: Optional[str]


class _Evaluator:
    """One metric: evaluator(G) -> {result key: value}; prepare(G) checks inputs and loads networks once."""

    def __init__(self, name, group):
        self.name = name
        self.group = group

    def prepare(self, G):
        self.group.prepare(G)

    def __call__(self, G):
        return self.group.values(self.name, G)

    def __repr__(self):
        return f"<training metric {self.name}>"


def _weights_state(G):
    """A token that changes whenever G's parameters or buffers are written (torch's per-tensor version counters)."""
    return tuple(t._version for t in itertools.chain(G.parameters(), G.buffers()))


class _Distribution:
    """FID / KID / precision-recall metrics computed together by `compute_metrics`, cached per state of G."""

    def __init__(self, names, data, extractors, kw):
        self.names, self.data, self.extractor_specs, self.kw = list(names), data, extractors, kw
        self.extractors = None
        self.cached = None  # (weakref to G, its state token, {result key: value})

    def prepare(self, G):
        if self.extractors is not None:
            return
        from ..truncation.base import generator_device
        from .compute import _check_counts, load_extractor, parse_metric
        from .sources import check_dataset_resolution, check_image_channels, open_dataset

        specs = [parse_metric(n) for n in self.names]
        channels = check_image_channels(G)
        c_dim = int(getattr(G, "c_dim", 0) or 0)
        ds = open_dataset(self.data, int(G.img_resolution), channels, use_labels=c_dim > 0)
        if c_dim and ds.label_dim != c_dim:
            raise ConfigError(f"{self.data}: dataset labels have {ds.label_dim} values, the generator expects {c_dim}")
        check_dataset_resolution(ds, int(G.img_resolution))
        _check_counts(specs, len(ds.names), self.data)
        device = self.kw["device"] if self.kw["device"] is not None else generator_device(G)
        built, extractors = {}, {}
        for kind in sorted({s.kind for s in specs}):
            key, build = load_extractor(self.extractor_specs[kind], G, kind, device, self.kw["model_spec"], True)
            if key not in built:
                built[key] = build()
            extractors[kind] = built[key]
        self.extractors = extractors

    def values(self, name, G):
        from .compute import compute_metrics, metric_values, parse_metric

        self.prepare(G)
        state = _weights_state(G)
        if self.cached is None or self.cached[0]() is not G or self.cached[1] != state:
            self.cached = None
            results = compute_metrics(
                G,
                self.data,
                self.names,
                extractor=self.extractors,
                seed=self.kw["seed"],
                batch_size=self.kw["batch_size"],
                device=self.kw["device"],
                cache=self.kw["cache"],
                cache_dir=self.kw["cache_dir"],
                progress=self.kw["progress"],
                noise_mode=self.kw["noise_mode"],
                model_spec=self.kw["model_spec"],
                log=self.kw["log"],
            )
            self.cached = (weakref.ref(G), state, metric_values(results))
        found = self.cached[2]
        return {k: found[k] for k in parse_metric(name).result_keys}


class _PPL:
    """StyleGAN2-ADA's PPL metrics (`studies.ppl.perceptual_path_length`), sharing one LPIPS distance."""

    def __init__(self, data, kw, distance=None, random_backbone=False):
        self.data, self.kw = data, kw
        self.distance, self.random_backbone = distance, random_backbone
        self.labels = None
        self.prepared = False

    def prepare(self, G):
        if self.prepared:
            return
        from ..truncation.base import generator_device

        if int(getattr(G, "c_dim", 0) or 0):  # NVIDIA's PPL draws the dataset's labels
            if self.data is None:
                raise ConfigError("PPL of a conditional generator needs the dataset's labels: give the real data")
            from ..studies.ppl import dataset_labels

            self.labels = dataset_labels(self.data, G)
        if self.distance is None:
            from ..studies.ppl import LPIPSDistance

            device = self.kw["device"] if self.kw["device"] is not None else generator_device(G)
            self.distance = LPIPSDistance(pretrained_backbone=not self.random_backbone).to(device)
        self.prepared = True

    def values(self, name, G):
        from ..studies.ppl import perceptual_path_length
        from ..truncation.base import generator_device
        from ..utils.progress import progress_bar, rank_share

        self.prepare(G)
        space, sampling, crop = PPL_METRICS[name]
        n = self.kw["ppl_samples"]
        device = self.kw["device"] if self.kw["device"] is not None else generator_device(G)
        with progress_bar(
            total=rank_share(n), desc=f"metrics: {name}", unit="pair", enabled=self.kw["progress"], what="PPL pairs"
        ) as bar:
            res = perceptual_path_length(
                G,
                n,
                space=space,
                sampling=sampling,
                crop=crop,
                epsilon=PPL_EPSILON,
                distance=self.distance,
                batch_size=self.kw["batch_size"],
                seed=self.kw["seed"],
                device=device,
                progress=bar,
                labels=self.labels,
            )
        return {name: res.mean}


def _once(log):
    """`log`, saying each distinct line once (the cache lines would otherwise repeat at every evaluation)."""
    if log is None:
        return None
    seen = set()

    def say(text):
        if text not in seen:
            seen.add(text)
            log(text)

    return say


def _resolve_extractors(extractor, kinds, model_spec):
    """{family: spec} of the families in use: 'auto' resolved as `latentlab metrics` does (by the model's name:
    the generator being trained is not known yet), a spec or a per-family dict checked, an object kept."""
    from .extractors import resolve_extractor_spec

    if isinstance(extractor, dict):
        unknown = sorted(set(extractor) - {"fid", "kid", "pr"})
        if unknown:
            raise ConfigError(f"extractor dict keys must be fid, kid or pr, got {unknown}")
    out = {}
    for kind in kinds:
        spec = extractor.get(kind, "auto") if isinstance(extractor, dict) else extractor
        out[kind] = resolve_extractor_spec(spec, None, kind, model_spec) if isinstance(spec, str) else spec
    return out


def training_evaluators(
    names: Union[str, Sequence[str]],
    data=None,
    extractor: Any = "auto",
    seed: int = 0,
    batch_size: int = 64,
    device=None,
    noise_mode: str = "random",
    ppl_samples: int = PPL_SAMPLES,
    ppl_distance: Optional[Callable] = None,
    ppl_random_backbone: bool = False,
    cache: bool = True,
    cache_dir: Optional[str] = None,
    model_spec: Optional[str] = None,
    progress: bool = False,
    log: Optional[Callable[[str], None]] = None,
) -> TrainingEvaluators:
    """Evaluators of the named metrics for `Trainer(evaluators=...)` / `train_gan(..., evaluators=...)`.

    names: metric names or one comma-separated string (module docstring); unknown ones are refused here.
    data: the real images (folder or zip at the generator's resolution; dataset.json labels for conditional
      models), needed by FID/KID/PR and by PPL of conditional models. Checked against the generator by the
      evaluators' `prepare`, which the loop calls before the first training step.
    extractor: as `compute_metrics`' ('auto', a spec, {'fid'/'kid'/'pr': spec} or an extractor object); 'auto'
      is resolved now (by `model_spec`, the fine-tuned model's name: the embedded model gets its toyfaces
      features) and recorded, so a resumed run uses the same networks.
    seed: the generated images and KID subsets (compute_metrics), PPL's pairs: the same at every evaluation.
    batch_size, device [default: G_ema's], noise_mode, cache, cache_dir, progress, log: as compute_metrics'.
    ppl_samples: pairs per PPL metric (NVIDIA's 50 000). ppl_distance: the PPL distance (default LPIPS-VGG,
      `studies.ppl.LPIPSDistance`; ppl_random_backbone=True: its untrained VGG, for offline smoke runs, recorded).

    Returns a `TrainingEvaluators` dict in the order of `names`, with `settings` (the JSON record of extractor,
    seed, noise_mode and the PPL settings: SETTINGS_KEYS) and `data` (absolute path).
    """
    names = parse_training_metrics(names)
    seed = check_int("seed", seed, lo=0)
    batch_size = check_int("batch_size", batch_size, lo=1)
    ppl_samples = check_int("ppl_samples", ppl_samples, lo=2)
    if noise_mode not in ("random", "const", "none"):
        raise ConfigError(f"noise_mode must be random, const or none, got {noise_mode!r}")
    dist = [n for n in names if n not in PPL_METRICS]
    if data is not None:
        data = os.path.abspath(os.fspath(data))
        if not os.path.exists(data):
            raise ConfigError(f"metrics data {data}: no such folder or zip file")
    elif dist:
        raise ConfigError(f"{dist[0]} compares with real images: give the data (a folder or zip)")
    kw = dict(
        seed=seed,
        batch_size=batch_size,
        device=device,
        noise_mode=noise_mode,
        ppl_samples=ppl_samples,
        cache=cache,
        cache_dir=cache_dir,
        model_spec=model_spec,
        progress=progress,
        log=_once(log),
    )
    from .compute import parse_metric

    kinds = sorted({parse_metric(n).kind for n in dist})
    extractors = _resolve_extractors(extractor, kinds, model_spec)
    out = TrainingEvaluators()
    group = _Distribution(dist, data, extractors, kw) if dist else None
    ppl = _PPL(data, kw, ppl_distance, ppl_random_backbone) if len(dist) < len(names) else None
    for n in names:
        out[n] = _Evaluator(n, ppl if n in PPL_METRICS else group)
    recorded = {k: v if isinstance(v, str) else getattr(v, "cache_id", repr(v)) for k, v in extractors.items()}
    out.settings = {"extractor": recorded, "seed": seed, "noise_mode": noise_mode}
    if ppl is not None:
        out.settings["ppl_samples"] = ppl_samples
        if ppl_random_backbone:
            out.settings["ppl_random_backbone"] = True
    out.data = data
    return out


# ---- a run's metrics over training ----------------------------------------------------------------------------------
LOWER_IS_BETTER = ("fid", "kid", "ppl")
HIGHER_IS_BETTER = ("_precision", "_recall")


def better(metric: str) -> Optional[str]:
    """'min' for FID, KID and PPL, 'max' for precision and recall, None for other metrics."""
    if metric.endswith(HIGHER_IS_BETTER):
        return "max"
    if metric.startswith(LOWER_IS_BETTER):
        return "min"
    return None


def read_training_metrics(run_dir, select: Optional[Sequence[str]] = None) -> Dict[str, List[dict]]:
    """{result key: rows sorted by step} of the run folder's metrics-eval.csv (`latentlab.train.evaluation`).

    select: metric names to keep (a name keeps its result keys: pr50k3 keeps pr50k3_precision and
    pr50k3_recall). ConfigError (one line) when the folder or its log is missing, empty or damaged.
    """
    from ..train.evaluation import EVAL_FILE, read_eval_log

    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise ConfigError(f"--run {run_dir}: no such folder")
    path = os.path.join(run_dir, EVAL_FILE)
    if not os.path.isfile(path):
        raise ConfigError(
            f"--run {run_dir}: no {EVAL_FILE} (train with --metrics NAMES to evaluate metrics during training)"
        )
    rows = read_eval_log(path, missing_ok=False)
    by: Dict[str, Dict[int, dict]] = {}
    for r in rows:
        by.setdefault(r["metric"], {})[r["step"]] = r  # a repeated step: the last row counts
    if select:
        wanted = [str(s).strip().lower() for s in select if str(s).strip()]
        keep = {k for k in by if any(k == w or k.startswith(w + "_") for w in wanted)}
        missing = [w for w in wanted if not any(k == w or k.startswith(w + "_") for k in by)]
        if missing:
            raise ConfigError(f"{path}: no values of {', '.join(missing)} (it has {', '.join(sorted(by)) or 'none'})")
        by = {k: v for k, v in by.items() if k in keep}
    if not by:
        raise ConfigError(f"{path}: holds no metric values yet")
    return {k: [v[s] for s in sorted(v)] for k, v in by.items()}


def summary_rows(series: Dict[str, List[dict]]) -> List[tuple]:
    """[(metric, evaluations, first value, last value, best value, kimg of the best or None)]."""
    out = []
    for k, rows in series.items():
        vals = [r["value"] for r in rows]
        way = better(k)
        finite = [(r["value"], r["kimg"]) for r in rows if r["value"] == r["value"]]
        if way and finite:
            best = min(finite) if way == "min" else max(finite, key=lambda x: (x[0], -x[1]))
        else:
            best = (float("nan"), None)
        out.append((k, len(rows), vals[0], vals[-1], best[0], best[1]))
    return out


def plot_training_metrics(series: Dict[str, List[dict]], out_dir, title: Optional[str] = None) -> List[str]:
    """StyleGAN's metric-over-training figure and its table: training-metrics.png/.pdf (one panel per metric, the
    value against kimg, the best one marked) and training-metrics.csv (step, kimg, snapshot, one column per
    metric), written atomically into out_dir; returns the paths."""
    import csv
    import io

    from ..studies.plots import _plt, save_figure
    from ..utils.atomic import write_text

    os.makedirs(out_dir, exist_ok=True)
    keys = list(series)
    steps = sorted({r["step"] for rows in series.values() for r in rows})
    at = {k: {r["step"]: r for r in rows} for k, rows in series.items()}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", "kimg", "snapshot", *keys])
    for s in steps:
        first = next(at[k][s] for k in keys if s in at[k])
        w.writerow(
            [s, repr(first["kimg"]), first["snapshot"], *(repr(at[k][s]["value"]) if s in at[k] else "" for k in keys)]
        )
    csv_path = os.path.join(out_dir, "training-metrics.csv")
    write_text(csv_path, buf.getvalue())

    plt = _plt()
    cols = min(len(keys), 3)
    nrows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    for ax, k in zip(axes.flat, keys):
        rows = series[k]
        x, y = [r["kimg"] for r in rows], [r["value"] for r in rows]
        ax.plot(x, y, marker="o", markersize=3, linewidth=1.5)
        way = better(k)
        finite = [(v, kx) for v, kx in zip(y, x) if v == v]
        if way and finite:
            v, kx = min(finite) if way == "min" else max(finite, key=lambda t: (t[0], -t[1]))
            ax.plot([kx], [v], marker="*", markersize=11, color="tab:red", linestyle="none", label=f"best {v:.4g}")
            ax.legend(fontsize=8, loc="best")
        ax.set_title(k, fontsize=10)
        ax.set_xlabel("kimg")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return [csv_path, *save_figure(fig, os.path.join(out_dir, "training-metrics"))]
