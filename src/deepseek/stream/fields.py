"""Which event fields the pipeline reads, and turning one raw event into typed values."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from .._core.errors import invalid


@dataclasses.dataclass(frozen=True)
class EventFields:
    """The column each logical field is read from (``EventFields(user_id="customer")`` renames one)."""

    tx_id: str = "tx_id"
    user_id: str = "user_id"
    timestamp: str = "timestamp"
    amount: str = "amount"
    location: str = "location"
    device_fingerprint: str = "device_fingerprint"
    terminal_id: str = "terminal_id"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str) or not value:
                raise invalid(f"fields.{f.name}", value, "a non-empty column name")

    @classmethod
    def of(cls, spec: EventFields | Mapping[str, str] | None) -> EventFields:
        """From a mapping of logical field -> column (unknown logical names refused)."""
        if spec is None:
            return cls()
        if isinstance(spec, EventFields):
            return spec
        if not isinstance(spec, Mapping):
            raise invalid("fields", spec, "a mapping such as {'user_id': 'customer_id'}")
        unknown = sorted(set(spec) - set(DEFAULT_FIELDS))
        if unknown:
            raise invalid("fields", unknown, f"logical fields among {sorted(DEFAULT_FIELDS)}")
        return cls(**dict(spec))

    def column(self, logical: str) -> str:
        """The column a logical field (or any other column name) is read from."""
        return getattr(self, logical) if logical in DEFAULT_FIELDS else logical


DEFAULT_FIELDS = {f.name: f.default for f in dataclasses.fields(EventFields)}


def to_epoch_seconds(value: Any, field: str) -> float:
    """Epoch seconds from a number, a ``datetime`` (naive = UTC), a pandas ``Timestamp`` or numpy ``datetime64``."""
    if isinstance(value, bool):
        raise invalid(field, value, "epoch seconds or a datetime")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        seconds = value.timestamp()
    elif hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return to_epoch_seconds(value.to_pydatetime(), field)
    elif type(value).__name__ == "datetime64":
        seconds = float(value.astype("datetime64[ns]").astype("int64")) / 1e9
    elif hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return to_epoch_seconds(value.item(), field)
    else:
        raise invalid(field, value, "epoch seconds or a datetime")
    if not math.isfinite(seconds):
        raise invalid(field, value, "a finite time")
    return seconds


def read(event: Mapping[str, Any], column: str, *, required: bool = True) -> Any:
    """``event[column]``, or a clear error naming the column when it is missing."""
    try:
        return event[column]
    except KeyError:
        if required:
            raise invalid(f"event[{column!r}]", "missing", f"every event to carry {column!r}") from None
        return None


def number(value: Any, column: str) -> float:
    """A finite float from an event value, or a clear error naming the column."""
    if type(value) is float:
        if value - value == 0.0:  # finite
            return value
        raise invalid(f"event[{column!r}]", value, "a finite number")
    if isinstance(value, bool):
        raise invalid(f"event[{column!r}]", value, "a number")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise invalid(f"event[{column!r}]", value, "a number") from None
    if not math.isfinite(out):
        raise invalid(f"event[{column!r}]", value, "a finite number")
    return out
