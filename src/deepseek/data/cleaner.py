"""DataCleaner: rule-based filtering of text rows, with the reason each dropped row was dropped.

``DataCleaner(text_columns=['content'], rules={'length': (10, 512), 'language': 'en', 'toxicity': {'threshold':
0.3}}).process(raw)`` returns the kept rows in ``raw``'s own type (a pandas DataFrame, a pyarrow Table, a Hugging
Face ``datasets.Dataset``; a CSV/JSONL/Parquet path gives a DataFrame). The rules look at the text columns joined
by a newline, cheapest first (length, language, toxicity); a row's ``drop_reason`` is the first rule it fails
(``missing`` when a text is None/NaN). ``process_file`` streams a file of any size chunk by chunk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._core.checks import check_flag, check_int
from .._core.errors import invalid
from .filters import Batch, build_filters
from .io import FORMATS, ChunkWriter, read_chunks
from .rules import CleaningRules
from .toxicity import Scorer, default_scorer

EXAMPLES = 3


@dataclasses.dataclass
class CleaningReport:
    """What the last run did: rows in, kept and dropped, drops per rule, and a few dropped examples per rule."""

    rows: int = 0
    kept: int = 0
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    rules: dict[str, Any] = dataclasses.field(default_factory=dict)

    def add(self, annotated: Any, texts_at: Any) -> None:
        self.rows += len(annotated)
        reasons = annotated["drop_reason"]
        self.kept += int(reasons.isna().sum())
        for reason, count in reasons.value_counts().items():
            self.dropped[reason] = self.dropped.get(reason, 0) + int(count)
            held = self.examples.setdefault(reason, [])
            if len(held) < EXAMPLES:
                rows = [int(i) for i in (reasons.to_numpy() == reason).nonzero()[0][:EXAMPLES - len(held)]]
                held += [str(s)[:200] for s in texts_at(rows)]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "kept": self.kept, "dropped_total": self.rows - self.kept,
                "dropped": dict(self.dropped), "examples": dict(self.examples), "rules": self.rules}


class DataCleaner:
    """Filters rows whose ``text_columns`` fail ``rules`` (see :mod:`deepseek.data.rules`); ``toxicity_scorer``
    replaces the default offline scorer with any ``callable(list[str]) -> probabilities``; ``custom_rules`` adds
    named Python checks ``callable(text) -> keep`` (drop reason ``custom:<name>``, after the quality rule)."""

    def __init__(self, text_columns: Sequence[str], rules: Mapping[str, Any] | CleaningRules | str | Path | None = None,
                 *, toxicity_scorer: Scorer | None = None, custom_rules: Mapping[str, Any] | None = None,
                 chunk_size: int = 10_000) -> None:
        if isinstance(text_columns, str) or not isinstance(text_columns, Sequence) or not text_columns or not all(
                isinstance(c, str) and c for c in text_columns):
            raise invalid("text_columns", text_columns, "a non-empty list of column names")
        chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
        if toxicity_scorer is not None and not callable(toxicity_scorer):
            raise invalid("toxicity_scorer", type(toxicity_scorer).__name__, "a callable(list[str]) -> probabilities")
        if custom_rules is not None and (not isinstance(custom_rules, Mapping) or not all(
                isinstance(k, str) and k and callable(v) for k, v in custom_rules.items())):
            raise invalid("custom_rules", custom_rules, "a mapping of name -> callable(text) -> keep (bool)")
        if len(set(text_columns)) != len(text_columns):
            raise invalid("text_columns", list(text_columns), "distinct column names")
        self.text_columns = list(text_columns)
        self.rules = CleaningRules.of(rules)
        length = self.rules.length
        if length is not None and length.unit == "tokens" and not Path(length.tokenizer).is_dir():
            raise invalid("rules.length.tokenizer", length.tokenizer, "an existing local tokenizer folder")
        self.custom_rules = dict(custom_rules or {})
        self._tokenizer: Any = None
        self.toxicity_scorer = toxicity_scorer or default_scorer
        self.chunk_size = chunk_size
        self.report = CleaningReport(rules=self.rules.to_dict())
        self._dedup: Any = None
        self.filters = build_filters(self.rules, custom_rules=self.custom_rules, toxicity_scorer=self.toxicity_scorer,
                                     tokenizer=self._tokenizer_for, dedup=lambda: self._dedup)

    # -- entry points -------------------------------------------------------------------------------------------
    def _start(self) -> None:
        """A new run: a fresh report and (for dedup) nothing seen yet."""
        from .dedup import Deduplicator

        self.report = CleaningReport(rules=self.rules.to_dict())
        self._dedup = Deduplicator(self.rules.dedup) if self.rules.dedup is not None else None

    def _tokenizer_for(self, folder: str) -> Any:
        if self._tokenizer is None:
            from .._core.errors import require

            transformers = require("transformers", "the length rule in tokens", "transformers")
            if not Path(folder).is_dir():
                raise invalid("rules.length.tokenizer", folder, "an existing local tokenizer folder")
            try:
                self._tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
            except (OSError, ValueError) as e:
                raise invalid("rules.length.tokenizer", folder, f"a Hugging Face tokenizer folder ({e})") from None
        return self._tokenizer

    def _masked(self, frame: Any) -> Any:
        """``frame`` with personal data masked in the text columns (a copy), when the rules ask for it."""
        if self.rules.pii is None or not len(frame):
            return frame
        from .pii import mask

        frame = frame.copy()
        for column in self.text_columns:
            frame[column] = [mask(v, self.rules.pii)[0] if isinstance(v, str) else v for v in frame[column]]
        return frame

    def process(self, data: Any) -> Any:
        """The rows of ``data`` every rule keeps, in ``data``'s own type (a path gives a DataFrame), with personal
        data masked when the rules ask for it."""
        self._start()
        kind = _kind(data)
        if kind == "path":
            import pandas as pd

            kept = [self._masked(chunk[self._evaluate(chunk, full=False)["drop_reason"].isna().to_numpy()])
                    for chunk in read_chunks(data, self.chunk_size, tuple(self.text_columns))]
            return pd.concat(kept) if kept else pd.DataFrame()
        frame = _to_frame(data, kind)
        keep = self._evaluate(frame, full=False)["drop_reason"].isna().to_numpy()
        if kind == "pandas":
            return self._masked(data[keep])
        if kind == "arrow":
            import pyarrow as pa

            kept = data.filter(pa.array(keep))
            if self.rules.pii is None:
                return kept
            masked = self._masked(kept.select(self.text_columns).to_pandas())
            for column in self.text_columns:
                kept = kept.set_column(kept.schema.get_field_index(column), column,
                                       pa.array(masked[column], type=kept.schema.field(column).type))
            return kept
        kept = data.select([i for i, k in enumerate(keep) if k])  # datasets.Dataset
        if self.rules.pii is None:
            return kept
        from .pii import mask

        return kept.map(lambda row: {c: mask(row[c], self.rules.pii)[0] if isinstance(row[c], str) else row[c]
                                     for c in self.text_columns})

    def annotate(self, data: Any) -> Any:
        """Every row of ``data`` (as a DataFrame) with ``drop_reason`` (None when kept), ``length``, ``language``,
        ``language_score`` and ``toxicity_score`` — every score computed for every row, for audit."""
        import pandas as pd

        self._start()
        kind = _kind(data)
        frames = read_chunks(data, self.chunk_size, tuple(self.text_columns)) if kind == "path" else [_to_frame(data, kind)]
        out = [pd.concat([f, self._evaluate(f, full=True)], axis=1) for f in frames]
        return pd.concat(out) if out else pd.DataFrame()

    def process_file(self, source: str | Path, output: str | Path, *, excluded: str | Path | None = None,
                     report: str | Path | None = None, progress: bool = False) -> CleaningReport:
        """Stream ``source`` (CSV/JSONL/Parquet) chunk by chunk: kept rows to ``output``, dropped rows with their
        ``drop_reason`` to ``excluded``, the :class:`CleaningReport` as JSON to ``report``; memory stays at one
        chunk. Every output is checked before any work and written atomically, ``output`` last: a failure leaves
        none of them behind; never over the input."""
        import json

        if not isinstance(source, (str, Path)) or not str(source):
            raise invalid("source", source, "the path of a .csv, .jsonl or .parquet file")
        check_flag(progress, "progress")
        source = Path(source)
        if source.suffix.lower() not in FORMATS:
            raise invalid("source", str(source), f"a file ending in one of {list(FORMATS)}")
        if not source.is_file():
            raise invalid("source", str(source), "an existing file" if not source.exists() else "a file, not a folder")
        from .._core.atomic import _same_path, atomic_path, check_output

        targets = [("output", output), ("excluded", excluded), ("report", report)]
        seen: list[tuple[str, Any]] = []
        for name, path in targets:
            if path is None and name != "output":
                continue
            check_output(path, argument=name, inputs=[source])
            if name != "report" and Path(path).suffix.lower() not in FORMATS:
                raise invalid(name, str(path), f"a file name ending in one of {list(FORMATS)}")
            for other_name, other in seen:
                if _same_path(path, other):
                    raise invalid(name, str(path), f"a path different from {other_name} ({str(other)!r})")
            seen.append((name, path))
        output = Path(output)
        self._start()
        # the first chunk before any output or progress bar: an unreadable file or a missing column fails here
        chunks = read_chunks(source, self.chunk_size, tuple(self.text_columns), argument="source")
        first = next(chunks, None)
        if first is not None:
            self._check_columns(first)
        bar = task = None
        if progress:
            from .._core.progress import progress as make_bar

            bar = make_bar()
            task = bar.add_task("cleaning (rows)", total=None)
            bar.start()
        try:
            # the contexts close innermost first: the report, then the dropped rows, then the kept rows
            with atomic_path(output) as out_tmp, (
                    atomic_path(excluded) if excluded is not None else contextlib.nullcontext()) as ex_tmp, (
                    atomic_path(report) if report is not None else contextlib.nullcontext()) as report_tmp:
                kept_writer = ChunkWriter(out_tmp, output.suffix.lower())
                dropped_writer = ChunkWriter(ex_tmp, Path(excluded).suffix.lower()) if ex_tmp else None
                try:
                    for chunk in itertools.chain([first] if first is not None else [], chunks):
                        marks = self._evaluate(chunk, full=False)
                        keep = marks["drop_reason"].isna().to_numpy()
                        kept_writer.write(self._masked(chunk[keep]))
                        if dropped_writer is not None:
                            dropped_writer.write(chunk[~keep].assign(drop_reason=marks["drop_reason"][~keep]))
                        if bar is not None:
                            bar.update(task, advance=len(chunk))
                finally:
                    kept_writer.close()
                    if dropped_writer is not None:
                        dropped_writer.close()
                if report_tmp is not None:
                    Path(report_tmp).write_text(json.dumps(self.report.to_dict(), indent=2, default=str) + "\n")
        finally:
            if bar is not None:
                bar.stop()
        return self.report

    def as_beam_transform(self, *, with_dropped: bool = False) -> Any:
        """These rules as an Apache Beam ``PTransform`` over rows (dicts): see :mod:`deepseek.data.beam`."""
        from .beam import as_beam_transform  # import-cycle: the cleaner's front door to its Beam form

        return as_beam_transform(self, with_dropped=with_dropped)

    # -- the rules ----------------------------------------------------------------------------------------------
    def _texts(self, frame: Any) -> tuple[Any, Any]:
        """The text columns joined by a newline, as an Arrow string array (null where any is None/NaN), and that
        null mask; a value that is not text is an error naming its column and row."""
        import pyarrow as pa
        import pyarrow.compute as pc

        self._check_columns(frame)
        arrays = []
        for column in self.text_columns:
            try:
                arr = pa.array(frame[column], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                arr = None
            if arr is None or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
                                   or pa.types.is_null(arr.type)):
                for n, v in enumerate(frame[column].tolist()):
                    if not (v is None or isinstance(v, str) or (isinstance(v, float) and math.isnan(v))):
                        raise invalid(f"column {column!r}", f"{type(v).__name__} {v!r} in row {n}", "text (str)")
            arrays.append(arr.cast(pa.large_string()))
        text = arrays[0] if len(arrays) == 1 else pc.binary_join_element_wise(*arrays, "\n")
        return text, pc.is_null(text).to_numpy(zero_copy_only=False)

    def _check_columns(self, frame: Any) -> None:
        missing_columns = [c for c in self.text_columns if c not in frame.columns]
        if missing_columns:
            raise invalid("text_columns", missing_columns, f"columns of the data (it has {list(frame.columns)})")

    def _evaluate(self, frame: Any, *, full: bool) -> Any:
        """A DataFrame aligned with ``frame``: drop_reason and, with ``full`` (or as far as needed), the scores."""
        import pandas as pd

        text, missing = self._texts(frame)
        batch = Batch(text, missing, full)
        for step in self.filters:
            step.apply(batch)
        # object dtype, so a kept row's reason stays None (pandas 3 would infer a string column holding NaN)
        result = pd.DataFrame({"drop_reason": pd.Series(batch.reason, dtype=object, index=frame.index),
                               **batch.columns}, index=frame.index)
        self.report.add(result, batch.texts_at)
        return result


def _kind(data: Any) -> str:
    if isinstance(data, (str, Path)):
        return "path"
    for kind, module, name in (("pandas", "pandas", "DataFrame"), ("arrow", "pyarrow", "Table"),
                               ("datasets", "datasets", "Dataset")):
        if type(data).__module__.startswith(module) and type(data).__name__ == name:
            return kind
    raise invalid("data", type(data).__name__, "a pandas DataFrame, a pyarrow Table, a datasets.Dataset, or a "
                  ".csv/.jsonl/.parquet path")


def _to_frame(data: Any, kind: str) -> Any:
    return data if kind == "pandas" else data.to_pandas()  # a pyarrow Table or a datasets.Dataset


