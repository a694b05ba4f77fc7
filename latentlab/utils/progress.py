"""The progress bar of every long-running command: seen in a terminal and in logs, by rank 0 only, with a cost estimate.

    from latentlab.utils.progress import progress_bar
    with progress_bar(total=n, desc="ppl", unit="pair", what="PPL pairs", hint="use --n to reduce") as bar:
        ...
        bar.update(len(batch))

- stderr is a terminal: a tqdm bar redrawn in place, as usual.
- stderr is a pipe or a file (a log, a batch job): one plain line at the start, then one every
  few seconds (LATENTLAB_PROGRESS_INTERVAL, default 5 s), and the final state. tqdm's own
  default (disable=None) would hide the bar there, and its carriage-return redraws make one
  endless line in a log.
- Under torchrun only rank 0 shows anything (the RANK variable), so N processes do not
  print N interleaved bars.
- Once the rate is known (a few seconds after the first update) a job that will take longer
  than a minute prints, once, what it is going to cost, e.g.
  ``latentlab: 100,000 PPL pairs at ~15/s on this machine: ~1 h 51 min; use --n to reduce``.
- LATENTLAB_PROGRESS=0 turns every bar (and the estimate) off.
"""

import os
import sys
import time

from tqdm import tqdm

INTERVAL_ENV = "LATENTLAB_PROGRESS_INTERVAL"
SWITCH_ENV = "LATENTLAB_PROGRESS"
LOG_INTERVAL = 5.0  # seconds between lines when stderr is not a terminal
LARGE = 60.0  # work expected to take longer than this gets an estimate
CALIBRATE = 2.0  # seconds of measured work before the estimate
SLOW_FIRST = 5.0  # a first update later than this: the rate so far is good enough


def is_main_process():
    """True unless this is a torchrun worker other than rank 0 (decided by the RANK variable torchrun sets)."""
    return os.environ.get("RANK", "0").strip() in ("", "0")


