"""Wall-clock latency measurement: warm-up, then per-run timings summarised by median and tails."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class LatencyStats:
    """Latency of one configuration in milliseconds (per call, i.e. per batch)."""

    runs: int
    median_ms: float
    mean_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    stdev_ms: float

    @classmethod
    def from_samples(cls, samples_ms: list[float]) -> LatencyStats:
        if not samples_ms:
            raise ValueError("no latency samples")
        s = sorted(samples_ms)
        return cls(
            runs=len(s),
            median_ms=statistics.median(s),
            mean_ms=statistics.fmean(s),
            p90_ms=_percentile(s, 90),
            p99_ms=_percentile(s, 99),
            min_ms=s[0],
            stdev_ms=statistics.stdev(s) if len(s) > 1 else 0.0,
        )

    def throughput(self, items_per_call: int) -> float:
        """Items per second at the median latency."""
        return items_per_call * 1000.0 / self.median_ms if self.median_ms > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def measure(fn: Callable[[], Any], *, warmup: int = 5, runs: int = 30, min_seconds: float = 0.0) -> LatencyStats:
    """Call ``fn`` ``warmup`` times untimed, then at least ``runs`` times (and ``min_seconds``) timed."""
    if warmup < 0:
        raise ValueError(f"warmup: got {warmup}, expected >= 0")
    if runs < 1:
        raise ValueError(f"runs: got {runs}, expected >= 1")
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000.0)
    return LatencyStats.from_samples(samples)


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values (numpy's default method)."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
