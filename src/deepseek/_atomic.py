"""Atomic file output: a reader never sees a half-written file, and a failed write leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename."""
    target = Path(path)
    output_folder(target.parent, what=str(target))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _unwritable(str(target), exc) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600 files; give the result the usual umask-based mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def output_folder(path: str | os.PathLike[str], *, what: str | None = None) -> Path:
    """Create the folder ``path`` (and its parents) for output, or raise a clear error naming it."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(what or str(folder), exc) from exc
    if not os.access(folder, os.W_OK):
        raise _unwritable(what or str(folder), PermissionError(f"{folder} is not writable"))
    return folder


def _unwritable(what: str, exc: OSError) -> Exception:
    from ._errors import invalid

    reason = exc.strerror or str(exc)
    return invalid("output", what, f"a path in a folder that can be created and written ({reason})")


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def refuse_overwrite_input(output: str | os.PathLike[str], *inputs: str | os.PathLike[str]) -> None:
    """Raise if ``output`` is one of the user's input files (we never overwrite a user's input)."""
    from ._errors import invalid

    out = Path(output).resolve()
    for item in inputs:
        if isinstance(item, (str, os.PathLike)) and Path(item).resolve() == out:
            raise invalid("output", str(output), "a path different from the input model")


def cache_dir(cache: str | os.PathLike[str] | None = None) -> Path:
    """The folder derived files are cached in: ``cache``, else ``$DEEPSEEK_CACHE``, else ``~/.cache/deepseek``."""
    return Path(cache) if cache else Path(os.environ.get("DEEPSEEK_CACHE", Path.home() / ".cache" / "deepseek"))


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path | None]:
    """Yield a temporary folder beside ``path`` to fill; on success it becomes ``path`` in one rename. Yields
    None when ``path`` already exists (another process finished it first): there is nothing to do."""
    import shutil

    target = Path(path)
    if target.exists():
        yield None
        return
    output_folder(target.parent, what=str(target))
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.exists():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
