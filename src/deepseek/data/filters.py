"""The cleaning rules as filters, one class each, run in order over a chunk of rows: a row's drop reason is the
first filter it fails; with ``full`` every filter also records its score column for every row (what ``profile`` and
``annotate`` show). A new rule is a new :class:`TextFilter` and a place in :func:`build_filters`' order."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._core.errors import invalid
from .rules import CleaningRules


@dataclasses.dataclass
class Batch:
    """One chunk: its joined text (an Arrow string array, null where a text is missing), the ``missing`` mask, the
    drop ``reason`` per row so far (None: kept), the score ``columns`` recorded, and whether all scores are wanted."""

    text: Any
    missing: np.ndarray
    full: bool
    reason: np.ndarray = dataclasses.field(init=False)
    columns: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reason = np.array([None] * len(self.text), dtype=object)
        self.reason[np.asarray(self.missing, dtype=bool)] = "missing"

    def __len__(self) -> int:
        return len(self.text)

    def texts_at(self, rows: list[int]) -> list[str]:
        import pyarrow.compute as pc

        return pc.take(self.text, rows).to_pylist() if rows else []

    def alive(self) -> list[int]:
        """Rows no filter has dropped yet."""
        return [i for i in range(len(self)) if self.reason[i] is None]

    def scored(self) -> list[int]:
        """Rows a scoring filter looks at: the alive ones, or every row with text when all scores are wanted."""
        return [i for i in range(len(self)) if (self.full or self.reason[i] is None) and not self.missing[i]]


class TextFilter:
    """One rule: :meth:`apply` marks the rows of a :class:`Batch` it drops (``reason = name``) and records its score
    column where it has one."""

    name = ""

    def apply(self, batch: Batch) -> None:
        raise NotImplementedError


class LengthFilter(TextFilter):
    """Length in characters (code points), whitespace-separated words, or tokens of a local tokenizer."""

    name = "length"

    def __init__(self, rule: Any, tokenizer: Callable[[str], Any]) -> None:
        self.rule, self.tokenizer = rule, tokenizer

    def apply(self, batch: Batch) -> None:
        import pyarrow.compute as pc

        if self.rule is None and not batch.full:
            return
        n, unit = len(batch), self.rule.unit if self.rule is not None else "chars"
        if unit == "chars":  # code points, in Arrow's kernels
            lengths = pc.utf8_length(batch.text).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        elif unit == "tokens":
            lengths = np.zeros(n, dtype=np.int64)
            present = [i for i in range(n) if not batch.missing[i]]
            if present:
                ids = self.tokenizer(self.rule.tokenizer)(batch.texts_at(present), add_special_tokens=False)
                lengths[present] = [len(x) for x in ids["input_ids"]]
        else:
            lengths = np.fromiter((len(s.split()) if s is not None else 0 for s in batch.text.to_pylist()),
                                  dtype=np.int64, count=n)
        batch.columns["length"] = lengths
        if self.rule is not None:
            low = self.rule.min if self.rule.min is not None else 0
            high = self.rule.max if self.rule.max is not None else np.iinfo(np.int64).max
            fail = (batch.reason == None) & ((lengths < low) | (lengths > high))  # noqa: E711 - elementwise
            batch.reason[fail] = self.name


class QualityFilter(TextFilter):
    """Gopher/C4-style heuristics; the drop reason names the heuristic that failed."""

    def __init__(self, rule: Any) -> None:
        self.rule = rule

    def apply(self, batch: Batch) -> None:
        from .quality import quality_failure

        alive = batch.alive()
        for i, s in zip(alive, batch.texts_at(alive), strict=True):
            failed = quality_failure(s, self.rule)
            if failed is not None:
                batch.reason[i] = failed


class CustomFilter(TextFilter):
    """A named Python check ``callable(text) -> keep``; drop reason ``custom:<name>``."""

    def __init__(self, name: str, check: Callable[[str], Any]) -> None:
        self.name, self.label, self.check = f"custom:{name}", name, check

    def apply(self, batch: Batch) -> None:
        alive = batch.alive()
        for i, s in zip(alive, batch.texts_at(alive), strict=True):
            keep = self.check(s)
            if not isinstance(keep, (bool, np.bool_)):
                raise invalid(f"custom_rules[{self.label!r}]", f"{type(keep).__name__} {keep!r}", "True (keep) or False")
            if not keep:
                batch.reason[i] = self.name


class LanguageFilter(TextFilter):
    """Language identification (fastText lid.176); drops rows not in the wanted languages or below the score."""

    name = "language"

    def __init__(self, rule: Any) -> None:
        self.rule = rule

    def apply(self, batch: Batch) -> None:
        from .language import identify

        if self.rule is None and not batch.full:
            return
        todo = batch.scored()
        codes, scores = identify(batch.texts_at(todo))
        language, language_score = np.array([None] * len(batch), dtype=object), np.full(len(batch), np.nan)
        language[todo], language_score[todo] = codes, scores
        batch.columns["language"], batch.columns["language_score"] = language, language_score
        if self.rule is not None:
            wanted = set(self.rule.languages)
            for i, code, s in zip(todo, codes, scores, strict=True):
                if batch.reason[i] is None and (code not in wanted or s < self.rule.min_score):
                    batch.reason[i] = self.name


class ToxicityFilter(TextFilter):
    """A toxicity probability per row (the offline scorer, or any ``callable(list[str]) -> probabilities``)."""

    name = "toxicity"

    def __init__(self, rule: Any, scorer: Any) -> None:
        self.rule, self.scorer = rule, scorer

    def apply(self, batch: Batch) -> None:
        from .toxicity import score

        if self.rule is None and not batch.full:
            return
        todo = batch.scored()
        scores = score(self.scorer, batch.texts_at(todo))
        toxicity = np.full(len(batch), np.nan)
        toxicity[todo] = scores
        batch.columns["toxicity_score"] = toxicity
        if self.rule is not None:
            for i, s in zip(todo, scores, strict=True):
                if batch.reason[i] is None and s > self.rule.threshold:
                    batch.reason[i] = self.name


class DedupFilter(TextFilter):
    """Exact and near (MinHash) duplicates of rows seen earlier in the run; ``seen`` gives the run's deduplicator."""

    def __init__(self, seen: Callable[[], Any]) -> None:
        self.seen = seen

    def apply(self, batch: Batch) -> None:
        dedup = self.seen()
        alive = batch.alive()
        for i, s in zip(alive, batch.texts_at(alive), strict=True):
            batch.reason[i] = dedup.check(s)


