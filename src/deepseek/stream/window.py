"""The state of one key's window: its events in time order and the running statistics over them."""

from __future__ import annotations

import bisect
import math
import sys
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from .aggregates import Counts, MinMax, NumericStats
from .features import CATEGORICAL, NUMERIC, Feature, compute


class WindowGroup:
    """The features that share a key field and a window length, and the fields they read."""

    def __init__(self, by: str, window: float, features: Sequence[Feature]) -> None:
        self.by, self.window, self.features = by, float(window), list(features)
        self.fields = fields = list(dict.fromkeys(f.field for f in self.features if f.field is not None))
        self.numeric = [i for i, name in enumerate(fields) if any(f.field == name and f.agg in NUMERIC
                                                                  for f in self.features)]
        self.categorical = [i for i, name in enumerate(fields) if any(f.field == name and f.agg in CATEGORICAL
                                                                      for f in self.features)]
        self.minmax = [i for i, name in enumerate(fields) if any(f.field == name and f.agg in ("min", "max")
                                                                 for f in self.features)]
        # (aggregation, index of its field or -1, ddof) per feature, in order: what in_order evaluates
        self.plan = [(f.agg, fields.index(f.field) if f.field is not None else -1, f.ddof) for f in self.features]


class KeyWindow:
    """Events of one key: ``window`` holds those in ``(latest - W, latest]`` (and the running statistics cover
    exactly them); ``expired`` keeps older ones for ``lateness`` more seconds so an out-of-order event's own window
    can be computed exactly."""

    __slots__ = ("counts", "expired", "group", "latest", "minmax", "numeric", "seq", "window")

    def __init__(self, group: WindowGroup) -> None:
        self.group = group
        # entries: (time, arrival sequence, values tuple aligned with group.fields)
        self.window: deque[tuple[float, int, tuple]] = deque()
        self.expired: deque[tuple[float, int, tuple]] = deque()
        self.latest = -math.inf
        self.seq = 0
        self.numeric = {i: NumericStats() for i in group.numeric}
        self.counts = {i: Counts() for i in group.categorical}
        self.minmax = {i: MinMax() for i in group.minmax}

    # -- updates -------------------------------------------------------------------------------------------
    def _enter(self, values: tuple) -> None:
        for i, stats in self.numeric.items():
            stats.add(values[i])
        for i, counts in self.counts.items():
            counts.add(values[i])

    def _leave(self, values: tuple) -> None:
        for i, stats in self.numeric.items():
            stats.remove(values[i])
        for i, counts in self.counts.items():
            counts.remove(values[i])

    def _resync(self) -> None:
        for i, stats in self.numeric.items():
            if stats.needs_resync():
                stats.resync(e[2][i] for e in self.window)
        for counts in self.counts.values():
            if counts.needs_resync():
                counts.resync()

    def advance(self, ts: float, lateness: float) -> None:
        """Move the window's end to ``ts`` (>= latest): expire what falls out, forget what is beyond lateness."""
        self.latest = ts
        cutoff = ts - self.group.window
        window = self.window
        if window and window[0][0] <= cutoff:
            while window and window[0][0] <= cutoff:
                entry = window.popleft()
                self._leave(entry[2])
                self.expired.append(entry)
            for mm in self.minmax.values():
                mm.evict_until(cutoff)
            self._resync()
        expired = self.expired
        if expired:
            keep_after = cutoff - lateness
            while expired and expired[0][0] <= keep_after:
                expired.popleft()

    # -- features ------------------------------------------------------------------------------------------
    def in_order(self, ts: float, values: tuple) -> list[float]:
        """Features of an event at ``ts`` >= every time this key has seen, then the event joins the window."""
        group, window = self.group, self.window
        previous = window[-1][0] if window else None
        counts, numeric = self.counts, self.numeric
        seen = [counts[i].seen(values[i]) for agg, i, _ in group.plan if agg == "seen_before"]
        window.append((ts, self.seq, values))
        self.seq += 1
        for i, stats in numeric.items():
            stats.add(values[i])
        for i, c in counts.items():
            c.add(values[i])
        for i, mm in self.minmax.items():
            mm.push(ts, values[i])
        out = []
        k = 0
        for agg, i, ddof in group.plan:
            if agg == "std":
                out.append(math.sqrt(numeric[i].variance(ddof)))
            elif agg == "seen_before":
                out.append(1.0 if seen[k] else 0.0)
                k += 1
            elif agg == "entropy":
                out.append(counts[i].entropy_bits())
            elif agg == "count":
                out.append(float(len(window)))
            elif agg == "mean":
                out.append(numeric[i].mean)
            elif agg == "value":
                out.append(values[i])
            elif agg == "sum":
                out.append(numeric[i].total)
            elif agg == "time_since_last":
                out.append(ts - previous if previous is not None else group.window)
            elif agg == "distinct":
                out.append(float(counts[i].distinct))
            elif agg == "min":
                out.append(self.minmax[i].low)
            elif agg == "max":
                out.append(self.minmax[i].high)
            else:  # ratio_to_mean
                mean = numeric[i].mean
                out.append(values[i] / mean if mean else 1.0)
        return out

    def out_of_order(self, ts: float, values: tuple, keep: bool) -> list[float]:
        """Features of an event older than the key's latest, computed over its own window ``(ts - W, ts]`` from
        the events still held; with ``keep`` it joins the state (the window if it still falls inside it)."""
        group = self.group
        held = [e for e in (*self.expired, *self.window) if ts - group.window < e[0] <= ts]
        held.sort(key=lambda e: (e[0], e[1]))
        earlier = len(held)  # every held event with the same time arrived earlier
        times = [e[0] for e in held] + [ts]
        out = []
        for f in group.features:
            if f.field is None:
                vals: list[Any] = []
                current = None
            else:
                i = group.fields.index(f.field)
                vals = [e[2][i] for e in held] + [values[i]]
                current = values[i]
            out.append(compute(f, times, vals, current, group.window, earlier))
        if keep:
            entry = (ts, self.seq, values)
            self.seq += 1
            if ts > self.latest - group.window:
                keys = [(e[0], e[1]) for e in self.window]
                self.window.insert(bisect.bisect_right(keys, (ts, entry[1])), entry)
                self._enter(values)
                for i, mm in self.minmax.items():
                    mm.rebuild((e[0], e[2][i]) for e in self.window)
            else:
                keys = [(e[0], e[1]) for e in self.expired]
                self.expired.insert(bisect.bisect_right(keys, (ts, entry[1])), entry)
        return out

    def export(self) -> list:
        """``[latest, seq, entries]``, entries ``[time, seq, [values]]`` in time order: what :meth:`restore` needs."""
        return [self.latest, self.seq, [[t, s, list(v)] for t, s, v in (*self.expired, *self.window)]]

    @classmethod
    def restore(cls, group: WindowGroup, latest: float, seq: int, entries: Iterable[Sequence],
                lateness: float) -> KeyWindow:
        """The window of a key whose latest time is ``latest``, from its held events (any order): the same events
        in the window and kept for lateness as when it was saved, the running statistics recomputed exactly."""
        w = cls(group)
        w.latest, w.seq = float(latest), int(seq)
        cutoff = w.latest - group.window
        for t, s, values in sorted(((float(t), int(s), tuple(v)) for t, s, v in entries), key=lambda e: e[:2]):
            if t > cutoff:
                w.window.append((t, s, values))
            elif t > cutoff - lateness:
                w.expired.append((t, s, values))
        for i, stats in w.numeric.items():
            stats.resync(e[2][i] for e in w.window)
        for i, counts in w.counts.items():
            for e in w.window:
                counts.add(e[2][i])
            counts.resync()
        for i, mm in w.minmax.items():
            mm.rebuild((e[0], e[2][i]) for e in w.window)
        return w

    def size(self) -> int:
        return len(self.window) + len(self.expired)

    def nbytes(self) -> int:
        """Approximate bytes of Python objects this key's state holds."""
        total = sys.getsizeof(self.window) + sys.getsizeof(self.expired)
        for e in (*self.window, *self.expired):
            total += sys.getsizeof(e) + sys.getsizeof(e[2]) + sum(sys.getsizeof(v) for v in e[2])
        for c in self.counts.values():
            total += sys.getsizeof(c.counts)
        return total
