"""Shared checks for the bad-input tests: run the real CLI in this process and assert that it refused the command
line in one line, naming what was wrong, and changed nothing.

Import it as ``from _refusals import refused`` (the tests folder is on ``sys.path``, as for ``_arm64_nets``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from deepseek.cli import _run


def snapshot(root: Path) -> dict[str, str]:
    """Every file (its sha256) and folder (``"dir"``) under ``root``, by path relative to ``root``: equal before
    and after means nothing under ``root`` was changed, created or removed."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@contextmanager
def leaves_unchanged(root: Path) -> Iterator[None]:
    """Assert that the ``with`` block leaves ``root``'s :func:`snapshot` as it found it (inputs unchanged,
    nothing written); e.g. ``with leaves_unchanged(folder), pytest.raises(InvalidArgumentError): ...``."""
    before = snapshot(root)
    yield
    assert snapshot(root) == before, f"{root} changed"


def refused(argv: Iterable[object], capture, *any_of: str, all_of: Iterable[str] = (),
            unchanged: Path | None = None) -> str:
    """Run ``deepseek ARGV`` in this process (``deepseek.cli._run``; each item is passed as ``str(item)``) and
    assert it was refused as a user error: exit status 2 and stderr exactly one line holding ``error:``, with no
    traceback and no "internal error". The line must name at least one of ``any_of`` and every one of ``all_of``.
    With ``unchanged``, the snapshot of that folder must be the same afterwards (inputs unchanged, nothing
    written). ``capture`` is pytest's ``capsys`` or ``capfd``. Returns the line."""
    all_of = list(all_of)
    assert any_of or all_of, "name at least one word the error line must hold"
    before = snapshot(unchanged) if unchanged is not None else None
    rc = _run([str(a) for a in argv])
    err = capture.readouterr().err
    assert rc == 2, (rc, err[-2000:])
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
    assert err.count("\n") == 1 and err.endswith("\n") and "error:" in err, err[-2000:]
    line = err.rstrip("\n")
    assert not any_of or any(word in line for word in any_of), (any_of, line)
    assert all(word in line for word in all_of), (all_of, line)
    if unchanged is not None:
        assert snapshot(unchanged) == before, f"{unchanged} changed"
    return line
