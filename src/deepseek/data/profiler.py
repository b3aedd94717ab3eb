"""DataProfiler: what a table holds and what looks wrong, in one streaming pass (plus one for outliers).

Per column: the kinds of values, missing values, distinct values (exact up to ``max_exact_distinct``, then a
HyperLogLog estimate), numeric summaries (mean and deviation merged across chunks; median, MAD and histogram from
a bounded reservoir sample), top values; for text columns the length distribution and the language mix of a
sample. Across columns: exact duplicate rows. Outliers per column by robust z-score (|x - median| / (1.4826 MAD)
> ``z``); anomalous rows by an isolation forest fitted on a uniform row sample over the numeric columns and text
lengths; label issues (cleanlab) when a label column and a model (or predicted probabilities) are given.
``minimal=True`` skips the language mix, the histograms' chart data, the duplicate rows and the isolation forest.
``suggested_rules()`` turns what it found into :class:`~deepseek.data.DataCleaner` rules, ``flagged_rows()`` lists
the rows it flagged (profile -> clean).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .._core.checks import check_flag, check_int, check_number
from .._core.errors import invalid
from .profile import Profile
from .sketches import HyperLogLog

RESERVOIR = 10_000


@dataclasses.dataclass
class _Column:
    name: str
    count: int = 0
    missing: int = 0
    kinds: Counter = dataclasses.field(default_factory=Counter)
    n: int = 0  # numeric values
    mean: float = 0.0
    m2: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    sample: list = dataclasses.field(default_factory=list)  # numeric values (or text lengths) reservoir
    distinct: set | None = dataclasses.field(default_factory=set)
    hll: Any = None
    top: Counter = dataclasses.field(default_factory=Counter)
    texts: list = dataclasses.field(default_factory=list)  # text reservoir for the language mix
    sample_keys: list = dataclasses.field(default_factory=list)
    text_keys: list = dataclasses.field(default_factory=list)


class DataProfiler:
    """Profiles a pandas DataFrame, a pyarrow Table or a CSV/JSONL/Parquet file (read in chunks: flat memory)."""

    def __init__(self, *, minimal: bool = False, text_columns: Sequence[str] | None = None, z: float = 3.5,
                 max_exact_distinct: int = 100_000, language_sample: int = 2_000, chunk_size: int = 100_000,
                 isolation_forest: bool = True, isolation_sample: int = 10_000, label_column: str | None = None,
                 model: Any = None, feature_columns: Sequence[str] | None = None, folds: int = 5,
                 seed: int = 0) -> None:
        check_flag(minimal, "minimal")
        if text_columns is not None and (isinstance(text_columns, str) or not isinstance(text_columns, Sequence)
                                         or not all(isinstance(c, str) and c for c in text_columns)):
            raise invalid("text_columns", text_columns, "a list of column names, or None (every text column)")
        check_number(z, "z", above=0, expected="a finite robust z-score > 0")
        check_flag(isolation_forest, "isolation_forest")
        if label_column is not None and (not isinstance(label_column, str) or not label_column):
            raise invalid("label_column", label_column, "a column name, or None")
        if model is not None and not (hasattr(model, "fit") and hasattr(model, "predict_proba")):
            raise invalid("model", model, "a scikit-learn classifier with fit and predict_proba, or None")
        if feature_columns is not None and (isinstance(feature_columns, str) or not isinstance(
                feature_columns, Sequence) or not feature_columns or not all(isinstance(c, str) and c
                                                                             for c in feature_columns)):
            raise invalid("feature_columns", feature_columns, "a list of column names, or None (every other column)")
        folds = check_int(folds, "folds", minimum=2)
        max_exact_distinct, language_sample, chunk_size, isolation_sample = (
            check_int(value, name, minimum=1) for name, value in (
                ("max_exact_distinct", max_exact_distinct), ("language_sample", language_sample),
                ("chunk_size", chunk_size), ("isolation_sample", isolation_sample)))
        seed = check_int(seed, "seed", minimum=0)
        if label_column is not None and feature_columns is not None and label_column in feature_columns:
            raise invalid("feature_columns", list(feature_columns), f"columns other than the label {label_column!r}")
        self.minimal, self.text_columns, self.z = minimal, text_columns, float(z)
        self.max_exact_distinct, self.language_sample, self.chunk_size = max_exact_distinct, language_sample, chunk_size
        self.isolation_forest, self.isolation_sample = isolation_forest, isolation_sample
        self.label_column, self.model, self.folds = label_column, model, folds
        self.feature_columns = list(feature_columns) if feature_columns is not None else None
        self.seed = seed

    def profile(self, data: Any, *, pred_probs: Any = None) -> Profile:
        """Profile ``data``; a file is read twice (the second pass counts outliers against the medians). With a
        ``label_column`` the label issues come from ``pred_probs`` (rows x classes, classes in sorted order) when
        given, else from the model's out-of-fold probabilities (that step holds the label and feature columns in
        memory)."""
        if pred_probs is not None and self.label_column is None:
            raise invalid("pred_probs", "given", "label_column set on the DataProfiler as well")
        if self.label_column is not None and self.model is None and pred_probs is None:
            raise invalid("model", None, f"a classifier (or pred_probs) to find label issues in {self.label_column!r}")
        from .cleaner import _kind, _to_frame
        from .io import read_chunks

        kind = _kind(data)

        def chunks():
            if kind == "path":
                yield from read_chunks(data, self.chunk_size, tuple(self.text_columns or ()))
            else:
                frame = _to_frame(data, kind)
                for start in range(0, max(1, len(frame)), self.chunk_size):
                    yield frame.iloc[start:start + self.chunk_size]

        import numpy as np

        rng = np.random.default_rng(self.seed)
        columns: dict[str, _Column] = {}
        rows = 0
        row_hashes: set[int] | None = None if self.minimal else set()
        duplicate_rows = 0
        rows_sample: Any = None  # a uniform sample of whole rows for the isolation forest
        sample_keys = np.empty(0)
        for chunk in chunks():
            if not columns:
                columns = {str(c): _Column(str(c)) for c in chunk.columns}
                self._check_columns(columns)
            if self.isolation_forest and not self.minimal and len(chunk):
                rows_sample, sample_keys = self._sample_rows(rows_sample, sample_keys, chunk, rng)
            rows += len(chunk)
            for c in chunk.columns:
                self._update(columns[str(c)], chunk[c], rng)
            if row_hashes is not None and len(chunk):
                import pandas as pd

                for h in pd.util.hash_pandas_object(chunk.astype(str), index=False).tolist():
                    if h in row_hashes:
                        duplicate_rows += 1
                    else:
                        row_hashes.add(h)
        if rows == 0:
            raise invalid("data", str(data) if kind == "path" else f"a {type(data).__name__} of 0 rows",
                          "a table with at least one row to profile")
        stats = {name: self._finish(col, rows) for name, col in columns.items()}
        scorer = self._isolation_scorer(rows_sample, stats)
        outliers = self._outliers(chunks(), stats, scorer)
        for name, count in outliers.items():
            stats[name]["outliers"] = count
        anomalies = scorer.result() if scorer is not None else None
        issues = None
        if self.label_column is not None:
            from .anomalies import label_issues

            wanted = [self.label_column] + (self.feature_columns or [c for c in columns if c != self.label_column])
            frame = _concat([c[wanted] for c in chunks()]) if kind == "path" else _to_frame(data, kind)[wanted]
            issues = label_issues(frame.reset_index(drop=True), self.label_column, model=self.model,
                                  pred_probs=pred_probs, feature_columns=self.feature_columns, folds=self.folds,
                                  seed=self.seed)
        flagged = sorted(set(scorer.all_rows() if scorer is not None else []) | set(
            issues.pop("all_rows") if issues else []))
        return Profile(rows=rows, columns=stats, duplicate_rows=None if self.minimal else duplicate_rows,
                       minimal=self.minimal, z=self.z, anomalies=anomalies, label_issues=issues,
                       flagged=flagged, source=str(data) if kind == "path" else None)

    # -- internals ---------------------------------------------------------------------------------------------
    def _check_columns(self, columns: dict[str, _Column]) -> None:
        missing = [c for c in self.text_columns or [] if c not in columns]
        if missing:
            raise invalid("text_columns", missing, f"columns of the data ({list(columns)})")
        if self.label_column is not None and self.label_column not in columns:
            raise invalid("label_column", self.label_column, f"a column of the data ({list(columns)})")
        missing = [c for c in self.feature_columns or [] if c not in columns]
        if missing:
            raise invalid("feature_columns", missing, f"columns of the data ({list(columns)})")

    def _sample_rows(self, held: Any, held_keys: Any, chunk: Any, rng: Any) -> tuple[Any, Any]:
        """The ``isolation_sample`` rows with the smallest random keys so far: a uniform sample over every chunk."""
        import numpy as np

        keys = rng.random(len(chunk))
        frame = chunk.reset_index(drop=True)
        if len(keys) > self.isolation_sample:  # only this chunk's smallest keys can survive
            keep = np.argpartition(keys, self.isolation_sample)[:self.isolation_sample]
            frame, keys = frame.iloc[keep], keys[keep]
        if held is not None:
            frame = _concat([held, frame])
            keys = np.concatenate([held_keys, keys])
        if len(keys) > self.isolation_sample:
            keep = np.argpartition(keys, self.isolation_sample)[:self.isolation_sample]
            frame, keys = frame.iloc[keep], keys[keep]
        return frame.reset_index(drop=True), keys

    def _isolation_scorer(self, sample: Any, stats: dict[str, dict[str, Any]]) -> Any:
        if sample is None or len(sample) < 2:
            return None
        skip = {self.label_column}
        numeric = [n for n, s in stats.items() if "numeric" in s and n not in skip
                   and set(s["kinds"]) <= {"int", "float"}]
        text = [n for n, s in stats.items() if s["text"] and "length" in s and n not in skip]
        if not numeric and not text:
            return None
        from .anomalies import IsolationScorer

        return IsolationScorer(sample, numeric, text, self.seed)

    def _is_text(self, col: _Column) -> bool:
        if self.text_columns is not None:
            return col.name in self.text_columns
        return col.kinds.get("str", 0) > 0 and col.kinds.get("str", 0) >= 0.5 * (col.count - col.missing)

    def _update(self, col: _Column, series: Any, rng: Any) -> None:
        """Fold one chunk of a column into its running statistics, with column-wide (vectorised) operations."""
        import numpy as np
        import pandas as pd

        col.count += len(series)
        present = series[series.notna()]
        col.missing += len(series) - len(present)
        if not len(present):
            return
        if pd.api.types.is_bool_dtype(present.dtype):
            col.kinds["bool"] += len(present)
            measures = None
        elif pd.api.types.is_integer_dtype(present.dtype) or pd.api.types.is_float_dtype(present.dtype):
            col.kinds["int" if pd.api.types.is_integer_dtype(present.dtype) else "float"] += len(present)
            measures = present.to_numpy(dtype=np.float64)
        else:
            types = present.map(type)
            names = {bool: "bool", int: "int", float: "float", str: "str"}
            for kind, n in types.value_counts().items():
                col.kinds[names.get(kind, kind.__name__)] += int(n)
            strings = present[types.map(lambda k: k is str).astype(bool)]
            if len(strings):
                measures = strings.str.len().to_numpy(dtype=np.float64)
                self._sample_texts(col, strings, rng)
            else:
                numbers = present[types.map(lambda k: k is int or k is float).astype(bool)]
                measures = numbers.to_numpy(dtype=np.float64) if len(numbers) else None
        uniques = present.astype(str).unique() if present.dtype == object else present.unique()
        if col.distinct is not None:
            col.distinct.update(uniques.tolist())
            if len(col.distinct) > self.max_exact_distinct:
                self._to_hll(col)
        else:
            col.hll.add(np.asarray(uniques))
        counts = present.astype(str).value_counts() if present.dtype == object else present.value_counts()
        for key, n in counts.head(1000).items():
            if len(col.top) < 10_000 or key in col.top:
                col.top[key] += int(n)
        if measures is None or not len(measures):
            return
        # Chan et al.'s merge of (count, mean, M2)
        n_b = len(measures)
        mean_b = float(measures.mean())
        m2_b = float(((measures - mean_b) ** 2).sum())
        n = col.n + n_b
        delta = mean_b - col.mean
        col.mean += delta * n_b / n
        col.m2 += m2_b + delta * delta * col.n * n_b / n
        col.n = n
        col.low, col.high = min(col.low, float(measures.min())), max(col.high, float(measures.max()))
        # a uniform sample over every chunk: the RESERVOIR values with the smallest random keys
        keys = rng.random(n_b)
        held_keys = np.asarray(col.sample_keys) if col.sample else np.empty(0)
        all_keys = np.concatenate([held_keys, keys])
        all_values = np.concatenate([np.asarray(col.sample), measures])
        if len(all_keys) > RESERVOIR:
            keep = np.argpartition(all_keys, RESERVOIR)[:RESERVOIR]
            all_keys, all_values = all_keys[keep], all_values[keep]
        col.sample, col.sample_keys = all_values.tolist(), all_keys.tolist()

    def _sample_texts(self, col: _Column, strings: Any, rng: Any) -> None:
        if self.minimal or not len(strings):
            return
        import numpy as np

        keys = rng.random(len(strings))
        held = col.text_keys
        all_keys = np.concatenate([np.asarray(held), keys]) if held else keys
        all_texts = col.texts + strings.tolist()
        if len(all_keys) > self.language_sample:
            keep = np.argpartition(all_keys, self.language_sample)[:self.language_sample]
            all_keys = all_keys[keep]
            all_texts = [all_texts[i] for i in keep]
        col.texts, col.text_keys = all_texts, all_keys.tolist()

    def _to_hll(self, col: _Column) -> None:
        import numpy as np

        col.hll = HyperLogLog()
        held = list(col.distinct)
        numeric = set(col.kinds) <= {"int", "float"}  # then every value held is a number
        col.hll.add(np.asarray(held, dtype=np.float64) if numeric else np.asarray(held, dtype=object))
        col.distinct = None

    def _finish(self, col: _Column, rows: int) -> dict[str, Any]:
        import numpy as np

        text = self._is_text(col)
        out: dict[str, Any] = {"kinds": dict(col.kinds), "missing": col.missing,
                               "missing_share": col.missing / rows if rows else 0.0,
                               "distinct": len(col.distinct) if col.distinct is not None else col.hll.count(),
                               "distinct_exact": col.distinct is not None, "text": text,
                               "top": [[str(k), c] for k, c in col.top.most_common(5)]}
        if col.n:
            sample = np.asarray(col.sample)
            median = float(np.median(sample))
            mad = float(np.median(np.abs(sample - median)))
            summary = {"mean": col.mean, "std": math.sqrt(col.m2 / col.n), "min": col.low, "max": col.high,
                       "median": median, "mad": mad,
                       "p01": float(np.quantile(sample, 0.01)), "p99": float(np.quantile(sample, 0.99))}
            if not self.minimal:
                counts, edges = np.histogram(sample, bins=20)
                summary["histogram"] = {"counts": counts.tolist(), "edges": edges.tolist()}
            out["length" if text else "numeric"] = summary
        if text and col.texts:
            from .language import identify

            codes, _ = identify(col.texts)
            out["languages"] = {k: v / len(codes) for k, v in Counter(codes).most_common(10)}
        return out

    def _outliers(self, chunks: Any, stats: dict[str, dict[str, Any]], scorer: Any) -> dict[str, int]:
        """Values (text lengths for text columns) with a robust z-score above ``z``, counted over every row; each
        chunk is also scored by the isolation forest when there is one."""
        limits = {}
        for name, s in stats.items():
            summary = s.get("length") or s.get("numeric")
            if summary is None:
                continue
            limits[name] = (summary["median"], 1.4826 * summary["mad"], bool(s["text"]))
        counts = dict.fromkeys(limits, 0)
        if not limits:
            return counts
        import numpy as np

        first_row = 0
        for chunk in chunks:
            if scorer is not None:
                scorer.update(chunk, first_row)
            first_row += len(chunk)
            for name, (median, scale, text) in limits.items():
                x = _measures(chunk[name], text)
                if x is None:
                    continue
                if scale > 0:
                    counts[name] += int((np.abs(x - median) / scale > self.z).sum())
                else:
                    counts[name] += int((x != median).sum())
        return counts


def _measures(series: Any, text: bool) -> Any:
    """What the column's summary describes, for one chunk: text lengths for a text column (or a column of
    strings), else the numbers; None when there is nothing to measure (as :meth:`DataProfiler._update`)."""
    import numpy as np
    import pandas as pd

    series = series[series.notna()]
    if not len(series) or pd.api.types.is_bool_dtype(series.dtype):
        return None
    if pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_float_dtype(series.dtype):
        return None if text else series.to_numpy(dtype=np.float64)
    strings = series[series.map(lambda v: isinstance(v, str)).astype(bool)]
    if len(strings):
        return strings.str.len().to_numpy(dtype=np.float64)
    if text:
        return None
    numbers = series[series.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).astype(bool)]
    return numbers.to_numpy(dtype=np.float64) if len(numbers) else None


def _concat(frames: list[Any]) -> Any:
    import pandas as pd

    return pd.concat(frames, ignore_index=True)
