"""Replay a file of transactions through a RiskEngine as if they arrived live, labels arriving after a delay."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from pathlib import Path
from typing import Any

from .._core.checks import check_flag, check_int
from .._core.errors import invalid
from .config import StreamConfig
from .fields import to_epoch_seconds

READERS = {".csv": "read_csv", ".parquet": "read_parquet", ".pq": "read_parquet"}


@dataclasses.dataclass(frozen=True)
class ReplayResult:
    """Per-event decisions (``decisions``: time, key, score, threshold, alert, label, latency in µs) and the
    engine's counters after the replay."""

    decisions: Any
    counters: dict[str, int]
    pipeline_counters: dict[str, int]
    drifts: int
    config: StreamConfig


def read_transactions(source: str | Path, *, argument: str = "transactions") -> Any:
    """A DataFrame from a CSV or Parquet file; errors name ``argument``, the file and what was wrong."""
    import pandas as pd

    if not isinstance(source, (str, Path)) or not str(source):
        raise invalid(argument, source, "the path of a .csv or .parquet file")
    path = Path(source)
    if not path.is_file():
        raise invalid(argument, str(path), "an existing .csv or .parquet file" if not path.exists()
                      else "a .csv or .parquet file, not a folder")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise invalid(argument, str(path), f"a file ending in one of {sorted(READERS)}")
    try:
        frame = getattr(pd, reader)(path)
    except Exception as exc:  # pandas/pyarrow raise many types for a corrupt file
        raise invalid(argument, str(path), f"a readable {path.suffix} file ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    if frame.empty:
        raise invalid(argument, str(path), "at least one row")
    return frame


def replay(source: str | Path | Any, config: StreamConfig | None = None, *, limit: int | None = None,
           progress: bool = False) -> ReplayResult:
    """Score every row of ``source`` (a CSV/Parquet path or a DataFrame) in order with ``config``'s engine; when
    ``config.label_column`` is set, each row's label is fed back once the stream's time passes its time plus
    ``config.label_delay``."""
    import numpy as np
    import pandas as pd

    config = StreamConfig() if config is None else config
    if not isinstance(config, StreamConfig):
        raise invalid("config", type(config).__name__, "a StreamConfig (StreamConfig.from_yaml reads stream.yaml)")
    limit = check_int(limit, "limit", minimum=1, optional=True, expected="an integer >= 1")
    check_flag(progress, "progress")
    if isinstance(source, pd.DataFrame):
        if source.empty:
            raise invalid("source", "an empty DataFrame", "at least one row")
        frame, what = source, "the DataFrame"
    else:
        frame, what = read_transactions(source), str(source)
    if limit is not None:
        frame = frame.head(limit)
    engine = config.engine()
    pipeline = engine.pipeline
    fields = pipeline.fields
    label_column = config.label_column
    if label_column is not None and label_column not in frame.columns:
        raise invalid("label_column", label_column, f"a column of the transactions ({list(frame.columns)[:12]})")
    missing = sorted(pipeline.required_columns() - set(frame.columns))
    if missing:
        raise invalid("transactions", what, f"the columns {missing} the features read as well (it has "
                                            f"{list(frame.columns)[:12]})")
    key_column = fields.user_id if fields.user_id in frame.columns else None
    rows = frame.to_dict("records")
    n = len(rows)
    times, scores, thresholds = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    alerts = np.zeros(n, dtype=bool)
    latency = np.zeros(n, dtype=np.float64)
    keys: list[Any] = [None] * n
    pending: deque[tuple[float, Any, bool]] = deque()
    delay = float(config.label_delay)
    bar = task = None
    if progress:
        from .._core.progress import progress as make_bar

        bar = make_bar()
        task = bar.add_task("replay (events)", total=n)
        bar.start()
    clock = time.perf_counter_ns
    try:
        for i, row in enumerate(rows):
            if fields.tx_id not in row:
                row[fields.tx_id] = i
            start = clock()
            decision = engine.score(row)
            latency[i] = (clock() - start) / 1e3
            if decision is None:  # a late event the pipeline dropped or set aside
                continue
            now = pipeline.current_time
            times[i] = to_epoch_seconds(row[fields.timestamp], fields.timestamp)
            scores[i], thresholds[i], alerts[i] = decision.score, decision.threshold, decision.alert
            keys[i] = row.get(key_column) if key_column else None
            if label_column is not None:
                pending.append((now + delay, row[fields.tx_id], bool(row[label_column])))
                while pending and pending[0][0] <= now:
                    _, tx, label = pending.popleft()
                    engine.feedback(tx, label)
            if bar is not None and i % 4096 == 0:
                bar.update(task, completed=i)
    finally:
        if bar is not None:
            bar.update(task, completed=n)
            bar.stop()
    decisions = pd.DataFrame({"time": times, "key": keys, "score": scores, "threshold": thresholds,
                              "alert": alerts, "latency_us": latency})
    if label_column is not None:
        decisions["label"] = frame[label_column].astype(bool).to_numpy()
    return ReplayResult(decisions, dict(engine.counters), dict(pipeline.counters), engine.drifts, config)
