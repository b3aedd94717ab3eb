"""Offline language identification: py3langid (its model — an LZMA-compressed NumPy archive, no pickle — ships
inside the wheel), probabilities normalised over its 140 languages."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from .._errors import require


@functools.lru_cache(maxsize=1)
def _identifier():
    require("py3langid", "the language rule", "py3langid==0.4.0")
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@functools.lru_cache(maxsize=1)
def known_languages() -> frozenset[str]:
    """The language codes (ISO 639-1, or 639-3 where there is none) the identifier can return."""
    return frozenset(_identifier().nb_classes)


def identify(texts: Sequence[str]) -> tuple[list[str], list[float]]:
    """The most probable language of each text and its probability."""
    classify = _identifier().classify
    codes, scores = [], []
    for text in texts:
        code, score = classify(text)
        codes.append(code)
        scores.append(float(score))
    return codes, scores
