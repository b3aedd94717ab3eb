"""A minimal, deterministic supervised loop for small classifiers on the bundled labeled sets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .._core.checks import check_int


def fit_classifier(model: torch.nn.Module, data: Any, *, epochs: int, lr: float = 3e-3, batch_size: int = 64,
                   seed: int = 1, on_step: Callable[[int, torch.nn.Module], None] | None = None) -> torch.nn.Module:
    """Train ``model`` with Adam and cross-entropy on ``data`` (a :class:`deepseek.assets.Dataset`); eval mode after.

    ``on_step(global_step, model)`` runs after ``backward`` and before the optimizer step (where a pruning
    scheduler goes).
    """
    check_int(epochs, "epochs", minimum=1, expected="a positive integer")
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    step = 0
    for _ in range(epochs):
        for x, y in data.loader(batch_size, shuffle=True, seed=seed):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            if on_step is not None:
                on_step(step, model)
            opt.step()
            step += 1
    return model.eval()


def accuracy(model: torch.nn.Module, data: Any, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on ``data``."""
    model.eval()
    with torch.no_grad():
        return float(torch.cat([model(x).argmax(1) == y for x, y in data.loader(batch_size)]).float().mean())
