"""Nested training state (optimizer states, RNG states) as a JSON-able skeleton plus a flat ``{key: tensor}``
map: the form both checkpoint stores save, so loading never unpickles."""

from __future__ import annotations

from typing import Any

import torch


def split_tensors(tree: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-able skeleton of ``tree`` whose tensors are moved into ``tensors`` under path-like keys.

    Dict keys keep their type (optimizer states are keyed by ints), so :func:`join_tensors` rebuilds the tree.
    """
    if isinstance(tree, torch.Tensor):
        tensors[prefix] = tree
        return {"__tensor__": prefix}
    if isinstance(tree, dict):
        return {"__dict__": [[key, split_tensors(value, f"{prefix}/{key}", tensors)] for key, value in tree.items()]}
    if isinstance(tree, (list, tuple)):
        return [split_tensors(value, f"{prefix}/{i}", tensors) for i, value in enumerate(tree)]
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise TypeError(f"{prefix}: {type(tree).__name__} cannot be checkpointed (tensors, numbers, strings only)")


def join_tensors(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`split_tensors`."""
    if isinstance(skeleton, dict) and "__tensor__" in skeleton:
        return tensors[skeleton["__tensor__"]]
    if isinstance(skeleton, dict):
        return {key: join_tensors(value, tensors) for key, value in skeleton["__dict__"]}
    if isinstance(skeleton, list):
        return [join_tensors(value, tensors) for value in skeleton]
    return skeleton
