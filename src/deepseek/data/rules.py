"""Cleaning rules as data: a versioned mapping (or YAML file) that round-trips, checked when it is read.

The shorthand works as written — ``{'length': (10, 512), 'language': 'en', 'toxicity': {'threshold': 0.3}}``
— and so does the explicit form ``to_dict()`` writes::

    version: 1
    length: {min: 10, max: 512, unit: chars}      # chars | words | tokens (+ tokenizer: FOLDER); inclusive
    language: {languages: [en], min_score: 0.5}   # codes py3langid knows (ISO 639-1); score = its probability
    toxicity: {threshold: 0.3}                    # drop when the scorer's probability is above the threshold
    quality: {mean_word_length: [3, 10], max_symbol_ratio: 0.1, min_alpha_words: 0.8,
              max_duplicate_lines: 0.3, max_top_bigram: 0.2}   # Gopher-style; any may be null
    dedup: {exact: true, near: 0.8}               # exact after normalising case and spaces; near = MinHash
                                                  # Jaccard threshold over word 5-grams (null: off)
    pii: {email: true, phone: true, ip: true, credit_card: true}   # masked in the kept text, not dropped
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._core.checks import check_choice, check_flag, check_int, check_number
from .._core.errors import invalid

VERSION = 1
UNITS = ("chars", "words", "tokens")
RULES = ("length", "quality", "language", "toxicity", "dedup", "pii")
PII_KINDS = ("email", "phone", "ip", "credit_card")


@dataclasses.dataclass(frozen=True)
class LengthRule:
    """Keep texts whose length in ``unit`` is within ``[min, max]`` (inclusive; None = unbounded): ``chars``
    (Unicode code points), ``words`` (whitespace-separated) or ``tokens`` of ``tokenizer``, a local Hugging Face
    tokenizer folder (special tokens not counted)."""

    min: int | None = None
    max: int | None = None
    unit: str = "chars"
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        for name in ("min", "max"):
            object.__setattr__(self, name, check_int(getattr(self, name), f"rules.length.{name}", minimum=0,
                                                     optional=True, expected="an integer >= 0, or null"))
        if self.min is not None and self.max is not None and self.min > self.max:
            raise invalid("rules.length", (self.min, self.max), "min <= max")
        check_choice(self.unit, "rules.length.unit", UNITS, expected=f"one of {list(UNITS)}")
        if self.unit == "tokens" and not (isinstance(self.tokenizer, str) and self.tokenizer):
            raise invalid("rules.length.tokenizer", self.tokenizer, "a local tokenizer folder for unit: tokens")
        if self.unit != "tokens" and self.tokenizer is not None:
            raise invalid("rules.length.tokenizer", self.tokenizer, f"null with unit {self.unit!r}")


@dataclasses.dataclass(frozen=True)
class LanguageRule:
    """Keep texts identified as one of ``languages`` with probability >= ``min_score``."""

    languages: tuple[str, ...] = ("en",)
    min_score: float = 0.5

    def __post_init__(self) -> None:
        from .language import known_languages

        if isinstance(self.languages, str) or not isinstance(self.languages, (tuple, list)) or not self.languages:
            raise invalid("rules.language", self.languages, "at least one language code")
        bad = [c for c in self.languages if not isinstance(c, str)]
        if bad:
            raise invalid("rules.language", bad, "language codes (strings) such as 'en'")
        known = known_languages()
        unknown = [c for c in self.languages if c not in known]
        if unknown:
            raise invalid("rules.language", unknown, f"language codes the identifier knows (e.g. en, fr, de; "
                          f"{len(known)} in all)")
        object.__setattr__(self, "min_score", check_number(self.min_score, "rules.language.min_score", minimum=0,
                                                           maximum=1, expected="a probability in [0, 1]"))


@dataclasses.dataclass(frozen=True)
class ToxicityRule:
    """Drop texts whose toxicity probability is above ``threshold``."""

    threshold: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", check_number(self.threshold, "rules.toxicity.threshold", minimum=0,
                                                           maximum=1, expected="a probability in [0, 1]"))


@dataclasses.dataclass(frozen=True)
class QualityRule:
    """Gopher-style heuristics (Rae et al. 2021), each optional: mean word length in ``[low, high]`` characters;
    ``#`` and ellipses per word at most ``max_symbol_ratio``; at least ``min_alpha_words`` of the words with a
    letter; at most ``max_duplicate_lines`` of the lines repeated; at most ``max_top_bigram`` of the characters in
    the most frequent word bigram. The repetition checks apply to texts of at least 10 words."""

    mean_word_length: tuple[float, float] | None = (3.0, 10.0)
    max_symbol_ratio: float | None = 0.1
    min_alpha_words: float | None = 0.8
    max_duplicate_lines: float | None = 0.3
    max_top_bigram: float | None = 0.2

    def __post_init__(self) -> None:
        if self.mean_word_length is not None:
            pair = self.mean_word_length
            if (not isinstance(pair, (tuple, list)) or len(pair) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                               for v in pair)
                    or pair[0] > pair[1]):
                raise invalid("rules.quality.mean_word_length", pair, "[low, high] with 0 <= low <= high, or null")
            object.__setattr__(self, "mean_word_length", (float(pair[0]), float(pair[1])))
        object.__setattr__(self, "max_symbol_ratio", check_number(
            self.max_symbol_ratio, "rules.quality.max_symbol_ratio", minimum=0, optional=True,
            expected="a number >= 0, or null"))
        for name in ("min_alpha_words", "max_duplicate_lines", "max_top_bigram"):  # stored as plain floats
            object.__setattr__(self, name, check_number(getattr(self, name), f"rules.quality.{name}", minimum=0,
                                                        maximum=1, optional=True,
                                                        expected="a fraction in [0, 1], or null"))


@dataclasses.dataclass(frozen=True)
class DedupRule:
    """Drop a row whose text repeats an earlier kept row's: ``exact`` after lower-casing and collapsing spaces;
    ``near``: estimated Jaccard similarity of word ``shingle``-grams >= ``near`` (MinHash, ``num_perm``
    permutations, LSH). The first occurrence is kept."""

    exact: bool = True
    near: float | None = None
    num_perm: int = 128
    shingle: int = 5

    def __post_init__(self) -> None:
        check_flag(self.exact, "rules.dedup.exact", expected="true or false")
        object.__setattr__(self, "near", check_number(self.near, "rules.dedup.near", above=0, maximum=1,
                                                      optional=True, expected="a Jaccard threshold in (0, 1], or null"))
        for name, low in (("num_perm", 16), ("shingle", 1)):
            object.__setattr__(self, name, check_int(getattr(self, name), f"rules.dedup.{name}", minimum=low))


@dataclasses.dataclass(frozen=True)
class PiiRule:
    """Mask personal data in the kept text: e-mail addresses, phone numbers, IPv4 addresses, card numbers (Luhn-
    checked) become ``<EMAIL>``, ``<PHONE>``, ``<IP>``, ``<CARD>``."""

    email: bool = True
    phone: bool = True
    ip: bool = True
    credit_card: bool = True

    def __post_init__(self) -> None:
        for name in PII_KINDS:
            check_flag(getattr(self, name), f"rules.pii.{name}", expected="true or false")


@dataclasses.dataclass(frozen=True)
class CleaningRules:
    """The rules a :class:`~deepseek.data.DataCleaner` applies, in this order (cheapest first)."""

    length: LengthRule | None = None
    quality: QualityRule | None = None
    language: LanguageRule | None = None
    toxicity: ToxicityRule | None = None
    dedup: DedupRule | None = None
    pii: PiiRule | None = None

    @classmethod
    def of(cls, spec: CleaningRules | Mapping[str, Any] | str | Path | None) -> CleaningRules:
        """From the shorthand (e.g.
        ``{'length': (10, 512), 'language': 'en', 'toxicity': {'threshold': 0.3}}``),
        the explicit mapping, a YAML file path, or None (no rules)."""
        if spec is None:
            return cls()
        if isinstance(spec, CleaningRules):
            return spec
        if isinstance(spec, (str, Path)):
            from .._core.config import read_yaml
            from .._core.errors import InvalidArgumentError

            data = read_yaml(spec, argument="rules", what="a YAML file of cleaning rules", mapping=True)
            if not set(data) - {"version"}:  # an empty file is a mistake: it would keep every row in silence
                raise invalid("rules", str(spec), f"a YAML file with at least one rule among {list(RULES)}")
            try:
                return cls.of(data)
            except InvalidArgumentError as exc:  # say which file the bad field is in
                raise InvalidArgumentError(f"rules ({spec}): {exc}") from None
        if not isinstance(spec, Mapping):
            raise invalid("rules", type(spec).__name__, "a mapping such as {'length': (10, 512), 'language': 'en'}")
        spec = dict(spec)
        version = spec.pop("version", VERSION)
        if version != VERSION:
            raise invalid("rules.version", version, f"{VERSION}")
        _only(spec, RULES, "rules", f"rules among {list(RULES)}")
        return cls(length=_length(spec.get("length")), quality=_mapping(QualityRule, "quality", spec),
                   language=_language(spec.get("language")), toxicity=_toxicity(spec.get("toxicity")),
                   dedup=_mapping(DedupRule, "dedup", spec), pii=_mapping(PiiRule, "pii", spec))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": VERSION}
        for name in RULES:
            rule = getattr(self, name)
            if rule is not None:
                data = dataclasses.asdict(rule)
                if name == "language":
                    data["languages"] = list(data["languages"])
                if name == "quality" and data["mean_word_length"] is not None:
                    data["mean_word_length"] = list(data["mean_word_length"])
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
        return LengthRule(spec[0], spec[1])
    if isinstance(spec, Mapping):
        _only(spec, ("min", "max", "unit", "tokenizer"), "rules.length",
              "keys among min, max, unit, tokenizer")
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
        _only(spec, ("languages", "min_score"), "rules.language", "keys among languages, min_score")
        languages = spec.get("languages", ("en",))
        if not isinstance(languages, (str, Sequence)):
            raise invalid("rules.language.languages", languages, "a language code or a list of codes")
        languages = (languages,) if isinstance(languages, str) else tuple(languages)
        return LanguageRule(languages, spec.get("min_score", 0.5))
    raise invalid("rules.language", spec, "a code such as 'en', a list of codes, or {languages, min_score}")


def _toxicity(spec: Any) -> ToxicityRule | None:
    if spec is None:
        return None
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return ToxicityRule(spec)
    if isinstance(spec, Mapping):
        _only(spec, ("threshold",), "rules.toxicity", "the key threshold")
        return ToxicityRule(**dict(spec))
    raise invalid("rules.toxicity", spec, "{threshold: 0.3} or a number")


def _mapping(cls: type, name: str, spec: Mapping[str, Any]) -> Any:
    """``cls(**spec[name])``: true means the defaults, null/absent means off."""
    value = spec.get(name)
    if value is None or value is False:
        return None
    if value is True:
        return cls()
    if not isinstance(value, Mapping):
        raise invalid(f"rules.{name}", value, "a mapping of settings, true (defaults) or null")
    known = {f.name for f in dataclasses.fields(cls)}
    _only(value, known, f"rules.{name}", f"keys among {sorted(known)}")
    return cls(**dict(value))


def _only(spec: Mapping[str, Any], known: Any, where: str, expected: str) -> None:
    """Refuse the keys of ``spec`` not among ``known``, naming them (sorted) at ``where``."""
    unknown = sorted(str(k) for k in set(spec) - set(known))
    if unknown:
        raise invalid(where, unknown, expected)
