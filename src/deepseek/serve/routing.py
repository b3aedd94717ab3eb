"""How the router picks a version: a routing key's fixed place in a weighted split, request metadata matched
against a rule, and the policy breach that rolls a canary back."""

from __future__ import annotations

import hashlib
from typing import Any


def breaches(summary: dict[str, float], policy: Any) -> str:
    if summary["requests"] == 0:
        return ""
    if summary["error_rate"] > policy.max_error_rate:
        return f"error rate {summary['error_rate']:.1%} > {policy.max_error_rate:.1%} over {summary['requests']} requests"
    if summary["p99_ms"] > policy.max_p99_ms:
        return f"p99 {summary['p99_ms']:.0f} ms > {policy.max_p99_ms:.0f} ms over {summary['requests']} requests"
    return ""


def matches(got: Any, want: Any) -> bool:
    if isinstance(want, bool):
        return str(got).strip().lower() in ("1", "true", "yes", "on") if want else str(got).strip().lower() in ("0", "false", "no", "off")
    return str(got) == str(want)


def unit_interval(key: str) -> float:
    """A routing key mapped to [0, 1), the same on every run and process."""
    digest = hashlib.blake2b(str(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
