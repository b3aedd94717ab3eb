"""What candidates are judged on: held-out data and the FP32 model's outputs on it.

Labeled sets (``digits``, ``mnist-5k``, ``fashion-mnist``): top-1 accuracy on their held-out part; calibration
uses their training part. ``photos`` (no labels): agreement with the FP32 model on 8 deterministic views of every
bundled photo; calibration uses random crops of the same photos (never the evaluated views). The accuracy drop is
in percentage points: FP32 accuracy minus the candidate's, or — unlabeled — the share of confident views (FP32 top-1
probability >= 0.5) on which the candidate's top-1 differs from FP32's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._errors import InvalidArgumentError, invalid
from ..evaluate import DATASETS, fidelity, load_eval_data, predict


@dataclasses.dataclass
class Judge:
    """Held-out inputs, labels (None for photos), the FP32 model's logits on them, and its accuracy."""

    data: str
    x: np.ndarray
    labels: np.ndarray | None
    reference_logits: np.ndarray
    reference_accuracy: float | None

    @property
    def calib(self) -> str:
        """The calibration source for this data (never the judged samples): a labeled set's training part, or
        random crops of the photos (``--calib`` names them the same)."""
        return self.data

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


def make_judge(module: Any, examples: tuple[Any, ...], data: str, limit: int | None = None) -> Judge:
    """Load ``data``'s held-out part, check it fits the model, and compute the FP32 reference on it."""

    if data not in DATASETS:
        raise invalid("--data", data, f"one of {list(DATASETS)}")
    x, y, _ = load_eval_data(data, limit)
    expected = tuple(examples[0].shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise invalid("--data", data, f"inputs the model takes: (N, {', '.join(map(str, expected))}); it gives "
                                       f"(N, {', '.join(map(str, x.shape[1:]))})")
    xs = x.numpy().astype(np.float32)
    logits = _reference_logits(module, xs, int(examples[0].shape[0]))
    if logits.ndim != 2:
        raise invalid("model output", list(logits.shape), "(N, classes) logits")
    labels = None if y is None else y.numpy()
    accuracy = None if labels is None else float((logits.argmax(1) == labels).mean())
    return Judge(data, xs, labels, logits.astype(np.float32), accuracy)


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


def artifact_logits(path: Any, judge: Judge, threads: int) -> np.ndarray:
    from ..runtime import load

    return predict(load(path, threads=threads), judge.x)
