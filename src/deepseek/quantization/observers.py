"""Observers: watch the values a tensor takes and choose its quantization range (scale, zero point).

``minmax`` (running extremes), ``moving_average`` (EMA of per-batch extremes), ``percentile`` (clip the
tails), ``mse`` (the clipping that minimises the quantization error), ``histogram`` (TensorRT-style
KL-divergence/entropy calibration).
"""

from __future__ import annotations

import math

import torch

from .spec import QuantSpec

_SAMPLE = 1 << 16  # values kept per tensor (per channel) for the searches


def qparams_from_range(lo: torch.Tensor, hi: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point that map [lo, hi] (always widened to include 0) onto the spec's grid."""
    lo = torch.minimum(lo, torch.zeros_like(lo))
    hi = torch.maximum(hi, torch.zeros_like(hi))
    eps = torch.finfo(torch.float32).eps
    if spec.symmetric:
        bound = torch.maximum(-lo, hi)
        scale = (bound / ((spec.qmax - spec.qmin) / 2)).clamp_min(eps)
        zero = torch.zeros_like(scale, dtype=torch.int32)
    else:
        scale = ((hi - lo) / (spec.qmax - spec.qmin)).clamp_min(eps)
        zero = (spec.qmin - torch.round(lo / scale)).clamp(spec.qmin, spec.qmax).to(torch.int32)
    return scale.float(), zero


def fake_quant_values(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Quantize then dequantize (no gradient plumbing; for searches and error reports)."""
    q = torch.clamp(torch.round(x / scale) + zero, spec.qmin, spec.qmax)
    return (q - zero) * scale


class Observer(torch.nn.Module):
    """Base: ``forward(x)`` records statistics and returns ``x``; ``qparams()`` gives (scale, zero_point)."""

    def __init__(self, spec: QuantSpec) -> None:
        super().__init__()
        self.spec = spec
        self.register_buffer("min_val", torch.tensor([]))
        self.register_buffer("max_val", torch.tensor([]))

    def _channels_first(self, x: torch.Tensor) -> torch.Tensor:
        """(channels, values) for per-channel specs, (1, values) otherwise."""
        x = x.detach().float()
        if self.spec.per_channel:
            return x.transpose(0, self.spec.axis).reshape(x.shape[self.spec.axis], -1)
        return x.reshape(1, -1)

    def _batch_range(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return flat.amin(1), flat.amax(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self._batch_range(self._channels_first(x))
        if self.min_val.numel() == 0:
            self.min_val, self.max_val = lo, hi
        else:
            self._merge(lo, hi)
        return x

    def _merge(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        self.min_val = torch.minimum(self.min_val, lo)
        self.max_val = torch.maximum(self.max_val, hi)

    @property
    def observed(self) -> bool:
        return self.min_val.numel() > 0

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.observed:
            raise RuntimeError(f"{type(self).__name__} has seen no data: run calibration batches through the model first")
        scale, zero = qparams_from_range(self.min_val, self.max_val, self.spec)
        return (scale, zero) if self.spec.per_channel else (scale.reshape(()), zero.reshape(()))


class MinMaxObserver(Observer):
    """Running minimum and maximum."""


class MovingAverageObserver(Observer):
    """Exponential moving average of each batch's minimum and maximum (robust to one odd batch)."""

    def __init__(self, spec: QuantSpec, momentum: float = 0.01) -> None:
        super().__init__(spec)
        self.momentum = momentum

    def _merge(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        self.min_val = self.min_val + self.momentum * (lo - self.min_val)
        self.max_val = self.max_val + self.momentum * (hi - self.max_val)


class PercentileObserver(Observer):
    """Averages each batch's ``spec.percentile`` (and its mirror) instead of the extremes."""

    def __init__(self, spec: QuantSpec) -> None:
        super().__init__(spec)
        self.register_buffer("batches", torch.tensor(0))

    def _batch_range(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = _subsample(flat)
        q = self.spec.percentile / 100.0
        return torch.quantile(flat, 1 - q, dim=1), torch.quantile(flat, q, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self._batch_range(self._channels_first(x))
        n = int(self.batches)
        if n == 0:
            self.min_val, self.max_val = lo, hi
        else:  # running mean over batches
            self.min_val = self.min_val + (lo - self.min_val) / (n + 1)
            self.max_val = self.max_val + (hi - self.max_val) / (n + 1)
        self.batches += 1
        return x


class MSEObserver(Observer):
    """Searches the clipping range (a fraction of the observed extremes) with the least squared error."""

    def __init__(self, spec: QuantSpec, grid: int = 100) -> None:
        super().__init__(spec)
        self.grid = grid
        self.register_buffer("sample", torch.tensor([]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = self._channels_first(x)
        super().forward(x)
        joined = flat if self.sample.numel() == 0 else torch.cat([self.sample, flat], dim=1)
        self.sample = _subsample(joined)
        return x

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.observed:
            return super().qparams()
        best_err = torch.full((self.sample.shape[0],), float("inf"))
        best_lo, best_hi = self.min_val.clone(), self.max_val.clone()
        for i in range(self.grid):
            frac = 0.01 ** (i / (self.grid - 1))  # geometric, from 100% down to 1% of the range
            lo, hi = self.min_val * frac, self.max_val * frac
            scale, zero = qparams_from_range(lo, hi, self.spec)
            err = (fake_quant_values(self.sample, scale[:, None], zero[:, None], self.spec) - self.sample).pow(2).mean(1)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_lo, best_hi = torch.where(better, lo, best_lo), torch.where(better, hi, best_hi)
        scale, zero = qparams_from_range(best_lo, best_hi, self.spec)
        return (scale, zero) if self.spec.per_channel else (scale.reshape(()), zero.reshape(()))


class HistogramObserver(Observer):
    """Entropy calibration: the threshold whose quantized distribution is closest (KL) to the original."""

    def __init__(self, spec: QuantSpec, bins: int = 2048) -> None:
        super().__init__(spec)
        self.bins = bins
        self.register_buffer("hist", torch.zeros(bins, dtype=torch.float64))
        self.register_buffer("edge", torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        super().forward(x)
        a = x.detach().float().abs().flatten()
        top = float(a.max()) if a.numel() else 0.0
        if top > float(self.edge):  # widen: re-bin the old histogram onto the new range
            if float(self.edge) > 0:
                centers = (torch.arange(self.bins, dtype=torch.float64) + 0.5) * float(self.edge) / self.bins
                self.hist = _rebin(self.hist, centers, top, self.bins)
            self.edge = torch.tensor(top)
        if float(self.edge) > 0:
            self.hist += torch.histc(a.double(), self.bins, 0, float(self.edge))
        return x

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        # a sparse histogram (a few hundred values over 2048 bins) makes the KL search meaningless: use the range
        if not self.observed or float(self.edge) == 0 or float(self.hist.sum()) < 4 * self.bins:
            return super().qparams()
        # levels that cover [0, threshold]: all of them only for an unsigned grid over non-negative data
        signed_data = self.spec.symmetric or float(self.min_val.min()) < 0
        threshold = _kl_threshold(self.hist, float(self.edge), levels=(self.spec.qmax - self.spec.qmin + 1) // (2 if signed_data else 1))
        lo = torch.clamp(self.min_val, min=-threshold)
        hi = torch.clamp(self.max_val, max=threshold)
        scale, zero = qparams_from_range(lo, hi, self.spec)
        return scale.reshape(()), zero.reshape(())


def _rebin(hist: torch.Tensor, centers: torch.Tensor, top: float, bins: int) -> torch.Tensor:
    idx = torch.clamp((centers / top * bins).long(), 0, bins - 1)
    out = torch.zeros(bins, dtype=torch.float64)
    out.index_add_(0, idx, hist)
    return out


def _kl_threshold(hist: torch.Tensor, edge: float, levels: int) -> float:
    """TensorRT's entropy calibration on a histogram of |x| over [0, edge]."""
    import numpy as np

    h = hist.numpy().copy()
    h[0] = 0  # exact zeros (ReLU outputs, padding) are represented exactly on any grid: they must not steer the search

    bins = len(h)
    best, best_i = math.inf, bins
    for i in range(max(levels, 128), bins + 1, max(1, bins // 256)):
        ref = h[:i].copy()
        ref[i - 1] += h[i:].sum()  # clip the tail into the last bin
        # quantize the first i bins into `levels` levels, then expand back
        chunks = np.array_split(np.arange(i), levels)
        q = np.zeros(i)
        for c in chunks:
            total = h[c].sum()
            nz = (h[c] > 0).sum()
            if nz:
                q[c] = np.where(h[c] > 0, total / nz, 0)
        p = ref / max(ref.sum(), 1e-12)
        qn = q / max(q.sum(), 1e-12)
        mask = p > 0
        kl = float(np.sum(p[mask] * np.log(p[mask] / np.maximum(qn[mask], 1e-12))))
        if kl < best:
            best, best_i = kl, i
    return edge * best_i / bins


def _subsample(flat: torch.Tensor) -> torch.Tensor:
    """At most ``_SAMPLE`` values per row, evenly strided (deterministic)."""
    n = flat.shape[1]
    if n <= _SAMPLE:
        return flat
    step = math.ceil(n / _SAMPLE)
    return flat[:, ::step]


OBSERVER_CLASSES: dict[str, type[Observer]] = {
    "minmax": MinMaxObserver, "moving_average": MovingAverageObserver, "percentile": PercentileObserver,
    "mse": MSEObserver, "histogram": HistogramObserver,
}


def make_observer(spec: QuantSpec) -> Observer:
    """The observer that ``spec.observer`` names."""
    return OBSERVER_CLASSES[spec.observer](spec)
