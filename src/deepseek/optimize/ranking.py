"""A latency ranking that holds below a millisecond: candidates timed interleaved in one process
(:func:`deepseek.optimize.latency.measure_interleaved`) are compared round by round. Round i of every candidate
ran in one machine state (the other tenants of a shared VM, the clock, the caches), so a paired bootstrap over
rounds — the same resampled rounds for every candidate — cancels what the rounds share and keeps what tells the
candidates apart. Pure numpy.

    estimates = rank_latencies({"ort-fp32": [...], "ort-int8": [...]}, baseline="ort-fp32")
    summary_line(estimates)  # 'ort-int8 1.62x [1.55, 1.70] vs baseline ort-fp32'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from .._core.checks import check_choice, check_int, check_number
from .._core.errors import invalid

MIN_ROUNDS = 3


@dataclasses.dataclass(frozen=True)
class LatencyEstimate:
    """One candidate's latency and its speed-up over the baseline, with a paired-bootstrap confidence interval.

    ``median_ms`` is the median of its round medians; ``ratio`` is the baseline's median over this one's (> 1:
    faster than the baseline), ``[ratio_low, ratio_high]`` its confidence interval; ``rounds`` how many rounds it
    rests on; ``within_noise_of`` the other candidates (baseline included) whose interval of the ratio of medians
    with this one contains 1, in ranking order. ``baseline`` names the baseline compared with."""

    name: str
    median_ms: float
    ratio: float
    ratio_low: float
    ratio_high: float
    rounds: int
    within_noise_of: tuple[str, ...]
    baseline: str

    @property
    def is_baseline(self) -> bool:
        """Whether this is the baseline itself (its ratio is 1 by definition)."""
        return self.name == self.baseline

    def line(self) -> str:
        """One short human line: ``'ort-int8 1.62x [1.55, 1.70] vs baseline ort-fp32; within noise of x'``."""
        if self.is_baseline:
            text = f"{self.name} (baseline) {self.median_ms:.3g} ms"
        else:
            text = (f"{self.name} {self.ratio:.2f}x [{self.ratio_low:.2f}, {self.ratio_high:.2f}] "
                    f"vs baseline {self.baseline}")
        if self.within_noise_of:
            text += f"; within noise of {', '.join(self.within_noise_of)}"
        return text


def rank_latencies(samples: Mapping[str, Sequence[float]], baseline: str, *, confidence: float = 0.95,
                   resamples: int = 2000, seed: int = 0) -> list[LatencyEstimate]:
    """Rank candidates by latency, fastest first, from interleaved round medians ``{name: [ms per round]}``
    (every candidate the same number of rounds, at least 3, round i of each timed in the same pass).

    Each resample draws round indices with replacement, the same for every candidate; the speed-up interval is the
    ``confidence`` percentile interval of ``median(baseline) / median(candidate)`` over ``resamples`` resamples.
    Two candidates are within noise of each other when the interval of their ratio of medians contains 1 (each pair
    tested at ``confidence``, no correction for the number of pairs). Deterministic for a given ``seed``.

    Raises :class:`~deepseek._core.errors.InvalidArgumentError` naming the argument at fault.
    """
    names, times = _validated(samples, baseline, confidence, resamples, seed)
    rounds = times.shape[1]
    medians = np.median(times, axis=1)
    indices = np.random.default_rng(seed).integers(0, rounds, size=(resamples, rounds))
    boot = np.median(times[:, indices], axis=2)  # (candidates, resamples): each candidate on the same rounds
    tail = (1.0 - confidence) / 2.0
    b = names.index(baseline)

    def interval(i: int, j: int) -> tuple[float, float]:
        """The percentile interval of median(i) / median(j) over the paired resamples."""
        low, high = np.quantile(boot[i] / boot[j], [tail, 1.0 - tail])
        return float(low), float(high)

    order = sorted(range(len(names)), key=lambda i: (medians[i], names[i]))
    estimates = []
    for i in order:
        low, high = interval(b, i)
        noise = tuple(names[j] for j in order if j != i and _contains_one(interval(i, j)))
        estimates.append(LatencyEstimate(name=names[i], median_ms=float(medians[i]),
                                         ratio=float(medians[b] / medians[i]), ratio_low=low, ratio_high=high,
                                         rounds=rounds, within_noise_of=noise, baseline=baseline))
    return estimates


def summary_line(estimates: Sequence[LatencyEstimate]) -> str:
    """A short human line on the fastest of ``estimates`` (as :func:`rank_latencies` returns them, fastest first):
    e.g. ``'ort-int8 1.62x [1.55, 1.70] vs baseline ort-fp32; within noise of inductor-fp32'``."""
    if not estimates or not all(isinstance(e, LatencyEstimate) for e in estimates):
        raise invalid("estimates", estimates, "a non-empty list of LatencyEstimate, as rank_latencies returns")
    head = min(estimates, key=lambda e: (e.median_ms, e.name))
    if head.is_baseline:
        text = f"no candidate is faster than the baseline {head.name} ({head.median_ms:.3g} ms)"
        return text + (f"; within noise of {', '.join(head.within_noise_of)}" if head.within_noise_of else "")
    return head.line()


def _contains_one(interval: tuple[float, float]) -> bool:
    return interval[0] <= 1.0 <= interval[1]


def _validated(samples: Mapping[str, Sequence[float]], baseline: str, confidence: float, resamples: int,
               seed: int) -> tuple[list[str], np.ndarray]:
    """``samples``' names and a (candidates, rounds) array of its times, after checking every argument."""
    if not isinstance(samples, Mapping) or not samples:
        raise invalid("samples", samples, "a non-empty mapping of candidate name to round medians in ms")
    names = list(samples)
    if not all(isinstance(n, str) for n in names):
        raise invalid("samples", names, "candidate names as strings")
    check_choice(baseline, "baseline", samples, expected=f"one of the candidates in samples: {names}")
    check_number(confidence, "confidence", above=0, below=1, expected="a fraction in (0, 1), e.g. 0.95")
    check_int(resamples, "resamples", minimum=1)
    check_int(seed, "seed", minimum=0)
    rows = []
    for name in names:
        values = samples[name]
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
            raise invalid(f"samples[{name!r}]", values, "a sequence of round medians in ms")
        try:
            row = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise invalid(f"samples[{name!r}]", values, "numbers: round medians in ms") from None
        if row.ndim != 1:
            raise invalid(f"samples[{name!r}]", values, "a flat sequence of round medians in ms")
        if len(row) < MIN_ROUNDS:
            raise invalid(f"samples[{name!r}]", len(row), f"at least {MIN_ROUNDS} rounds")
        if not all(math.isfinite(v) and v > 0 for v in row.tolist()):
            raise invalid(f"samples[{name!r}]", list(values), "finite, positive times in ms")
        rows.append(row)
    counts = {name: len(row) for name, row in zip(names, rows)}
    if len(set(counts.values())) != 1:
        raise invalid("samples", counts, "the same number of rounds for every candidate (rounds are paired)")
    return names, np.stack(rows)
