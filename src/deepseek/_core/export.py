"""Readable reasons for torch.export failures."""

from __future__ import annotations

import re
from typing import Any


def export_failure(exc: BaseException) -> str:
    """The first line of a torch.export error, plus where in the user's code it happened when it says."""
    text = str(exc)
    first = (text.strip().splitlines() or [type(exc).__name__])[0][:300]
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\w+)', text)
    return f"{first} (at {frames[-1][0]}:{frames[-1][1]}, in {frames[-1][2]})" if frames else first


def dynamic_batch(examples: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(examples, dynamic_shapes) that let torch.export keep dimension 0 symbolic.

    torch.export specializes a dimension of size 1, so single-row examples are traced with two rows.
    """
    import torch

    shapes = tuple({0: torch.export.Dim.AUTO} if isinstance(x, torch.Tensor) and x.dim() > 0 else None for x in examples)
    examples = tuple(torch.cat([x, x]) if isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] == 1 else x
                     for x in examples)
    return examples, shapes


def export_or_explain(model: Any, examples: tuple[Any, ...], **kwargs: Any) -> Any:
    """``torch.export.export`` in eval mode, failing with a :class:`DeepSeekError` that says why and where."""
    import torch

    from .errors import DeepSeekError
    from .tensors import eval_mode

    eval_mode(model)
    try:
        return torch.export.export(model, examples, **kwargs)
    except Exception as e:  # torch.export raises many types; all mean "cannot capture"
        raise DeepSeekError(f"model failed to export with torch.export: {export_failure(e)}") from e


def run_examples(model: Any, examples: tuple[Any, ...], *, argument: str = "example_inputs") -> Any:
    """``model(*examples)`` without gradients, or an :class:`InvalidArgumentError` naming ``argument`` when the model
    refuses them (wrong shape or dtype: a ``.pt2`` guards its input shapes) — before any export work."""
    import torch

    from .errors import invalid

    try:
        with torch.no_grad():
            return model(*examples)
    except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        shapes = [list(getattr(x, "shape", ())) for x in examples]
        raise invalid(argument, f"inputs of shape(s) {shapes}",
                      f"inputs the model accepts (it raised {type(exc).__name__}: {first})") from None
