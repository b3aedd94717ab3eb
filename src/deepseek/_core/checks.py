"""Argument checks shared by every config and entry point: each returns the value or raises an
:class:`~deepseek._core.errors.InvalidArgumentError` naming the argument, what it got and what was expected."""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any

from .errors import invalid


def _bounds(minimum: float | None, above: float | None, maximum: float | None, below: float | None) -> str:
    parts = [f">= {minimum:g}" if minimum is not None else "", f"> {above:g}" if above is not None else "",
             f"<= {maximum:g}" if maximum is not None else "", f"< {below:g}" if below is not None else ""]
    return "".join(f" {p}" for p in parts if p)


def check_number(value: Any, argument: str, *, minimum: float | None = None, above: float | None = None,
                 maximum: float | None = None, below: float | None = None, integer: bool = False,
                 optional: bool = False, expected: str | None = None) -> Any:
    """``value`` as a float (an int when ``integer``) if it is a real, finite number (never a bool) within the bounds
    (``minimum``/``maximum`` inclusive, ``above``/``below`` exclusive); ``None`` passes when ``optional``.
    ``expected`` replaces the generated description of what is accepted in the error."""
    if value is None and optional:
        return None
    if expected is None:
        expected = ("an integer" if integer else "a finite number") + _bounds(minimum, above, maximum, below)
        expected += ", or None" if optional else ""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral if integer else numbers.Real)):
        raise invalid(argument, value, expected)
    try:
        number = int(value) if integer else float(value)  # ints compared exactly, however large
    except (OverflowError, ValueError):
        raise invalid(argument, value, expected) from None
    if (not integer and not math.isfinite(number)) or (minimum is not None and number < minimum) or \
            (maximum is not None and number > maximum) or (above is not None and number <= above) or \
            (below is not None and number >= below):
        raise invalid(argument, value, expected)
    return number


def check_int(value: Any, argument: str, *, minimum: int | None = None, maximum: int | None = None,
              optional: bool = False, expected: str | None = None) -> Any:
    """``value`` as an int if it is an integer (not a bool) within ``[minimum, maximum]``; ``None`` passes when ``optional``."""
    return check_number(value, argument, minimum=minimum, maximum=maximum, integer=True, optional=optional,
                        expected=expected)


def check_flag(value: Any, argument: str, *, expected: str = "True or False") -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise invalid(argument, value, expected)
    return value


def check_choice(value: Any, argument: str, choices: Collection[Any], *, expected: str | None = None) -> Any:
    """``value`` if it is one of ``choices`` (True and False match only themselves, not 1 and 0)."""
    try:
        ok = value in choices
    except TypeError:  # an unhashable value asked of a set
        ok = False
    if not ok or (isinstance(value, bool) and not any(c is value for c in choices)):
        raise invalid(argument, value, expected or f"one of {sorted(choices, key=str)}")
    return value
