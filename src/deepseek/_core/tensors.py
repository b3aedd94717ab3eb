"""Conversions between the input/output shapes users pass around (tensors, arrays, tuples, dicts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import invalid


def as_input_tuple(inputs: Any, argument: str = "inputs") -> tuple[Any, ...]:
    """A tensor, an array, or a list/tuple of them → a tuple of positional inputs."""
    if isinstance(inputs, (list, tuple)):
        items = tuple(inputs)
    elif isinstance(inputs, Mapping):
        items = tuple(inputs.values())
    else:
        items = (inputs,)
    if not items:
        raise invalid(argument, inputs, "at least one tensor or array")
    for item in items:
        if not (_is_tensor(item) or isinstance(item, np.ndarray)):
            raise invalid(argument, type(item).__name__, "torch.Tensor or numpy.ndarray inputs")
    return items


def to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if _is_tensor(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def to_torch(x: Any) -> Any:
    import torch

    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))


def flatten_outputs(out: Any) -> list[Any]:
    """Model outputs (tensor, tuple, dict, Hugging Face ModelOutput) → a flat list of tensors, in order."""
    if _is_tensor(out) or isinstance(out, np.ndarray):
        return [out]
    if isinstance(out, Mapping):  # ModelOutput is a Mapping of its non-None fields
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in flatten_outputs(item)]
    if out is None:
        return []
    raise invalid("model output", type(out).__name__, "tensors, or tuples/dicts of tensors")


def batch_size_of(inputs: tuple[Any, ...]) -> int:
    shape = getattr(inputs[0], "shape", ())
    return int(shape[0]) if len(shape) else 1


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def eval_mode(module: Any) -> Any:
    """``module.eval()``, except for a loaded ``.pt2``'s module: traced in eval form already, it refuses it."""
    import contextlib

    with contextlib.suppress(NotImplementedError):
        module.eval()
    return module
