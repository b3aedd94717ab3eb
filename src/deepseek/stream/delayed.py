"""Features over a window that ended ``delay`` seconds ago, from labels fed back: the Handbook's terminal risk."""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from .features import Feature


class DelayedGroup:
    """The delayed features that share a key field, a window length and a delay."""

    def __init__(self, by: str, window: float, delay: float, features: Sequence[Feature]) -> None:
        self.by, self.window, self.delay, self.features = by, float(window), float(delay), list(features)


class DelayedWindow:
    """One key's transactions (time, arrival, tx id) kept for ``window + delay + lateness`` seconds.

    A feature at time t reads the transactions in ``(t - delay - window, t - delay]``: O(transactions in that
    range) per event, which for the Handbook's terminals (about one a day) is a few dozen."""

    __slots__ = ("entries", "group", "latest", "seq")

    def __init__(self, group: DelayedGroup) -> None:
        self.group = group
        self.entries: deque[tuple[float, int, Any]] = deque()
        self.latest = -math.inf
        self.seq = 0

    def features(self, ts: float, labels: Mapping[Any, bool]) -> list[float]:
        group = self.group
        high = ts - group.delay
        low = high - group.window
        count = frauds = 0
        for t, _, tx in self.entries:
            if t > high:
                break
            if t > low:
                count += 1
                frauds += 1 if labels.get(tx) else 0
        return [float(count) if f.agg == "delayed_count" else (frauds / count if count else 0.0)
                for f in group.features]

    def add(self, ts: float, tx_id: Any, lateness: float) -> list[Any]:
        """Keep the transaction; forget those too old to matter. Returns the forgotten tx ids."""
        entry = (ts, self.seq, tx_id)
        self.seq += 1
        if ts >= self.latest:
            self.entries.append(entry)
            self.latest = ts
        else:
            keys = [(e[0], e[1]) for e in self.entries]
            self.entries.insert(bisect.bisect_right(keys, (ts, entry[1])), entry)
        cutoff = self.latest - self.group.delay - self.group.window - lateness
        dropped = []
        while self.entries and self.entries[0][0] <= cutoff:
            dropped.append(self.entries.popleft()[2])
        return dropped

    def export(self) -> list:
        """``[latest, seq, entries]``, entries ``[time, seq, tx_id]`` in time order."""
        return [self.latest, self.seq, [list(e) for e in self.entries]]

    @classmethod
    def restore(cls, group: DelayedGroup, latest: float, seq: int, entries: Sequence[Sequence]) -> DelayedWindow:
        w = cls(group)
        w.latest, w.seq = float(latest), int(seq)
        w.entries.extend(sorted(((float(t), int(s), tx) for t, s, tx in entries), key=lambda e: e[:2]))
        return w

    def size(self) -> int:
        return len(self.entries)

    def nbytes(self) -> int:
        import sys

        return sys.getsizeof(self.entries) + sum(sys.getsizeof(e) for e in self.entries)
