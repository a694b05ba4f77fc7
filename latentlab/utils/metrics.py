"""metrics.csv of a training run: one row per logging interval, consistent across resumes."""

import csv
import os

from .atomic import atomic_path


class MetricsCSV:
    """Append rows (dicts) to `path` under fixed `columns` (the first one the step), flushing each.

    On open, rows logged after `resume_step` are dropped (atomically): the resumed run logs them
    again, so no step appears twice. Missing values are written empty; extra keys are ignored.
    """

    def __init__(self, path, columns, resume_step=0):
        self.path = os.fspath(path)
        self.columns = list(columns)
        keep = []
        if os.path.exists(self.path):
            with open(self.path, newline="") as f:
                keep = [
                    r
                    for r in csv.DictReader(f)
                    if r.get(self.columns[0]) and int(float(r[self.columns[0]])) <= resume_step
                ]
        with atomic_path(self.path, ".csv") as tmp:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore", restval="")
                w.writeheader()
                w.writerows(keep)
        self._file = open(self.path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="ignore", restval="")

    def write(self, row):
        self._writer.writerow(row)
        self._file.flush()

    def close(self):
        self._file.close()
