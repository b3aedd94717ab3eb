"""Static or dynamic INT8 through PyTorch 2 export quantization (torchao PT2E), compiled by Inductor.

On x86 the quantized graph lowers to oneDNN int8 kernels (AMX or AVX-512 VNNI); on arm64 the XNNPACK
quantizer's graph is meant for ExecuTorch. Activation ranges come from our observers (``minmax``,
``moving_average``, ``percentile``, ``mse``, ``histogram``) plugged into torchao's observer interface;
weights are symmetric int8 per output channel.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

import torch

from .._core.checks import check_choice, check_flag, check_int
from .._core.config import BaseConfig, config_or_fields
from .._core.errors import invalid, require
from .._core.export import dynamic_batch as dynamic_batch_examples
from .._core.tensors import as_input_tuple, eval_mode
from .observers import make_observer
from .spec import OBSERVERS, QuantSpec


def _torchao() -> Any:
    return require("torchao.quantization.pt2e.quantize_pt2e", "PT2E quantization", "torchao==0.18.0")


def _activation_observer_class(name: str) -> Any:
    """A torchao observer class whose range is chosen by our observer ``name``."""
    from torchao.quantization.pt2e.observer import MinMaxObserver as AoMinMax

    class RangeObserver(AoMinMax):  # type: ignore[misc, valid-type]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.spec = QuantSpec(8, symmetric=False, observer=name)
            self.inner = make_observer(self.spec)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.numel():
                self.inner(x)
            return x

        @torch.jit.export
        def calculate_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
            scale, zero = self.inner.qparams()
            self.min_val = ((self.spec.qmin - zero) * scale).float().reshape(())
            self.max_val = ((self.spec.qmax - zero) * scale).float().reshape(())
            return super().calculate_qparams()

    RangeObserver.__name__ = RangeObserver.__qualname__ = f"DeepSeek{name.title().replace('_', '')}Observer"
    return RangeObserver


def x86_quantizer(observer: str = "histogram", dynamic: bool = False, exclude: Iterable[str] = ()) -> Any:
    """torchao's ``X86InductorQuantizer`` (uint8 activations, int8 per-channel weights), ranges by ``observer``;
    the modules named in ``exclude`` (and everything inside them) stay in float."""
    check_choice(observer, "observer", OBSERVERS, expected=f"one of {OBSERVERS}")
    _torchao()
    import dataclasses as dc

    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq

    config = xiq.get_default_x86_inductor_quantization_config(is_dynamic=dynamic)
    if not dynamic:
        act = dc.replace(config.input_activation,
                         observer_or_fake_quant_ctr=_activation_observer_class(observer).with_args(eps=2**-12))
        config = dc.replace(config, input_activation=act, output_activation=act)
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(config)
    for name in exclude:
        quantizer.set_module_name_qconfig(name, None)
    return quantizer


def _export(model: torch.nn.Module, examples: tuple[Any, ...], dynamic_batch: bool) -> torch.fx.GraphModule:
    """torch.export (strict first: it handles modules reused at several call sites), dead code removed."""
    shapes = None
    if dynamic_batch:
        examples, shapes = dynamic_batch_examples(examples)
    errors = []
    for strict in (True, False):
        try:
            graph = torch.export.export(model, examples, dynamic_shapes=shapes, strict=strict).module()
            break
        except Exception as e:  # report the non-strict error: it names the failing op most clearly
            errors.append(e)
    else:
        raise invalid("model", type(model).__name__, f"a model torch.export can capture ({type(errors[-1]).__name__}: {str(errors[-1]).splitlines()[0][:300]})")
    graph.graph.eliminate_dead_code()  # e.g. an unused BERT pooler: prepare_pt2e would observe it
    graph.recompile()
    return graph


class FrozenCompiled(torch.nn.Module):
    """``model`` run through ``torch.compile`` with Inductor weight freezing (pre-packed int8 weights).

    Settings apply per call, never globally: freezing, and a recompile limit high enough that quantizing
    several variants of one architecture in a process (each compiles the same code objects) never
    silently falls back to eager (which runs quantized ops ~100x slower).
    """

    def __init__(self, model: torch.nn.Module, compiled: bool = True) -> None:
        super().__init__()
        self.model = model
        self.compiled = compiled
        self._run = torch.compile(model) if compiled else model
        self.compile_s: float | None = None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if not self.compiled:
            return self._run(*args, **kwargs)
        import torch._dynamo.config as dynamo_config
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True), dynamo_config.patch(recompile_limit=256), torch.no_grad():
            started = time.perf_counter()
            out = self._run(*args, **kwargs)
            if self.compile_s is None:
                self.compile_s = time.perf_counter() - started
            return out


class PT2EModule(FrozenCompiled):
    """An INT8 model from :func:`quantize_pt2e`: ``graph_module`` holds the quantized graph (quantize /
    dequantize ops around float ops); calls go through Inductor, which fuses them into integer kernels."""

    def __init__(self, graph_module: torch.fx.GraphModule, compiled: bool) -> None:
        super().__init__(graph_module, compiled)

    @property
    def graph_module(self) -> torch.fx.GraphModule:
        return self.model


@dataclasses.dataclass(frozen=True)
class PT2EConfig(BaseConfig):
    """INT8 through PyTorch 2 export (torchao PT2E, the x86 Inductor quantizer): what :func:`quantize_pt2e` builds.

    ``observer``: how activation ranges are calibrated (``histogram``, ``minmax``, ``mse``, ``percentile``, ...);
    ``dynamic``: activation ranges computed on each call instead (no calibration); ``compile``: the result runs
    Inductor's oneDNN int8 kernels (``False``: the slow reference graph); ``dynamic_batch``: exported for any batch
    size; ``max_batches``: calibration batches used (``None``: all); ``exclude``: modules kept in float."""

    observer: str = "histogram"
    dynamic: bool = False
    compile: bool = True
    dynamic_batch: bool = True
    max_batches: int | None = None
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_choice(self.observer, "observer", OBSERVERS, expected=f"one of {OBSERVERS}")
        for name in ("dynamic", "compile", "dynamic_batch"):
            check_flag(getattr(self, name), name)
        check_int(self.max_batches, "max_batches", minimum=1, optional=True,
                  expected="None or an integer >= 1")
        names = (self.exclude,) if isinstance(self.exclude, str) else tuple(self.exclude)
        if not all(isinstance(n, str) and n for n in names):
            raise invalid("exclude", list(names), "names of modules (non-empty strings)")
        object.__setattr__(self, "exclude", names)


def quantize_pt2e(model: torch.nn.Module, example_inputs: Any, calibration: Iterable[Any] | None = None,
                  config: PT2EConfig | None = None, **options: Any) -> PT2EModule:
    """Quantize ``model`` to INT8 with PT2E and the x86 Inductor quantizer.

    ``calibration``: batches (tensors, tuples, or (inputs, labels) pairs of real data) for static activation ranges;
    not needed with ``dynamic=True``. Pass a :class:`PT2EConfig` or its fields as keywords (``observer="mse"``; the
    same as ``quantize(model, PT2EConfig(...), example_inputs=..., calibration=...)``); ``exclude`` takes e.g. the
    layers a :func:`plan_mixed_precision` plan keeps in float.
    """
    config = config_or_fields(PT2EConfig, config, options)
    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module")
    qpt2e = _torchao()
    examples = as_input_tuple(example_inputs, "example_inputs")
    if not config.dynamic and calibration is None:
        raise invalid("calibration", None, "real input batches for static ranges (or dynamic=True)")
    if isinstance(calibration, (str, bytes)):
        raise invalid("calibration", calibration, "batches of real inputs (tensors), not a string")
    names = dict(model.named_modules())
    for name in config.exclude:
        if name not in names:
            raise invalid("exclude", name, f"names of modules in the model (e.g. {[n for n in names if n][:5]})")
    model = eval_mode(model)
    with torch.no_grad():
        graph = _export(model, examples, config.dynamic_batch)
        prepared = qpt2e.prepare_pt2e(graph, x86_quantizer(config.observer, config.dynamic, config.exclude))
        seen = 0
        for i, batch in enumerate(calibration if calibration is not None else [examples]):
            if config.max_batches is not None and i >= config.max_batches:
                break
            inputs = as_input_tuple(batch[0] if _is_labeled(batch) else batch, "calibration")
            for chunk in _chunks(inputs, None if config.dynamic_batch else examples[0].shape[0]):
                prepared(*chunk)
            seen += 1
        if seen == 0:
            raise invalid("calibration", "no batches", "at least one batch of inputs")
        converted = qpt2e.convert_pt2e(prepared)
    require_quantized(converted, model, "the x86 quantizer")
    return PT2EModule(converted, compiled=config.compile)


def require_quantized(converted: torch.fx.GraphModule, model: Any, quantizer: str) -> None:
    """Refuse a PT2E result in which no layer was quantized (it would be FP32 labelled INT8)."""
    if not any("quantize_per" in str(n.target) for n in converted.graph.nodes if n.op == "call_function"):
        # quantizers match layers by the module each op came from; a graph reloaded from a .pt2 may have lost it
        raise invalid("model", type(model).__name__, f"a model whose layers {quantizer} can match: none was "
                      "quantized (a module reloaded from a torch.export .pt2 has lost its layer structure: quantize the "
                      "nn.Module, a state_dict with its architecture, or use ONNX Runtime INT8)")


def _chunks(inputs: tuple[Any, ...], rows: int | None) -> list[tuple[Any, ...]]:
    """A calibration batch cut to the batch size a static-shape graph was exported with."""
    if rows is None or inputs[0].shape[0] == rows:
        return [inputs]
    n = inputs[0].shape[0]
    if n < rows:
        raise invalid("calibration", f"a batch of {n}", f"batches of at least {rows} rows (the example batch size)")
    return [tuple(t[i:i + rows] for t in inputs) for i in range(0, n - rows + 1, rows)]


def _is_labeled(batch: Any) -> bool:
    """(inputs, labels) as a DataLoader yields: two items, the second integer labels."""
    return (isinstance(batch, (list, tuple)) and len(batch) == 2 and isinstance(batch[1], torch.Tensor)
            and not batch[1].is_floating_point() and batch[1].dim() <= 1)
