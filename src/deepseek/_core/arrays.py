"""Arrays a user hands us in files (``.npy``): loaded without pickle and checked for kind, shape and finiteness."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .errors import invalid

_KIND_NAMES = {"f": "floats", "i": "integers", "u": "unsigned integers", "b": "booleans"}


def check_array(array: Any, *, argument: str, kinds: str = "fiu", min_ndim: int = 1, finite: bool = True,
                source: str | None = None) -> np.ndarray:
    """``array`` as a numeric ndarray of a dtype kind in ``kinds`` (numpy's letters: f, i, u, b), at least
    ``min_ndim`` dimensions, at least one item and (``finite``) no NaN or infinity; else an error naming
    ``argument`` (and the file, ``source``)."""
    what = f"{argument} ({source})" if source else argument
    expected_kind = " or ".join(_KIND_NAMES[k] for k in kinds if k in _KIND_NAMES)
    if not isinstance(array, np.ndarray):
        raise invalid(what, type(array).__name__, f"a numpy array of {expected_kind}")
    if array.dtype.kind not in kinds:
        raise invalid(what, f"an array of dtype {array.dtype}", f"an array of {expected_kind}")
    if array.ndim < min_ndim:
        raise invalid(what, f"an array of shape {list(array.shape)}", f"at least {min_ndim} dimension(s)")
    if array.size == 0:
        raise invalid(what, f"an empty array of shape {list(array.shape)}", "at least one item")
    if finite and array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.size(array) - np.isfinite(array).sum())
        raise invalid(what, f"an array with {bad} NaN or infinite value(s) of {array.size}", "finite numbers")
    return array


def load_array(path: str | os.PathLike[str], *, argument: str, kinds: str = "fiu", min_ndim: int = 1,
               finite: bool = True) -> np.ndarray:
    """Load the ``.npy`` file ``path`` (never unpickling) and :func:`check_array` it; a missing, corrupt or
    object-holding file is an error naming ``argument`` and the file."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise invalid(argument, str(p), "an existing .npy file" if not p.exists() else "a .npy file, not a folder")
    try:
        with open(p, "rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise invalid(argument, str(p), f"a readable .npy file ({exc.strerror or exc})") from None
    if magic != b"\x93NUMPY":
        what = "an empty file" if not magic else "not NumPy's .npy format"
        raise invalid(argument, str(p), f"a .npy array saved by numpy.save (this file is {what})")
    try:
        array = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise invalid(argument, str(p), "a .npy array of numbers (this one holds Python objects, which are "
                                            "never unpickled)") from None
        raise invalid(argument, str(p), f"a readable .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise invalid(argument, str(p), f"a readable .npy array ({exc})") from None
    if not isinstance(array, np.ndarray):  # np.load of a .npz gives an NpzFile
        raise invalid(argument, str(p), "a .npy file holding one array, not a .npz archive")
    return check_array(array, argument=argument, kinds=kinds, min_ndim=min_ndim, finite=finite, source=str(p))


def pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    """``x`` with its last row repeated up to ``rows`` rows (inputs for a model fixed at that batch size)."""
    return x if len(x) >= rows else np.concatenate([x, np.repeat(x[-1:], rows - len(x), 0)])


def run_batched(run: Any, xs: np.ndarray, step: int, *, pad: bool) -> list[np.ndarray]:
    """Every output of ``run`` (inputs -> a list of arrays) over ``xs`` in batches of ``step`` rows, one array
    of N rows per output; ``pad``: the last batch is padded to ``step`` rows (a model fixed at that batch)."""
    parts = []
    for i in range(0, len(xs), step):
        chunk = xs[i: i + step]
        if pad:
            chunk = pad_rows(chunk, step)
        parts.append([np.asarray(o)[: len(xs) - i] for o in run(chunk)])
    return [np.concatenate(o) for o in zip(*parts)]
