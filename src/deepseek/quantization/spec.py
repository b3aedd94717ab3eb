"""QuantSpec: how one tensor is quantized (bits, symmetry, granularity, observer)."""

from __future__ import annotations

import dataclasses

from .._core.checks import check_choice, check_int, check_number
from .._core.config import BaseConfig
from .._core.errors import invalid

OBSERVERS = ("minmax", "moving_average", "percentile", "mse", "histogram")


@dataclasses.dataclass(frozen=True)
class QuantSpec(BaseConfig):
    """Integer grid for one tensor: ``bits`` wide, symmetric (zero point 0) or asymmetric, per tensor or
    per channel along ``axis``, with ranges found by ``observer``. Symmetric grids are signed
    (e.g. -128..127); asymmetric grids are unsigned (e.g. 0..255), the layout fast int8 kernels expect
    for activations (U8S8)."""

    bits: int = 8
    symmetric: bool = True
    per_channel: bool = False
    axis: int = 0
    observer: str = "minmax"
    percentile: float = 99.99
    narrow_range: bool = False  # symmetric grid without its most negative value (-127..127)

    def __post_init__(self) -> None:
        check_int(self.bits, "bits", minimum=2, maximum=8, expected="an integer from 2 to 8")
        check_choice(self.observer, "observer", OBSERVERS, expected=f"one of {OBSERVERS}")
        check_number(self.percentile, "percentile", above=50, maximum=100, expected="a number in (50, 100]")
        if self.per_channel and self.observer == "histogram":
            raise invalid("observer", self.observer, "a per-tensor spec (histogram/KL calibration is per tensor)")

    @property
    def qmin(self) -> int:
        if not self.symmetric:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.narrow_range else 0)

    @property
    def qmax(self) -> int:
        return 2**self.bits - 1 if not self.symmetric else 2 ** (self.bits - 1) - 1
