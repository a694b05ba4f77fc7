"""Metrics evaluated during training: the run's evaluation log and the checks on what evaluators return.

The training loop (`loop.Trainer`) takes `evaluators`, a dict {name: callable}; each callable gets G_ema (eval mode,
under `torch.no_grad()`) and returns {result key: value}, e.g. {'fid50k': 12.3} or {'pr50k3_precision': 0.7,
'pr50k3_recall': 0.4}. An evaluator may also have `prepare(G_ema)`, called once before the first training step
(check its inputs, load its networks), so that a bad setting fails before any training. `latentlab.metrics.training`
builds evaluators for the named metrics (fid50k, kid50k, pr50k3, ppl_wend, ...); `train` itself never imports
`latentlab.metrics`.

The evaluation log `metrics-eval.csv` (EVAL_FILE) holds one row per value:

    step, kimg, snapshot, metric, value, seconds
    0,0.0,,fid50k,412.3,61.2
    500,8.0,network-snapshot-000500.safetensors,fid50k,97.1,60.8

snapshot: the file holding the G_ema that was evaluated (empty at step 0, before any snapshot); metric: the
result key; seconds: the evaluator's time. The whole file is rewritten atomically at each evaluation (it is
small), so a run killed at any moment leaves a readable file; a resumed run drops the rows logged after its
resume point (the run evaluates those steps again), so no row appears twice and none is lost.
"""

import csv
import io
import math
import os
import re
from typing import Dict, List, Mapping

from ..errors import ConfigError
from ..utils.atomic import write_text

EVAL_FILE = "metrics-eval.csv"
EVAL_COLUMNS = ("step", "kimg", "snapshot", "metric", "value", "seconds")
MAX_EVAL_BYTES = 64 << 20  # a log of 10**5 evaluations of a few metrics is a few MB
_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def check_values(name: str, values) -> Dict[str, float]:
    """What evaluator `name` returned, as {result key: float}; ConfigError naming it when that is not a mapping of
    keys ([A-Za-z0-9_.-], 1..100 characters) to numbers."""
    if not isinstance(values, Mapping) or not values:
        raise ConfigError(
            f"metric evaluator {name!r} must return a non-empty dict of name -> number, got {values!r:.80}"
        )
    out = {}
    for k, v in values.items():
        if not isinstance(k, str) or not _KEY.match(k):
            raise ConfigError(f"metric evaluator {name!r}: result name {k!r:.80} is not [A-Za-z0-9_.-]{{1,100}}")
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"metric evaluator {name!r}: {k} = {v!r:.80} is not a number") from None
    return out


def _parse_row(r):
    """A CSV row (dict) as typed values, or None if it does not parse (a damaged or foreign line)."""
    try:
        step = int(r["step"])
        kimg, value, seconds = float(r["kimg"]), float(r["value"]), float(r["seconds"] or "nan")
        metric, snapshot = r["metric"], r["snapshot"] or ""
    except (KeyError, TypeError, ValueError):
        return None
    if step < 0 or not math.isfinite(kimg) or not isinstance(metric, str) or not _KEY.match(metric):
        return None
    return {"step": step, "kimg": kimg, "snapshot": snapshot, "metric": metric, "value": value, "seconds": seconds}


def read_eval_log(path, missing_ok=True) -> List[dict]:
    """The rows of an evaluation log, in file order, typed (step int, kimg/value/seconds float, snapshot/metric str).

    Lines that do not parse are skipped. A missing file gives [] (missing_ok) or ConfigError; a file larger than
    MAX_EVAL_BYTES, one that is not text, or one whose header is not EVAL_COLUMNS: ConfigError naming it."""
    path = os.fspath(path)
    if not os.path.exists(path):
        if missing_ok:
            return []
        raise ConfigError(f"{path}: no such file")
    size = os.path.getsize(path)
    if size > MAX_EVAL_BYTES:
        raise ConfigError(f"{path}: {size} bytes, larger than an evaluation log may be ({MAX_EVAL_BYTES})")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: unreadable evaluation log ({type(e).__name__})") from None
    reader = csv.DictReader(io.StringIO(text))
    if text and tuple(reader.fieldnames or ()) != EVAL_COLUMNS:
        raise ConfigError(f"{path}: not an evaluation log (its header is not {','.join(EVAL_COLUMNS)})")
    try:
        return [row for row in map(_parse_row, reader) if row is not None]
    except csv.Error as e:
        raise ConfigError(f"{path}: unreadable evaluation log ({e})") from None


class EvalLog:
    """The evaluation log of a run (rank 0): rows kept in memory, the file rewritten atomically on each change.

    keep_through: rows of steps <= this are kept from an existing file (a resumed run's); others are dropped
    (-1 for a fresh run: the file starts empty).
    """

    def __init__(self, path, keep_through=-1):
        self.path = os.fspath(path)
        try:
            old = read_eval_log(self.path)
        except ConfigError:  # a damaged or foreign file where ours belongs: start afresh
            old = []
        self.rows = [r for r in old if r["step"] <= keep_through]
        self._write()

    def steps(self):
        return {r["step"] for r in self.rows}

    def append(self, step, kimg, snapshot, values: Dict[str, float], seconds: Dict[str, float]):
        """Add one evaluation's rows (values: {result key: value}; seconds: {result key: evaluator time})."""
        for k, v in values.items():
            self.rows.append(
                {"step": int(step), "kimg": kimg, "snapshot": snapshot, "metric": k, "value": v, "seconds": seconds[k]}
            )
        self._write()

    def _write(self):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(EVAL_COLUMNS)
        for r in self.rows:
            w.writerow(
                [
                    r["step"],
                    repr(round(r["kimg"], 6)),
                    r["snapshot"],
                    r["metric"],
                    repr(r["value"]),
                    f"{r['seconds']:.3f}",
                ]
            )
        write_text(self.path, buf.getvalue())
