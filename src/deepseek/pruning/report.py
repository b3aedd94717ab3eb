"""Per-layer sparsity report: how many weights each layer has and how many are zero."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from .masks import PRUNABLE


@dataclasses.dataclass(frozen=True)
class LayerSparsity:
    name: str
    type: str
    shape: tuple[int, ...]
    params: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.params if self.params else 0.0


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    layers: list[LayerSparsity]

    @property
    def params(self) -> int:
        return sum(ly.params for ly in self.layers)

    @property
    def zeros(self) -> int:
        return sum(ly.zeros for ly in self.layers)

    @property
    def sparsity(self) -> float:
        """Zeros over all weights of the prunable layers."""
        return self.zeros / self.params if self.params else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"sparsity": self.sparsity, "params": self.params, "zeros": self.zeros,
                "layers": [{**dataclasses.asdict(ly), "sparsity": ly.sparsity} for ly in self.layers]}

    def save_json(self, path: str | Path) -> Path:
        from .._core.atomic import check_output, write_text

        check_output(path, argument="path")
        return write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def table(self) -> Any:
        from .._core.table import Table

        t = Table(title=f"sparsity {self.sparsity:.1%} ({self.zeros:,} of {self.params:,} weights are zero)",
                  title_justify="left")
        for col in ("layer", "type", "shape", "weights", "zeros", "sparsity"):
            t.add_column(col, justify="left" if col in ("layer", "type", "shape") else "right")
        for ly in self.layers:
            t.add_row(ly.name, ly.type, "×".join(map(str, ly.shape)), f"{ly.params:,}", f"{ly.zeros:,}", f"{ly.sparsity:.1%}")
        return t


def sparsity_report(model: torch.nn.Module) -> SparsityReport:
    """Zeros in the weights each Linear/Conv layer computes with (masked or already finalized)."""
    if not isinstance(model, torch.nn.Module):
        from .._core.errors import invalid

        raise invalid("model", type(model).__name__, "a torch.nn.Module")
    layers = []
    for name, m in model.named_modules():
        if isinstance(m, PRUNABLE):
            w = m.weight.detach()
            layers.append(LayerSparsity(name, type(m).__name__, tuple(w.shape), w.numel(), int((w == 0).sum())))
    return SparsityReport(layers)


class MaskedModelMixin:
    """What every mask-driven pruner ends with: make the zeros permanent, and report them."""

    def finalize(self, model: torch.nn.Module) -> torch.nn.Module:
        """Make pruning permanent (plain weights with zeros, masks removed); returns the model."""
        from .masks import remove_masks

        remove_masks(model)
        return model

    def report(self, model: torch.nn.Module) -> SparsityReport:
        """Per-layer sparsity of ``model`` (``.table()``, ``.to_dict()``, ``.save_json()``)."""
        return sparsity_report(model)
