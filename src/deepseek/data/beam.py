"""The cleaner as an Apache Beam transform: the same rules over a PCollection of rows (dicts), on any runner —
Beam's DirectRunner with several worker processes here, Flink, Spark or Dataflow on a cluster.

Per-row rules (length, quality, custom, language, toxicity, PII masking) run in batches inside a ``DoFn`` that
builds its own :class:`~deepseek.data.DataCleaner` once per worker. Exact dedup is global: rows are keyed by the
hash of their normalised text and one row per key survives (the smallest by its JSON form, so the choice does not
depend on the runner's order). Near-duplicate removal needs one shared MinHash index and is refused here."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .._core.checks import check_flag
from .._core.errors import invalid, require

BATCH_MIN = 64


def _key(text: str) -> str:
    from .dedup import _SPACES

    return hashlib.blake2b(_SPACES.sub(" ", text.strip().lower()).encode(), digest_size=16).hexdigest()


def _stable(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def as_beam_transform(cleaner: Any, *, with_dropped: bool = False) -> Any:
    """A ``beam.PTransform`` from rows (dicts holding the text columns) to the rows every rule keeps; with
    ``with_dropped`` it gives ``{"kept": ..., "dropped": ...}``, the dropped rows carrying ``drop_reason``."""
    beam = require("apache_beam", "the cleaner as a Beam transform", "apache-beam==2.77.0 (the beam extra)")
    rules = cleaner.rules
    if rules.dedup is not None and rules.dedup.near is not None:
        raise invalid("rules.dedup.near", rules.dedup.near, "null in a Beam pipeline (near-duplicate removal needs "
                      "one shared MinHash index: run it on the merged output with DataCleaner)")
    check_flag(with_dropped, "with_dropped")
    settings = {"text_columns": list(cleaner.text_columns), "rules": {**rules.to_dict(), "dedup": None},
                "toxicity_scorer": None if cleaner.toxicity_scorer is _default_scorer() else cleaner.toxicity_scorer,
                "custom_rules": cleaner.custom_rules or None, "chunk_size": cleaner.chunk_size}
    exact = rules.dedup is not None and rules.dedup.exact
    columns = list(cleaner.text_columns)

    class _CleanBatch(beam.DoFn):
        def setup(self) -> None:
            from .cleaner import DataCleaner

            self.cleaner = DataCleaner(**settings)

        def process(self, batch: list[dict[str, Any]]):
            import pandas as pd

            frame = pd.DataFrame(batch)
            self.cleaner._start()
            reasons = self.cleaner._evaluate(frame, full=False)["drop_reason"].tolist()
            masked = self.cleaner._masked(frame)
            for i, (row, reason) in enumerate(zip(batch, reasons, strict=True)):
                if reason is None:
                    yield {**row, **{c: masked[c].iloc[i] for c in columns}} if settings["rules"].get("pii") else row
                else:
                    yield beam.pvalue.TaggedOutput("dropped", {**row, "drop_reason": reason})

    def _dedup_group(item: tuple[str, list[dict[str, Any]]]):
        _, rows = item
        rows = sorted(rows, key=_stable)
        yield rows[0]
        for row in rows[1:]:
            yield beam.pvalue.TaggedOutput("dropped", {**row, "drop_reason": "duplicate"})

    class CleanRows(beam.PTransform):
        def expand(self, rows: Any) -> Any:
            marked = (rows
                      | "Batch" >> beam.BatchElements(min_batch_size=BATCH_MIN, max_batch_size=settings["chunk_size"])
                      | "Rules" >> beam.ParDo(_CleanBatch()).with_outputs("dropped", main="kept"))
            kept, dropped = marked.kept, marked.dropped
            if exact:
                unique = (kept
                          | "Key" >> beam.Map(lambda row: ("\n".join(str(row[c]) for c in columns), row))
                          | "Hash" >> beam.Map(lambda kv: (_key(kv[0]), kv[1]))
                          | "Group" >> beam.GroupByKey()
                          | "First" >> beam.FlatMap(_dedup_group).with_outputs("dropped", main="kept"))
                kept = unique.kept
                dropped = (dropped, unique.dropped) | "Dropped" >> beam.Flatten()
            return {"kept": kept, "dropped": dropped} if with_dropped else kept

    return CleanRows()


def _default_scorer() -> Any:
    from .toxicity import default_scorer

    return default_scorer