def world_size():
    """Number of torchrun processes (the WORLD_SIZE variable; 1 without torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def rank_share(total):
    """How many of `total` items rank 0 handles when items i % world_size == rank are split across ranks."""
    return -(-int(total) // world_size())


def format_duration(seconds):
    """'40 s', '12 min', '1 h 51 min', '3 d 4 h': a cost at a glance (rounded, never '0 s' for work left)."""
    s = max(1, int(round(seconds)))
    if s < 90:
        return f"{s} s"
    m = int(round(s / 60))
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def format_rate(per_second):
    """'15/s', '2.4/s', '1 per 7.5 s'."""
    if per_second >= 10:
        return f"{per_second:,.0f}/s"
    if per_second >= 1:
        return f"{per_second:.2g}/s"
    return f"1 per {1 / per_second:.2g} s"


class _Lines:
    """A text stream for a bar outside a terminal: each redraw becomes one line; clears and blank lines vanish."""

    def __init__(self, stream):
        self.stream = stream
        self._last = None

    def write(self, s):
        s = str(s).replace("\x1b[A", "").replace("\r", "").strip()
        state = s.split("[", 1)[0]  # bar and count, without the times: the final redraw repeats the last line
        if s and state != self._last:
            self._last = state
            self.stream.write(s + "\n")
            self.stream.flush()

    def flush(self):
        self.stream.flush()

    def __getattr__(self, name):  # encoding, isatty, ...
        return getattr(self.stream, name)


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress(tqdm):
    """tqdm that prints a one-time cost estimate for large jobs (see the module docstring).

    what: noun phrase of the counted items for the estimate ('PPL pairs'; default: the unit);
    hint: how to make the job smaller ('use --n to reduce'); large: seconds from which the
    estimate is printed; calibrate: seconds of measured work it waits for; clock: time source.
    """

    def __init__(
        self, *args, what=None, hint=None, large=LARGE, calibrate=CALIBRATE, clock=time.perf_counter, out=None, **kwargs
    ):
        self._what, self._hint, self._large, self._calibrate, self._clock = what, hint, large, calibrate, clock
        self._out = out  # where the estimate goes (the real stream, not the line wrapper)
        self._estimated = False
        self._t_start = clock()
        self._first = None  # (time, n) of the first update
        self.estimate_text = None  # the estimate printed, if any
        self._log = isinstance(kwargs.get("file"), _Lines)  # tqdm wraps the file: decide before
        super().__init__(*args, **kwargs)
        self._n0 = self.n  # resumed work (initial) does not count for the rate

    def update(self, n=1):
        shown = super().update(n)
        if not self.disable and not self._estimated:
            self._check_estimate()
        return shown

    # Outside a terminal a redraw is a new line: postfix and description changes wait for the next timed line.
    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        super().set_postfix(ordered_dict, refresh=refresh and not self._in_log(), **kwargs)

    def set_postfix_str(self, s="", refresh=True):
        super().set_postfix_str(s, refresh=refresh and not self._in_log())

    def set_description(self, desc=None, refresh=True):
        super().set_description(desc, refresh=refresh and not self._in_log())

    def _in_log(self):
        return self._log

    def __iter__(self):  # tqdm's own loop never calls update(): count each item here so the estimate sees it
        if self.disable:
            yield from self.iterable
            return
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def _check_estimate(self):
        now = self._clock()
        if self._first is None:
            self._first = (now, self.n)
            if now - self._t_start < SLOW_FIRST:
                return  # the first batch carries warm-up (lazy loading, allocation): measure from here
            rate = (self.n - self._n0) / max(now - self._t_start, 1e-9)
        elif now - self._first[0] >= self._calibrate and self.n > self._first[1]:
            rate = (self.n - self._first[1]) / (now - self._first[0])
        else:
            return
        self._estimated = True
        if self.total is None or rate <= 0:
            return
        count = self.total - self._n0
        seconds = count / rate
        if seconds < self._large:
            return
        what = self._what or f"{self.unit}s"
        left = " left" if self._n0 else ""
        text = (
            f"latentlab: {count:,} {what}{left} at ~{format_rate(rate)} on this machine: ~{format_duration(seconds)}"
            + (f"; {self._hint}" if self._hint else "")
        )
        self.estimate_text = text
        out = self._out or sys.stderr
        if self._in_log() or not hasattr(self, "sp"):
            out.write(text + "\n")
            out.flush()
        else:
            self.write(text, file=out)


def progress_bar(
    iterable=None,
    total=None,
    desc=None,
    unit="it",
    *,
    initial=0,
    enabled=True,
    what=None,
    hint=None,
    file=None,
    rank=None,
    large=LARGE,
    **kwargs,
):
    """A `Progress` bar on stderr (or `file`), shown when `enabled`, on rank 0, unless LATENTLAB_PROGRESS=0.

    rank: this process's rank (default: from the RANK variable); only rank 0 shows a bar, labelled
    "(rank 0 of N)" under torchrun: give it rank 0's share of the work (`rank_share`).
    Other keyword arguments go to tqdm (e.g. leave, postfix). Use it like tqdm: as a context
    manager with update(n), or by iterating over it.
    """
    stream = file if file is not None else sys.stderr
    main = is_main_process() if rank is None else int(rank) == 0
    off = os.environ.get(SWITCH_ENV, "1").strip().lower() in ("0", "off", "no", "false")
    disable = not enabled or not main or off
    if world_size() > 1 and desc and "rank" not in desc:
        desc = f"{desc} (rank 0 of {world_size()})"
    if _isatty(stream):
        kwargs.setdefault("dynamic_ncols", True)
        fp, interval = stream, kwargs.pop("mininterval", 0.1)
    else:
        try:
            interval = float(os.environ.get(INTERVAL_ENV, LOG_INTERVAL))
        except ValueError:
            interval = LOG_INTERVAL
        interval = kwargs.pop("mininterval", interval)
        fp = _Lines(stream)
        kwargs.setdefault("ncols", 80)
        kwargs.setdefault("ascii", True)
    return Progress(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        file=fp,
        mininterval=interval,
        disable=disable,
        what=what,
        hint=hint,
        large=large,
        out=stream,
        **kwargs,
    )
