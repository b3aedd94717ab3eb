"""Cleaning rules as data: a versioned mapping (or YAML file) that round-trips, checked when it is read.

SPEC's shorthand works as written — ``{'length': (10, 512), 'language': 'en', 'toxicity': {'threshold': 0.3}}``
— and so does the explicit form ``to_dict()`` writes::

    version: 1
    length: {min: 10, max: 512, unit: chars}      # chars | words; bounds inclusive, either may be null
    language: {languages: [en], min_score: 0.5}   # codes py3langid knows (ISO 639-1); score = its probability
    toxicity: {threshold: 0.3}                    # drop when the scorer's probability is above the threshold
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._errors import invalid

VERSION = 1
UNITS = ("chars", "words")
RULES = ("length", "language", "toxicity")


def _bound(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(f"rules.length.{name}", value, "an integer >= 0, or null")
    return value


@dataclasses.dataclass(frozen=True)
class LengthRule:
    """Keep texts whose length in ``unit`` is within ``[min, max]`` (inclusive; None = unbounded)."""

    min: int | None = None
    max: int | None = None
    unit: str = "chars"

    def __post_init__(self) -> None:
        _bound("min", self.min)
        _bound("max", self.max)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise invalid("rules.length", (self.min, self.max), "min <= max")
        if self.unit not in UNITS:
            raise invalid("rules.length.unit", self.unit, f"one of {list(UNITS)}")


@dataclasses.dataclass(frozen=True)
class LanguageRule:
    """Keep texts identified as one of ``languages`` with probability >= ``min_score``."""

    languages: tuple[str, ...] = ("en",)
    min_score: float = 0.5

    def __post_init__(self) -> None:
        from .language import known_languages

        if not self.languages:
            raise invalid("rules.language", list(self.languages), "at least one language code")
        known = known_languages()
        unknown = [c for c in self.languages if c not in known]
        if unknown:
            raise invalid("rules.language", unknown, f"language codes the identifier knows (e.g. en, fr, de; "
                          f"{len(known)} in all)")
        if isinstance(self.min_score, bool) or not isinstance(self.min_score, (int, float)) or not (
                0 <= self.min_score <= 1):
            raise invalid("rules.language.min_score", self.min_score, "a probability in [0, 1]")


@dataclasses.dataclass(frozen=True)
class ToxicityRule:
    """Drop texts whose toxicity probability is above ``threshold``."""

    threshold: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) or not (
                0 <= self.threshold <= 1):
            raise invalid("rules.toxicity.threshold", self.threshold, "a probability in [0, 1]")


@dataclasses.dataclass(frozen=True)
class CleaningRules:
    """The rules a :class:`~deepseek.data.DataCleaner` applies, in this order (cheapest first)."""

    length: LengthRule | None = None
    language: LanguageRule | None = None
    toxicity: ToxicityRule | None = None

    @classmethod
    def of(cls, spec: CleaningRules | Mapping[str, Any] | str | Path | None) -> CleaningRules:
        """From SPEC's shorthand, the explicit mapping, a YAML file path, or None (no rules)."""
        if spec is None:
            return cls()
        if isinstance(spec, CleaningRules):
            return spec
        if isinstance(spec, (str, Path)):
            from .._config import read_yaml

            spec = read_yaml(spec, argument="rules", what="a YAML file of cleaning rules") or {}
        if not isinstance(spec, Mapping):
            raise invalid("rules", type(spec).__name__, "a mapping such as {'length': (10, 512), 'language': 'en'}")
        spec = dict(spec)
        version = spec.pop("version", VERSION)
        if version != VERSION:
            raise invalid("rules.version", version, f"{VERSION}")
        unknown = sorted(set(spec) - set(RULES))
        if unknown:
            raise invalid("rules", unknown, f"rules among {list(RULES)}")
        return cls(length=_length(spec.get("length")), language=_language(spec.get("language")),
                   toxicity=_toxicity(spec.get("toxicity")))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": VERSION}
        for name in RULES:
            rule = getattr(self, name)
            if rule is not None:
                data = dataclasses.asdict(rule)
                if name == "language":
                    data["languages"] = list(data["languages"])
                out[name] = data
        return out

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _length(spec: Any) -> LengthRule | None:
    if spec is None:
        return None
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        if len(spec) != 2:
            raise invalid("rules.length", spec, "(min, max) or {min, max, unit}")
        return LengthRule(_bound("min", spec[0]), _bound("max", spec[1]))
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"min", "max", "unit"})
        if unknown:
            raise invalid("rules.length", unknown, "keys among min, max, unit")
        return LengthRule(**dict(spec))
    raise invalid("rules.length", spec, "(min, max) or {min, max, unit}")


def _language(spec: Any) -> LanguageRule | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        return LanguageRule((spec,))
    if isinstance(spec, Sequence):
        return LanguageRule(tuple(spec))
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"languages", "min_score"})
        if unknown:
            raise invalid("rules.language", unknown, "keys among languages, min_score")
        languages = spec.get("languages", ("en",))
        languages = (languages,) if isinstance(languages, str) else tuple(languages)
        return LanguageRule(languages, spec.get("min_score", 0.5))
    raise invalid("rules.language", spec, "a code such as 'en', a list of codes, or {languages, min_score}")


def _toxicity(spec: Any) -> ToxicityRule | None:
    if spec is None:
        return None
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return ToxicityRule(spec)
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"threshold"})
        if unknown:
            raise invalid("rules.toxicity", unknown, "the key threshold")
        return ToxicityRule(**dict(spec))
    raise invalid("rules.toxicity", spec, "{threshold: 0.3} or a number")
