"""The layer order of deepseek's source, checked on every import (module-level or inside a function): a module may
import only from its own layer or the ones below it. Lowest first:

_core (private helpers: errors, config, atomic IO, tensors, machine facts, progress, tables, timing)
  <- assets (named offline weights and data)  <- runtime, graph, nn  <- models (the model registry and resolver)
  <- quantization, pruning, train  <- compile  <- bench, evaluation  <- optimize, tune  <- serve, demo
  <- the command line (``cli``: parse, call one library function, print; ``__main__``) and the package's public
  verbs (``__init__``).

``stream`` and ``data`` are leaves: they import ``_core`` only. The package root holds nothing but ``__init__``,
``__main__`` and subpackages. An ONNX model served by ``deepseek.runtime`` never needs torch (tested in
tests/serve); this file checks the import graph itself."""

from __future__ import annotations

from test_import_cycles import ROOT, _file_imports

LAYERS: tuple[tuple[str, ...], ...] = (
    ("_core", "__version__"),
    ("assets",),
    ("runtime", "graph", "nn"),
    ("models",),
    ("quantization", "pruning", "train"),
    ("compile",),
    ("bench", "evaluation"),
    ("optimize", "tune"),
    ("serve", "demo"),
    ("cli", "__main__", "__init__"),
)
LEAVES = ("stream", "data")  # on _core alone


def layer_of(parts: tuple[str, ...] | list[str]) -> int:
    """The layer of a module given by its parts under ``deepseek`` (``("pruning", "masks")``)."""
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
        leaf_reaching_out = parts[0] in LEAVES and inner[0] != "_core"
        if leaf_reaching_out or layer_of(inner) > layer_of(parts):
            found.add((parts, ".".join(inner)))
    return found


def test_every_import_follows_the_layer_order():
    assert violations(_file_imports()) == set(), "imports against the layer order (lower layers never import higher)"


def test_a_forbidden_import_is_caught():
    source = [(("runtime", "onnx_export"), ["deepseek", "compile", "pipeline"]),  # runtime reaching up to compile
              (("stream", "features"), ["deepseek", "runtime"]),  # a leaf importing more than _core
              (("quantization", "calibration"), ["deepseek", "cli", "_common"]),  # a library reaching the CLI
              (("cli", "quantize"), ["deepseek", "optimize"]),  # the command line may import anything
              (("compile", "pipeline"), ["deepseek", "quantization", "onnx_static"])]  # downwards: fine
    assert violations(source) == {(("runtime", "onnx_export"), "compile.pipeline"), (("stream", "features"), "runtime"),
                                  (("quantization", "calibration"), "cli._common")}
    every = {parts[0] for parts, _ in _file_imports()}
    assert every <= {u for units in LAYERS for u in units} | set(LEAVES)  # each package has its place


def test_the_package_root_holds_only_the_entry_points_and_subpackages():
    loose = sorted(p.name for p in ROOT.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert loose == [], "modules at the package root belong in a subpackage of their layer"
