"""Mixed precision under an accuracy budget: every layer gets the cheapest number format that keeps the
model's output within the budget.

Each candidate format is simulated per layer on real inputs (one layer at a time → its sensitivity), then
layers are promoted to the next wider format, most sensitive first, until the whole model meets the budget
(output SQNR, KL divergence or top-1 agreement with FP32). Only formats that have a real lowering are
offered: for ``scheme="static"`` INT8 (weights and activations; ONNX Runtime or PT2E + Inductor) and float;
for ``scheme="weight_only"`` INT4/INT8 weights (PyTorch's packed matmul kernels) and float.
"""

from __future__ import annotations

import copy
import dataclasses
import heapq
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.func import functional_call

from .._core.checks import check_choice, check_int, check_number
from .._core.config import BaseConfig, config_or_fields
from .._core.errors import invalid
from .._core.select import check_matched, check_patterns, child_slots, matches
from .fake_quant import FakeQuantize, fake_quantize
from .observers import make_observer
from .precision import choose_precision
from .qat import fold_batchnorm
from .sensitivity import as_batches, output_kl, sqnr_db
from .spec import OBSERVERS, QuantSpec
from .weight_only import GROUP_SIZES, WeightOnlyConfig, WeightOnlyLinear, int4_supported

BITS = {"int4": 4, "int8": 8, "fp16": 16, "bf16": 16, "fp32": 32}
SCHEMES = ("static", "weight_only")
_INT = {"static": ("int8",), "weight_only": ("int4", "int8")}
_FLOAT = ("bf16", "fp16", "fp32")
_FLOAT_DTYPE = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclasses.dataclass(frozen=True)
class MixedPrecisionConfig(BaseConfig):
    """What formats a layer may take and the accuracy the whole model must keep.

    ``formats``: allowed per-layer formats, or ``"auto"`` for what the device runs fast
    (:func:`choose_precision`: e.g. INT8 + BF16 on AVX-512-BF16/AMX CPUs, INT8 + FP16 on CUDA).
    Budget (all given must hold; none given → ``min_sqnr_db=20``): ``min_sqnr_db`` output SQNR vs FP32,
    ``max_kl`` mean KL(FP32 ‖ mixed) of the output softmax, ``min_agreement`` top-1 agreement with FP32.
    ``skip``: layers kept at the widest format (names, ``re:`` regexes, class names).
    """

    scheme: str = "static"
    formats: tuple[str, ...] | str = "auto"
    min_sqnr_db: float | None = None
    max_kl: float | None = None
    min_agreement: float | None = None
    observer: str = "percentile"
    group_size: int = 32
    skip: tuple[str, ...] = ()
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_choice(self.scheme, "scheme", SCHEMES, expected=f"one of {SCHEMES}")
        check_choice(self.observer, "observer", OBSERVERS, expected=f"one of {OBSERVERS}")
        check_choice(self.group_size, "group_size", GROUP_SIZES, expected=f"one of {GROUP_SIZES}")
        formats = self.formats
        if formats == "auto":
            float_name = {"bfloat16": "bf16", "float16": "fp16"}.get(choose_precision(self.device).float_dtype, "fp32")
            formats = (*_INT[self.scheme], float_name)
        if isinstance(formats, str):
            formats = (formats,)
        allowed = (*_INT[self.scheme], *_FLOAT)
        for f in formats:
            if f not in allowed:
                raise invalid("formats", f, f"formats with a real {self.scheme} lowering: {allowed}")
        if not any(f in _FLOAT for f in formats):
            raise invalid("formats", tuple(formats), "at least one float format (layers the budget needs to keep)")
        object.__setattr__(self, "formats", tuple(sorted(set(formats), key=lambda f: (BITS[f], f))))
        object.__setattr__(self, "skip", check_patterns(self.skip, argument="skip"))
        if self.min_sqnr_db is None and self.max_kl is None and self.min_agreement is None:
            object.__setattr__(self, "min_sqnr_db", 20.0)
        check_number(self.max_kl, "max_kl", above=0, optional=True, expected="a positive number")
        check_number(self.min_agreement, "min_agreement", above=0, maximum=1, optional=True,
                     expected="a fraction in (0, 1]")

    def met(self, scores: dict[str, float]) -> bool:
        return ((self.min_sqnr_db is None or scores["sqnr_db"] >= self.min_sqnr_db)
                and (self.max_kl is None or scores["kl"] <= self.max_kl)
                and (self.min_agreement is None or scores["agreement"] >= self.min_agreement))


