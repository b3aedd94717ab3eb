"""Dynamic sparse training (RigL, Evci et al. 2020): start sparse, and every ``update_freq`` steps drop the
weakest active weights and regrow as many where the loss gradient is largest, at constant sparsity."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from .._core.checks import check_int, check_number
from .._core.config import BaseConfig
from .._core.errors import invalid
from .._core.select import check_patterns
from .masks import current_mask, dense_weight, mask_module, prunable_layers, set_mask
from .report import MaskedModelMixin


@dataclasses.dataclass(frozen=True)
class DynamicSparseConfig(BaseConfig):
    """``sparsity``: fraction of weights at zero from the start (global magnitude ranking chooses which);
    ``regrow_fraction``: share of each layer's active weights dropped and regrown per update (~5%), decayed
    by a cosine to zero at ``end_step``; ``update_freq``: steps between updates; ``skip``: dense layers."""

    sparsity: float = 0.9
    regrow_fraction: float = 0.05
    update_freq: int = 100
    end_step: int = 10_000
    skip: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_number(self.sparsity, "sparsity", above=0, below=1, expected="a fraction in (0, 1)")
        check_number(self.regrow_fraction, "regrow_fraction", above=0, below=1,
                     expected="a fraction in (0, 1), e.g. 0.05")
        for name in ("update_freq", "end_step"):
            check_int(getattr(self, name), name, minimum=1, expected="a positive integer")
        object.__setattr__(self, "skip", check_patterns(self.skip, argument="skip"))


class DynamicSparseTraining(MaskedModelMixin):
    """Train at ``sparsity`` from step 0. ``start(model)`` makes it sparse by global magnitude; call
    ``step(model, step)`` after ``loss.backward()`` and before ``optimizer.step()`` every step (it acts
    every ``update_freq`` steps until ``end_step``); ``finalize(model)`` makes the zeros permanent."""

    def __init__(self, sparsity: float = 0.9, regrow_fraction: float = 0.05, **options: Any) -> None:
        self.config = DynamicSparseConfig.from_dict(dict(options, sparsity=sparsity, regrow_fraction=regrow_fraction))
        self.updates: list[dict[str, float]] = []

    def start(self, model: torch.nn.Module) -> torch.nn.Module:
        from .scheduler import SparsityScheduler

        layers = prunable_layers(model, self.config.skip)
        if not layers:
            raise invalid("model", type(model).__name__, "a model with Linear/Conv layers (none found or all skipped)")
        SparsityScheduler(self.config.sparsity, 1, schedule="one_shot", skip=self.config.skip).step(model)
        for m in layers.values():
            mask_module(m).track_dense_grad = True
        return model

    def drop_fraction(self, step: int) -> float:
        """RigL's cosine decay of the regrown share."""
        check_int(step, "step", minimum=0, expected="a training step, an integer >= 0")
        return self.config.regrow_fraction / 2 * (1 + math.cos(math.pi * min(step, self.config.end_step) / self.config.end_step))

    @torch.no_grad()
    def step(self, model: torch.nn.Module, step: int) -> int:
        """Drop and regrow if ``step`` is an update step; returns how many connections moved."""
        if not isinstance(model, torch.nn.Module):
            raise invalid("model", type(model).__name__, "a torch.nn.Module")
        check_int(step, "step", minimum=0, expected="the global training step, an integer >= 0")
        if step == 0 or step % self.config.update_freq or step >= self.config.end_step:
            return 0
        moved = 0
        fraction = self.drop_fraction(step)
        for name, m in prunable_layers(model, self.config.skip).items():
            wm = mask_module(m)
            if wm is None:
                raise invalid("model", type(model).__name__, f"a model prepared with start(model) (layer {name!r} has no mask)")
            if wm.dense_grad is None:
                raise invalid("step", step, "a call after loss.backward() (no gradient recorded for layer " + repr(name) + ")")
            mask = current_mask(m).flatten().clone()
            active = mask > 0
            k = int(fraction * int(active.sum()))
            if k == 0:
                continue
            w = dense_weight(m).detach().abs().flatten()
            drop = torch.argsort(torch.where(active, w, torch.full_like(w, float("inf"))))[:k]
            grow_scores = torch.where(active, torch.full_like(w, -1.0), wm.dense_grad.abs().flatten().float())
            grow_scores[drop] = -1.0  # not straight back in
            grow = torch.argsort(grow_scores, descending=True)[:k]
            mask[drop] = 0
            mask[grow] = 1
            set_mask(m, mask.view_as(m.weight))  # regrown weights start at zero
            moved += k
        self.updates.append({"step": step, "fraction": fraction, "moved": moved})
        return moved