class PiiCount(TextFilter):
    """Not a filter: with all scores wanted, how many personal-data spans each row holds (``pii_found``)."""

    def __init__(self, rule: Any) -> None:
        self.rule = rule

    def apply(self, batch: Batch) -> None:
        from .pii import mask

        if batch.full:
            batch.columns["pii_found"] = np.array([mask(s, self.rule)[1] if s is not None else 0
                                                   for s in batch.text.to_pylist()])


def build_filters(rules: CleaningRules, *, custom_rules: Mapping[str, Callable[[str], Any]], toxicity_scorer: Any,
                  tokenizer: Callable[[str], Any], dedup: Callable[[], Any]) -> list[TextFilter]:
    """The filters of ``rules`` in the order they run, cheapest first: length, quality, the custom checks,
    language, toxicity, duplicates (and the personal-data count)."""
    filters: list[TextFilter] = [LengthFilter(rules.length, tokenizer)]
    if rules.quality is not None:
        filters.append(QualityFilter(rules.quality))
    filters += [CustomFilter(name, check) for name, check in custom_rules.items()]
    filters += [LanguageFilter(rules.language), ToxicityFilter(rules.toxicity, toxicity_scorer)]
    if rules.dedup is not None:
        filters.append(DedupFilter(dedup))
    if rules.pii is not None:
        filters.append(PiiCount(rules.pii))
    return filters