@dataclasses.dataclass(frozen=True)
class MixedPrecisionPlan:
    """The format chosen for each layer, and what it costs: output quality on the evaluation inputs
    (simulated), weight bytes, the sensitivity measured per layer and format, and the search steps."""

    scheme: str
    formats: dict[str, str]
    scores: dict[str, float]  # sqnr_db, kl, agreement of the whole mixed model vs FP32
    met: bool
    weight_bytes: int
    fp32_weight_bytes: int
    sensitivity: dict[str, dict[str, float]]  # layer → format → output KL with only that layer in it
    steps: list[dict[str, Any]]
    config: MixedPrecisionConfig

    def layers_in(self, *formats: str) -> list[str]:
        return [n for n, f in self.formats.items() if f in formats]

    @property
    def float_layers(self) -> list[str]:
        """Layers kept in float: pass as ``exclude=`` to :func:`quantize_pt2e` / :func:`quantize_static_onnx`."""
        return self.layers_in(*_FLOAT)

    def weight_only_config(self, compute_dtype: str = "bfloat16") -> WeightOnlyConfig:
        """The :func:`quantize_weights` config that runs this plan (weight-only scheme)."""
        if self.scheme != "weight_only":
            raise invalid("scheme", self.scheme, "'weight_only' (a static plan lowers through quantize_pt2e/quantize_static_onnx)")
        ints = [f for f in self.config.formats if f in _INT["weight_only"]]
        base = 4 if "int4" in ints else 8
        group = self.config.group_size if base == 4 else None
        return WeightOnlyConfig(bits=base, group_size=group, compute_dtype=compute_dtype, skip=tuple(self.float_layers),
                                layer_bits=tuple((n, BITS[f]) for n, f in self.formats.items() if f in ints and BITS[f] != base),
                                min_features=1)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["config"] = self.config.to_dict()
        d["counts"] = {f: len(self.layers_in(f)) for f in self.config.formats}
        return d

    def save_json(self, path: str | Path) -> Path:
        from .._core.atomic import write_text

        return write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def table(self) -> Any:
        from .._core.table import Table

        counts = ", ".join(f"{f}: {len(self.layers_in(f))}" for f in self.config.formats)
        t = Table(title=f"mixed precision ({self.scheme}; {counts}) — SQNR {self.scores['sqnr_db']:.1f} dB, "
                        f"KL {self.scores['kl']:.3g}, top-1 agreement {self.scores['agreement']:.1%}, "
                        f"weights {self.weight_bytes / 1e6:.2f} MB of {self.fp32_weight_bytes / 1e6:.2f}, "
                        f"budget {'met' if self.met else 'NOT met'}", title_justify="left")
        t.add_column("layer", overflow="fold")
        t.add_column("format")
        for f in self.config.formats[:-1]:
            t.add_column(f"KL alone {f}", justify="right")
        for name, fmt in self.formats.items():
            t.add_row(name, fmt if fmt in _INT[self.scheme] else f"[yellow]{fmt}[/]",
                      *(f"{self.sensitivity[name].get(f, 0.0):.2e}" for f in self.config.formats[:-1]))
        return t


