"""Weight masks as PyTorch parametrizations: the weight a layer computes with is ``original * mask``,
recomputed on every access, so optimizer updates never revive a pruned weight; masked models still
deepcopy, and ``remove_masks`` leaves ordinary layers whose pruned weights are zeros."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.nn.utils import parametrize

from .._core.errors import invalid
from .._core.select import check_matched, check_patterns, matches

PRUNABLE = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


class WeightMask(torch.nn.Module):
    """The parametrization: multiplies the layer's weight by a 0/1 ``mask`` buffer.

    With ``track_dense_grad`` on, the gradient of the loss with respect to the masked weight — dense, also
    where the mask is 0 — is kept in ``dense_grad`` (what regrowth by gradient magnitude ranks; the
    gradient reaching the trainable tensor is zero at pruned positions).
    """

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)
        self.track_dense_grad = False
        self.dense_grad: torch.Tensor | None = None

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        out = weight * self.mask
        if self.track_dense_grad and out.requires_grad:
            out.register_hook(self._keep_grad)
        return out

    def _keep_grad(self, grad: torch.Tensor) -> None:
        self.dense_grad = grad.detach().clone()


def prunable_layers(model: torch.nn.Module, skip: Iterable[str] = (), *, argument: str = "skip") -> dict[str, torch.nn.Module]:
    """Linear/Conv layers of ``model`` by name, minus those matching ``skip`` (names, ``re:`` regexes, class names).
    A ``skip`` pattern matching none of them is refused (InvalidArgumentError naming ``argument``)."""
    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module")
    skip = check_patterns(skip, argument=argument)
    layers = {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}
    check_matched(layers, skip, argument=argument, what="Linear/Conv layer")
    return {name: m for name, m in layers.items() if not matches(name, m, skip, argument=argument)}


def mask_module(module: torch.nn.Module) -> WeightMask | None:
    """The layer's :class:`WeightMask`, if it has one."""
    if not parametrize.is_parametrized(module, "weight"):
        return None
    return next((p for p in module.parametrizations.weight if isinstance(p, WeightMask)), None)


def is_masked(module: torch.nn.Module) -> bool:
    return mask_module(module) is not None


def current_mask(module: torch.nn.Module) -> torch.Tensor:
    """The layer's 0/1 mask (all ones when it has none)."""
    m = mask_module(module)
    return m.mask if m is not None else torch.ones_like(module.weight)


def dense_weight(module: torch.nn.Module) -> torch.Tensor:
    """The trainable tensor under the mask (the parametrization's ``original`` once masked)."""
    return module.parametrizations.weight.original if is_masked(module) else module.weight


@torch.no_grad()
def set_mask(module: torch.nn.Module, mask: torch.Tensor) -> None:
    """Install or replace the layer's mask (overwritten, not multiplied: dynamic sparse training regrows)."""
    mask = mask.to(device=module.weight.device, dtype=module.weight.dtype)
    existing = mask_module(module)
    if existing is None:
        parametrize.register_parametrization(module, "weight", WeightMask(mask))
    else:
        existing.mask.copy_(mask)
    dense_weight(module).mul_(mask)  # pruned entries restart from zero if they are ever regrown


def remove_masks(model: torch.nn.Module) -> int:
    """Make pruning permanent: plain ``weight`` parameters holding zeros, no parametrizations. Returns layers done."""
    done = 0
    for module in model.modules():
        if is_masked(module):
            # a deepcopy shares the generated Parametrized<Layer> class, and removal deletes the class's
            # `weight` property: give this module its own class first so copies keep working
            cls = module.__class__
            module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            done += 1
    return done
