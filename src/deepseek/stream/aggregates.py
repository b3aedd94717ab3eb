"""Running window statistics with O(1) amortised updates as events enter and leave a window.

Variance uses Welford's update and its inverse; entropy keeps ``sum(c * log c)`` over the value counts. Both are
recomputed exactly from the window's values once as many removals as the window holds have happened (at least
1,024), so rounding cannot drift while the cost stays O(1) amortised.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable

RESYNC_MIN = 1024


class NumericStats:
    """Count, sum, mean and variance of the numbers in a window."""

    __slots__ = ("_removals", "count", "m2", "mean", "total")

    def __init__(self) -> None:
        self.count, self.mean, self.m2, self.total, self._removals = 0, 0.0, 0.0, 0.0, 0

    def add(self, x: float) -> None:
        self.count += 1
        self.total += x
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)

    def remove(self, x: float) -> None:
        """Take ``x`` (a value in the window) out; the caller resyncs when :meth:`needs_resync` says so."""
        self.count -= 1
        self._removals += 1
        if self.count == 0:
            self.mean, self.m2, self.total = 0.0, 0.0, 0.0
            return
        self.total -= x
        delta = x - self.mean
        self.mean -= delta / self.count
        self.m2 = max(0.0, self.m2 - delta * (x - self.mean))

    def needs_resync(self) -> bool:
        return self._removals >= max(RESYNC_MIN, self.count)

    def resync(self, values: Iterable[float]) -> None:
        """Recompute exactly from the window's values (two passes)."""
        xs = list(values)
        self.count, self._removals = len(xs), 0
        self.total = math.fsum(xs)
        self.mean = self.total / len(xs) if xs else 0.0
        self.m2 = math.fsum((x - self.mean) ** 2 for x in xs)

    def variance(self, ddof: int) -> float:
        """``m2 / (count - ddof)``; 0 when the window holds ``ddof`` values or fewer."""
        return self.m2 / (self.count - ddof) if self.count > ddof else 0.0


class MinMax:
    """Window minimum and maximum from monotonic queues of (time, value), for values that arrive in time order."""

    __slots__ = ("_high", "_low")

    def __init__(self) -> None:
        self._low: deque[tuple[float, float]] = deque()
        self._high: deque[tuple[float, float]] = deque()

    def push(self, ts: float, x: float) -> None:
        while self._low and self._low[-1][1] >= x:
            self._low.pop()
        self._low.append((ts, x))
        while self._high and self._high[-1][1] <= x:
            self._high.pop()
        self._high.append((ts, x))

    def evict_until(self, cutoff: float) -> None:
        """Forget values with time <= ``cutoff``."""
        while self._low and self._low[0][0] <= cutoff:
            self._low.popleft()
        while self._high and self._high[0][0] <= cutoff:
            self._high.popleft()

    def rebuild(self, pairs: Iterable[tuple[float, float]]) -> None:
        """From the window's (time, value) pairs in time order (after an out-of-order insert)."""
        self._low.clear()
        self._high.clear()
        for ts, x in pairs:
            self.push(ts, x)

    @property
    def low(self) -> float:
        return self._low[0][1] if self._low else math.nan

    @property
    def high(self) -> float:
        return self._high[0][1] if self._high else math.nan


class Counts:
    """How often each value occurs in a window: distinct values and Shannon entropy in O(1)."""

    __slots__ = ("_clogc", "_removals", "counts", "total")

    def __init__(self) -> None:
        self.counts: dict[object, int] = {}
        self.total, self._clogc, self._removals = 0, 0.0, 0

    def add(self, v: object) -> None:
        c = self.counts.get(v, 0)
        self.counts[v] = c + 1
        self.total += 1
        self._clogc += (c + 1) * math.log(c + 1) - (c * math.log(c) if c else 0.0)

    def remove(self, v: object) -> None:
        c = self.counts[v]
        if c == 1:
            del self.counts[v]
        else:
            self.counts[v] = c - 1
        self.total -= 1
        self._removals += 1
        self._clogc -= c * math.log(c) - ((c - 1) * math.log(c - 1) if c > 1 else 0.0)
        if self.total == 0:
            self._clogc = 0.0

    def needs_resync(self) -> bool:
        return self._removals >= max(RESYNC_MIN, self.total)

    def resync(self) -> None:
        self._removals = 0
        self._clogc = math.fsum(c * math.log(c) for c in self.counts.values())

    def seen(self, v: object) -> bool:
        return v in self.counts

    @property
    def distinct(self) -> int:
        return len(self.counts)

    def entropy_bits(self) -> float:
        """Shannon entropy of the value distribution, in bits (0 for an empty or single-valued window)."""
        if self.total <= 1:
            return 0.0
        return max(0.0, (math.log(self.total) - self._clogc / self.total) / math.log(2))


def entropy_bits(values: Iterable[object]) -> float:
    """Shannon entropy in bits of a list of values (the exact form :class:`Counts` keeps up to date)."""
    counts = Counter(values)
    n = sum(counts.values())
    if n <= 1:
        return 0.0
    return max(0.0, -math.fsum(c / n * math.log2(c / n) for c in counts.values()))
