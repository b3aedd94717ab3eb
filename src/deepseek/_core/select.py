"""Choosing layers by exact module name, ``re:`` regex over the name, or class name (torchao-style filters)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping

import torch

from .errors import invalid

PATTERN_HELP = "a layer name, 're:REGEX' over the names, or a layer class name"


def matches(name: str, module: torch.nn.Module, patterns: Iterable[str], *, argument: str = "patterns") -> bool:
    """True when ``name`` equals a pattern, the module's class name equals one, or a ``re:`` pattern fully matches.
    A ``re:`` pattern that is not a valid regular expression raises InvalidArgumentError naming ``argument``."""
    for key in patterns:
        if key == name or key == type(module).__name__ or (key.startswith("re:") and _regex(key, argument).fullmatch(name)):
            return True
    return False


def check_patterns(patterns: str | Iterable[str] | None, *, argument: str) -> tuple[str, ...]:
    """``patterns`` (one string or several) as a tuple, each a non-empty string and every ``re:`` pattern a valid
    regular expression; otherwise InvalidArgumentError naming ``argument``."""
    if patterns is None:
        return ()
    if isinstance(patterns, str):
        patterns = (patterns,)
    elif not isinstance(patterns, Iterable) or isinstance(patterns, (bytes, Mapping)):
        raise invalid(argument, type(patterns).__name__, f"a string or a list of strings ({PATTERN_HELP})")
    items = tuple(patterns)
    for key in items:
        if not isinstance(key, str) or not key.strip() or key == "re:":
            raise invalid(argument, key, f"a non-empty string: {PATTERN_HELP}")
        if key.startswith("re:"):
            _regex(key, argument)
    return items


def check_matched(named: Mapping[str, torch.nn.Module] | Iterable[tuple[str, torch.nn.Module]],
                  patterns: Iterable[str], *, argument: str, what: str = "layer", classes: bool = True) -> None:
    """Refuse a pattern that selects none of ``named`` (name → module): InvalidArgumentError naming ``argument``,
    the pattern, and a few real names to choose from. ``classes=False`` for selectors that take names and
    ``re:`` patterns only (a class name there would select nothing)."""
    items = [(n, m) for n, m in (named.items() if isinstance(named, Mapping) else named) if n]
    for key in patterns:
        if not classes and not key.startswith("re:"):
            found = any(key == n for n, _ in items)
        else:
            found = any(matches(n, m, (key,), argument=argument) for n, m in items)
        if not found:
            names = [n for n, _ in items]
            shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
            raise invalid(argument, key, f"a pattern matching a {what} of the model ({PATTERN_HELP}); "
                                         f"{what}s: {shown or 'none'}")


@functools.lru_cache(maxsize=256)
def _compile(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


def _regex(key: str, argument: str) -> re.Pattern[str]:
    try:
        return _compile(key[3:])
    except re.error as e:
        raise invalid(argument, key, f"a valid regular expression after 're:' ({e})") from None


def child_slots(model: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Module, str, torch.nn.Module]]:
    """(qualified name, parent, attribute name, module) for every submodule, so it can be replaced in place."""
    for parent_name, parent in model.named_modules():
        for child_name, child in parent.named_children():
            yield (f"{parent_name}.{child_name}" if parent_name else child_name), parent, child_name, child
