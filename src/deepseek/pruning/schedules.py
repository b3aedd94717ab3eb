"""Sparsity schedules: how much of the network is pruned at each training step."""

from __future__ import annotations

from .._core.checks import check_choice, check_int, check_number

SCHEDULES = ("cubic", "linear", "exponential", "one_shot")


def sparsity_at(step: int, *, target: float, start_step: int, end_step: int, initial: float = 0.0,
                schedule: str = "cubic") -> float:
    """Sparsity to hold at training ``step``: ``initial`` until ``start_step``, ``target`` from ``end_step``.

    ``cubic`` is Zhu & Gupta (2017): s = target + (initial - target)(1 - progress)^3, pruning fast while
    the network is redundant and slowly near the end; ``linear`` ramps evenly; ``exponential`` removes the
    same fraction of the remaining weights at every step; ``one_shot`` jumps to the target at ``start_step``.
    """
    check_choice(schedule, "schedule", SCHEDULES, expected=f"one of {SCHEDULES}")
    for name, value in (("step", step), ("start_step", start_step), ("end_step", end_step)):
        check_int(value, name, minimum=0)
    check_int(end_step, "end_step", minimum=start_step + 1,
              expected=f"an integer > start_step ({start_step})")
    check_number(target, "target", minimum=0, below=1, expected="a fraction in [0, 1)")
    check_number(initial, "initial", minimum=0, maximum=target,
                 expected=f"a fraction in [0, target={target}]")
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
