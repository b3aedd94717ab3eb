"""What candidates are judged on: held-out data and the FP32 model's outputs on it.

Labeled sets (``digits``, ``mnist-5k``, ``fashion-mnist``): top-1 accuracy on their held-out part; calibration
uses their training part. ``photos`` (no labels): agreement with the FP32 model on 8 deterministic views of every
bundled photo; calibration uses random crops of the same photos (never the evaluated views). The accuracy drop is
in percentage points: FP32 accuracy minus the candidate's, or — unlabeled — the share of confident views (FP32 top-1
probability >= 0.5) on which the candidate's top-1 differs from FP32's.

A user's own data is a folder (``--data DIR``) holding ``inputs.npy`` (N, ...) — floats, or integers such as token
ids, kept as int64 — with ``labels.npy`` (N,) for labeled accuracy (without it: agreement with FP32) and optionally
``calibration.npy`` (unlabeled inputs). Without ``calibration.npy`` the first ``min(calib_samples, N // 5)`` rows
calibrate and only the rows after them are judged, so no judged sample was ever calibrated on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from .._agreement import fidelity
from .._errors import InvalidArgumentError, invalid
from ..evaluation import DATASETS, load_eval_data, predict

FOLDER_FILES = "a folder holding inputs.npy (N, ...), optionally labels.npy (N,) and calibration.npy"
MIN_JUDGED = 8


@dataclasses.dataclass
class Judge:
    """Held-out inputs, labels (None for photos), the FP32 model's logits on them, and its accuracy."""

    data: str
    x: np.ndarray
    labels: np.ndarray | None
    reference_logits: np.ndarray
    reference_accuracy: float | None
    # the calibration source (never the judged samples): a labeled set's training part, random crops of the photos
    # (``--calib`` names them the same), or a folder's calibration.npy / the head of its inputs.npy
    calib: str = ""
    calib_samples: int | None = None  # rows of ``calib`` the data allows (None: as many as asked)

    def __post_init__(self) -> None:
        self.calib = self.calib or self.data

    def timing_sample(self, folder: Path, batch: int) -> Path:
        """A real held-out input of ``batch`` rows written to ``folder`` (what latency is timed on)."""
        path = folder / "timing-sample.npy"
        np.save(path, np.repeat(self.x[:1], batch, axis=0))
        return path

    def score(self, logits: np.ndarray) -> dict[str, Any]:
        """The candidate's figures on the held-out data, with ``drop_pp`` (percentage points below FP32)."""
        if logits.shape != self.reference_logits.shape:
            raise InvalidArgumentError(f"candidate outputs {logits.shape}, the FP32 model {self.reference_logits.shape}")
        out = fidelity(self.reference_logits, logits)
        if self.labels is not None:
            accuracy = float((logits.argmax(1) == self.labels).mean())
            out.update(accuracy=accuracy, drop_pp=100.0 * (self.reference_accuracy - accuracy))
        else:
            confident = out["confident_agreement"]
            out["drop_pp"] = 100.0 * (1.0 - (confident if confident is not None else out["agreement"]))
        return out


def check_data(data: Any, calib_samples: int = 128) -> None:
    """Refuse ``data`` unless it is a bundled set or a readable data folder (its arrays loaded and checked): cheap,
    so it runs before any model is loaded."""
    if not isinstance(data, (str, Path)) or not str(data):
        raise invalid("data", data, f"one of {list(DATASETS)}, or {FOLDER_FILES}")
    if str(data) in DATASETS:
        return
    if not Path(data).is_dir():
        raise invalid("data", str(data), f"one of {list(DATASETS)}, or {FOLDER_FILES}")
    load_folder(Path(data), calib_samples)


def make_judge(module: Any, examples: tuple[Any, ...], data: str, limit: int | None = None,
               calib_samples: int = 128) -> Judge:
    """Load ``data``'s held-out part, check it fits the model, and compute the FP32 reference on it."""
    calib, samples = data, None
    if data in DATASETS:
        x, y, _ = load_eval_data(data, limit)
        xs, labels = x.numpy().astype(np.float32), None if y is None else y.numpy()
    elif Path(data).is_dir():
        xs, labels, calib, samples = load_folder(Path(data), calib_samples)
        if limit is not None:
            xs, labels = xs[:limit], None if labels is None else labels[:limit]
    else:
        raise invalid("data", data, f"one of {list(DATASETS)}, or {FOLDER_FILES}")
    expected = tuple(examples[0].shape[1:])
    if tuple(xs.shape[1:]) != expected:
        raise invalid("data", data, f"inputs the model takes: (N, {', '.join(map(str, expected))}); it gives "
                                     f"(N, {', '.join(map(str, xs.shape[1:]))})")
    integer_model = not examples[0].is_floating_point()
    if integer_model != (xs.dtype.kind in "iu"):
        raise invalid("data", data, f"{'integer' if integer_model else 'floating-point'} inputs, as the model's "
                                     f"example inputs ({examples[0].dtype}); it gives {xs.dtype}")
    logits = _reference_logits(module, xs, int(examples[0].shape[0]))
    if logits.ndim != 2:
        raise invalid("model output", list(logits.shape), "(N, classes) logits")
    if labels is not None and int(labels.max()) >= logits.shape[1]:
        raise invalid("data", str(Path(data) / "labels.npy"), f"class indices below the model's {logits.shape[1]} "
                                                              f"classes (got {int(labels.max())})")
    accuracy = None if labels is None else float((logits.argmax(1) == labels).mean())
    return Judge(data, xs, labels, logits.astype(np.float32), accuracy, calib, samples)


