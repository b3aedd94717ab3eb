"""What a feature is: an aggregation of one field over a key's event-time window, and the named ones.

Every feature is computed over the events of the same key (``by``) whose time is in ``(t - window, t]``, the
current event included, where ``t`` is the current event's time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._core.checks import check_choice, check_number
from .._core.errors import invalid
from .aggregates import entropy_bits

NUMERIC = ("value", "sum", "mean", "std", "min", "max", "ratio_to_mean")
CATEGORICAL = ("distinct", "entropy", "seen_before")
WHOLE = ("count", "time_since_last")
DELAYED = ("delayed_count", "risk")  # over (t - delay - window, t - delay], from labels fed back
AGGREGATIONS = WHOLE + NUMERIC + CATEGORICAL + DELAYED


@dataclasses.dataclass(frozen=True)
class Feature:
    """One windowed feature.

    ``agg``: ``count``; ``value`` (the current event's own number); ``sum`` / ``mean`` / ``std`` (``ddof``, default 0: the population deviation, 0 for a
    single event) / ``min`` / ``max`` / ``ratio_to_mean`` (the current value over the window mean) of a numeric
    ``field``; ``distinct`` / ``entropy`` (Shannon, bits) / ``seen_before`` (1.0 if an earlier event in the window
    had the current value, else 0.0) of any ``field``; ``time_since_last`` (seconds since the key's previous
    event in the window, or the window length when there is none). ``window`` in seconds (None: the pipeline's).
    ``delayed_count`` / ``risk`` look at the window that ends ``delay`` seconds ago — the key's transactions there,
    and the share of them labelled fraud (labels reach the pipeline through ``FeaturePipeline.label`` or
    ``RiskEngine.feedback``; an unlabelled transaction counts as legitimate), the Handbook's terminal features.
    """

    name: str
    agg: str
    field: str | None = None
    by: str = "user_id"
    window: float | None = None
    ddof: int = 0
    delay: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise invalid("Feature.name", self.name, "a non-empty string")
        check_choice(self.agg, f"Feature({self.name!r}).agg", AGGREGATIONS,
                     expected=f"one of {list(AGGREGATIONS)}")
        if self.agg in WHOLE + DELAYED and self.field is not None:
            raise invalid(f"Feature({self.name!r}).field", self.field, f"None for {self.agg!r}")
        if self.agg not in WHOLE + DELAYED and not (isinstance(self.field, str) and self.field):
            raise invalid(f"Feature({self.name!r}).field", self.field, f"the field {self.agg!r} aggregates")
        if not isinstance(self.by, str) or not self.by:
            raise invalid(f"Feature({self.name!r}).by", self.by, "the field that keys the window")
        check_number(self.window, f"Feature({self.name!r}).window", above=0, optional=True,
                     expected="seconds > 0, or None")
        if self.ddof not in (0, 1):
            raise invalid(f"Feature({self.name!r}).ddof", self.ddof, "0 or 1")
        check_number(self.delay, f"Feature({self.name!r}).delay", minimum=0, expected="seconds >= 0")
        if self.delay and self.agg not in DELAYED:
            raise invalid(f"Feature({self.name!r}).delay", self.delay, f"0 unless agg is one of {list(DELAYED)}")

    @classmethod
    def of(cls, spec: str | Feature | Mapping[str, Any]) -> Feature:
        """A feature from a name in :data:`NAMED`, a :class:`Feature`, or a dict of its fields."""
        if isinstance(spec, Feature):
            return spec
        if isinstance(spec, str):
            check_choice(spec, "features", NAMED,
                         expected=f"a Feature, a dict, or a name among {sorted(NAMED)}")
            return NAMED[spec]
        if isinstance(spec, Mapping):
            unknown = sorted(set(spec) - {f.name for f in dataclasses.fields(cls)})
            if unknown:
                raise invalid("features", unknown, f"Feature fields {[f.name for f in dataclasses.fields(cls)]}")
            return cls(**dict(spec))
        raise invalid("features", spec, "a feature name, a Feature or a dict")


NAMED: dict[str, Feature] = {
    # the three core fraud features
    "transaction_amount_std": Feature("transaction_amount_std", "std", "amount"),
    "login_location_entropy": Feature("login_location_entropy", "entropy", "location"),
    "device_fingerprint_match": Feature("device_fingerprint_match", "seen_before", "device_fingerprint"),
    # a few more that fraud models commonly take
    "transaction_count": Feature("transaction_count", "count"),
    "transaction_amount": Feature("transaction_amount", "value", "amount"),
    "transaction_amount_mean": Feature("transaction_amount_mean", "mean", "amount"),
    "amount_to_mean_ratio": Feature("amount_to_mean_ratio", "ratio_to_mean", "amount"),
    "seconds_since_last_transaction": Feature("seconds_since_last_transaction", "time_since_last"),
    "distinct_terminals": Feature("distinct_terminals", "distinct", "terminal_id"),
}


def handbook_features(days: Sequence[int] = (1, 7, 30), delay_days: float = 7) -> list[Feature]:
    """The Fraud-Detection Handbook's features: per customer, transactions and mean amount over each window of
    ``days``; per terminal, transactions and fraud risk over the same windows ending ``delay_days`` ago (labels are
    known only after that delay)."""
    out: list[Feature] = []
    for d in days:
        out.append(Feature(f"customer_id_nb_tx_{d}day_window", "count", window=86400.0 * d))
        out.append(Feature(f"customer_id_avg_amount_{d}day_window", "mean", "amount", window=86400.0 * d))
    for d in days:
        out.append(Feature(f"terminal_id_nb_tx_{d}day_window", "delayed_count", by="terminal_id",
                           window=86400.0 * d, delay=86400.0 * delay_days))
        out.append(Feature(f"terminal_id_risk_{d}day_window", "risk", by="terminal_id", window=86400.0 * d,
                           delay=86400.0 * delay_days))
    return out


def compute(feature: Feature, times: Sequence[float], values: Sequence[Any], current: Any, window: float,
            earlier: int) -> float:
    """``feature`` over one window given directly: ``times``/``values`` are the window's events (current included)
    and ``earlier`` how many of them precede the current event. The exact form the running state reproduces."""
    agg = feature.agg
    if agg == "count":
        return float(len(times))
    if agg == "time_since_last":
        before = [t for i, t in enumerate(times) if i < earlier]
        return (times[earlier] - max(before)) if before else float(window)
    if agg == "seen_before":
        return 1.0 if current in values[:earlier] else 0.0
    if agg == "distinct":
        return float(len(set(values)))
    if agg == "entropy":
        return entropy_bits(values)
    if agg == "value":
        return float(current)
    xs = [float(v) for v in values]
    mean = math.fsum(xs) / len(xs)
    if agg == "sum":
        return math.fsum(xs)
    if agg == "mean":
        return mean
    if agg == "std":
        n = len(xs)
        return math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - feature.ddof)) if n > feature.ddof else 0.0
    if agg == "min":
        return min(xs)
    if agg == "max":
        return max(xs)
    return float(current) / mean if mean else 1.0  # ratio_to_mean
