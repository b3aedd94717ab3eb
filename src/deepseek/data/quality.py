"""Gopher-style quality heuristics (Rae et al. 2021, appendix A): which check a text fails, if any."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

from .rules import QualityRule

_ELLIPSES = ("...", "…")


def quality_failure(text: str, rule: QualityRule) -> str | None:
    """The name of the first check ``text`` fails (``quality:<check>``), or None."""
    words = text.split()
    n = len(words)
    if n == 0:
        return "quality:empty"
    if rule.mean_word_length is not None:
        mean = sum(len(w) for w in words) / n
        if not rule.mean_word_length[0] <= mean <= rule.mean_word_length[1]:
            return "quality:mean_word_length"
    if rule.max_symbol_ratio is not None:
        symbols = text.count("#") + sum(text.count(e) for e in _ELLIPSES)
        if symbols / n > rule.max_symbol_ratio:
            return "quality:symbol_ratio"
    if rule.min_alpha_words is not None:
        alpha = sum(1 for w in words if any(c.isalpha() for c in w))
        if alpha / n < rule.min_alpha_words:
            return "quality:alpha_words"
    if n < 10:
        return None
    if rule.max_duplicate_lines is not None:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) > 1:
            counts = Counter(lines)
            repeated = sum(c for c in counts.values() if c > 1)
            if repeated / len(lines) > rule.max_duplicate_lines:
                return "quality:duplicate_lines"
    if rule.max_top_bigram is not None:
        bigrams = Counter(pairwise(words))
        (a, b), count = bigrams.most_common(1)[0]
        if count > 1 and count * (len(a) + len(b)) / sum(len(w) for w in words) > rule.max_top_bigram:
            return "quality:top_bigram"
    return None