class _Simulated(torch.nn.Module):
    """A Conv/Linear layer computed in one of several formats, switched by ``fmt``."""

    def __init__(self, layer: torch.nn.Module, config: MixedPrecisionConfig) -> None:
        super().__init__()
        self.layer = layer
        self.fmt = "fp32"
        self.scheme = config.scheme
        self.input_fq = FakeQuantize(QuantSpec(8, symmetric=False, observer=config.observer)) if config.scheme == "static" else None
        self._weights = {f: self._weight(f, config) for f in config.formats if f in _INT[config.scheme]}

    @torch.no_grad()
    def _weight(self, fmt: str, config: MixedPrecisionConfig) -> torch.Tensor:
        w = self.layer.weight.detach().float()
        if self.scheme == "weight_only":
            bits = BITS[fmt] if int4_supported(self.layer) else 8  # as quantize_weights lowers it
            return WeightOnlyLinear.from_linear(self.layer, bits, config.group_size if bits == 4 else None, torch.float32).dequantized_weight()
        spec = QuantSpec(BITS[fmt], symmetric=True, per_channel=True, axis=0, narrow_range=True)
        observer = make_observer(spec)
        observer(w)
        scale, zero = observer.qparams()
        return fake_quantize(w, scale.reshape(-1), zero.reshape(-1), spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_fq is not None and self.input_fq.observe:
            self.input_fq(x)  # calibration pass: observe FP32 inputs
            return self.layer(x)
        if self.fmt == "fp32":
            return self.layer(x)
        if self.fmt in _FLOAT_DTYPE:
            dt = _FLOAT_DTYPE[self.fmt]
            w = self.layer.weight.detach().to(dt).float()
            return functional_call(self.layer, {"weight": w}, (x.to(dt).float(),)).to(dt).float()
        # weight-only kernels compute with bf16 activations
        x = self.input_fq(x) if self.input_fq is not None else x.to(torch.bfloat16).float()
        return functional_call(self.layer, {"weight": self._weights[self.fmt]}, (x,))


def plan_mixed_precision(model: torch.nn.Module, calibration: Any, config: MixedPrecisionConfig | None = None, *,
                         max_batches: int = 4, **kwargs: Any) -> MixedPrecisionPlan:
    """Choose a format per Conv/Linear layer of ``model`` so the whole model stays within the budget.

    ``calibration``: real inputs (a tensor, or batches / (inputs, labels) pairs); the first ``max_batches``
    batches calibrate activation ranges and are what the outputs are compared on. Pass a
    :class:`MixedPrecisionConfig` or its fields as keywords. The model is not modified.
    """
    from .._core.progress import progress

    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module")
    config = config_or_fields(MixedPrecisionConfig, config, kwargs)
    check_int(max_batches, "max_batches", minimum=1, expected="a positive integer")
    batches = as_batches(calibration)[:max_batches]
    if not batches:
        raise invalid("calibration", "empty", "at least one batch of real inputs")
    sim = copy.deepcopy(model).eval()
    if any(p.is_floating_point() and p.dtype != torch.float32 for p in sim.parameters()):
        torch.nn.Module.float(sim)  # simulate against FP32 (transformers' own .float() refuses GGUF-loaded models)
    if config.scheme == "static":
        fold_batchnorm(sim)  # as every INT8 lowering does, so layers see the weights they will run with
    kinds = (torch.nn.Linear,) if config.scheme == "weight_only" else (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)
    check_matched([(n, m) for n, m in sim.named_modules() if type(m) in kinds], config.skip, argument="skip",
                  what="/".join(k.__name__ for k in kinds) + " layer")
    layers: dict[str, _Simulated] = {}
    for name, parent, attr, module in list(child_slots(sim)):
        if type(module) in kinds and not matches(name, module, config.skip):
            layers[name] = _Simulated(module, config)
            setattr(parent, attr, layers[name])
    if not layers:
        raise invalid("model", type(model).__name__, f"a model with {'/'.join(k.__name__ for k in kinds)} layers (none found or all skipped)")

    ref = _outputs(sim, batches)  # FP32, and (static) activation ranges observed on the way
    for layer in layers.values():
        if layer.input_fq is not None:
            layer.input_fq.observe = False
    formats = config.formats
    narrow = formats[:-1]
    sensitivity: dict[str, dict[str, float]] = {n: {} for n in layers}
    with progress(transient=True) as bar:
        task = bar.add_task("layer sensitivity", total=len(layers) * len(narrow))
        for name, layer in layers.items():
            for fmt in narrow:
                layer.fmt = fmt
                sensitivity[name][fmt] = output_kl(ref, _outputs(sim, batches))
                bar.advance(task)
            layer.fmt = "fp32"

    moves = _promotion_order(sensitivity, formats)

    def assign(k: int) -> dict[str, str]:
        chosen = {n: formats[0] for n in layers}
        for name, fmt in moves[:k]:
            chosen[name] = fmt
        return chosen

    steps: list[dict[str, Any]] = []
    cache: dict[int, dict[str, float]] = {}

    def score(k: int) -> dict[str, float]:
        if k not in cache:
            for name, fmt in assign(k).items():
                layers[name].fmt = fmt
            cache[k] = _scores(ref, _outputs(sim, batches))
            steps.append({"promoted": k, **cache[k], "met": config.met(cache[k])})
        return cache[k]

    # exponential then binary search for the fewest promotions that meet the budget
    low, high = -1, None
    probes = [0, *(2**i for i in range(len(moves).bit_length()) if 2**i < len(moves)), len(moves)]
    for k in dict.fromkeys(probes):
        if config.met(score(k)):
            high = k
            break
        low = k
    if high is not None:
        while high - low > 1:
            mid = (low + high) // 2
            if config.met(score(mid)):
                high = mid
            else:
                low = mid
    final = high if high is not None else len(moves)
    chosen = assign(final)
    return MixedPrecisionPlan(
        scheme=config.scheme, formats=chosen, scores=score(final), met=high is not None,
        weight_bytes=sum(_weight_bytes(layers[n].layer, f, config) for n, f in chosen.items()) + _other_bytes(sim, layers),
        fp32_weight_bytes=sum(p.numel() * 4 for p in sim.parameters()),
        sensitivity=sensitivity, steps=steps, config=config)


def _promotion_order(sensitivity: dict[str, dict[str, float]], formats: Sequence[str]) -> list[tuple[str, str]]:
    """(layer, next format) moves, most harmful current format first; a layer's moves stay in width order."""
    heap = [(-s[formats[0]], name, 0) for name, s in sensitivity.items()]
    heapq.heapify(heap)
    moves = []
    while heap:
        _, name, i = heapq.heappop(heap)
        moves.append((name, formats[i + 1]))
        if i + 2 < len(formats):
            heapq.heappush(heap, (-sensitivity[name][formats[i + 1]], name, i + 1))
    return moves


def _outputs(model: torch.nn.Module, batches: list[Any]) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([_logits(model(b) if isinstance(b, torch.Tensor) else model(*b)).float() for b in batches])


def _logits(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits"):
        return out.logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise invalid("model output", type(out).__name__, "a tensor, a tuple starting with one, or an object with .logits")


def _scores(ref: torch.Tensor, got: torch.Tensor) -> dict[str, float]:
    agreement = float((ref.argmax(-1) == got.argmax(-1)).float().mean())
    return {"sqnr_db": sqnr_db(ref, got), "kl": output_kl(ref, got), "agreement": agreement}


def _weight_bytes(layer: torch.nn.Module, fmt: str, config: MixedPrecisionConfig) -> int:
    n = layer.weight.numel()
    bits = BITS[fmt]
    extra = 0
    if fmt in _INT[config.scheme]:  # scales (and int4 zeros) in float32
        per = config.group_size if (config.scheme == "weight_only" and bits == 4) else layer.weight[0].numel()
        extra = (n // per) * 4 * (2 if bits == 4 and config.scheme == "weight_only" else 1)
    bias = layer.bias.numel() * 4 if getattr(layer, "bias", None) is not None else 0
    return n * bits // 8 + extra + bias


def _other_bytes(sim: torch.nn.Module, layers: dict[str, _Simulated]) -> int:
    inside = {id(p) for layer in layers.values() for p in layer.layer.parameters()}
    return sum(p.numel() * p.element_size() for p in sim.parameters() if id(p) not in inside)
