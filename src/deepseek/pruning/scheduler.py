"""``SparsityScheduler``: gradual unstructured pruning driven from the training loop (a pruning
step between ``loss.backward()`` and ``optimizer.step()``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from .._core.checks import check_choice, check_int, check_number
from .._core.config import BaseConfig
from .._core.errors import invalid
from .._core.select import check_patterns
from .masks import current_mask, dense_weight, prunable_layers, set_mask
from .report import MaskedModelMixin
from .schedules import SCHEDULES, sparsity_at

METHODS = ("magnitude", "l1", "l2", "taylor", "random")


@dataclasses.dataclass(frozen=True)
class SparsityConfig(BaseConfig):
    """How :class:`SparsityScheduler` prunes; see it for the meaning of each field."""

    target_sparsity: float = 0.7
    prune_freq: int = 100
    prune_method: str = "magnitude"
    schedule: str = "cubic"
    initial_sparsity: float = 0.0
    start_step: int = 0
    end_step: int | None = None
    scope: str = "global"
    skip: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        check_number(self.target_sparsity, "target_sparsity", minimum=0, below=1,
                     expected="a fraction in [0, 1)")
        check_number(self.initial_sparsity, "initial_sparsity", minimum=0, maximum=self.target_sparsity,
                     expected=f"a fraction in [0, target_sparsity={self.target_sparsity}]")
        check_int(self.prune_freq, "prune_freq", minimum=1,
                  expected="a positive integer (training steps between pruning events)")
        check_choice(self.prune_method, "prune_method", METHODS, expected=f"one of {METHODS}")
        check_choice(self.schedule, "schedule", SCHEDULES, expected=f"one of {SCHEDULES}")
        check_choice(self.scope, "scope", ("global", "local"), expected="'global' or 'local'")
        check_int(self.start_step, "start_step", minimum=0)
        check_int(self.end_step, "end_step", minimum=self.start_step + 1, optional=True,
                  expected=f"an integer > start_step ({self.start_step})")
        check_int(self.seed, "seed", minimum=0)
        object.__setattr__(self, "skip", check_patterns(self.skip, argument="skip"))

    @property
    def last_step(self) -> int:
        """The step at which the target is reached (default: 10 pruning events after ``start_step``)."""
        return self.end_step if self.end_step is not None else self.start_step + 10 * self.prune_freq


class SparsityScheduler(MaskedModelMixin):
    """Prune a model gradually to ``target_sparsity`` of its Linear/Conv weights.

    Call ``step(model)`` every ``prune_freq`` training steps, after ``loss.backward()`` and before
    ``optimizer.step()`` (the usual place in a training loop; ``taylor`` needs the gradients). Each call is
    one pruning event ``prune_freq`` steps after the previous, unless ``step=`` gives the global step.
    Sparsity follows ``schedule`` (cubic, linear, exponential, one_shot) from ``initial_sparsity`` at
    ``start_step`` to the target at ``end_step`` (default: 10 pruning events after ``start_step``).
    ``prune_method``: ``magnitude``/``l1`` (|w|; ``l2`` ranks w², the same order for single weights),
    ``taylor`` (|w · ∂L/∂w|, the first-order change of the loss) or ``random`` (a baseline).
    ``scope="global"`` ranks all layers together (layers with many redundant weights give up more),
    ``"local"`` prunes every layer to the same fraction. ``skip``: layers left dense (names, ``re:``
    regexes, class names). Masks persist through optimizer steps; ``finalize`` makes the zeros permanent.
    """

    def __init__(self, target_sparsity: float = 0.7, prune_freq: int = 100, prune_method: str = "magnitude",
                 **options: Any) -> None:
        # from_dict: an unknown option is an InvalidArgumentError naming it, not a TypeError
        self.config = SparsityConfig.from_dict(dict(options, target_sparsity=target_sparsity, prune_freq=prune_freq,
                                                    prune_method=prune_method))
        self._calls = 0
        self._history: list[dict[str, float]] = []

    def sparsity_at(self, step: int) -> float:
        """The sparsity this scheduler holds at training ``step``."""
        check_int(step, "step", minimum=0, expected="a training step, an integer >= 0")
        c = self.config
        return sparsity_at(step, target=c.target_sparsity, start_step=c.start_step, end_step=c.last_step,
                           initial=c.initial_sparsity, schedule=c.schedule)

    @property
    def history(self) -> list[dict[str, float]]:
        """Step, scheduled and held sparsity of every pruning event so far."""
        return list(self._history)

    def step(self, model: torch.nn.Module, step: int | None = None) -> float:
        """One pruning event: bring ``model`` to the scheduled sparsity. Returns the sparsity now held."""
        if not isinstance(model, torch.nn.Module):
            raise invalid("model", type(model).__name__, "a torch.nn.Module")
        check_int(step, "step", minimum=0, optional=True,
                  expected="the global training step, an integer >= 0")
        if step is None:
            step = self._calls * self.config.prune_freq
        layers = prunable_layers(model, self.config.skip)
        if not layers:
            raise invalid("model", type(model).__name__, "a model with Linear/Conv layers to prune (none found or all skipped)")
        self._calls += 1
        target = self.sparsity_at(step)
        scores = {name: self._scores(name, m) for name, m in layers.items()}
        if self.config.scope == "global":
            flat = _keep_top(torch.cat([s.flatten() for s in scores.values()]), target)
            for (name, m), mask in zip(layers.items(), flat.split([s.numel() for s in scores.values()])):
                set_mask(m, mask.view_as(scores[name]))
        else:
            for name, m in layers.items():
                set_mask(m, _keep_top(scores[name], target))
        masks = [current_mask(m) for m in layers.values()]
        held = sum(int((mask == 0).sum()) for mask in masks) / sum(mask.numel() for mask in masks)
        self._history.append({"step": step, "target": target, "sparsity": held})
        return held

    def _scores(self, name: str, module: torch.nn.Module) -> torch.Tensor:
        """Importance of every weight; already-pruned weights score -inf so they stay pruned."""
        w = dense_weight(module).detach()
        method = self.config.prune_method
        if method in ("magnitude", "l1"):
            s = w.abs()
        elif method == "l2":
            s = w.pow(2)
        elif method == "taylor":
            grad = dense_weight(module).grad
            if grad is None:
                raise invalid("prune_method", "taylor", "gradients on the weights: call step(model) after loss.backward()")
            s = (w * grad.detach()).abs()
        else:
            g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self._calls)
            s = torch.rand(w.shape, generator=g).to(w.device)
        s = s.float().clone()
        s[current_mask(module) == 0] = float("-inf")
        return s


def _keep_top(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Mask keeping the highest-scoring ``1 - sparsity`` of the entries (exact count; lowest pruned first)."""
    k = round(sparsity * scores.numel())
    mask = torch.ones(scores.numel(), device=scores.device)
    if k > 0:
        mask[torch.argsort(scores.flatten(), stable=True)[:k]] = 0
    return mask.view_as(scores)
