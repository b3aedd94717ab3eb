"""RiskEngine: score each event from its window features, alert above an adaptive threshold, learn from labels
that arrive later.

Models: a River classifier (``predict_proba_one`` / ``learn_one``; the default is a standard scaler + online
logistic regression), a River anomaly detector (``score_one``; learns from every event, no labels), or any callable
that maps a ``(1, n_features)`` float32 array to a score, such as a predictor from ``deepseek.load``.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import Any

from .._core.checks import check_choice, check_flag, check_int, check_number
from .._core.errors import invalid, require
from .pipeline import FeaturePipeline


@dataclasses.dataclass(frozen=True)
class Decision:
    """One scored event: ``score`` in [0, 1], the ``threshold`` it was compared with, whether it raised an
    ``alert``, its ``features``, and the ``top_features`` that pushed the score up most (name, contribution; for
    a model that is not linear, given on alerts only)."""

    tx_id: Any
    score: float
    threshold: float
    alert: bool
    features: dict[str, float]
    top_features: list[tuple[str, float]]


@dataclasses.dataclass(frozen=True)
class ThresholdPolicy:
    """``dynamic=False``: alert when the score is above ``base``. ``dynamic=True``: above the threshold under
    which the last ``window`` scores leave ``alert_rate`` of them, never below ``base`` (strictly above, so a model
    that scores every event alike, as an untrained one does, raises no alert at all)."""

    dynamic: bool = False
    base: float = 0.5
    alert_rate: float = 0.01
    window: int = 5000
    warmup: int = 100

    def __post_init__(self) -> None:
        check_flag(self.dynamic, "dynamic")
        check_number(self.base, "base", minimum=0, maximum=1, expected="a score threshold in [0, 1]")
        check_number(self.alert_rate, "alert_rate", above=0, below=1, expected="a share of events in (0, 1)")
        check_int(self.window, "window", minimum=10,
                  expected="an integer >= 10 (scores kept for the quantile)")
        check_int(self.warmup, "warmup", minimum=0, maximum=self.window, expected="an integer in [0, window]")


def default_model() -> Any:
    """Standard scaler + online logistic regression (River)."""
    require("river", "RiskEngine's default model", "river==0.26.1")
    from river import linear_model, preprocessing

    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


class RiskEngine:
    """Scores events with ``model`` on the features of an attached :class:`FeaturePipeline`.

    ``feedback(tx_id, label)`` passes the label to the pipeline's delayed features and teaches a supervised model
    the label of an event scored earlier (when the pipeline was built with ``online_learning=True``); events never
    confirmed are never learned from. Two ADWIN detectors watch for drift: one on the scores themselves (a shift of
    the score distribution, seen at once — labels may take days), after which a dynamic threshold keeps only the
    scores since the change, and one on the error of the labelled scores, after which the score history restarts;
    so the alert rate re-adapts to the new distribution (``drifts`` counts both).
    """

    def __init__(self, model: Any = None, *, top_k: int = 3, pending_limit: int = 1_000_000) -> None:
        top_k = check_int(top_k, "top_k", minimum=0)
        pending_limit = check_int(pending_limit, "pending_limit", minimum=1)
        self.model = default_model() if model is None else model
        self._kind = _kind_of(self.model)
        self._is_linear = _linear_parts(self.model) is not None
        self.top_k = top_k
        self.pipeline: FeaturePipeline | None = None
        self.policy = ThresholdPolicy()
        self._scores: deque[float] = deque()  # the last `window` scores in arrival order ...
        self._sorted: list[float] = []  # ... and the same scores sorted, for the quantile in O(log n) + memmove
        self._pending: OrderedDict[Any, dict[str, float]] = OrderedDict()
        self._pending_limit = pending_limit
        drift = require("river.drift", "RiskEngine's drift detection", "river==0.26.1")
        self._drift = drift.ADWIN()  # on the labelled error
        self._score_drift = drift.ADWIN()  # on the scores
        self._means: dict[str, float] = {}
        self._seen = 0
        self.drifts = 0
        self.counters = {"scored": 0, "alerts": 0, "learned": 0, "feedback_unknown": 0, "skipped_late": 0,
                         "score_drifts": 0, "error_drifts": 0}

    def attach_pipeline(self, pipeline: FeaturePipeline) -> RiskEngine:
        """Take features from ``pipeline`` (its ``online_learning`` decides whether feedback trains the model)."""
        if not isinstance(pipeline, FeaturePipeline):
            raise invalid("pipeline", type(pipeline).__name__, "a deepseek.stream.FeaturePipeline")
        self.pipeline = pipeline
        return self

    def set_threshold(self, dynamic: bool = False, base: float = 0.5, *, alert_rate: float = 0.01,
                      window: int = 5000, warmup: int = 100) -> RiskEngine:
        """Alert above ``base``, or (``dynamic=True``) above the running ``1 - alert_rate`` score quantile, never
        below ``base``."""
        self.policy = ThresholdPolicy(dynamic, base, alert_rate, window, warmup)
        while len(self._scores) > window:
            self._forget_oldest()
        return self

    @property
    def threshold(self) -> float:
        policy = self.policy
        if not policy.dynamic or len(self._scores) < max(1, policy.warmup):
            return float(policy.base)
        ordered = self._sorted
        top = max(1, round(policy.alert_rate * len(ordered)))  # scores strictly above the value just below the
        return max(float(policy.base), ordered[max(0, len(ordered) - top - 1)])  # top `alert_rate` share alert

    def score(self, event: Mapping[str, Any]) -> Decision | None:
        """Features from the pipeline, a score, the decision. None when the pipeline drops a late event."""
        if self.pipeline is None:
            raise invalid("pipeline", None, "a FeaturePipeline attached first (risk_engine.attach_pipeline(p))")
        features = self.pipeline.process(event)
        if features is None:
            self.counters["skipped_late"] += 1
            return None
        tx_column = self.pipeline.fields.tx_id
        tx_id = event.get(tx_column)
        value = self._predict(features)
        threshold = self.threshold  # the threshold before this score joins the history
        alert = value > threshold
        self._scores.append(value)
        bisect.insort(self._sorted, value)
        if len(self._scores) > self.policy.window:
            self._forget_oldest()
        if self.policy.dynamic:
            self._score_drift.update(value)
            if self._score_drift.drift_detected:  # keep the scores since the change (ADWIN's window)
                self.drifts += 1
                self.counters["score_drifts"] += 1
                keep = list(self._scores)[-max(self.policy.warmup, int(self._score_drift.width)):]
                self._scores = deque(keep)
                self._sorted = sorted(keep)
        self._update_means(features)
        if self._kind == "anomaly":
            self.model.learn_one(features)
        elif tx_id is not None:
            self._pending[tx_id] = features
            if len(self._pending) > self._pending_limit:
                self._pending.popitem(last=False)
        self.counters["scored"] += 1
        self.counters["alerts"] += int(alert)
        # a linear model explains itself for free; other models need one prediction per feature, paid on alerts only
        explain = self.top_k and (alert or self._is_linear)
        top = self._explain(features, value) if explain else []
        return Decision(tx_id, value, threshold, bool(alert), features, top)

    def feedback(self, tx_id: Any, label: bool | int) -> bool:
        """The true label of an event scored earlier. Returns whether the model learned from it (False for an
        unknown or already-labelled ``tx_id``, an anomaly model, or a pipeline without ``online_learning``)."""
        check_choice(label, "label", (0, 1, True, False), expected="0/1 or False/True")
        if self.pipeline is not None:
            self.pipeline.label(tx_id, label)  # a fact for the delayed features, learning or not
        features = self._pending.pop(tx_id, None)
        if features is None:
            self.counters["feedback_unknown"] += 1
            return False
        if self._kind != "classifier":
            return False
        error = abs(float(bool(label)) - self._predict(features))
        self._drift.update(error)
        if self._drift.drift_detected:
            self.drifts += 1
            self.counters["error_drifts"] += 1
            self._scores.clear()
            self._sorted.clear()
        if self.pipeline is None or not self.pipeline.online_learning:
            return False
        self.model.learn_one(features, bool(label))
        self.counters["learned"] += 1
        return True

    # -- internals -------------------------------------------------------------------------------------------
    def _predict(self, features: dict[str, float]) -> float:
        if self._kind == "classifier":
            value = self.model.predict_proba_one(features).get(True, 0.0)
        elif self._kind == "anomaly":
            value = self.model.score_one(features)
        else:
            import numpy as np

            names = self.pipeline.feature_names if self.pipeline else list(features)
            x = np.array([[features[n] for n in names]], dtype=np.float32)
            out = np.asarray(self.model(x), dtype=np.float64).reshape(-1)
            value = float(out[-1]) if out.size <= 2 else math.nan
        if not math.isfinite(value):
            raise invalid("model", f"score {value}", "a finite score for every event")
        return min(1.0, max(0.0, float(value)))

    def _forget_oldest(self) -> None:
        old = self._scores.popleft()
        del self._sorted[bisect.bisect_left(self._sorted, old)]

    def _update_means(self, features: dict[str, float]) -> None:
        self._seen += 1
        for name, v in features.items():
            if math.isfinite(v):
                m = self._means.get(name, 0.0)
                self._means[name] = m + (v - m) / self._seen

    def _explain(self, features: dict[str, float], value: float) -> list[tuple[str, float]]:
        """Contribution of each feature: for a linear model its weight x its scaled value; otherwise how much the
        score falls when the feature is replaced by its running mean."""
        contributions: dict[str, float] = {}
        linear = _linear_parts(self.model)
        if linear is not None:
            scaler, weights = linear
            scaled = scaler.transform_one(features) if scaler is not None else features
            contributions = {n: weights.get(n, 0.0) * scaled.get(n, 0.0) for n in features}
        else:
            for name in features:
                probe = {**features, name: self._means.get(name, features[name])}
                contributions[name] = value - self._predict(probe)
        ranked = sorted(contributions.items(), key=lambda kv: -kv[1])
        return [(n, float(c)) for n, c in ranked[: self.top_k] if c > 0]


def _kind_of(model: Any) -> str:
    last = list(model.steps.values())[-1] if hasattr(model, "steps") else model  # a River pipeline: its estimator
    if hasattr(last, "predict_proba_one") and hasattr(model, "learn_one"):
        return "classifier"
    if hasattr(last, "score_one") and hasattr(model, "learn_one"):
        return "anomaly"
    if callable(model):
        return "callable"
    raise invalid("model", type(model).__name__, "a River classifier or anomaly detector, or a callable on a "
                  "(1, n_features) array")


def _linear_parts(model: Any) -> tuple[Any, dict[str, float]] | None:
    """(scaler or None, weights) when ``model`` is a River linear model, alone or after one transformer."""
    steps = list(model.steps.values()) if hasattr(model, "steps") else [model]
    last = steps[-1]
    if not hasattr(last, "weights") or len(steps) > 2:
        return None
    scaler = steps[0] if len(steps) == 2 and hasattr(steps[0], "transform_one") else None
    if len(steps) == 2 and scaler is None:
        return None
    return scaler, dict(last.weights)
