"""PeriodicRefit: a batch classifier (scikit-learn's interface) kept fresh by refitting it on the latest labels.

What fraud teams run in production (the Handbook's chapter on model retraining): labels arrive late, so a model
retrained every day on the most recent labelled weeks beats one trained once. It has River's ``learn_one`` /
``predict_proba_one``, so :class:`~deepseek.stream.RiskEngine` uses it like an online classifier.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from .._core.checks import check_int
from .._core.errors import invalid


class PeriodicRefit:
    """Refit a clone of ``estimator`` on the last ``window`` labelled events after every ``every`` new labels
    (once both classes are present and ``min_labels`` are held). Before the first fit every score is 0.

    ``estimator``: anything with scikit-learn's ``fit`` / ``predict_proba`` (a ``Pipeline`` with a scaler too).
    A logistic regression (alone or after a ``StandardScaler``) is scored with its folded weights in pure Python
    (a few µs); any other estimator through ``predict_proba`` on one row (scikit-learn's per-call cost: ~0.1 ms
    for a linear model, milliseconds for a 100-tree forest)."""

    def __init__(self, estimator: Any, *, every: int = 10_000, window: int = 200_000, min_labels: int = 1_000) -> None:
        if not (hasattr(estimator, "fit") and hasattr(estimator, "predict_proba")):
            raise invalid("estimator", type(estimator).__name__, "a classifier with fit and predict_proba "
                          "(scikit-learn's interface)")
        every, window, min_labels = (check_int(value, name, minimum=low) for name, value, low in (
            ("every", every, 1), ("window", window, 2), ("min_labels", min_labels, 2)))
        self.estimator = estimator
        self.every, self.window, self.min_labels = every, window, min_labels
        self.names: list[str] | None = None
        self._rows: deque[tuple[list[float], int]] = deque(maxlen=window)
        self._new = 0
        self.fitted: Any = None
        self._linear: tuple[list[float], float] | None = None
        self.refits = 0

    def learn_one(self, x: Mapping[str, float], y: bool) -> None:
        if self.names is None:
            self.names = list(x)
        self._rows.append((self._vector(x), int(bool(y))))
        self._new += 1
        if self._new >= self.every and len(self._rows) >= self.min_labels and \
                len({y for _, y in self._rows}) == 2:
            self._refit()

    def predict_proba_one(self, x: Mapping[str, float]) -> dict[bool, float]:
        if self.fitted is None:
            return {False: 1.0, True: 0.0}
        if self._linear is not None:
            weights, bias = self._linear
            z = bias + math.fsum(w * v for w, v in zip(weights, self._vector(x), strict=True))
            p = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
        else:
            import numpy as np

            p = float(self.fitted.predict_proba(np.asarray([self._vector(x)], dtype=np.float64))[0, 1])
        return {False: 1.0 - p, True: p}

    def _vector(self, x: Mapping[str, float]) -> list[float]:
        names = self.names if self.names is not None else list(x)
        try:
            return [float(x[n]) for n in names]
        except KeyError as e:
            raise invalid("features", sorted(x), f"the features the model was trained on (missing {e})") from None

    def _refit(self) -> None:
        import numpy as np
        from sklearn.base import clone

        xs = np.asarray([r for r, _ in self._rows], dtype=np.float64)
        ys = np.asarray([y for _, y in self._rows])
        self.fitted = clone(self.estimator).fit(np.nan_to_num(xs), ys)
        self._linear = _folded_logistic(self.fitted)
        self._new = 0
        self.refits += 1


def _folded_logistic(model: Any) -> tuple[list[float], float] | None:
    """(weights, bias) on the raw features for a binary logistic regression, alone or after a StandardScaler."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [s for _, s in model.steps] if isinstance(model, Pipeline) else [model]
    if not isinstance(steps[-1], LogisticRegression) or len(steps) > 2 or steps[-1].coef_.shape[0] != 1:
        return None
    coef, bias = [float(c) for c in steps[-1].coef_[0]], float(steps[-1].intercept_[0])
    if len(steps) == 2:
        scaler = steps[0]
        if not isinstance(scaler, StandardScaler):
            return None
        mean = scaler.mean_ if scaler.with_mean else [0.0] * len(coef)
        scale = scaler.scale_ if scaler.with_std else [1.0] * len(coef)
        bias -= math.fsum(c * m / s for c, m, s in zip(coef, mean, scale, strict=True))
        coef = [c / s for c, s in zip(coef, scale, strict=True)]
    return coef, bias
