"""Offline toxicity scoring: alt-profanity-check (a TF-IDF + calibrated linear model shipped inside its wheel,
English), batched. Any ``callable(list[str]) -> probabilities`` can replace it (``DataCleaner(toxicity_scorer=)``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from .._core.errors import invalid, require

Scorer = Callable[[Sequence[str]], Sequence[float]]


@functools.lru_cache(maxsize=1)
def _profanity_check() -> Scorer:
    require("profanity_check", "the toxicity rule", "alt-profanity-check==1.9.1")
    from profanity_check import predict_prob

    return predict_prob


def default_scorer(texts: Sequence[str]) -> list[float]:
    """P(offensive) per text from alt-profanity-check."""
    return [float(p) for p in _profanity_check()(list(texts))] if len(texts) else []


def score(scorer: Scorer, texts: Sequence[str]) -> list[float]:
    """``scorer(texts)``, checked: one probability in [0, 1] per text."""
    try:
        out = [float(p) for p in scorer(list(texts))]
    except (TypeError, ValueError) as exc:  # not an iterable of numbers
        raise invalid("toxicity_scorer", f"a result that is not a list of numbers ({exc})",
                      "one probability per text") from None
    if len(out) != len(texts):
        raise invalid("toxicity_scorer", f"{len(out)} scores for {len(texts)} texts", "one score per text")
    bad = [p for p in out if not 0.0 <= p <= 1.0]  # NaN fails too
    if bad:
        raise invalid("toxicity_scorer", bad[:3], "probabilities in [0, 1]")
    return out
