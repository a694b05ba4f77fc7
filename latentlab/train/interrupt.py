"""Ctrl-C during training: finish the step under way, write a snapshot and the resume state, stop.

A training loop runs inside `StopOnInterrupt()`::

    with StopOnInterrupt() as stop:
        while step < steps:
            train_step()
            if stop.requested:
                save_snapshot_and_state()
                raise TrainingInterrupted(step, where)

The first SIGINT (Ctrl-C) only sets `stop.requested` and says on stderr that the run stops
after the current step; the loop then writes its resume point and raises `TrainingInterrupted`
(a KeyboardInterrupt, so code that catches Exception lets it through). A second SIGINT restores
the previous handler and interrupts at once (KeyboardInterrupt), without a new snapshot; files
are written atomically, so the last complete resume point survives.

The handler is installed only for the loop's duration and only in the main thread (Python
delivers signals there), and the previous handler is restored on exit. Where SIGINT is ignored
(e.g. a background job of a non-interactive shell), nothing is installed and it stays ignored.
"""

import os
import signal
import threading

__all__ = ["StopOnInterrupt", "TrainingInterrupted", "EXIT_CODE"]

EXIT_CODE = 130  # 128 + SIGINT, what shells report for a Ctrl-C


class TrainingInterrupted(KeyboardInterrupt):
    """A training run stopped by Ctrl-C after writing its resume point.

    step: the last completed step; resume_path: the file a rerun resumes from. str() is one line
    saying where the resume point is.
    """

    def __init__(self, step, resume_path, how="rerun the same command to resume"):
        self.step = int(step)
        self.resume_path = os.fspath(resume_path)
        super().__init__(f"interrupted after step {self.step}; resume point {self.resume_path} ({how})")

    def __str__(self):
        return self.args[0]


class StopOnInterrupt:
    """Context manager: the first SIGINT asks the loop to stop (`requested`), the second interrupts at once.

    message: written to stderr on the first SIGINT (written with os.write: safe inside a handler).
    Inactive (requested stays False) outside the main thread and where SIGINT is ignored.
    """

    def __init__(
        self,
        message="latentlab: Ctrl-C: stopping after this step to write a snapshot "
        "(press Ctrl-C again to stop at once, without one)",
    ):
        self.message = message
        self.requested = False
        self.active = False
        self._previous = None

    def _handler(self, signum, frame):
        if not self.requested:
            self.requested = True
            try:
                os.write(2, ("\n" + self.message + "\n").encode())
            except OSError:
                pass
            return
        previous = self._previous
        self._restore()
        if callable(previous):
            previous(signum, frame)  # Python's default handler raises KeyboardInterrupt
        raise KeyboardInterrupt

    def _restore(self):
        if self.active:
            signal.signal(signal.SIGINT, self._previous)
            self.active = False

    def __enter__(self):
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not signal.SIG_IGN and previous is not None:
                self._previous = previous
                signal.signal(signal.SIGINT, self._handler)
                self.active = True
        return self

    def __exit__(self, *exc):
        self._restore()
        return False
