"""No import circles between deepseek's top-level packages, nor between the modules of one package, counting imports
inside functions: a circle hidden by a function-local import turns moving a function into an ImportError at call time.

Imports under ``if TYPE_CHECKING:`` are not counted (they never run). Inside a package, an import whose line says
``# import-cycle: <why>`` is allowed to close a circle: the reason is written where the circle is made."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "deepseek"


def _type_only(tree: ast.AST) -> set[int]:
    """The ids of the import nodes inside ``if TYPE_CHECKING:`` blocks."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            found |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return found


def _file_imports(*, justified: bool = True) -> Iterator[tuple[tuple[str, ...], list[str]]]:
    """Every deepseek import in the source that runs, module-level or inside a function: (the importing file's parts
    under ``src/deepseek``, e.g. ``("pruning", "masks")``; the imported module's dotted parts, e.g.
    ``["deepseek", "bench"]``). ``justified=False`` leaves out imports marked ``# import-cycle: <why>``."""
    for file in sorted(ROOT.rglob("*.py")):
        parts = file.relative_to(ROOT).with_suffix("").parts
        module = ["deepseek", *parts[:-1]] if parts[-1] == "__init__" else ["deepseek", *parts]
        package = module if parts[-1] == "__init__" else module[:-1]
        text = file.read_text()
        lines = text.splitlines()
        tree = ast.parse(text)
        skip = _type_only(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if not justified and isinstance(node, ast.ImportFrom) and any(
                    "# import-cycle:" in line for line in lines[node.lineno - 1:node.end_lineno]):
                continue  # the statement (one line, or wrapped in parentheses) says why it closes a circle
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - node.level + 1]
                targets = [base + node.module.split(".")] if node.module else [[*base, a.name] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deepseek."):
                targets = [node.module.split(".")]
            else:
                continue
            for target in targets:
                yield parts, target


def _edges() -> dict[str, set[str]]:
    """Top-level unit (package or root module, e.g. ``compile``, ``_cli_common``) -> the units it imports."""
    edges: dict[str, set[str]] = defaultdict(set)
    for parts, target in _file_imports():
        if len(target) >= 2 and target[1] != parts[0]:
            edges[parts[0]].add(target[1])
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_between_packages():
    assert _cycles(_edges()) == []


def _module_edges() -> dict[str, set[str]]:
    """Module -> the modules of its own package it imports (``optimize.lm`` -> ``optimize.result``), justified
    imports left out."""
    edges: dict[str, set[str]] = defaultdict(set)
    for parts, target in _file_imports(justified=False):
        inner = target[1:]
        source = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if inner and inner[0] == parts[0] and ".".join(inner) != source:
            edges[source].add(".".join(inner))
    return edges


def test_no_import_circles_inside_a_package_unless_justified():
    assert _cycles(_module_edges()) == []


def test_type_only_and_justified_imports_are_told_apart(tmp_path, monkeypatch):
    import test_import_cycles as me

    pkg = tmp_path / "deepseek" / "p"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n"
                              "def f():\n    from .c import C\n")
    (pkg / "b.py").write_text("def g():\n    from .a import f\n")
    (pkg / "c.py").write_text("def h():\n    from .a import (\n        f,  # import-cycle: c's helper is a's front door\n    )\n")
    monkeypatch.setattr(me, "ROOT", tmp_path / "deepseek")
    assert _cycles(_module_edges()) == []  # a -> b is type-only; c -> a is justified
    (pkg / "c.py").write_text("def h():\n    from .a import f\n")
    assert _cycles(_module_edges()) == [["p.a", "p.c"]]


def test_the_check_sees_a_circle_hidden_in_a_function():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges = _edges()
    assert "runtime" in edges["compile"]  # function-local and module-level imports are both counted
