"""Quantization-aware training: ``QATConfig(...).apply(model)`` swaps Conv/Linear layers, in place, for
versions that fake-quantize their weights and input activations; train as usual; then ``convert``."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import torch

from .._core.checks import check_choice, check_int
from .._core.config import BaseConfig
from .._core.errors import invalid
from .._core.select import check_matched, check_patterns, child_slots, matches
from .fake_quant import FakeQuantize
from .spec import OBSERVERS, QuantSpec

_QUANTIZABLE = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)


class _QATMixin:
    weight_fq: FakeQuantize
    input_fq: FakeQuantize

    def _quantized_weight(self) -> torch.Tensor:
        return self.weight_fq(self.weight)  # type: ignore[attr-defined]


class QATConv2d(torch.nn.Conv2d, _QATMixin):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.input_fq(x), self._quantized_weight(), self.bias)


class QATConv1d(torch.nn.Conv1d, _QATMixin):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.input_fq(x), self._quantized_weight(), self.bias)


class QATLinear(torch.nn.Linear, _QATMixin):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(self.input_fq(x), self._quantized_weight(), self.bias)


_QAT_CLASS = {torch.nn.Conv2d: QATConv2d, torch.nn.Conv1d: QATConv1d, torch.nn.Linear: QATLinear}


@dataclasses.dataclass(frozen=True)
class QATConfig(BaseConfig):
    """Fake-quantize every Conv/Linear layer's weights (per channel, symmetric, ``weight_bits``) and inputs
    (per tensor, asymmetric, ``activation_bits``).

    ``layer_bits`` overrides the weight width per layer: keys are exact module names or ``re:`` regexes
    (exact name wins over regex, first matching regex wins). ``skip`` names layers left in float
    (names, ``re:`` regexes or class names). ``learnable`` uses LSQ/LSQ+ scales. ``step``: what
    ``quantize(model, config)`` does — ``"prepare"`` swaps in the fake-quantized layers (:meth:`apply`), ``"convert"``
    freezes a trained or calibrated model (:func:`convert`).
    """

    activation_bits: int = 8
    weight_bits: int = 8
    observer_type: str = "minmax"
    weight_observer: str = "minmax"
    per_channel_weights: bool = True
    symmetric_activations: bool = False
    learnable: bool = False
    fold_bn: bool = True
    skip: tuple[str, ...] = ()
    layer_bits: tuple[tuple[str, int], ...] = ()
    step: str = "prepare"

    def __post_init__(self) -> None:
        check_choice(self.step, "step", ("prepare", "convert"),
                     expected="'prepare' (before training) or 'convert' (after it)")
        for name in ("activation_bits", "weight_bits"):
            check_int(getattr(self, name), name, minimum=2, maximum=8, expected="an integer from 2 to 8")
        for name in ("observer_type", "weight_observer"):
            check_choice(getattr(self, name), name, OBSERVERS, expected=f"one of {OBSERVERS}")
        if self.weight_observer == "histogram" and self.per_channel_weights:
            raise invalid("weight_observer", "histogram", "a per-channel observer (minmax, mse, percentile, moving_average)")
        object.__setattr__(self, "skip", check_patterns(self.skip, argument="skip"))
        try:
            pairs = tuple((k, v) for k, v in (dict(self.layer_bits).items() if not isinstance(self.layer_bits, dict)
                                              else self.layer_bits.items()))
        except (TypeError, ValueError):
            raise invalid("layer_bits", self.layer_bits, "a dict of layer name (or 're:' regex) to bits") from None
        check_patterns([k for k, _ in pairs], argument="layer_bits")
        object.__setattr__(self, "layer_bits", pairs)
        for key, bits in self.layer_bits:
            check_int(bits, f"layer_bits[{key!r}]", minimum=2, maximum=8, expected="an integer from 2 to 8")

    def activation_spec(self) -> QuantSpec:
        return QuantSpec(self.activation_bits, symmetric=self.symmetric_activations, observer=self.observer_type)

    def weight_spec(self, bits: int, module: torch.nn.Module) -> QuantSpec:
        return QuantSpec(bits, symmetric=True, per_channel=self.per_channel_weights, axis=0,
                         observer=self.weight_observer, narrow_range=True)

    def bits_for(self, name: str) -> int:
        table = dict(self.layer_bits)
        if name in table:
            return table[name]
        for key, bits in self.layer_bits:
            if key.startswith("re:") and re.fullmatch(key[3:], name):
                return bits
        return self.weight_bits

    def skips(self, name: str, module: torch.nn.Module) -> bool:
        return matches(name, module, self.skip)

    def apply(self, model: torch.nn.Module) -> torch.nn.Module:
        """Prepare ``model`` (in place) for quantization-aware training and return it."""
        if not isinstance(model, torch.nn.Module):
            raise invalid("model", type(model).__name__, "a torch.nn.Module")
        layers = [(n, m) for n, m in model.named_modules() if type(m) in _QAT_CLASS]
        check_matched(layers, self.skip, argument="skip", what="Conv/Linear layer")
        check_matched(layers, [k for k, _ in self.layer_bits], argument="layer_bits", what="Conv/Linear layer",
                      classes=False)
        if self.fold_bn:
            fold_batchnorm(model)
        swapped = 0
        for name, parent, child_name, module in list(child_slots(model)):
            if type(module) not in _QAT_CLASS or self.skips(name, module):
                continue
            qat = _QAT_CLASS[type(module)].__new__(_QAT_CLASS[type(module)])
            qat.__dict__ = module.__dict__.copy()  # shares the parameters: optimizers built before still work
            qat._modules = dict(module._modules)
            qat.weight_fq = FakeQuantize(self.weight_spec(self.bits_for(name), module), learnable=self.learnable)
            qat.input_fq = FakeQuantize(self.activation_spec(), learnable=self.learnable)
            setattr(parent, child_name, qat)
            swapped += 1
        if swapped == 0:
            raise invalid("model", type(model).__name__, "a model with Conv1d/Conv2d/Linear layers to quantize (none found or all skipped)")
        return model


def fake_quantizers(model: torch.nn.Module) -> Iterator[tuple[str, FakeQuantize]]:
    for name, m in model.named_modules():
        if isinstance(m, FakeQuantize):
            yield name, m


def calibrate(model: torch.nn.Module, batches: Any, max_batches: int | None = None) -> torch.nn.Module:
    """Run ``batches`` (tensors or (inputs, labels) pairs) through ``model`` with observers on."""
    model.eval()
    with torch.no_grad():
        for i, batch in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            model(x)
    return model


def convert(model: torch.nn.Module) -> torch.nn.Module:
    """Freeze a QAT/calibrated model: ranges stop moving and weights are stored already on their integer grid.

    The result computes exactly what the integer model computes (in float). Lowering to integer kernels
    for speed is a separate step per target.
    """
    for _, fq in fake_quantizers(model):
        if not fq.initialized:
            raise invalid("model", "uncalibrated", "a model that has seen data (train or calibrate before convert)")
        fq.observe = False
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _QATMixin):
                m.weight.copy_(m.weight_fq(m.weight))
    return model.eval()


def fold_batchnorm(model: torch.nn.Module) -> int:
    """Fold each BatchNorm that directly follows a Conv (and is its only user) into that Conv, in place.

    Uses the BN's running statistics, so the model computes the same function in eval mode. Returns the
    number of folds. Models that FX cannot trace are left unchanged.
    """
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:
        return 0
    modules = dict(model.named_modules())
    folds = 0
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            continue
        src = node.args[0]
        if not isinstance(src, torch.fx.Node) or src.op != "call_module" or len(src.users) != 1:
            continue
        conv, bn = modules.get(src.target), modules[node.target]
        if not isinstance(conv, torch.nn.Conv1d | torch.nn.Conv2d) or bn.running_mean is None:
            continue
        _fold(conv, bn)
        parent_name, _, child = node.target.rpartition(".")
        setattr(modules[parent_name] if parent_name else model, child, torch.nn.Identity())
        folds += 1
    return folds


@torch.no_grad()
def _fold(conv: torch.nn.Module, bn: torch.nn.Module) -> None:
    std = torch.sqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(std)
    factor = gamma / std
    conv.weight.mul_(factor.reshape(-1, *([1] * (conv.weight.dim() - 1))))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    new_bias = beta + (bias - bn.running_mean) * factor
    if conv.bias is None:
        conv.bias = torch.nn.Parameter(new_bias)
    else:
        conv.bias.copy_(new_bias)
