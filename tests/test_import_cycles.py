"""No import circles between deepseek's top-level packages and modules, counting imports inside functions: a
circle hidden by a function-local import turns moving a function into an ImportError at call time."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "deepseek"


def _file_imports() -> Iterator[tuple[tuple[str, ...], list[str]]]:
    """Every deepseek import in the source, module-level or inside a function: (the importing file's parts under
    ``src/deepseek``, e.g. ``("pruning", "cli")``; the imported module's dotted parts, e.g. ``["deepseek", "bench"]``)."""
    for file in sorted(ROOT.rglob("*.py")):
        parts = file.relative_to(ROOT).with_suffix("").parts
        module = ["deepseek", *parts[:-1]] if parts[-1] == "__init__" else ["deepseek", *parts]
        package = module if parts[-1] == "__init__" else module[:-1]
        for node in ast.walk(ast.parse(file.read_text())):
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


def test_the_check_sees_a_circle_hidden_in_a_function():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges = _edges()
    assert "runtime" in edges["compile"]  # function-local and module-level imports are both counted
