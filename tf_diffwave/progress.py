"""Progress reports: Keras' redrawn bar on a terminal, plain lines (at most one every few seconds) elsewhere, so a
log file gets no escape codes or backspaces."""

import sys
import time


class PlainProgress:
    """Progbar's `update(current, values)` as plain lines on standard output."""

    def __init__(self, target, unit_name, interval=10.0):
        self.target, self.unit_name, self.interval = target, unit_name, interval
        self.start = self.last = time.monotonic()

    def update(self, current, values=None):
        """Print a line when `interval` seconds have passed since the last one, and at the end."""
        now = time.monotonic()
        if now - self.last < self.interval and current < self.target:
            return
        self.last = now
        shown = "".join(f" - {name}: {value:.4g}" for name, value in values or [])
        print(f"{self.unit_name} {current}/{self.target} - {now - self.start:.0f} s{shown}", flush=True)


def progress_bar(target, unit_name, stateful_metrics=None, verbose=True):
    """A progress report of `target` units: keras.utils.Progbar on a terminal, PlainProgress otherwise; one that
    prints nothing when not `verbose`."""
    if sys.stdout.isatty() or not verbose:
        import keras  # with TensorFlow: only commands that run it draw Keras' bar on a terminal

        return keras.utils.Progbar(target, unit_name=unit_name, stateful_metrics=stateful_metrics,
                                   verbose=1 if verbose else 0)
    return PlainProgress(target, unit_name)
