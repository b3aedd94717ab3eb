"""What an optimize search measured: each :class:`Candidate`, the :class:`OptimizeResult`, the Pareto front, and one
line naming a candidate."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import OptimizeConfig

if TYPE_CHECKING:
    from ..compile.pipeline import CompileRecipe
    from .data import Judge


@dataclasses.dataclass
class Candidate:
    """One measured candidate: its parameters, the recipe that rebuilds it, and what it measured."""

    number: int
    params: dict[str, Any]
    recipe: Any  # a CompileRecipe, or an OnnxRecipe for an ONNX file
    path: Path | None
    scores: dict[str, Any]
    latency_ms: float | None
    size_bytes: int | None
    feasible: bool
    build_s: float
    error: str | None = None

    def row(self) -> dict[str, Any]:
        return {"trial": self.number, "candidate": describe(self.params, self.recipe), **{f"param:{k}": v for k, v in self.params.items()},
                **{k: self.scores.get(k) for k in ("drop", "drop_pp", "metric", "sqnr_db", "cosine",
                                                   "accuracy", "agreement", "confident_agreement",
                                                   "clear_agreement", "mean_kl")},
                "latency_ms": self.latency_ms, "size_bytes": self.size_bytes, "feasible": self.feasible,
                "build_s": self.build_s, "error": self.error}


@dataclasses.dataclass
class OptimizeResult:
    """The chosen candidate (``best``), the FP32 baseline, every candidate measured, and the files written."""

    best: Candidate
    baseline: Candidate
    candidates: list[Candidate]
    config: OptimizeConfig
    reference_accuracy: float | None
    output: Path | None = None
    artifact: Path | None = None
    judge: Judge | None = None
    ranking: list[Any] = dataclasses.field(default_factory=list)  # the finalists' LatencyEstimates, fastest first

    @property
    def speedup(self) -> float | None:
        if self.best.latency_ms and self.baseline.latency_ms:
            return self.baseline.latency_ms / self.best.latency_ms
        return None

    def pareto(self) -> list[Candidate]:
        """Feasible-or-not candidates no other beats on accuracy drop, latency and size at once."""
        return pareto_front(self.candidates)


def describe(params: dict[str, Any], recipe: CompileRecipe | None = None) -> str:
    """One line naming a candidate (``recipe``: says whether a pruned one was fine-tuned)."""
    lowering = params["lowering"]
    if lowering.startswith("torch-"):  # a language-model candidate (:mod:`.lm`)
        return describe_lm(params)
    if lowering.startswith("openvino") or "int8_format" in params:  # OpenVINO, or a candidate of an ONNX file
        from .onnx_source import describe_onnx

        parts = [describe_onnx(params)]
    else:
        parts = [lowering]
    if lowering == "ort-int8" and "int8_format" not in params:
        parts.append(f"{params['fallbacks']} float fallbacks, {params['calibration_method']}"
                     + {"adaround": ", AdaRound", "adaround-block": ", AdaRound per block"}.get(params.get("rounding"), "")
                     + (", bias-corrected" if params["bias_correction"] else ""))
    if params.get("prune"):
        tuned = recipe is not None and recipe.finetune
        parts.append(f"pruned {params['prune']:.0%}" + (f", fine-tuned {recipe.finetune_epochs} epoch(s)" if tuned else
                                                        ", not fine-tuned"))
    return ", ".join(parts)


def describe_lm(params: dict[str, Any]) -> str:
    """One line naming a language-model candidate (weight-only int8/int4 or float)."""
    if params["lowering"] == "torch-float":
        return f"torch {params['compute']}"
    group = f" g{params['group_size']}" if params.get("group_size") else " per-channel"
    head = ", lm_head int8" if params.get("head_bits") else ""
    return f"torch int{params['bits']}{group} weights, {params['compute']} compute{head}"


def _drop(c: Candidate) -> float:
    """The candidate's figure against its budget (a language model's candidates carry only ``drop_pp``)."""
    return c.scores["drop"] if "drop" in c.scores else c.scores["drop_pp"]


def pareto_front(candidates: list[Candidate]) -> list[Candidate]:
    """Candidates no other beats on accuracy drop, latency and size at once (drop and size where none was timed)."""
    measured = [c for c in candidates if not c.error and c.size_bytes is not None]
    measured = [c for c in measured if c.latency_ms is not None] or measured

    def dominates(a: Candidate, b: Candidate) -> bool:
        ka, kb = ((_drop(c), c.latency_ms or 0.0, c.size_bytes) for c in (a, b))
        return all(x <= y for x, y in zip(ka, kb)) and ka != kb

    return [c for c in measured if not any(dominates(o, c) for o in measured if o is not c)]
