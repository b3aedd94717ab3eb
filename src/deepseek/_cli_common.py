"""Argument helpers shared by the CLI subcommands: model sources and input shapes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._errors import invalid


def count(minimum: int = 1) -> Any:
    """An argparse ``type`` for integer counts >= ``minimum``: a bad value is an argparse error naming the flag."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def add_model_arguments(parser: argparse.ArgumentParser, *, positional: bool = True) -> None:
    """``MODEL`` (a file or a built-in name), ``--arch`` and ``--inputs``."""
    if positional:
        parser.add_argument("model", metavar="MODEL", help="model file (.onnx, .pt2, .pt, .pth, .safetensors) or built-in name")
    parser.add_argument("--arch", default=None, help="architecture for state_dict/safetensors files, e.g. torchvision:resnet18")
    parser.add_argument("--inputs", default=None, metavar="SHAPE",
                        help="example input shape(s) when the file does not fix them, e.g. 1x3x224x224 (comma-separate several)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow loading a pickled whole model (it can run arbitrary code)")


def parse_shapes(text: str | None) -> list[tuple[int, ...]] | None:
    """``"1x3x224x224,1x128"`` → ``[(1, 3, 224, 224), (1, 128)]``."""
    if not text:
        return None
    shapes = []
    for part in text.split(","):
        try:
            dims = tuple(int(d) for d in part.strip().lower().split("x"))
        except ValueError:
            raise invalid("--inputs", text, "shapes like 1x3x224x224, comma-separated") from None
        if not dims or any(d <= 0 for d in dims):
            raise invalid("--inputs", text, "positive dimensions like 1x3x224x224")
        shapes.append(dims)
    return shapes


def resolve_model(name_or_path: str, shapes: list[tuple[int, ...]] | None, *, arch: str | None = None,
                  trust_pickle: bool = False, batch_size: int | None = None) -> tuple[Any, tuple[Any, ...] | None, list[str] | None, str]:
    """A built-in name or a file → (torch module or file path, example inputs or None, input names, label).

    Example inputs come from ``shapes`` (random float32, seed 0) when given; built-in models bring their own.
    """
    import torch

    from . import models

    path = Path(name_or_path)
    if not path.exists() and name_or_path.replace("_", "-").lower() in {k.replace("_", "-") for k in models.BUILTIN} | {"bert", "mobilenetv2"}:
        spec = models.get(name_or_path)
        return spec.model, spec.example_inputs(batch_size or 1), list(spec.input_names), spec.name
    if not path.exists():
        raise invalid("model", name_or_path, f"an existing model file or a built-in name {sorted(models.BUILTIN)}")
    examples = None
    if shapes:
        g = torch.Generator().manual_seed(0)
        examples = tuple(torch.randn(*s, generator=g) for s in shapes)
    from .runtime.artifacts import detect_kind, load_exported_program, load_module

    kind = detect_kind(path)
    if kind == "onnx":
        return path, examples, None, path.name
    module = load_module(path, kind, arch=arch, trust_pickle=trust_pickle)
    if kind == "exported_program" and examples is None:
        program = load_exported_program(path)
        args = getattr(program, "example_inputs", None)
        if args and args[0]:
            examples = tuple(args[0])
    return module, examples, None, path.name


def console() -> Any:
    """Console for command output: tables up to 120+ columns, messages never hard-wrapped mid-line."""
    from rich.console import Console

    return Console(width=max(120, Console().width), soft_wrap=True)