def _load_array(path: Path, kinds: str = "fiu") -> np.ndarray:
    """``path`` loaded and checked (numbers, non-empty, finite); integers as int64, floats as float32."""
    from .._arrays import check_array, load_array

    array = load_array(path, argument="data", kinds=kinds)
    if array.dtype.kind in "iu":
        if array.dtype == np.uint64 and int(array.max()) > np.iinfo(np.int64).max:
            raise invalid(f"data ({path})", f"integers up to {int(array.max())}", "integers that fit in int64")
        return array.astype(np.int64)
    with np.errstate(over="ignore"):
        return check_array(array.astype(np.float32), argument="data", source=f"{path}, as float32")


def load_folder(folder: Path, calib_samples: int) -> tuple[np.ndarray, np.ndarray | None, str, int | None]:
    """(judged inputs, their labels or None, the calibration source, the rows of it to use) of a ``data`` folder."""
    inputs = folder / "inputs.npy"
    if not inputs.exists():
        raise invalid("data", str(folder), FOLDER_FILES + " (it has no inputs.npy)")
    x = _load_array(inputs)
    y = None
    if (folder / "labels.npy").exists():
        y = _load_array(folder / "labels.npy", kinds="iu")
        if y.shape != (len(x),) or y.min() < 0:
            raise invalid("data", str(folder / "labels.npy"), f"class indices >= 0 of shape ({len(x)},), one per "
                                                              f"row of inputs.npy (got {y.dtype} {y.shape}, "
                                                              f"smallest {int(y.min())})")
    if (folder / "calibration.npy").exists():
        calibration = _load_array(folder / "calibration.npy")
        if calibration.shape[1:] != x.shape[1:] or calibration.dtype != x.dtype:
            raise invalid("data", str(folder / "calibration.npy"), f"rows like inputs.npy's ({x.dtype}, "
                                                                   f"{list(x.shape[1:])}; got {calibration.dtype}, "
                                                                   f"{list(calibration.shape[1:])})")
        return x, y, str(folder / "calibration.npy"), None
    head = min(calib_samples, len(x) // 5)
    if head < 1 or len(x) - head < MIN_JUDGED:
        raise invalid("data", str(inputs), f"at least {MIN_JUDGED + 1} rows (the first fifth calibrates, the rest is "
                                           f"judged), or a calibration.npy beside it (got {len(x)})")
    return x[head:], None if y is None else y[head:], str(inputs), head


def _reference_logits(module: Any, xs: np.ndarray, rows: int) -> np.ndarray:
    """The FP32 model's logits in batches of 64, or of ``rows`` for a program exported at a fixed batch."""
    import torch

    def run(step: int) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(xs), step):
                chunk = xs[i:i + step]
                if len(chunk) < step:  # a fixed-batch program: pad the last batch
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - len(chunk), 0)])
                out.append(module(torch.from_numpy(chunk)).numpy()[: len(xs) - i])
        return np.concatenate(out)

    try:
        return run(64)
    except Exception:  # guards of an exported program reject other batch sizes
        return run(rows)


def artifact_logits(path: Any, judge: Judge, threads: int, device: str = "cpu") -> np.ndarray:
    """The artifact's first output on every judged input (an arm64 bundle: all of them in one runner process)."""
    from ..runtime import load

    predictor = load(path, threads=threads, device=device)
    if predictor.kind != "arm64_bundle":
        return predict(predictor, judge.x)
    from ..runtime.arm64_bundle import Arm64Backend

    batch = int(predictor.input_specs[0].shape[0])
    pad = -len(judge.x) % batch
    x = np.concatenate([judge.x, np.repeat(judge.x[-1:], pad, 0)]) if pad else judge.x
    return Arm64Backend(Path(path)).run_stacked(x)[: len(judge.x)]
