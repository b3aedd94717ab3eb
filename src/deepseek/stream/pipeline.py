"""FeaturePipeline: per-event features over event-time sliding windows, the same for a stream and for history."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._core.checks import check_choice, check_flag, check_int, check_number
from .._core.errors import invalid
from .delayed import DelayedGroup, DelayedWindow
from .features import DELAYED, Feature
from .fields import EventFields, number, read, to_epoch_seconds
from .window import KeyWindow, WindowGroup

LATE_POLICIES = ("update", "drop", "side")
STATE_FORMAT = "deepseek.stream.state/1"
_SWEEP_EVERY = 1024


class FeaturePipeline:
    """Computes ``features`` for each event from the events of the same key in the last ``window_size`` seconds
    of event time.

    Events are dicts (or DataFrame rows) with the fields named in ``fields`` (defaults: ``tx_id``, ``user_id``,
    ``timestamp`` in epoch seconds or a datetime, ``amount``, ``location``, ``device_fingerprint``,
    ``terminal_id``). Events may arrive out of order: the watermark is the largest time seen minus
    ``allowed_lateness``; an event behind its key's latest time but not behind the watermark gets exactly the
    features of its own window. An event behind the watermark is late: ``late_policy="update"`` computes it from
    the state still held and keeps it, ``"drop"`` discards it, ``"side"`` sets it aside in :attr:`side_output`;
    all counted in :attr:`counters`. State is bounded: a key with no event for ``ttl`` seconds of event time
    (default: the longest window plus the lateness) is forgotten, and at most ``max_keys`` keys per window are
    kept (least recently updated go first). ``online_learning`` tells an attached
    :class:`~deepseek.stream.RiskEngine` to learn from feedback.
    """

    def __init__(self, window_size: float = 3600, features: Sequence[str | Feature | Mapping[str, Any]] = (
                 "transaction_amount_std", "login_location_entropy", "device_fingerprint_match"), *,
                 online_learning: bool = False, fields: EventFields | Mapping[str, str] | None = None,
                 allowed_lateness: float = 0.0, late_policy: str = "update", ttl: float | None = None,
                 max_keys: int | None = None, side_output_limit: int = 10_000, max_labels: int = 1_000_000) -> None:
        check_number(window_size, "window_size", above=0, expected="seconds > 0")
        if isinstance(features, (str, Feature)) or not isinstance(features, Sequence) or not features:
            raise invalid("features", features, "a non-empty list of feature names, Features or dicts")
        check_flag(online_learning, "online_learning")
        check_number(allowed_lateness, "allowed_lateness", minimum=0, expected="seconds >= 0")
        check_choice(late_policy, "late_policy", LATE_POLICIES, expected=f"one of {list(LATE_POLICIES)}")
        check_number(ttl, "ttl", above=0, optional=True, expected="seconds > 0, or None")
        side_output_limit = check_int(side_output_limit, "side_output_limit", minimum=0)
        max_keys = check_int(max_keys, "max_keys", minimum=1, optional=True)
        max_labels = check_int(max_labels, "max_labels", minimum=1)
        self.window_size = float(window_size)
        self.features = [Feature.of(f) for f in features]
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise invalid("features", names, "distinct feature names")
        self.fields = EventFields.of(fields)
        self.online_learning = online_learning
        self.allowed_lateness = float(allowed_lateness)
        self.late_policy = late_policy
        grouped: dict[tuple[str, float], list[Feature]] = {}
        delayed: dict[tuple[str, float, float], list[Feature]] = {}
        for f in self.features:
            if f.agg in DELAYED:
                delayed.setdefault((f.by, float(f.window or window_size), float(f.delay)), []).append(f)
            else:
                grouped.setdefault((f.by, float(f.window or window_size)), []).append(f)
        self._groups = [WindowGroup(by, w, fs) for (by, w), fs in grouped.items()]
        self._delayed = [DelayedGroup(by, w, d, fs) for (by, w, d), fs in delayed.items()]
        spans = [g.window for g in self._groups] + [g.window + g.delay for g in self._delayed]
        self.ttl = float(ttl) if ttl is not None else max(spans) + self.allowed_lateness
        self.max_keys = max_keys
        self.max_labels = max_labels
        self._state: list[OrderedDict[Any, KeyWindow]] = [OrderedDict() for _ in self._groups]
        self._delayed_state: list[OrderedDict[Any, DelayedWindow]] = [OrderedDict() for _ in self._delayed]
        self._labels: OrderedDict[Any, bool] = OrderedDict()
        self._names_grouped = [f.name for g in self._groups for f in g.features] + [
            f.name for g in self._delayed for f in g.features]
        self._in_order = self._names_grouped == names
        self._ts_column = self.fields.timestamp
        self._ts_label = f"event[{self._ts_column!r}]"
        # per window group: the key column, and (column, numeric?, amount?) for each field it reads
        self._specs = [(self.fields.column(g.by), [(self.fields.column(name), i in g.numeric, name == "amount")
                                                   for i, name in enumerate(g.fields)]) for g in self._groups]
        self._delayed_specs = [(self.fields.column(g.by), []) for g in self._delayed]
        self.watermark = -math.inf
        self._max_time = -math.inf
        self.side_output: deque[dict[str, Any]] = deque(maxlen=side_output_limit)
        self.counters = {"events": 0, "out_of_order": 0, "late": 0, "late_updated": 0, "late_dropped": 0,
                         "late_side_output": 0, "keys_expired": 0, "keys_evicted": 0}

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def current_time(self) -> float:
        """The stream's time: the largest event time processed so far (-inf before the first event)."""
        return self._max_time

    def label(self, tx_id: Any, label: bool | int) -> None:
        """The true label of a transaction processed earlier, for the delayed features (``risk``). Kept for the
        ``max_labels`` most recent labels."""
        check_choice(label, "label", (0, 1, True, False), expected="0/1 or False/True")
        if not self._delayed:
            return
        self._labels[tx_id] = bool(label)
        self._labels.move_to_end(tx_id)
        if len(self._labels) > self.max_labels:
            self._labels.popitem(last=False)

    def process(self, event: Mapping[str, Any]) -> dict[str, float] | None:
        """The features of ``event`` (a dict by feature name), after which the event is part of the state; None
        for a late event the policy drops or sets aside."""
        if not isinstance(event, Mapping):
            raise invalid("event", type(event).__name__, "a mapping of field -> value (a dict or a row)")
        raw = read(event, self._ts_column)
        ts = float(raw) if type(raw) is float or type(raw) is int else to_epoch_seconds(raw, self._ts_label)
        if ts != ts or ts in (math.inf, -math.inf):
            raise invalid(self._ts_label, raw, "a finite time")
        # read and check every field before touching any state
        values = [self._values(event, spec) for spec in self._specs]
        keys = [self._key(event, spec) for spec in self._specs]
        delayed_keys = [self._key(event, spec) for spec in self._delayed_specs]
        counters = self.counters
        counters["events"] += 1
        late = ts < self.watermark
        if late:
            counters["late"] += 1
            if self.late_policy == "drop":
                counters["late_dropped"] += 1
                return None
            if self.late_policy == "side":
                counters["late_side_output"] += 1
                self.side_output.append(dict(event))
                return None
            counters["late_updated"] += 1
        out: list[float] = []
        behind = False
        for gi, group in enumerate(self._groups):
            state, key = self._state[gi], keys[gi]
            window = state.get(key)
            if window is None:
                window = state[key] = KeyWindow(group)
                if self.max_keys is not None and len(state) > self.max_keys:
                    state.popitem(last=False)
                    counters["keys_evicted"] += 1
            else:
                state.move_to_end(key)
            if ts >= window.latest:
                window.advance(ts, self.allowed_lateness)
                out += window.in_order(ts, values[gi])
            else:
                behind = True
                out += window.out_of_order(ts, values[gi], keep=True)
        if self._delayed:
            tx_id = event.get(self.fields.tx_id)
            for gi, key in enumerate(delayed_keys):
                state = self._delayed_state[gi]
                dwindow = state.get(key)
                if dwindow is None:
                    dwindow = state[key] = DelayedWindow(self._delayed[gi])
                    if self.max_keys is not None and len(state) > self.max_keys:
                        state.popitem(last=False)
                        counters["keys_evicted"] += 1
                else:
                    state.move_to_end(key)
                behind = behind or ts < dwindow.latest
                out += dwindow.features(ts, self._labels)
                dwindow.add(ts, tx_id, self.allowed_lateness)
        if behind and not late:
            counters["out_of_order"] += 1
        if ts > self._max_time:
            self._max_time = ts
            self.watermark = ts - self.allowed_lateness
        if counters["events"] % _SWEEP_EVERY == 0:
            self._expire()
        result = dict(zip(self._names_grouped, out))
        return result if self._in_order else {n: result[n] for n in self.feature_names}

    def stream(self, events: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, float] | None]:
        """:meth:`process` over an iterable of events, lazily."""
        for event in events:
            yield self.process(event)

    def backfill(self, frame: Any, *, progress: bool = False) -> Any:
        """Features for every row of a pandas DataFrame of history, in row order, through the same code as
        :meth:`process` (so a model trained on them sees what serving computes). Returns a DataFrame with the
        frame's index, one column per feature (NaN where a late row was dropped or set aside) and ``late``."""
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            raise invalid("frame", type(frame).__name__, "a pandas DataFrame")
        missing = sorted(self.required_columns() - set(frame.columns))
        if missing:
            raise invalid("frame", f"columns {list(frame.columns)}", f"the columns {missing} as well")
        rows = frame.to_dict("records")
        out = []
        late = []
        nan_row = dict.fromkeys(self.feature_names, math.nan)
        bar = task = None
        if progress:
            from .._core.progress import progress as make_bar

            bar = make_bar()
            task = bar.add_task("backfill (rows)", total=len(rows))
            bar.start()
        try:
            for n, row in enumerate(rows, 1):
                before = self.counters["late"]
                features = self.process(row)
                late.append(self.counters["late"] > before)
                out.append(features if features is not None else nan_row)
                if bar is not None and n % 4096 == 0:
                    bar.update(task, completed=n)
        finally:
            if bar is not None:
                bar.update(task, completed=len(out))
                bar.stop()
        result = pd.DataFrame(out, index=frame.index, columns=self.feature_names)
        result["late"] = late
        return result

    def required_columns(self) -> set[str]:
        """The columns every event must have: the time, each window's key and each field a feature reads."""
        return {self.fields.timestamp} | {self.fields.column(g.by) for g in (*self._groups, *self._delayed)} | {
            self.fields.column(f) for g in self._groups for f in g.fields}

    def state_size(self) -> dict[str, int]:
        """Keys, events held and approximate bytes of the window state."""
        windows = [w for state in (*self._state, *self._delayed_state) for w in state.values()]
        return {"keys": len(windows), "events": sum(w.size() for w in windows),
                "bytes": sum(w.nbytes() for w in windows)}

    # -- saved state -------------------------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """What the state means: the window, the features, the field names and the lateness. A state saved by one
        pipeline loads only into a pipeline with the same spec."""
        return {"window_size": self.window_size, "features": [dataclasses.asdict(f) for f in self.features],
                "fields": dataclasses.asdict(self.fields), "allowed_lateness": self.allowed_lateness}

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`process` has accumulated, as JSON-storable data (no pickle): the spec, stream time,
        counters, every key's held events (least recently updated first) and the labels."""
        return {"format": STATE_FORMAT, "spec": self.spec(),
                "max_time": None if self._max_time == -math.inf else self._max_time,
                "counters": dict(self.counters),
                "windows": [[[key, w.export()] for key, w in state.items()] for state in self._state],
                "delayed": [[[key, w.export()] for key, w in state.items()] for state in self._delayed_state],
                "labels": [[tx, label] for tx, label in self._labels.items()]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace this pipeline's state with ``state`` from :meth:`state_dict` of a pipeline with the same spec."""
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
            raise invalid("state", type(state).__name__, f"a {STATE_FORMAT!r} state from FeaturePipeline.state_dict")
        saved = _jsonable(state.get("spec"))
        if saved != _jsonable(self.spec()):
            held = saved if isinstance(saved, dict) else {}
            differ = sorted(k for k in self.spec() if held.get(k) != _jsonable(self.spec()[k]))
            raise invalid("state", f"a state saved with different {differ}",
                          "a state saved by a pipeline with the same window, features, fields and lateness")
        try:
            windows = [OrderedDict((_key(k), KeyWindow.restore(g, *w, lateness=self.allowed_lateness))
                                   for k, w in entries) for g, entries in zip(self._groups, state["windows"], strict=True)]
            delayed = [OrderedDict((_key(k), DelayedWindow.restore(g, *w)) for k, w in entries)
                       for g, entries in zip(self._delayed, state["delayed"], strict=True)]
            labels = OrderedDict((_key(tx), bool(label)) for tx, label in state["labels"])
            counters = {k: int(state["counters"][k]) for k in self.counters}
            max_time = -math.inf if state["max_time"] is None else float(state["max_time"])
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as e:
            raise invalid("state", f"a malformed state ({type(e).__name__}: {e})",
                          "the unmodified output of FeaturePipeline.state_dict") from None
        if max_time != -math.inf and not math.isfinite(max_time):
            raise invalid("state", f"max_time {max_time}", "a finite stream time, or null")
        self._state, self._delayed_state, self._labels, self.counters = windows, delayed, labels, counters
        self._max_time = max_time
        self.watermark = max_time - self.allowed_lateness

    def save_state(self, path: str | Path) -> Path:
        """Write :meth:`state_dict` to ``path`` as JSON, atomically (a crash leaves the previous file whole)."""
        from .._core.atomic import atomic_path, check_output

        check_output(path, argument="path")
        path = Path(path)
        try:
            text = json.dumps(self.state_dict(), allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as e:
            raise invalid("state", f"a key or value JSON cannot store ({e})",
                          "keys and field values that are strings, numbers or booleans") from None
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)
        return path

    def load_state(self, path: str | Path) -> FeaturePipeline:
        """Resume from a file :meth:`save_state` wrote (JSON; nothing is unpickled). Returns the pipeline."""
        from .._core.config import read_json
        from .._core.errors import InvalidArgumentError

        state = read_json(path, argument="path", what="a JSON state file written by FeaturePipeline.save_state",
                          mapping=True)
        try:
            self.load_state_dict(state)
        except InvalidArgumentError as exc:  # name the file the state came from
            raise invalid("path", str(path), f"a state this pipeline can load: {exc}") from None
        return self

    # -- internals ---------------------------------------------------------------------------------------------
    @staticmethod
    def _key(event: Mapping[str, Any], spec: tuple) -> Any:
        column = spec[0]
        key = read(event, column)
        if key is None or (type(key) is float and key != key):
            raise invalid(f"event[{column!r}]", key, "a key value")
        return key

    @staticmethod
    def _values(event: Mapping[str, Any], spec: tuple) -> tuple:
        out = []
        for column, numeric, amount in spec[1]:
            value = read(event, column)
            if numeric:
                value = number(value, column)
                if amount and value < 0:
                    raise invalid(f"event[{column!r}]", value, "an amount >= 0")
            out.append(value)
        return tuple(out)

    def _expire(self) -> None:
        """Forget keys with no event for ``ttl`` seconds of event time (least recently updated are first)."""
        cutoff = self._max_time - self.ttl
        for state in (*self._state, *self._delayed_state):
            while state:
                key, window = next(iter(state.items()))
                if window.latest >= cutoff:
                    break
                del state[key]
                self.counters["keys_expired"] += 1


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, ints stay ints)."""
    return json.loads(json.dumps(value))


def _key(value: Any) -> Any:
    """A key read back from JSON: scalars as they are (a list would be an unhashable key)."""
    if isinstance(value, list):
        return tuple(_key(v) for v in value)
    return value
