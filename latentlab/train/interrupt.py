"""Ctrl-C or SIGTERM during training: finish the step under way, write a snapshot and the resume state, stop.

A training loop runs inside `StopOnInterrupt()`::

    with StopOnInterrupt() as stop:
        while step < steps:
            train_step()
            if stop.requested:
                save_snapshot_and_state()
                raise TrainingInterrupted(step, where, signum=stop.signum)

The first SIGINT (Ctrl-C) or SIGTERM (`kill PID`, `timeout`, a batch scheduler's preemption, `docker
stop`: how a background run is stopped, since background jobs of a shell ignore SIGINT) only sets
`stop.requested` and says on stderr that the run stops after the current step; the loop then writes its
resume point and raises `TrainingInterrupted` (a KeyboardInterrupt, so code that catches Exception lets it
through; the command exits with 128 + the signal's number, as shells report a death by that signal). A
second signal restores the previous handlers and acts at once without a new snapshot: SIGINT raises
KeyboardInterrupt, SIGTERM gets its previous disposition (by default the process ends). Files are written
atomically, so the last complete resume point survives.

The handlers are installed only for the loop's duration and only in the main thread (Python delivers
signals there), and the previous ones are restored on exit. A signal that is ignored (e.g. SIGINT in a
background job of a non-interactive shell) stays ignored.
"""

import os
import signal
import threading

__all__ = ["StopOnInterrupt", "TrainingInterrupted", "EXIT_CODE"]

EXIT_CODE = 130  # 128 + SIGINT, what shells report for a Ctrl-C

_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class TrainingInterrupted(KeyboardInterrupt):
    """A training run stopped by Ctrl-C or SIGTERM after writing its resume point.

    step: the last completed step; resume_path: the file a rerun resumes from; signum: the signal that
    stopped it (exit_code = 128 + signum). str() is one line saying where the resume point is.
    """

    def __init__(self, step, resume_path, how="rerun the same command to resume", signum=signal.SIGINT):
        self.step = int(step)
        self.resume_path = os.fspath(resume_path)
        self.signum = int(signum if signum is not None else signal.SIGINT)
        super().__init__(f"interrupted after step {self.step}; resume point {self.resume_path} ({how})")

    @property
    def exit_code(self):
        return 128 + self.signum

    def __str__(self):
        return self.args[0]


class StopOnInterrupt:
    """Context manager: the first SIGINT or SIGTERM asks the loop to stop (`requested`, `signum`), a second
    one acts at once.

    message: written to stderr on the first signal (with os.write: safe inside a handler); `{signal}` in it
    becomes the signal's name. Inactive (requested stays False) outside the main thread; a signal that is
    ignored where the loop starts is left ignored.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(
        self,
        message="latentlab: {signal}: stopping after this step to write a snapshot "
        "({signal} again stops at once, without one)",
    ):
        self.message = message
        self.requested = False
        self.signum = None  # the signal that asked to stop
        self._previous = {}  # signum -> the handler that was there before (installed while non-empty)

    @property
    def active(self):
        return bool(self._previous)

    @property
    def active_signals(self):
        return tuple(self._previous)

    def _handler(self, signum, frame):
        if not self.requested:
            self.requested, self.signum = True, signum
            try:
                os.write(2, ("\n" + self.message.format(signal=_NAMES.get(signum, signum)) + "\n").encode())
            except OSError:
                pass
            return
        previous = self._previous.get(signum)
        self._restore()
        if callable(previous):
            previous(signum, frame)  # e.g. Python's default SIGINT handler raises KeyboardInterrupt
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        if previous == signal.SIG_DFL:
            os.kill(os.getpid(), signum)  # the default action, now that it is back: the process ends

    def _restore(self):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def __enter__(self):
        self.requested, self.signum = False, None
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                previous = signal.getsignal(signum)
                if previous is not signal.SIG_IGN and previous is not None:
                    self._previous[signum] = previous
                    signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc):
        self._restore()
        return False
