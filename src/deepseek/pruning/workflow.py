"""What ``deepseek prune`` does, as one call: resolve a model, remove channels, time dense against pruned on this
machine, and write the pruned model (.onnx verified against PyTorch, or .pt2)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._core.checks import check_int
from .._core.errors import invalid

OUTPUT_SUFFIXES = (".onnx", ".pt2")


@dataclasses.dataclass(frozen=True)
class PruneOutcome:
    """The pruning ``result`` (:class:`~deepseek.pruning.structured.PruneResult`), the pruned ``model``, eager latency
    before and after (median of ``runs`` calls, this machine), and the file written (if any)."""

    result: Any
    model: Any
    label: str
    dense_ms: float
    pruned_ms: float
    runs: int
    output: Path | None

    @property
    def speedup(self) -> float:
        return self.dense_ms / self.pruned_ms

    def summary(self) -> list[str]:
        lines = [str(self.result), f"eager latency (median of {self.runs}, this machine): dense {self.dense_ms:.2f} ms, "
                                   f"pruned {self.pruned_ms:.2f} ms → {self.speedup:.2f}x"]
        if self.output is not None:
            lines.append(f"wrote {self.output} (pruned {self.label})")
        return lines


def prune_model(model: Any, ratio: float, *, inputs: Sequence[tuple[int, ...]] | None = None, arch: str | None = None,
                trust_pickle: bool = False, importance: str = "l1", steps: int = 1, round_to: int | None = None,
                ignore: Sequence[str] = (), runs: int = 10, output: str | Path | None = None) -> PruneOutcome:
    """Prune ``ratio`` of the channels of ``model`` (a built-in name, a model file or an ``nn.Module``; ``inputs``:
    input shapes where the file does not record them), time it against the dense model, and write it to ``output``
    (.onnx, verified against PyTorch, or .pt2) when given. The pruning options are :func:`prune_channels`'s."""
    import torch

    from .._core.atomic import atomic_path, check_output
    from .._core.timing import measure
    from ..models import resolve_model
    from .structured import prune_channels

    check_int(runs, "runs", minimum=1)
    if output is not None:
        if not isinstance(output, (str, Path)) or Path(output).suffix.lower() not in OUTPUT_SUFFIXES:
            raise invalid("output", output, f"a file ending in {' or '.join(OUTPUT_SUFFIXES)}")
        check_output(output, argument="output", inputs=[model] if isinstance(model, (str, Path)) else [])
    if isinstance(model, torch.nn.Module):
        g = torch.Generator().manual_seed(0)
        module, names, label = model, None, type(model).__name__
        examples = tuple(torch.randn(tuple(s), generator=g) for s in inputs) if inputs else None
    elif isinstance(model, (str, Path)):
        module, examples, names, label = resolve_model(str(model), inputs, arch=arch, trust_pickle=trust_pickle)
    else:
        raise invalid("model", type(model).__name__, "a built-in model name, a model file or a torch.nn.Module")
    if not isinstance(module, torch.nn.Module):
        raise invalid("model", model, "a PyTorch model (built-in name, .pt2, TorchScript, or state_dict with arch); "
                                      "an ONNX graph cannot be pruned structurally")
    if examples is None:
        raise invalid("inputs", None, "the input shape(s), e.g. [(1, 3, 224, 224)]")
    dense = copy.deepcopy(module).eval()
    result = prune_channels(module, ratio, examples, importance=importance, steps=steps, round_to=round_to,
                            ignore=tuple(ignore), inplace=True)
    with torch.no_grad():
        before = measure(lambda: dense(*examples), warmup=2, runs=runs).median_ms
        after = measure(lambda: module(*examples), warmup=2, runs=runs).median_ms
    written = None
    if output is not None:
        path = Path(output)
        if path.suffix.lower() == ".onnx":
            from ..runtime.onnx_export import export_onnx

            written = export_onnx(module, examples, path, input_names=names).path  # verified against PyTorch
        else:
            try:
                exported = torch.export.export(module, examples)
            except Exception as e:  # the pruned model runs in eager mode; torch.export could not capture it
                raise invalid("output", str(path), f"a .onnx file: torch.export cannot capture the pruned "
                                                   f"{type(module).__name__} ({type(e).__name__}: {str(e)[:200]})") from e
            with atomic_path(path) as tmp:
                torch.export.save(exported, tmp)
            written = path
    return PruneOutcome(result, module, label, before, after, runs, written)
