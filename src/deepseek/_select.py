"""Choosing layers by exact module name, ``re:`` regex over the name, or class name (torchao-style filters)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import torch


def matches(name: str, module: torch.nn.Module, patterns: Iterable[str]) -> bool:
    """True when ``name`` equals a pattern, the module's class name equals one, or a ``re:`` pattern fully matches."""
    for key in patterns:
        if key == name or key == type(module).__name__ or (key.startswith("re:") and re.fullmatch(key[3:], name)):
            return True
    return False


def child_slots(model: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Module, str, torch.nn.Module]]:
    """(qualified name, parent, attribute name, module) for every submodule, so it can be replaced in place."""
    for parent_name, parent in model.named_modules():
        for child_name, child in parent.named_children():
            yield (f"{parent_name}.{child_name}" if parent_name else child_name), parent, child_name, child
