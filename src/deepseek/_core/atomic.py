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
    if target.is_dir():
        from .errors import invalid

        raise invalid("output", str(target), "a file path, not an existing folder")
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


def _unwritable(what: str, exc: OSError, *, argument: str = "output") -> Exception:
    from .errors import invalid

    reason = exc.strerror or str(exc)
    return invalid(argument, what, f"a path in a folder that can be created and written ({reason})")


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def refuse_overwrite_input(output: str | os.PathLike[str], *inputs: Any, argument: str = "output") -> None:
    """Raise if ``output`` is one of the user's inputs (we never overwrite a user's input, whatever writes)."""
    from .errors import invalid

    for item in inputs:
        if _same_path(output, item):
            raise invalid(argument, str(output), f"a path different from the input {str(item)!r}")


def _same_path(a: Any, b: Any) -> bool:
    if not isinstance(a, (str, os.PathLike)) or not isinstance(b, (str, os.PathLike)):
        return False
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)  # hard links and symlinks too
        return pa.resolve() == pb.resolve()
    except OSError:
        return False


def check_output(path: str | os.PathLike[str], *, argument: str = "output", inputs: Any = (),
                 folder: bool = False) -> Path:
    """Check, before any work, that ``path`` can be written as an output: not one of ``inputs``, not a folder
    where a file is expected (nor a file where a folder is), and in a place that can be created and written.
    Creates nothing. Errors name ``argument``."""
    from .errors import invalid

    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise invalid(argument, path, "a file path" if not folder else "a folder path")
    target = Path(path)
    refuse_overwrite_input(target, *inputs, argument=argument)
    if folder:
        if target.exists() and not target.is_dir():
            raise invalid(argument, str(target), "a folder path, not an existing file")
    elif target.is_dir():
        raise invalid(argument, str(target), "a file path, not an existing folder")
    elif target.exists() and not os.access(target, os.W_OK):
        raise invalid(argument, str(target), "a file that can be written (permission denied)")
    # the nearest folder that exists must be a folder we can create files in: probe it with a temporary file
    ancestor = target if folder and target.is_dir() else target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise invalid(argument, str(target), f"a path whose parent {str(ancestor)!r} is a folder, not a file")
    try:
        fd, probe = tempfile.mkstemp(prefix=".deepseek-probe.", dir=ancestor)
    except OSError as exc:
        raise _unwritable(str(target), exc, argument=argument) from exc
    os.close(fd)
    os.unlink(probe)
    return target


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
