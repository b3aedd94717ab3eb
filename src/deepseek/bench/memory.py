"""Resident memory of this process: its peak so far, and a sampler for the peak during a block of work."""

from __future__ import annotations

import resource
import sys
import threading


def reset_peak_rss() -> bool:
    """Restart this process's peak-RSS counter (Linux); False where the kernel does not allow it.

    A child started by fork+exec inherits its parent's peak in ``ru_maxrss``; clearing the counter makes
    the peak the child's own.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """This process's peak resident set size (since start, or since :func:`reset_peak_rss`), in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def current_rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class RssSampler:
    """Samples RSS in a background thread; ``peak_mb`` is the largest value seen while running."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.start_mb = 0.0
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self.start_mb = self.peak_mb = current_rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, current_rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, current_rss_mb())
