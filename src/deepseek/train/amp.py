"""Mixed precision: ``autocast()`` picks bfloat16 or float16 for the device, ``GradScaler`` scales float16 losses.

bfloat16 has float32's exponent range, so it needs no loss scaling: the scaler is then a pass-through with
the same interface, and training code is written once. float16 (GPUs before Ampere, or on request) gets
PyTorch's dynamic loss scaler. Gradients are always unscaled before clipping.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from .._core.checks import check_choice
from .._core.errors import invalid

DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16,
          "float32": torch.float32, "fp32": torch.float32}


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def choose_dtype(device: str | None = None, *, features: dict[str, bool] | None = None,
                 cuda_capability: tuple[int, int] | None = None) -> torch.dtype:
    """The autocast dtype for ``device``: bfloat16 on Ampere+ GPUs and on CPUs with native bfloat16 (AMX or
    AVX-512 BF16), float16 on older GPUs, float32 (no autocast) on CPUs without bfloat16 arithmetic.
    ``features``/``cuda_capability`` override detection (for tests)."""
    device = device or default_device()
    check_choice(device, "device", ("cpu", "cuda"), expected="'cpu' or 'cuda'")
    if device == "cuda":
        major = (cuda_capability or torch.cuda.get_device_capability())[0]
        return torch.bfloat16 if major >= 8 else torch.float16
    from .._core.machine import cpu_features

    f = cpu_features() if features is None else features
    return torch.bfloat16 if (f.get("amx_bf16") or f.get("avx512_bf16")) else torch.float32


def _dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    if dtype is None:
        return choose_dtype(device)
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise invalid("dtype", dtype, f"one of {sorted(set(DTYPES))} or the matching torch dtype")


@contextlib.contextmanager
def autocast(device: str | None = None, dtype: str | torch.dtype | None = None, enabled: bool = True) -> Iterator[torch.dtype]:
    """Run the block with ops in ``dtype`` where PyTorch deems it safe (matmuls, convolutions); reductions and
    losses stay float32. Yields the dtype in effect (float32 means autocast is off)."""
    device = device or default_device()
    check_choice(device, "device", ("cpu", "cuda"), expected="'cpu' or 'cuda'")
    chosen = _dtype(dtype, device)
    if not enabled or chosen == torch.float32:
        yield torch.float32
        return
    with torch.autocast(device_type=device, dtype=chosen):
        yield chosen


class GradScaler:
    """Loss scaling for float16; a pass-through for bfloat16 and float32 (their range needs none).

    ``scale(loss).backward()``, then ``step(optimizer)`` (unscales, skips the step if gradients overflowed)
    and ``update()``. ``clip_grad_norm_`` unscales first, so the norm and threshold are in true units.
    """

    def __init__(self, device: str | None = None, dtype: str | torch.dtype | None = None, *,
                 init_scale: float = 2.0 ** 16, growth_interval: int = 2000) -> None:
        self.device = device or default_device()
        check_choice(self.device, "device", ("cpu", "cuda"), expected="'cpu' or 'cuda'")
        self.dtype = _dtype(dtype, self.device)
        if not init_scale > 0:
            raise invalid("init_scale", init_scale, "a positive number")
        self._scaler = (torch.amp.GradScaler(self.device, init_scale=init_scale, growth_interval=growth_interval)
                        if self.dtype == torch.float16 else None)
        self._unscaled: set[int] = set()

    @property
    def enabled(self) -> bool:
        return self._scaler is not None

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        return self._scaler.scale(loss) if self._scaler is not None else loss

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        if self._scaler is not None and id(optimizer) not in self._unscaled:
            self._scaler.unscale_(optimizer)
            self._unscaled.add(id(optimizer))

    def clip_grad_norm_(self, parameters: Iterable[torch.Tensor], max_norm: float,
                        optimizer: torch.optim.Optimizer) -> torch.Tensor:
        """Unscale ``optimizer``'s gradients (once), then clip them to ``max_norm``; returns the true norm."""
        if not max_norm > 0:
            raise invalid("max_norm", max_norm, "a positive number")
        self.unscale_(optimizer)
        return torch.nn.utils.clip_grad_norm_(list(parameters), max_norm)

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Step ``optimizer`` unless float16 gradients overflowed; returns whether it stepped."""
        if self._scaler is None:
            optimizer.step()
            return True
        self._scaler.step(optimizer)
        return not self._found_inf(optimizer)

    def update(self) -> None:
        if self._scaler is not None:
            self._scaler.update()
        self._unscaled.clear()

    def get_scale(self) -> float:
        return self._scaler.get_scale() if self._scaler is not None else 1.0

    def state_dict(self) -> dict[str, Any]:
        return self._scaler.state_dict() if self._scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self._scaler is not None and state:
            self._scaler.load_state_dict(state)

    def _found_inf(self, optimizer: torch.optim.Optimizer) -> bool:
        # what torch's GradScaler.step recorded for this optimizer (pinned torch; no public accessor)
        state = self._scaler._per_optimizer_states[id(optimizer)]
        return bool(sum(float(v.item()) for v in state["found_inf_per_device"].values()))
