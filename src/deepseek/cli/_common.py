"""Argument helpers shared by the CLI subcommands: model sources and input shapes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._core.errors import invalid


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
    parse.bounds = (minimum, None, None, None)  # type: ignore[attr-defined]  (read by the CLI fuzz tests)
    return parse


def number(*, minimum: float | None = None, maximum: float | None = None, above: float | None = None,
           below: float | None = None) -> Any:
    """An argparse ``type`` for finite numbers within bounds (``minimum``/``maximum`` inclusive, ``above``/``below``
    exclusive): a bad value is an argparse error naming the flag."""
    import math

    bounds = [f">= {minimum:g}" if minimum is not None else "", f"> {above:g}" if above is not None else "",
              f"<= {maximum:g}" if maximum is not None else "", f"< {below:g}" if below is not None else ""]
    expected = "a finite number" + (" " + " and ".join(b for b in bounds if b) if any(bounds) else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not math.isfinite(value) or (minimum is not None and value < minimum) or \
                (maximum is not None and value > maximum) or (above is not None and value <= above) or \
                (below is not None and value >= below):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected
    parse.bounds = (minimum, maximum, above, below)  # type: ignore[attr-defined]  (read by the CLI fuzz tests)
    return parse


def port(text: str) -> int:
    """An argparse ``type`` for a TCP port, 0-65535 (0: any free port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a TCP port 0-65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 0-65535, got {value}")
    return value


def declare_outputs(parser: argparse.ArgumentParser, *dests: str, folders: tuple[str, ...] = ()) -> None:
    """Mark the arguments ``dests`` (files) and ``folders`` as outputs: before the command runs, each given
    one is checked (:func:`deepseek._core.atomic.check_output`) against every input path on the command line, so no
    flag that writes can replace an input, aim at a folder, or fail for an unwritable place after the work."""
    declared = dict(parser.get_default("_outputs") or {})
    declared.update({d: False for d in dests})
    declared.update({d: True for d in folders})
    parser.set_defaults(_outputs=declared)


def declare_flag_names(parser: argparse.ArgumentParser, names: dict[str, str]) -> None:
    """Library argument names that this subcommand's flags set under other names (``source`` → ``MODEL``,
    ``optimizer_config.type`` → ``--optimizer``). A library error naming one of them, or naming the dest of one of
    the parser's own flags (``target_arch`` → ``--target-arch``, no declaration needed), is shown naming the
    flag (see :func:`flag_message`)."""
    declared = dict(parser.get_default("_flag_names") or {})
    declared.update(names)
    parser.set_defaults(_flag_names=declared)


def flag_message(exc: Exception, actions: list[argparse.Action], declared: dict[str, str] | None = None) -> str:
    """The message of ``exc`` (``target_arch: got 'riscv', expected ...``) with its leading argument name replaced
    by the flag that sets it (``--target-arch: got ...``); a declared name that is not the flag's own dest is kept
    after the flag (``--optimizer (optimizer_config.type): ...``). Unknown names are left as they are."""
    import re

    text = str(exc)
    match = re.match(r"([A-Za-z_][\w.]*)(?=:|\[| \()", text)
    if not match:
        return text
    name = match.group(1)
    own = {a.dest: flag_name(actions, a.dest) for a in actions if not isinstance(a, argparse._HelpAction)}
    if name in (declared or {}):
        flag = declared[name]
        shown = flag if own.get(name) == flag or flag.lstrip("-").replace("-", "_") == name else f"{flag} ({name})"
    elif name in own and not name.startswith("_"):
        shown = own[name]
    else:
        return text
    return shown + text[match.end():]


def flag_name(actions: list[argparse.Action], dest: str) -> str:
    """How the user wrote argument ``dest``: its first long flag (``--json``; later ones are aliases shared with
    other commands) or its metavar (``OUTPUT``)."""
    for action in actions:
        if action.dest == dest:
            if action.option_strings:
                return next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])
            return str(action.metavar or dest)  # a positional: as argparse shows it in the usage line
    return dest


def _paths_in(value: Any) -> list[str]:
    if isinstance(value, (str, Path)):
        return [str(value)] if str(value) and Path(value).exists() else []
    if isinstance(value, (list, tuple)):
        return [p for item in value for p in _paths_in(item)]
    return []


def check_declared_outputs(args: argparse.Namespace, actions: list[argparse.Action]) -> None:
    """Check, before any work, every output declared with :func:`declare_outputs`: none may be an input path
    given on the same command line (any other argument naming an existing file or folder), a folder where a
    file is written, a file where a folder is, or in a place that cannot be written; two outputs may not be
    the same path."""
    from .._core.atomic import _same_path, check_output

    declared: dict[str, bool] = getattr(args, "_outputs", None) or {}
    if not declared:
        return
    inputs = [p for dest, value in vars(args).items()
              if dest not in declared and not dest.startswith("_") and dest != "passthrough" for p in _paths_in(value)]
    seen: list[tuple[str, str]] = []
    for dest, is_folder in declared.items():
        value = getattr(args, dest, None)
        if value is None or value is False:
            continue
        flag = flag_name(actions, dest)
        check_output(value, argument=flag, inputs=inputs, folder=is_folder)
        for other_flag, other in seen:
            if _same_path(value, other):
                raise invalid(flag, str(value), f"a path different from {other_flag} ({other!r})")
        seen.append((flag, str(value)))


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


def refuse_arch_unless_weights(args: argparse.Namespace) -> None:
    """``--arch`` builds the model a state_dict/.safetensors file fills; anywhere else it would be ignored."""
    from ..models import refuse_arch_unless_weights as refuse

    refuse(args.model, args.arch, argument="--arch", name="MODEL")


def console() -> Any:
    """Console for command output: tables up to 120+ columns, messages never hard-wrapped mid-line."""
    from rich.console import Console

    return Console(width=max(120, Console().width), soft_wrap=True)
