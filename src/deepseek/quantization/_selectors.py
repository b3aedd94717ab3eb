"""Checks for layer selectors (exact names, ``re:`` regexes, class names): every pattern must be well formed and
select at least one layer of the model, or the error names the argument and lists real layer names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .._errors import invalid


def check_patterns(argument: str, patterns: Any) -> tuple[str, ...]:
    """``patterns`` (one string or an iterable of them) as a tuple, each non-empty, each ``re:`` regex valid."""
    if isinstance(patterns, str):
        patterns = (patterns,)
    try:
        patterns = tuple(patterns)
    except TypeError:
        raise invalid(argument, patterns, "layer names, 're:' regexes or class names") from None
    for key in patterns:
        if not isinstance(key, str) or not key or key == "re:":
            raise invalid(argument, key, "a layer name, an 're:' regex or a class name (a non-empty string)")
        if key.startswith("re:"):
            try:
                re.compile(key[3:])
            except re.error as exc:
                raise invalid(argument, key, f"a valid 're:' regular expression ({exc})") from None
    return patterns


def selects(key: str, name: str, module: Any, *, classes: bool = True) -> bool:
    """True when the pattern ``key`` selects the layer ``name``: equal name (or class name, with ``classes``), or an
    ``re:`` full match."""
    return key == name or (classes and key == type(module).__name__) or \
        (key.startswith("re:") and re.fullmatch(key[3:], name) is not None)


def check_patterns_match(argument: str, patterns: Iterable[str], layers: Iterable[tuple[str, Any]],
                         what: str = "layers", *, classes: bool = True) -> None:
    """Refuse a pattern of ``patterns`` that selects none of ``layers`` ((name, module) pairs), naming it and
    listing a few real layer names (a typo would otherwise be accepted in silence)."""
    layers = [(n, m) for n, m in layers if n]
    for key in patterns:
        if not any(selects(key, n, m, classes=classes) for n, m in layers):
            names = [n for n, _ in layers][:5]
            kinds = sorted({type(m).__name__ for _, m in layers})[:3] if classes else []
            forms = "a name, 're:' regex or class name" if classes else "a name or 're:' regex"
            raise invalid(argument, key, f"{forms} matching one of the model's {what} "
                                         f"(e.g. {names}{', classes ' + str(kinds) if kinds else ''})")
