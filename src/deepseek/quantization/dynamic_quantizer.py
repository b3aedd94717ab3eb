"""``DynamicQuantizer``: load a model file safely, quantize it one of three ways, and measure what it gained.

- ``dynamic``: every Linear layer gets int8 weights (per channel) and int8 activations quantized on each
  call (per token); torchao's kernels, compiled by Inductor. No calibration data.
- ``static``: Conv and Linear layers with int8 weights and calibrated int8 activations (PT2E, x86
  Inductor quantizer, our observers); needs ``calibration`` batches of real inputs.
- ``hybrid``: per-layer mixed precision. ``weight_bits`` assigns weight widths (a list gives the first
  Linear layer the first width and the rest the others, e.g. ``[4, 8]``); layers with 8-bit weights whose
  measured sensitivity is at most ``activation_threshold`` also quantize their activations to int8 on each
  call, the others run weight-only (bfloat16 activations through PyTorch's int4/int8 weight-only kernels).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .._core.checks import check_choice, check_flag, check_int, check_number
from .._core.errors import invalid
from .._core.tensors import as_input_tuple, flatten_outputs
from .observers import fake_quant_values, qparams_from_range
from .pt2e import FrozenCompiled
from .sensitivity import sqnr_db
from .spec import QuantSpec
from .weight_only import WeightOnlyLinear, int4_supported

METHODS = ("dynamic", "static", "hybrid")


def load_model(model_path: Any, *, arch: str | None = None, trust_pickle: bool = False) -> torch.nn.Module:
    """An nn.Module from a module, a Hugging Face folder, a ``.pt2``, TorchScript, or state_dict + ``arch``."""
    if isinstance(model_path, torch.nn.Module):
        return model_path
    if not isinstance(model_path, (str, Path)):
        raise invalid("model_path", type(model_path).__name__, "a path or a torch.nn.Module")
    path = Path(model_path)
    if not path.exists():
        raise invalid("model_path", str(path), "an existing model file or Hugging Face model folder")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise invalid("model_path", str(path), "a Hugging Face model folder (config.json + weights) or a model file")
        from transformers import AutoModel

        try:
            return AutoModel.from_pretrained(path, local_files_only=True).eval()
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            from .._core.errors import ArtifactError

            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ArtifactError(f"model_path: {path} is not a loadable Hugging Face model folder ({first})") from None
    from ..runtime.artifacts import detect_kind, load_module

    kind = "onnx" if path.suffix.lower() == ".onnx" else detect_kind(path)
    if kind == "onnx":
        raise invalid("model_path", str(path), "a PyTorch model (for ONNX files use quantize_static_onnx / quantize_dynamic_onnx)")
    module = load_module(path, kind, arch=arch, trust_pickle=trust_pickle)
    if isinstance(module, torch.jit.ScriptModule):
        raise invalid("model_path", str(path), "an eager or torch.export model (TorchScript graphs cannot be re-quantized)")
    return module


@dataclasses.dataclass(frozen=True)
class QuantizerBenchmark:
    """FP32 vs quantized, measured in one run on the same inputs."""

    method: str
    batch_size: int
    fp32_ms: float
    quantized_ms: float
    fp32_size_mb: float
    quantized_size_mb: float
    output_sqnr_db: float
    fp32_accuracy: float | None = None
    quantized_accuracy: float | None = None
    layers: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.quantized_ms

    @property
    def fp32_fps(self) -> float:
        return 1000.0 * self.batch_size / self.fp32_ms

    @property
    def quantized_fps(self) -> float:
        return 1000.0 * self.batch_size / self.quantized_ms

    @property
    def accuracy_drop(self) -> float | None:
        if self.fp32_accuracy is None or self.quantized_accuracy is None:
            return None
        return self.fp32_accuracy - self.quantized_accuracy

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(speedup=self.speedup, fp32_fps=self.fp32_fps, quantized_fps=self.quantized_fps,
                    accuracy_drop=self.accuracy_drop)
        return data

    def __str__(self) -> str:
        lines = [f"{self.method} INT quantization, batch {self.batch_size} (measured, same run)",
                 f"  latency   {self.fp32_ms:9.2f} ms → {self.quantized_ms:9.2f} ms  ({self.speedup:.2f}x)",
                 f"  throughput {self.fp32_fps:8.1f} → {self.quantized_fps:8.1f} inputs/s",
                 f"  size      {self.fp32_size_mb:9.1f} MB → {self.quantized_size_mb:9.1f} MB",
                 f"  output SQNR vs FP32 {self.output_sqnr_db:.1f} dB"]
        if self.accuracy_drop is not None:
            lines.append(f"  accuracy  {100 * self.fp32_accuracy:.2f}% → {100 * self.quantized_accuracy:.2f}%"
                         f"  (drop {100 * self.accuracy_drop:+.2f} pt)")
        return "\n".join(lines)


class DynamicQuantizer:
    """Quantize the model at ``model_path`` with ``quant_bits``-wide weights by default.

    ``activation_threshold`` (0..1] is the sensitivity cut-off of ``hybrid``: each Linear layer's
    sensitivity is the output noise when only it is quantized (W8A8), scaled so the most sensitive
    layer is 1; layers at or below the threshold get int8 activations. ``example_inputs`` are needed to
    measure (image models built from ``arch`` get a 224x224 batch by default).
    """

    def __init__(self, model_path: Any, quant_bits: int = 8, activation_threshold: float = 0.6, *,
                 arch: str | None = None, example_inputs: Any = None, trust_pickle: bool = False) -> None:
        check_choice(quant_bits, "quant_bits", (4, 8), expected="4 or 8")
        check_number(activation_threshold, "activation_threshold", above=0, maximum=1,
                     expected="a number in (0, 1]")
        self.model = load_model(model_path, arch=arch, trust_pickle=trust_pickle).eval()
        self.quant_bits = quant_bits
        self.activation_threshold = float(activation_threshold)
        if example_inputs is None and arch is not None:
            example_inputs = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
        self.example_inputs = as_input_tuple(example_inputs, "example_inputs") if example_inputs is not None else None
        self.quantized: torch.nn.Module | None = None
        self.method: str | None = None
        self.layer_plan: dict[str, str] = {}
        self.sensitivity: dict[str, float] = {}
        # the static INT8 floor's record (quantize(..., held_out=...)): attempts, agreement, whether it was met
        self.floor: dict[str, Any] | None = None

    # ------------------------------------------------------------------ quantize
    def quantize(self, method: str = "dynamic", weight_bits: int | Sequence[int] | None = None,
                 activation_bits: int = 8, calibration: Any = None, compile: bool = True, *,
                 held_out: Any = None, min_agreement: float = 0.95) -> torch.nn.Module:
        """Return a quantized copy of the model (the original is kept for :meth:`benchmark`).

        ``held_out`` (``method="static"``, a classifier): real inputs the calibration never saw; the INT8 model's
        top-1 agreement with FP32 on the confident ones (FP32 top-1 probability >= 0.5; all of them if none is) is
        held to ``min_agreement``. Below it, safer builds are tried in turn — the histogram observer, then the
        first and last layers in float — and the first that meets it is returned, or the best with a warning;
        :attr:`floor` records every attempt and whether the floor was met."""
        check_choice(method, "method", METHODS, expected=f"one of {METHODS}")
        check_choice(activation_bits, "activation_bits", (8, 16),
                     expected="8 (int8 activations) or 16 (bfloat16 activations, weight-only)")
        if method != "static" and held_out is not None:
            raise invalid("held_out", type(held_out).__name__, "None unless method='static' (the INT8 floor is "
                                                               "for calibrated activations)")
        if held_out is not None:
            check_number(min_agreement, "min_agreement", above=0, maximum=1,
                         expected="a fraction in (0, 1], e.g. 0.95")
        if method != "static" and calibration is not None:
            raise invalid("calibration", type(calibration).__name__, f"None for method={method!r} (activation ranges "
                                                                     "are computed on each call; only 'static' calibrates)")
        check_flag(compile, "compile")
        widths = self._widths(weight_bits)
        if method in ("dynamic", "static") and (set(widths) != {8} or activation_bits != 8):
            raise invalid("weight_bits", list(widths), f"8-bit weights and activations for method={method!r} (use 'hybrid' for 4-bit weights)")
        self.floor = None
        if method == "static" and held_out is not None:
            quantized = self._static_with_floor(calibration, compile, held_out, float(min_agreement))
        elif method == "static":
            quantized = self._static(calibration, compile)
        else:
            quantized = self._mixed(widths, activation_bits, method == "dynamic", compile)
        self.quantized, self.method = quantized, method
        return quantized

    def _widths(self, weight_bits: int | Sequence[int] | None) -> list[int]:
        if weight_bits is None:
            return [self.quant_bits]
        widths = [weight_bits] if isinstance(weight_bits, int) else list(weight_bits)
        if not widths or any(isinstance(b, bool) or b not in (4, 8) for b in widths):
            raise invalid("weight_bits", weight_bits, "4, 8, or a non-empty list of them (e.g. [4, 8])")
        return widths

    def _static(self, calibration: Any, compile: bool, observer: str = "mse",
                exclude: Sequence[str] = ()) -> torch.nn.Module:
        from .pt2e import quantize_pt2e

        if calibration is None:
            raise invalid("calibration", None, "batches of real inputs for method='static' (or use 'dynamic'/'hybrid')")
        examples = self._examples()
        self.layer_plan = {name: "float (kept)" if name in exclude else "int8 static (PT2E)"
                           for name, m in self.model.named_modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)}
        return quantize_pt2e(self.model, examples, calibration, observer=observer, compile=compile, exclude=exclude)

    def _static_with_floor(self, calibration: Any, compile: bool, held_out: Any, floor: float) -> torch.nn.Module:
        """:meth:`_static`, then safer builds while confident agreement with FP32 on ``held_out`` is below ``floor``."""
        import warnings

        from .._core.agreement import fidelity
        from .onnx_static import calibration_batches

        batches = calibration_batches(held_out, argument="held_out")
        with torch.no_grad():
            reference = torch.cat([flatten_outputs(self.model(b))[0] for b in batches])
        if reference.dim() != 2:
            raise invalid("held_out", f"a model whose output is {list(reference.shape)}",
                          "a classifier with (N, classes) outputs (top-1 agreement is the floor's measure)")
        layers = [n for n, m in self.model.named_modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
        plan = [("mse", ()), ("histogram", ())]
        if len(layers) > 2:
            plan.append(("mse", (layers[0], layers[-1])))
        attempts, best = [], None
        for observer, exclude in plan:
            quantized = self._static(calibration, compile, observer, exclude)
            with torch.no_grad():
                got = torch.cat([flatten_outputs(quantized(b))[0] for b in batches])
            scores = fidelity(reference.double().numpy(), got.double().numpy())
            score = scores["confident_agreement"] if scores["confident_views"] else scores["agreement"]
            attempts.append({"observer": observer, "float_layers": list(exclude), "agreement": scores["agreement"],
                             "confident_agreement": score})
            if best is None or score > best[0]:
                best = (score, quantized, dict(self.layer_plan))
            if score >= floor:
                break
        assert best is not None
        score, quantized, self.layer_plan = best
        self.floor = {"min_agreement": floor, "held_out": int(reference.shape[0]), "attempts": attempts,
                      "met": score >= floor, "agreement": score}
        if score < floor:
            warnings.warn(f"static INT8 below its floor: {score:.1%} confident top-1 agreement with FP32 on "
                          f"{reference.shape[0]} held-out inputs (floor {floor:.0%}) after {len(attempts)} builds; "
                          "kept the best — check DynamicQuantizer.floor", stacklevel=3)
        return quantized

    def _linears(self) -> list[str]:
        names = [name for name, m in self.model.named_modules() if type(m) is torch.nn.Linear]  # definition order
        if not names:
            raise invalid("model", type(self.model).__name__, "a model with nn.Linear layers for dynamic/hybrid quantization")
        return names

    def _mixed(self, widths: list[int], activation_bits: int, dynamic: bool, compile: bool) -> torch.nn.Module:
        names = self._linears()
        bits = {name: (widths[0] if i == 0 else widths[-1] if len(widths) > 1 else widths[0]) for i, name in enumerate(names)}
        modules = dict(self.model.named_modules())
        bits = {n: 8 if b == 4 and not int4_supported(modules[n]) else b for n, b in bits.items()}
        if dynamic:
            int8_acts = set(names)
        elif activation_bits == 8:
            self.sensitivity = self.layer_sensitivity(names)
            int8_acts = {n for n in names if bits[n] == 8 and self.sensitivity[n] <= self.activation_threshold}
        else:
            int8_acts = set()
        model = copy.deepcopy(self.model)
        modules = dict(model.named_modules())
        plan: dict[str, str] = {}
        for name in names:
            parent_name, _, attr = name.rpartition(".")
            parent = modules[parent_name] if parent_name else model
            if name in int8_acts:
                plan[name] = "int8 weights + int8 dynamic activations"
            else:
                setattr(parent, attr, WeightOnlyLinear.from_linear(modules[name], bits[name], 32 if bits[name] == 4 else None))
                plan[name] = f"int{bits[name]} weight-only" + (" (group 32)" if bits[name] == 4 else " (per channel)")
        if int8_acts:
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

            quantize_(model, Int8DynamicActivationInt8WeightConfig(),
                      filter_fn=lambda m, fqn: fqn in int8_acts and isinstance(m, torch.nn.Linear))
        self.layer_plan = plan
        return FrozenCompiled(model) if compile and int8_acts else model

    def layer_sensitivity(self, names: list[str] | None = None) -> dict[str, float]:
        """Each Linear layer's output noise power when only it runs W8A8 (per-token int8 activations,
        per-channel int8 weights), divided by the largest: 1.0 is the most sensitive layer."""
        if isinstance(names, str):
            names = [names]
        linears = self._linears()
        names = list(names) if names else linears
        unknown = [n for n in names if n not in linears]
        if unknown:
            raise invalid("names", unknown[:3], f"names of the model's nn.Linear layers (e.g. {linears[:4]})")
        examples = self._examples()
        modules = dict(self.model.named_modules())
        act_spec = QuantSpec(8, symmetric=False)
        w_spec = QuantSpec(8, symmetric=True, per_channel=True, narrow_range=True)
        with torch.no_grad():
            reference = flatten_outputs(self.model(*examples))[0]
            noise: dict[str, float] = {}
            for name in names:
                layer = modules[name]

                def hook(mod: Any, args: Any, out: Any) -> Any:
                    x = args[0]
                    lo, hi = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
                    xq = fake_quant_values(x, *qparams_from_range(lo, hi, act_spec), act_spec)
                    w = mod.weight
                    amax = w.abs().amax(1, keepdim=True)
                    wq = fake_quant_values(w, *qparams_from_range(-amax, amax, w_spec), w_spec)
                    return torch.nn.functional.linear(xq, wq, mod.bias)

                handle = layer.register_forward_hook(hook)
                try:
                    got = flatten_outputs(self.model(*examples))[0]
                finally:
                    handle.remove()
                noise[name] = 10 ** (-sqnr_db(reference, got) / 10)
        top = max(noise.values()) or 1.0
        return {name: value / top for name, value in noise.items()}

    def _examples(self) -> tuple[Any, ...]:
        if self.example_inputs is None:
            raise invalid("example_inputs", None, "sample inputs for the model (DynamicQuantizer(..., example_inputs=...))")
        return self.example_inputs

    # ------------------------------------------------------------------ benchmark
    def benchmark(self, eval_data: Any = None, *, runs: int = 20, warmup: int = 3) -> QuantizerBenchmark:
        """Measure FP32 and the quantized model on the example inputs (latency median, throughput, size,
        output SQNR) and, given ``eval_data`` ((inputs, labels) batches), top-1 accuracy of both."""
        from .._core.timing import measure

        if self.quantized is None:
            raise invalid("quantize", "not called", "quantize(...) before benchmark()")
        check_int(runs, "runs", minimum=1, expected="a positive integer")
        check_int(warmup, "warmup", minimum=0)
        examples = self._examples()
        with torch.no_grad():
            reference = flatten_outputs(self.model(*examples))[0]
            got = flatten_outputs(self.quantized(*examples))[0]
            fp32 = measure(lambda: self.model(*examples), warmup=warmup, runs=runs)
            quant = measure(lambda: self.quantized(*examples), warmup=warmup, runs=runs)
        accs = (_accuracy(self.model, eval_data), _accuracy(self.quantized, eval_data)) if eval_data is not None else (None, None)
        return QuantizerBenchmark(
            method=str(self.method), batch_size=int(getattr(examples[0], "shape", [1])[0]),
            fp32_ms=fp32.median_ms, quantized_ms=quant.median_ms,
            fp32_size_mb=_state_mb(self.model), quantized_size_mb=_state_mb(self.quantized),
            output_sqnr_db=sqnr_db(reference, got), fp32_accuracy=accs[0], quantized_accuracy=accs[1],
            layers=dict(self.layer_plan))


def _state_mb(model: torch.nn.Module) -> float:
    """Bytes of the parameters and buffers that define the model (quantized tensors count their int data)."""
    inner = getattr(model, "graph_module", None) or getattr(model, "model", None) or model
    return sum(_tensor_bytes(t) for t in inner.state_dict().values() if isinstance(t, torch.Tensor)) / 1e6


def _tensor_bytes(t: torch.Tensor) -> int:
    if type(t) is not torch.Tensor and hasattr(t, "__tensor_flatten__"):  # torchao quantized tensor subclass
        names, _ = t.__tensor_flatten__()
        return sum(_tensor_bytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()


def _accuracy(model: Any, data: Any) -> float:
    correct = total = 0
    with torch.no_grad():
        for inputs, labels in data:
            logits = flatten_outputs(model(*as_input_tuple(inputs, "eval_data")))[0]
            correct += int((logits.argmax(-1) == labels).sum())
            total += int(labels.numel())
    if total == 0:
        raise invalid("eval_data", "empty", "(inputs, labels) batches")
    return correct / total
