"""Activation checkpointing: chosen layers keep only their inputs for backward and recompute the rest."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from .._core.errors import invalid
from .._core.select import matches


def checkpoint_activations(model: torch.nn.Module, layers: Iterable[str]) -> list[str]:
    """Checkpoint every submodule matching ``layers`` (exact name, ``re:`` regex, or class name) in place.

    While training with grad enabled, each such layer's forward runs under ``torch.utils.checkpoint``
    (non-reentrant): its inner activations are freed and recomputed during backward — less memory, one
    extra forward of those layers. Returns the names of the layers wrapped.
    """
    patterns = [layers] if isinstance(layers, str) else list(layers)
    if not patterns:
        raise invalid("layers", layers, "module names, 're:' regexes or class names to checkpoint")
    wrapped = []
    for name, module in model.named_modules():
        if name and matches(name, module, patterns) and not getattr(module, "_deepseek_checkpointed", False) \
                and not any(name.startswith(w + ".") for w in wrapped):
            module.forward = _checkpointed(module, module.forward)
            module._deepseek_checkpointed = True
            wrapped.append(name)
    if not wrapped:
        raise invalid("layers", patterns, "patterns that match at least one submodule")
    return wrapped


def _checkpointed(module: torch.nn.Module, forward: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(forward)
    def run(*args: Any, **kwargs: Any) -> Any:
        if module.training and torch.is_grad_enabled():
            return checkpoint(forward, *args, use_reentrant=False, **kwargs)
        return forward(*args, **kwargs)
    return run


def saved_activation_bytes(model: torch.nn.Module, *inputs: Any) -> int:
    """Bytes autograd keeps for backward after one forward of ``model`` (parameters excluded): activation memory."""
    params = {p.data_ptr() for p in model.parameters()}
    seen: set[tuple[int, int]] = set()
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if t.data_ptr() not in params and key not in seen:
            seen.add(key)
            total += key[1]
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(*inputs)
    del out
    return total
