"""Truncation sweeps: FID and precision/recall of truncation variants over a range of strengths psi, the evaluation
of the multi-level structuring paper (Katzir et al. 2022: precision vs recall and precision vs FID, StyleGAN's W
truncation against cluster truncation, one curve per variant, one point per psi).

    from latentlab.metrics.sweep import truncation_sweep
    df = truncation_sweep(G, "renders/", ["w", "clusters:k=8", "clusters:out/clusters/clusters.npz"],
                          "0.3:1.0:8", metrics="fid10k_full,pr10k3", out_dir="out/sweep")
    df[["variant", "psi", "fid", "precision", "recall"]]

Variants (`parse_variant`) are truncation specs (`latentlab.truncation.FORMS`) without their psi, which the sweep
sets at every point:

    w, w@CUTOFF                  W truncation toward w_avg (on the ws layers below CUTOFF)
    center:FILE.npy[@CUTOFF]     W truncation toward a given centre
    clusters:k=K[,OPTION=...]    multi-level cluster truncation fitted on G (the clusters:k= options but psi): fitted
                                 once (`fit_samples` codes, seed `seed`, as `compute_metrics` fits) and reused at
                                 every psi; the fitted file is kept in the output folder (fitted_N.npz)
    clusters:FILE.npz            a saved fitted or learned clusters file, its psi replaced at every point (the same
                                 override as `latentlab truncate --clusters FILE --trunc PSI`,
                                 `studies.reports.TruncationRow.clusters_file`)

A spec that fixes psi (w:0.7, center:F.npy:0.7, clusters:k=8,psi=0.5) is refused, and so are variants without one
psi (none, schedule:, z:, clamp:): psi = 1 of any variant above is the untruncated generator.

Every point is one `compute.compute_metrics` call with that point's truncation, so a sweep's numbers are exactly
those of separate `latentlab metrics` runs with the same settings. What the points share is computed once: the
feature extractors (built once, handed to every call), the dataset's statistics (written to the statistics cache
by the first point and read back by the others; with cache=False a folder of the sweep's own, `out_dir/stats`, or
a temporary one), and a fitted variant's clusters. The same seed at every point: all points truncate the same
codes z (common random numbers, so the curves are smooth in psi).

Output folder (`out_dir`): sweep.json (the settings), sweep.csv (a row per finished point, rewritten atomically
after every point, so a stop loses only the point being computed), fitted_N.npz (the N-th variant's fitted
clusters) and the figures (`sweep_figures.sweep_figures`: precision_recall, precision_fid and both as sweep; PNG
and PDF). Run again with the same settings, the sweep computes only the missing points; other settings are refused.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from ..errors import ConfigError
from ..utils.validate import check_int, check_number
from . import compute as _compute

__all__ = [
    "MAX_PSIS",
    "PSI_FORMS",
    "VARIANT_FORMS",
    "SweepVariant",
    "parse_psis",
    "parse_variant",
    "truncation_sweep",
    "read_sweep",
]

MAX_PSIS = 100
MAX_CSV_BYTES = 64 << 20  # a sweep table read back on resume
PSI_FORMS = "a value (0.7), a list (0.5,0.7,1) or start:stop:count (0.3:1.0:8, count values, both ends included)"
VARIANT_FORMS = "w, w@CUTOFF, center:FILE.npy[@CUTOFF], clusters:k=K[,OPTION=VALUE...] (no psi) or clusters:FILE.npz"
FORMAT = "latentlab-truncation-sweep"
VERSION = 1
VALUE_COLUMNS = {"fid": ("fid",), "kid": ("kid",), "pr": ("precision", "recall")}
_COMPARED = ("model", "dataset", "metrics", "extractors", "seed", "noise_mode", "fit_samples", "variants", "psis")


# ---- psi values ------------------------------------------------------------------------------------------------------
def parse_psis(spec: Union[str, float, Sequence[float]]) -> List[float]:
    """'0.7', '0.5,0.7,1' or 'start:stop:count' (count evenly spaced values, both ends included, as numpy.linspace)
    or numbers -> a list of distinct finite psi values, at most MAX_PSIS; ConfigError in one line otherwise."""
    if isinstance(spec, (int, float, np.integer, np.floating)) and not isinstance(spec, bool):
        values = [spec]
    elif isinstance(spec, (list, tuple, np.ndarray)):
        values = list(spec)
    else:
        text = str(spec).strip()
        if text.count(":") == 2:
            start, stop, count = (p.strip() for p in text.split(":"))
            try:
                n = int(count)
                lo, hi = float(start), float(stop)
            except ValueError:
                raise ConfigError(f"bad psi {text!r}: use {PSI_FORMS}") from None
            if n < 1 or n > MAX_PSIS:
                raise ConfigError(f"bad psi {text!r}: the count must be in 1..{MAX_PSIS}, got {n}")
            if n == 1 and lo != hi:
                raise ConfigError(f"bad psi {text!r}: one value between two different ends; use a single value")
            values = [float(v) for v in np.linspace(lo, hi, n)] if math.isfinite(lo) and math.isfinite(hi) else [lo]
        elif ":" in text:
            raise ConfigError(f"bad psi {text!r}: use {PSI_FORMS}")
        else:
            values = []
            for part in text.split(","):
                if not part.strip():
                    raise ConfigError(f"bad psi {text!r}: an empty value; use {PSI_FORMS}")
                try:
                    values.append(float(part))
                except ValueError:
                    raise ConfigError(f"bad psi {part.strip()!r}: not a number; use {PSI_FORMS}") from None
    out = []
    for v in values:
        try:
            out.append(check_number("psi", v))
        except ConfigError as e:
            raise ConfigError(f"bad psi: {e}") from None
    if not out:
        raise ConfigError(f"no psi given; use {PSI_FORMS}")
    if len(out) > MAX_PSIS:
        raise ConfigError(f"{len(out)} psi values, at most {MAX_PSIS} per sweep")
    if len(set(out)) != len(out):
        raise ConfigError(f"psi values repeat: {', '.join(f'{v:g}' for v in out)}")
    return out


# ---- variants --------------------------------------------------------------------------------------------------------
@dataclass
class SweepVariant:
    """One curve of a sweep: a truncation whose psi the sweep sets (`at`).

    spec: the text it was given as (the CSV's `variant` column); family: 'w', 'center', 'clusters-fit' or
    'clusters-file'; truncation: the variant (psi not yet set; a 'clusters-fit' one unfitted until `prepare`);
    path: the clusters or centre file, if any; label: its name in figures (set by `parse_variant`)."""

    spec: str
    family: str
    truncation: Any
    path: Optional[str] = None
    label: str = ""
    file_sha256: Optional[str] = field(default=None, repr=False)

    @property
    def needs_fit(self) -> bool:
        return self.family == "clusters-fit" and not self.truncation.is_fitted

    def prepare(self, G, fit_samples: int, seed: int, progress: bool = False, log=None) -> None:
        """Fit a 'clusters-fit' variant on G once (as `compute_metrics` fits one: fit_samples codes, seed)."""
        if self.needs_fit:
            _log(log, f"sweep: fitting {self.spec} on {fit_samples} samples ...")
            self.truncation.fit(G, n_samples=fit_samples, seed=seed, progress=progress)

    def at(self, psi: float):
        """The variant at psi: a shallow copy sharing the (fitted or loaded) state, its psi replaced (what
        `TruncationRow.clusters_file(path, psi)` does to a clusters file)."""
        t = copy.copy(self.truncation)
        t.psi = check_number("psi", psi)
        return t


def _refuse_fixed_psi(spec, hint):
    raise ConfigError(f"variant {spec!r} fixes psi, which the sweep sets at every point: give {hint}")


def parse_variant(spec: Union[str, SweepVariant]) -> SweepVariant:
    """A sweep variant from its spec (see the module docstring and VARIANT_FORMS); ConfigError in one line for a
    spec that fixes psi, has none, or is malformed. Clusters and centre files are read here."""
    if isinstance(spec, SweepVariant):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"a sweep variant must be a non-empty spec string ({VARIANT_FORMS}), got {spec!r}")
    from ..truncation import parse_truncation

    text = spec.strip()
    kind, sep, arg = text.partition(":")
    kind = kind.strip().lower()
    if kind == "w" or kind.startswith("w@"):
        if sep:
            _refuse_fixed_psi(text, "'w' or 'w@CUTOFF'")
        cutoff = kind[2:] if kind.startswith("w@") else ""
        if kind.startswith("w@") and not cutoff.isdigit():
            raise ConfigError(f"variant {text!r}: the cutoff {cutoff!r} is not a layer count (w@8)")
        t = parse_truncation(f"w:1@{cutoff}" if cutoff else "w:1")
        label = "W truncation" + (f" cutoff={t.cutoff}" if t.cutoff is not None else "")
        return SweepVariant(text, "w", t, label=label)
    if kind == "center" and sep:
        path, cutoff = _center_path(text, arg.strip())
        t = parse_truncation(f"center:{path}:1" + (f"@{cutoff}" if cutoff else ""))
        label = f"W truncation to {os.path.basename(path)}" + (f" cutoff={t.cutoff}" if t.cutoff is not None else "")
        return SweepVariant(text, "center", t, path=path, label=label, file_sha256=_sha256(path))
    if kind == "clusters" and sep:
        arg = arg.strip()
        if not arg:
            raise ConfigError(f"variant {text!r}: give clusters:k=K[,...] or clusters:FILE.npz")
        if "=" in arg and not os.path.exists(arg):
            parts = arg.split(",")
            keys = [p.partition("=")[0].strip().lower() for p in parts]
            if "psi" in keys:
                rest = ",".join(p.strip() for p, k in zip(parts, keys) if k != "psi")
                _refuse_fixed_psi(text, f"'clusters:{rest}'")
            t = parse_truncation(f"clusters:{arg}")
            return SweepVariant(text, "clusters-fit", t, label="fitted " + _without_psi(t.name))
        from ..studies.reports import TruncationRow

        if not os.path.exists(arg):
            raise ConfigError(f"variant {text!r}: no such file: {arg}")
        t = TruncationRow.clusters_file(arg).truncation  # fitted or learned, checked as `truncate --clusters` does
        label = f"{_without_psi(t.name)} ({os.path.basename(arg)})"
        return SweepVariant(text, "clusters-file", t, path=arg, label=label, file_sha256=_sha256(arg))
    if kind in ("none", "schedule", "z", "clamp"):
        what = {
            "none": "the untruncated generator is psi = 1 of any variant",
            "schedule": "it fixes one psi per layer",
            "z": "z:THRESHOLD resamples z instead",
            "clamp": "clamp:PERCENTILE clamps a radius instead",
        }[kind]
        raise ConfigError(f"variant {text!r} has no psi to sweep ({what}); use {VARIANT_FORMS}")
    raise ConfigError(f"unknown sweep variant {text!r}; use {VARIANT_FORMS}")


def _center_path(text, arg):
    """(path, cutoff text) of center:FILE[@CUTOFF]; a trailing :PSI is refused (the path may hold ':' and '@')."""
    if os.path.exists(arg):
        return arg, ""
    path, sep, cutoff = arg.rpartition("@")
    if sep and path and os.path.exists(path):
        return path, cutoff
    path, sep, _ = arg.partition("@")[0].rpartition(":")
    if sep and path and os.path.exists(path):
        _refuse_fixed_psi(text, f"'center:{path}' or 'center:{path}@CUTOFF'")
    raise ConfigError(f"variant {text!r}: no such file: {arg}")


def _without_psi(name):
    return re.sub(r" psi=\S+", "", name or "").strip()


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _log(log, text):
    if log is not None:
        log(text)


# ---- the output folder ---------------------------------------------------------------------------------------------
def _psi_key(psi):
    return repr(float(psi))


def read_sweep(out_dir: str):
    """(settings dict, DataFrame of the finished points) of a sweep folder; ConfigError naming a damaged file."""
    import pandas as pd

    from ..utils.safe_json import load_json

    json_path = os.path.join(out_dir, "sweep.json")
    try:
        doc = load_json(json_path)
    except OSError as e:
        raise ConfigError(f"{json_path}: unreadable ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("settings"), dict):
        raise ConfigError(f"{json_path} does not describe a truncation sweep")
    if doc.get("version") != VERSION:
        raise ConfigError(f"{json_path}: sweep format version {doc.get('version')!r}, this latentlab reads {VERSION}")
    csv_path = os.path.join(out_dir, "sweep.csv")
    if not os.path.exists(csv_path):
        return doc["settings"], pd.DataFrame()
    kinds = doc["settings"].get("kinds")
    kinds = [k for k in kinds if isinstance(k, str)] if isinstance(kinds, list) else []
    need = ["variant", "psi"] + [c for k in kinds for c in VALUE_COLUMNS.get(k, ())]
    if os.path.getsize(csv_path) > MAX_CSV_BYTES:
        raise ConfigError(f"{csv_path}: more than {MAX_CSV_BYTES} bytes, not a sweep table")
    problem, records = None, []
    try:
        with open(csv_path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in need if c not in (reader.fieldnames or [])]
            if missing:
                problem = f"columns {missing} missing"
            for r in [] if problem else reader:
                row = dict(r)
                if any(row.get(c) in (None, "") for c in need):
                    problem = f"line {reader.line_num} has empty values"
                    break
                for c in need[1:]:
                    row[c] = float(row[c])
                for c, cast in (("num_gen", int), ("seconds", float)):
                    row[c] = cast(row[c]) if row.get(c) not in (None, "") else None
                records.append(row)
    except (OSError, ValueError, csv.Error) as e:
        problem = f"{type(e).__name__}: {e}"
    if problem:
        raise ConfigError(f"{csv_path}: not a readable sweep table ({problem}); delete it to start the sweep again")
    return doc["settings"], pd.DataFrame(records)


def _check_resume(out_dir, settings, plan):
    """{(variant spec, psi key): row dict} of the points `out_dir` already holds (none for a new folder); refuses
    a folder of other settings or a table whose rows the plan does not have."""
    if not os.path.exists(os.path.join(out_dir, "sweep.json")):
        if os.path.exists(os.path.join(out_dir, "sweep.csv")):
            raise ConfigError(f"{out_dir} holds sweep.csv but no sweep.json; refusing to overwrite it")
        return {}
    old, df = read_sweep(out_dir)
    mine = json.loads(json.dumps(settings))
    diff = [f"{k} {_short(old.get(k))} (now {_short(mine.get(k))})" for k in _COMPARED if old.get(k) != mine.get(k)]
    if diff:
        raise ConfigError(
            f"{out_dir} holds a sweep with other settings: {'; '.join(diff)}. "
            "Resume with the same settings or use a new folder"
        )
    done = {}
    wanted = {(v, _psi_key(p)) for v, p in plan}
    for row in df.to_dict("records"):
        key = (str(row["variant"]), _psi_key(row["psi"]))
        if key not in wanted:
            raise ConfigError(f"{out_dir}/sweep.csv: point {key[0]} psi={key[1]} is not one of this sweep's")
        done[key] = row
    return done


def _short(value, limit=80):
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _frame(rows, columns):
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def _fitted_path(out_dir, index):
    return os.path.join(out_dir, f"fitted_{index}.npz")


def _load_fitted(path, variant, log):
    """The fitted clusters saved by an earlier run of this sweep, if they are the variant's (same parameters)."""
    from ..truncation import ClusterTruncation, Truncation

    if not os.path.exists(path):
        return None
    try:
        t = Truncation.load(path)
    except (ConfigError, OSError) as e:
        _log(log, f"sweep: ignoring {path} ({e}); fitting again")
        return None
    mine = dict(variant.truncation.get_params(), psi=None)
    theirs = dict(t.get_params(), psi=None) if isinstance(t, ClusterTruncation) and t.is_fitted else None
    if theirs != mine:
        _log(log, f"sweep: {path} holds other clusters; fitting again")
        return None
    return t


# ---- the sweep -------------------------------------------------------------------------------------------------------
def truncation_sweep(
    G,
    data,
    variants: Sequence[Union[str, SweepVariant]],
    psis: Union[str, float, Sequence[float]],
    metrics: Union[str, Sequence[str]] = ("fid10k_full", "pr10k3"),
    extractor: Any = "auto",
    seed: int = 0,
    batch_size: int = 64,
    device=None,
    out_dir: Optional[str] = None,
    cache: bool = True,
    cache_dir: Optional[str] = None,
    progress: bool = False,
    noise_mode: str = "random",
    fit_samples: int = 10000,
    model_spec: Optional[str] = None,
    figures: bool = True,
    log: Optional[Callable[[str], None]] = None,
):
    """FID, precision/recall (and KID) of every variant at every psi; returns a DataFrame with one row per point.

    G, data: the generator and its real images (a folder or zip at G's resolution), as `compute_metrics`.
    variants: sweep variant specs or `SweepVariant`s (see the module docstring); psis: `parse_psis` forms or a
      list. metrics: metric names (`compute.FORMS`), at most one per kind (fid, kid, pr), at least FID or
      precision/recall, e.g. 'fid10k_full,pr10k3'. extractor, seed, batch_size, device, progress, noise_mode,
      fit_samples, model_spec, log: as `compute_metrics` (the extractors are built once for all points).
    out_dir: the sweep's folder (sweep.json, sweep.csv, fitted_N.npz, figures); a folder of an earlier run with the
      same settings is resumed (only missing points are computed), one of other settings refused (ConfigError).
      The caller holds the folder's lock (the CLI does: `latentlab.utils.lock`). None: nothing is written.
    cache / cache_dir: the dataset-statistics cache [default folder: `compute.default_cache_dir()`]; with
      cache=False the statistics go to out_dir/stats (or a temporary folder) and are computed once all the same.
    figures: draw the figures into out_dir when the sweep is complete (again only when points were added or
      sweep.png is missing; `sweep_figures.sweep_figures(df, out_dir)` redraws them from a table).

    Columns: variant (the spec), label (its name in figures), psi, then fid, kid, precision, recall (those
    measured, under the names of `VALUE_COLUMNS`; sweep.json names the metrics), num_gen (images generated per
    point) and seconds (the point's wall time; a resumed point keeps the time it took). Rows in variant, then psi,
    order.
    """
    import torch

    from ..truncation.base import generator_device
    from ..utils.atomic import remove_stale_temps, write_text
    from .sources import check_dataset_resolution, check_image_channels, dataset_fingerprint, open_dataset

    specs = _compute.parse_metrics(metrics)
    kinds = [s.kind for s in specs]
    repeated = sorted({k for k in kinds if kinds.count(k) > 1})
    if repeated:
        raise ConfigError(f"a sweep takes one metric per kind; {', '.join(repeated)} is given more than once")
    if "fid" not in kinds and "pr" not in kinds:
        raise ConfigError("a sweep needs FID or precision/recall (e.g. fid10k_full,pr10k3): its figures plot them")
    psis = parse_psis(psis)
    variants = [parse_variant(v) for v in variants]
    if not variants:
        raise ConfigError(f"no variant given; use {VARIANT_FORMS}")
    seen: Dict[str, int] = {}
    for v in variants:
        if v.spec in seen:
            raise ConfigError(f"variant {v.spec!r} is given twice")
        seen[v.spec] = 1
    labels = [v.label for v in variants]
    for i, v in enumerate(variants):  # figures need distinct names
        n = labels[:i].count(v.label)
        if n:
            v.label = f"{v.label} #{n + 1}"
    seed = check_int("seed", seed, lo=0)
    fit_samples = check_int("fit_samples", fit_samples, lo=1)
    if noise_mode not in ("random", "const", "none"):
        raise ConfigError(f"noise_mode must be random, const or none, got {noise_mode!r}")
    rank, world = _compute._ranks()

    dev = torch.device(device) if device is not None else generator_device(G)
    if generator_device(G) != dev:
        G = copy.deepcopy(G).to(dev)  # once, not at every point
    channels = check_image_channels(G)
    if data is None or not os.path.exists(os.fspath(data)):
        raise ConfigError(f"{data}: no such folder or zip file (the real images)")
    ds = open_dataset(data, int(G.img_resolution), channels)
    check_dataset_resolution(ds, int(G.img_resolution))  # what the first point would refuse, before any fitting
    _compute._check_counts(specs, len(ds.names), data)
    fingerprint = dataset_fingerprint(ds)  # remembered for the process: the points do not hash it again

    extractors: Dict[str, Any] = {}
    by_key: Dict[str, Any] = {}
    for s in specs:
        key, build = _compute.load_extractor(extractor, G, s.kind, dev, model_spec, progress)
        if key not in by_key:
            by_key[key] = build()
        extractors[s.kind] = by_key[key]

    from ..models.identity import model_hash

    settings = {
        "model": model_hash(G),
        "dataset": fingerprint,
        "metrics": [s.name for s in specs],
        "kinds": kinds,
        "extractors": {k: getattr(e, "cache_id", None) or str(e) for k, e in extractors.items()},
        "seed": seed,
        "noise_mode": noise_mode,
        "fit_samples": fit_samples,
        "variants": [{"spec": v.spec, "label": v.label, "sha256": v.file_sha256} for v in variants],
        "psis": psis,
        # recorded, not compared
        "model_spec": model_spec,
        "data": os.path.abspath(os.fspath(data)),
        "batch": batch_size,
        "processes": world,
    }
    plan = [(v.spec, p) for v in variants for p in psis]
    done: Dict[Any, dict] = {}
    if out_dir is not None:
        problem = None
        if rank == 0:
            try:
                os.makedirs(out_dir, exist_ok=True)
                remove_stale_temps(out_dir)
                done = _check_resume(out_dir, settings, plan)
                doc = {"format": FORMAT, "version": VERSION, "settings": settings}
                write_text(os.path.join(out_dir, "sweep.json"), json.dumps(doc, indent=2) + "\n")
            except (ConfigError, OSError) as e:
                if world == 1:
                    raise
                problem = str(e)
        done, problem = _compute._from_rank0((done, problem))  # every rank resumes the same points, or stops
        if problem:
            raise ConfigError(problem)
        if done:
            _log(log, f"sweep: resuming {out_dir}: {len(done)} of {len(plan)} points done")

    value_cols = [c for k in kinds for c in VALUE_COLUMNS[k]]
    columns = ["variant", "label", "psi", *value_cols, "num_gen", "seconds"]
    rows = {key: {c: row.get(c) for c in columns} for key, row in done.items()}

    def table():
        return _frame([rows[(v, _psi_key(p))] for v, p in plan if (v, _psi_key(p)) in rows], columns)

    stats_tmp = None
    if not cache:
        if out_dir is not None:
            cache_dir = os.path.join(out_dir, "stats")
        else:
            stats_tmp = tempfile.TemporaryDirectory(prefix="latentlab-sweep-stats-")
            cache_dir = stats_tmp.name
    try:
        count = len(done)
        for index, v in enumerate(variants):
            todo = [p for p in psis if (v.spec, _psi_key(p)) not in rows]
            if not todo:
                continue
            if v.needs_fit:
                fitted = _load_fitted(_fitted_path(out_dir, index), v, log) if out_dir is not None else None
                if fitted is not None:
                    v.truncation = fitted
                    _log(
                        log, f"sweep: {v.spec}: the clusters fitted by the earlier run ({_fitted_path(out_dir, index)})"
                    )
                else:
                    v.prepare(G, fit_samples, seed, progress, log)
                    if out_dir is not None and rank == 0:
                        v.truncation.save(_fitted_path(out_dir, index))
            for psi in todo:
                start = time.perf_counter()
                res = _compute.compute_metrics(
                    G,
                    data,
                    [s.name for s in specs],
                    extractor=extractors,
                    truncation=v.at(psi),
                    seed=seed,
                    batch_size=batch_size,
                    device=dev,
                    cache=True,
                    cache_dir=cache_dir,
                    progress=progress,
                    noise_mode=noise_mode,
                    fit_samples=fit_samples,
                    model_spec=model_spec,
                    log=log,
                )
                row = {"variant": v.spec, "label": v.label, "psi": psi}
                for s in specs:
                    keys = s.result_keys
                    for col, key in zip(VALUE_COLUMNS[s.kind], keys):
                        row[col] = float(res[s.name][key])
                row["num_gen"] = max(s.num_gen for s in specs)
                row["seconds"] = round(time.perf_counter() - start, 3)
                rows[(v.spec, _psi_key(psi))] = row
                count += 1
                _log(
                    log,
                    f"sweep: {count}/{len(plan)} {v.label} psi={psi:g}: "
                    + ", ".join(f"{c} {row[c]:.4g}" for c in value_cols)
                    + f" ({row['seconds']:.0f} s)",
                )
                if out_dir is not None and rank == 0:
                    _write_csv(table(), os.path.join(out_dir, "sweep.csv"))
    finally:
        if stats_tmp is not None:
            stats_tmp.cleanup()
    df = table()
    if out_dir is not None and rank == 0:
        _write_csv(df, os.path.join(out_dir, "sweep.csv"))
        if figures and (count > len(done) or not os.path.exists(os.path.join(out_dir, "sweep.png"))):
            from .sweep_figures import sweep_figures

            sweep_figures(df, out_dir, title=_title(settings))
    return df


def _write_csv(df, path):
    """The table as CSV, floats as repr (read back bit for bit), atomically."""
    from ..utils.atomic import write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(df.columns))
    for row in df.itertuples(index=False):
        w.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row])
    write_text(path, buf.getvalue())


def _title(settings):
    names = ", ".join(settings["metrics"])
    ext = ", ".join(sorted(set(settings["extractors"].values())))
    return f"truncation sweep: {names} ({ext} features, seed {settings['seed']})"
