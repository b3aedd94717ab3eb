"""Sparsity schedules: how much of the network is pruned at each training step."""

from __future__ import annotations

from .._core.errors import invalid

SCHEDULES = ("cubic", "linear", "exponential", "one_shot")


def sparsity_at(step: int, *, target: float, start_step: int, end_step: int, initial: float = 0.0,
                schedule: str = "cubic") -> float:
    """Sparsity to hold at training ``step``: ``initial`` until ``start_step``, ``target`` from ``end_step``.

    ``cubic`` is Zhu & Gupta (2017): s = target + (initial - target)(1 - progress)^3, pruning fast while
    the network is redundant and slowly near the end; ``linear`` ramps evenly; ``exponential`` removes the
    same fraction of the remaining weights at every step; ``one_shot`` jumps to the target at ``start_step``.
    """
    if not isinstance(schedule, str) or schedule not in SCHEDULES:
        raise invalid("schedule", schedule, f"one of {SCHEDULES}")
    for name, value in (("step", step), ("start_step", start_step), ("end_step", end_step)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise invalid(name, value, "an integer >= 0")
    if end_step <= start_step:
        raise invalid("end_step", end_step, f"an integer > start_step ({start_step})")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 <= target < 1:
        raise invalid("target", target, "a fraction in [0, 1)")
    if isinstance(initial, bool) or not isinstance(initial, (int, float)) or not 0 <= initial <= target:
        raise invalid("initial", initial, f"a fraction in [0, target={target}]")
    if step < start_step:
        return initial
    if schedule == "one_shot" or step >= end_step:
        return target
    progress = (step - start_step) / (end_step - start_step)
    if schedule == "cubic":
        return target + (initial - target) * (1 - progress) ** 3
    if schedule == "linear":
        return initial + (target - initial) * progress
    kept = (1 - initial) * ((1 - target) / (1 - initial)) ** progress  # exponential decay of the kept fraction
    return 1 - kept
