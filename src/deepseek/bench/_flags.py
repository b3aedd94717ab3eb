"""CLI helpers of ``deepseek bench``/``profile``/``evaluate``: library errors re-worded with the flag the user typed,
and argparse types for lists of batch sizes and backends."""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Iterable


def batch_sizes(text: str) -> list[int]:
    """An argparse ``type``: ``"1,8"`` → ``[1, 8]`` (positive integers)."""
    sizes = []
    for part in text.split(","):
        try:
            value = int(part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected positive integers like 1,8, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"expected positive integers like 1,8, got {text!r}")
        sizes.append(value)
    return sizes


def backend_names(known: Iterable[str], shown: Iterable[str]) -> object:
    """An argparse ``type`` for a comma-separated list of backend names among ``known`` (errors list ``shown``)."""
    choices = set(known)
    expected = f"comma-separated backends from {sorted(set(shown))}"

    def parse(text: str) -> list[str]:
        names = [b.strip().lower() for b in text.split(",") if b.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        unknown = [b for b in names if b not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {unknown[0]!r}")
        return names

    parse.__name__ = "backend list"
    return parse


def require_matplotlib(flag: str) -> None:
    """Fail before any work when a chart is asked for and matplotlib is missing."""
    from .._core.errors import MissingDependencyError

    if importlib.util.find_spec("matplotlib") is None:
        raise MissingDependencyError(f"{flag}: writing a chart needs matplotlib: pip install matplotlib")
