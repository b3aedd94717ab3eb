"""The layer order of deepseek's source, checked on every import (module-level or inside a function): a module may
import only from its own layer or the ones below it. Lowest first:

core (private helpers: errors, config, atomic IO, tensors, machine facts, progress, tables, timing)
  <- assets (named weights and data)  <- runtime, graph, nn, amp  <- models (the built-in model registry)
  <- quantization, pruning, train  <- compile  <- bench, evaluation, lm_metrics  <- optimize, tune
  <- serve, doctor, demo  <- the command line (``cli``, ``__main__``, ``_cli_common``, every ``cli.py`` or
  ``*_cli.py``) and the package's public verbs (``__init__``).

``stream`` and ``data`` are leaves: they import core only. An ONNX model served by ``deepseek.runtime`` never
needs torch (tested in tests/serve); this file checks the import graph itself."""

from __future__ import annotations

from test_import_cycles import _file_imports

CORE = ("_errors", "_config", "_atomic", "_arrays", "_tensors", "_machine", "_progress", "_table", "_timing",
        "_select", "_lazy", "_agreement", "_hf", "_export", "__version__")
LAYERS: tuple[tuple[str, ...], ...] = (
    CORE,
    ("assets",),
    ("runtime", "graph", "nn", "amp"),
    ("models",),
    ("quantization", "pruning", "train"),
    ("compile",),
    ("bench", "evaluation", "lm_metrics"),
    ("optimize", "tune"),
    ("serve", "doctor", "demo", "demo_pruned"),
    ("cli", "__main__", "_cli_common", "__init__"),
)
LEAVES = ("stream", "data")  # on core alone
CLI = len(LAYERS) - 1

def layer_of(parts: tuple[str, ...] | list[str]) -> int:
    """The layer of a module given by its parts under ``deepseek`` (``("pruning", "cli")``); a package's ``cli``
    or ``*_cli`` module (one per command) and ``_cli_common`` are the command line's, whatever package holds them."""
    if parts[-1] in ("cli", "_cli_common", "__main__") or parts[-1].endswith("_cli"):
        return CLI
    if parts[0] in LEAVES:
        return 1
    for level, units in enumerate(LAYERS):
        if parts[0] in units:
            return level
    raise AssertionError(f"deepseek.{'.'.join(parts)}: not placed in a layer (add its package to LAYERS)")


def violations(imports) -> set[tuple[tuple[str, ...], str]]:
    """The (importing module, imported module) pairs that break the order, from ``(parts, target)`` pairs as
    :func:`test_import_cycles._file_imports` yields them."""
    found = set()
    for parts, target in imports:
        inner = tuple(target[1:])
        if not inner or inner[0] == parts[0]:
            continue  # the package itself, or inside one package
        leaf_reaching_out = parts[0] in LEAVES and layer_of(parts) != CLI and inner[0] not in CORE
        if leaf_reaching_out or layer_of(inner) > layer_of(parts):
            found.add((parts, ".".join(inner)))
    return found


def test_every_import_follows_the_layer_order():
    assert violations(_file_imports()) == set(), "imports against the layer order (lower layers never import higher)"


def test_a_forbidden_import_is_caught():
    source = [(("runtime", "onnx_export"), ["deepseek", "compile", "pipeline"]),  # runtime reaching up to compile
              (("stream", "features"), ["deepseek", "runtime"]),  # a leaf importing more than core
              (("quantization", "cli"), ["deepseek", "optimize"]),  # the command line may import anything
              (("compile", "pipeline"), ["deepseek", "quantization", "onnx_static"])]  # downwards: fine
    assert violations(source) == {(("runtime", "onnx_export"), "compile.pipeline"), (("stream", "features"), "runtime")}
    every = {parts[0] for parts, _ in _file_imports()}
    assert every <= {u for units in LAYERS for u in units} | set(LEAVES)  # each package has its place
