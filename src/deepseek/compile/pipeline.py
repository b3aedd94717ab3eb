"""The compile pipeline as explicit steps — resolve the model, prune, calibrate, lower, verify — driven by a
:class:`CompileRecipe`. ``deepseek-compile``, ``deepseek.compile(...)``, ``deepseek optimize`` and recipe replay
all run this one pipeline; the CLIs only parse arguments and print.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from .._core.atomic import atomic_path, check_output
from .._core.checks import check_choice, check_int, check_number
from .._core.config import BaseConfig
from .._core.errors import invalid
from ..quantization.onnx_static import StaticINT8Config
from .result import CompileResult

TARGETS = ("x86_64", "arm64", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
# static INT8 (calibrated activations), or dynamic INT8 for ONNX Runtime: int8 weights of MatMul/Gemm/Gather,
# activations quantized per call — the usual INT8 for transformer encoders, no calibration data needed
QUANTIZE = (None, "int8", "int8-dynamic")
BACKENDS = {"x86_64": ("onnxruntime", "inductor", "openvino"), "arm64": ("executorch", "tvm"), "cuda": ("onnxruntime",)}


@dataclasses.dataclass(frozen=True)
class CompileRecipe(BaseConfig):
    """What to build: the target, the backend (None: the target's default), INT8 or not, the float precision,
    a channel-pruning ratio, the ORT optimization level, and the calibration data (``photos``, a folder, a .npy)."""

    target_arch: str = "x86_64"
    optimization_level: int = 2
    backend: str | None = None
    quantize: str | None = None
    precision: str = "auto"
    prune: float | None = None
    # fine-tune after pruning on a bundled labeled set's training part (digits, mnist-5k, fashion-mnist): its
    # first ``finetune_samples`` images, ``finetune_epochs`` epochs of Adam at ``finetune_lr``, seeded
    finetune: str | None = None
    finetune_epochs: int = 1
    finetune_samples: int = 10000
    finetune_lr: float = 1e-3
    calib: str = "photos"
    samples: int = 64
    # the static INT8 scheme for ONNX Runtime (``quantize="int8"`` on x86_64): how activations are calibrated, whether
    # biases are corrected, which activations stay in float (named tensors — an earlier choice, replayed exactly —
    # and/or the ``keep_fp32`` most harmful to quantize), and the agreement floor a classifier's held-out samples
    # must reach (``min_agreement`` None: no floor — ``deepseek optimize`` judges every candidate itself)
    int8: StaticINT8Config = dataclasses.field(default_factory=lambda: StaticINT8Config(method="percentile"))

    VERSION: ClassVar[int] = 2
    # version 1 kept the INT8 scheme's settings as flat fields: (old name, the scheme's field)
    _FLAT_INT8: ClassVar[tuple[tuple[str, str], ...]] = (
        ("calibration_method", "method"), ("bias_correction", "bias_correction"), ("rounding", "rounding"),
        ("float_activations", "float_activations"), ("keep_fp32", "keep_fp32"), ("min_agreement", "min_agreement"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompileRecipe:
        """A recipe from its fields; a version-1 recipe's flat INT8 settings are read into ``int8``."""
        if isinstance(data, dict) and any(old in data for old, _ in cls._FLAT_INT8):
            data = dict(data)
            nested = dict(data.pop("int8", None) or {"method": "percentile"})
            nested.update({new: data.pop(old) for old, new in cls._FLAT_INT8 if old in data})
            data["int8"] = nested
            data["_version"] = cls.VERSION
        return super().from_dict(data)

    def __post_init__(self) -> None:
        if isinstance(self.int8, dict):  # read from JSON / YAML
            object.__setattr__(self, "int8", StaticINT8Config.from_dict(self.int8))
        if not isinstance(self.int8, StaticINT8Config):
            raise invalid("int8", type(self.int8).__name__, "a StaticINT8Config (the ONNX Runtime static INT8 scheme)")
        check_choice(self.target_arch, "target_arch", TARGETS, expected=f"one of {TARGETS}")
        if self.quantize not in QUANTIZE:
            raise invalid("quantize", self.quantize, "None, " + " or ".join(repr(q) for q in QUANTIZE if q))
        if self.quantize == "int8-dynamic" and (self.target_arch != "x86_64" or self.backend not in (None, "onnxruntime")):
            raise invalid("quantize", self.quantize, "target x86_64 with ONNX Runtime (dynamic INT8 is ORT's "
                                                     "MatMulInteger / DynamicQuantizeMatMul path)")
        if self.backend is not None and self.backend not in BACKENDS[self.target_arch]:
            raise invalid("backend", self.backend, f"one of {BACKENDS[self.target_arch]} for target {self.target_arch}")
        check_choice(self.optimization_level, "optimization_level", (0, 1, 2, 3), expected="0, 1, 2 or 3")
        check_choice(self.precision, "precision", PRECISIONS, expected=f"one of {PRECISIONS}")
        if self.backend == "tvm" and self.quantize:
            raise invalid("quantize", self.quantize, "None with backend 'tvm' (INT8 for arm64 goes through the "
                                                     "default executorch backend's XNNPACK quantizer)")
        if self.quantize and self.target_arch == "cuda":
            raise invalid("quantize", self.quantize, "a target of x86_64 or arm64 (CUDA INT8 is not in this version)")
        if self.precision == "bf16" and (self.backend != "inductor" or self.quantize):
            raise invalid("precision", self.precision, "bf16 with backend 'inductor' on x86_64, without quantize "
                                                       "(oneDNN's bfloat16 kernels)")
        if self.precision == "fp16" and self.target_arch != "cuda":
            raise invalid("precision", self.precision, "fp16 for target_arch 'cuda' (CPUs here run it slower than "
                                                       "fp32: use INT8)")
        check_number(self.prune, "prune", above=0, below=1, optional=True,
                     expected="a fraction of channels between 0 and 1 (exclusive)")
        if self.finetune is not None:
            from ..quantization.calibration_data import TRAIN_SPLITS

            if self.prune is None:
                raise invalid("finetune", self.finetune, "None unless prune is set (it fine-tunes the pruned model)")
            if self.finetune not in TRAIN_SPLITS:
                raise invalid("finetune", self.finetune, f"a labeled training set: one of {list(TRAIN_SPLITS)}")
        for name in ("finetune_epochs", "finetune_samples"):
            check_int(getattr(self, name), name, minimum=1)
        check_number(self.finetune_lr, "finetune_lr", above=0, below=1, expected="a learning rate in (0, 1)")
        check_int(self.samples, "samples", minimum=1)
        if not isinstance(self.calib, (str, os.PathLike)) or not str(self.calib).strip():
            raise invalid("calib", self.calib, "'photos', a bundled labeled set, a folder of images or a .npy file")
        object.__setattr__(self, "calib", str(self.calib))
        default = StaticINT8Config(method="percentile")
        changed = [f.name for f in dataclasses.fields(default) if f.name != "min_agreement"
                   and getattr(self.int8, f.name) != getattr(default, f.name)]
        if changed and self.lowering != "ort-int8":
            name = changed[0]
            raise invalid(f"int8.{name}", getattr(self.int8, name), "its default unless quantize='int8' on x86_64 "
                                                                   "with ONNX Runtime (it tunes that quantizer only)")

    @property
    def lowering(self) -> str:
        """Which builder runs: ``inductor``, ``openvino``, ``executorch``, ``tvm``, ``ort-int8`` or ``ort-float``."""
        if self.backend in ("inductor", "openvino"):
            return self.backend
        if self.target_arch == "arm64":
            return self.backend or "executorch"
        if self.quantize == "int8-dynamic":
            return "ort-int8-dynamic"
        return "ort-int8" if self.quantize else "ort-float"


@dataclasses.dataclass(frozen=True)
class PruneStep:
    """The pruning step of a recipe: the channel ratio, and the fine-tune after it (None: none)."""

    ratio: float
    finetune: str | None = None
    epochs: int = 1
    samples: int = 10000
    lr: float = 1e-3

    @classmethod
    def of(cls, recipe: CompileRecipe) -> PruneStep | None:
        if recipe.prune is None:
            return None
        return cls(recipe.prune, recipe.finetune, recipe.finetune_epochs, recipe.finetune_samples, recipe.finetune_lr)

    def callback(self) -> Any:
        """``prune_channels``' ``finetune(model, step)``: seeded epochs on the training set's head."""
        if self.finetune is None:
            return None
        from ..quantization.calibration_data import TRAIN_SPLITS
        from ..train import fit_classifier

        full = TRAIN_SPLITS[self.finetune]()
        data = type(full)(full.name, full.x[: self.samples], full.y[: self.samples], full.classes)

        def finetune(model: Any, step: int) -> None:
            fit_classifier(model, data, epochs=self.epochs, lr=self.lr, batch_size=128, seed=step + 1)

        return finetune


def _resolve(model: str, inputs: list[tuple[int, ...]] | None, arch: str | None, trust_pickle: bool,
             prune: PruneStep | None, calib: Any = None) -> tuple[Any, Any, Any, dict[str, Any] | None]:
    """The model, its example inputs and input names — with ``prune`` of its channels removed first (and the
    pruned model fine-tuned, when the step says so). ``calib`` (a :class:`CalibrationSource`) is checked
    against the example inputs before any work."""
    if isinstance(model, (str, os.PathLike)):
        if Path(model).suffix.lower() == ".onnx" and Path(model).is_file():
            from ..runtime.artifacts import load_onnx_model

            load_onnx_model(Path(model))  # a corrupt file is refused now, not after the work
        from ..models import resolve_model  # imports torch: only when a model is resolved

        module, examples, names, _ = resolve_model(str(model), inputs, arch=arch, trust_pickle=trust_pickle)
    else:  # the Python API: an nn.Module with example tensors (or shapes)
        module, examples, names = _module_and_examples(model, inputs)
    if examples is not None and not isinstance(module, Path):
        from .._core.export import run_examples
        from .._core.tensors import eval_mode

        run_examples(eval_mode(module), tuple(examples), argument="inputs")  # wrong shapes fail now, not mid-export
    if calib is not None and examples is not None:
        calib.check_examples(tuple(examples))
    if prune is None:
        return module, examples, names, None
    if isinstance(module, Path):
        raise invalid("prune", prune.ratio, "None for an ONNX model (channels are removed before export, not from ONNX)")
    if examples is None:
        raise invalid("inputs", None, "the input shape(s), e.g. [(1, 3, 224, 224)] (pruning traces the model)")
    from ..pruning import prune_channels

    result = prune_channels(module, prune.ratio, tuple(examples), round_to=8, finetune=prune.callback())
    return result.model, examples, names, {"ratio": prune.ratio, "param_ratio": result.param_ratio,
                                           "mac_ratio": result.mac_ratio, "finetuned_on": prune.finetune}


def _module_and_examples(model: Any, inputs: Any) -> tuple[Any, tuple[Any, ...] | None, None]:
    import torch

    from .._core.tensors import as_input_tuple

    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "an nn.Module, a model file or a built-in model name")
    if inputs is None:
        return model, None, None
    items = as_input_tuple(inputs, "example_inputs") if isinstance(inputs, torch.Tensor) else tuple(inputs)
    if all(isinstance(i, torch.Tensor) for i in items):
        return model, items, None
    if all(isinstance(i, (tuple, list)) and all(isinstance(d, int) for d in i) for i in items):
        g = torch.Generator().manual_seed(0)
        return model, tuple(torch.randn(*shape, generator=g) for shape in items), None
    raise invalid("example_inputs", inputs, "example tensors, or input shapes such as [(1, 3, 224, 224)]")


def _torch_model(model: str, output: str, inputs: list[tuple[int, ...]] | None, arch: str | None,
                 trust_pickle: bool, prune: PruneStep | None, model_expected: str,
                 calib: Any = None) -> tuple[Any, Any, Any, Any]:
    """The PyTorch model behind ``model`` with its example inputs (``output`` was checked by :func:`build`)."""
    module, examples, names, pruned = _resolve(model, inputs, arch, trust_pickle, prune, calib)
    if isinstance(module, Path):
        raise invalid("model", model, model_expected)
    if examples is None:
        raise invalid("inputs", None, "the input shape(s), e.g. [(1, 3, 224, 224)] (the model file does not record them)")
    return module, examples, names, pruned


def _calibration(calib: Any, samples: int, examples: tuple[Any, ...]) -> tuple[list[Any], Any]:
    """(calibration batches, held-out samples that check the INT8 artifact) from ``calib`` (a name, a path or a
    :class:`CalibrationSource`)."""
    from ..quantization.calibration_data import CalibrationSource

    source = calib if isinstance(calib, CalibrationSource) else CalibrationSource(str(calib))
    source.check_examples(tuple(examples))
    data = source.load(samples, tuple(examples[0].shape))
    if tuple(data.shape[1:]) != tuple(examples[0].shape[1:]):
        raise invalid("calib", source.spec, f"inputs of shape {list(examples[0].shape[1:])} per sample (got "
                                            f"{list(data.shape[1:])})")
    held_out = min(64, len(data) // 4)  # agreement is checked on samples the quantizer did not see
    rows = examples[0].shape[0]  # a program exported at a fixed batch takes only that batch
    batches = [b for b in data[held_out:].split(rows) if b.shape[0] == rows]
    if not batches:
        raise invalid("calib", source.spec, f"at least {rows + held_out} samples (it has {len(data)}; the model's "
                                            f"batch is {rows})")
    return batches, data[:held_out]


def _compile_x86_int8(model: str, recipe: CompileRecipe, *, output: str, inputs: list[tuple[int, ...]] | None,
                      arch: str | None, trust_pickle: bool, calib: str, samples: int, prune: PruneStep | None) -> dict[str, Any]:
    from ..quantization import quantize_static_onnx

    module, examples, names, pruned = _torch_model(
        model, output, inputs, arch, trust_pickle, prune,
        "a PyTorch model for quantize='int8' (calibration runs the FP32 model)", calib)
    import torch

    from ..quantization import choose_precision

    calibration, check = _calibration(calib, samples, examples)
    with torch.no_grad():
        out = module(*examples)
    # a classifier is held to the INT8 floor (top-1 agreement on held-out samples); other outputs are measured only
    floor = recipe.int8.min_agreement is not None and isinstance(out, torch.Tensor) and out.dim() == 2 and len(check)
    result = quantize_static_onnx(module, calibration, output, recipe.int8, held_out=check if floor else None,
                                  input_names=names)
    plan = choose_precision()

    sqnr = None
    if result.held_out is not None:  # the floor already measured the written model on the held-out samples
        agreement, checked_samples = result.held_out["agreement"], result.held_out["views"]
    else:
        reference, got = first_outputs(module, result.path, check if len(check) else calibration[0],
                                       examples[0].shape[0])
        checked_samples = int(got.shape[0])
        if isinstance(out, torch.Tensor) and out.dim() == 2:  # class scores: top-1 agreement
            agreement = float((got.argmax(-1) == reference.argmax(-1)).float().mean())
        else:  # not class scores: the first output's SQNR
            from ..quantization.sensitivity import sqnr_db

            agreement, sqnr = None, sqnr_db(reference, got)
    from .._core.agreement import agreement_interval

    interval = None if agreement is None else \
        list(agreement_interval(round(agreement * checked_samples), checked_samples))
    return {"output": str(output), "backend": "onnxruntime", "target_arch": "x86_64", "precision": "int8",
            "why": f"ONNX Runtime static INT8, layout {result.int8_format} for this CPU ({plan.isa_class}): {plan.reason}",
            "int8_agreement_interval": interval,
            "int8_summary": result.summary(), "below_floor": result.below_floor, "attempts": result.attempts,
            "size_bytes": result.size_bytes, "fp32_size_bytes": result.fp32_size_bytes, "int8_agreement": agreement,
            "int8_sqnr_db": sqnr, "checked_samples": checked_samples, "calibration_agreement": result.calibration_agreement,
            "float_activations": result.float_activations, "sensitivity": [r.tensor for r in result.sensitivity],
            "pruned": pruned}


def _compile_arm64_onnx(source: Path, *, output: str, inputs: list[tuple[int, ...]] | None, prune: PruneStep | None,
                        optimization_level: int) -> dict[str, Any]:
    """An ONNX file compiled for arm64 by TVM (no PyTorch source), verified under qemu against ONNX Runtime."""
    import numpy as np
    import torch

    from ..quantization.onnx_graph import _graph_inputs
    from ..runtime.artifacts import detect_kind
    from .arm64_tvm import build_arm64_tvm

    if prune is not None:
        raise invalid("prune", prune.ratio, "None for an ONNX model (channels are removed before export, not from ONNX)")
    if detect_kind(source) != "onnx":
        raise invalid("model", str(source), "an ONNX file")
    graph_inputs = _graph_inputs(source)
    if len(graph_inputs) != 1:
        raise invalid("model", str(source), f"an ONNX model with one input for arm64 (it has {len(graph_inputs)})")
    dims = graph_inputs[0][1]
    if inputs:
        shape = tuple(inputs[0])
        if len(shape) != len(dims) or any(isinstance(d, int) and d > 0 and d != s for d, s in zip(dims, shape)):
            raise invalid("inputs", list(shape), f"a shape the model takes: {dims}")
    elif all(isinstance(d, int) and d > 0 for d in dims):
        shape = tuple(dims)
    else:
        raise invalid("inputs", None, f"the input shape for this ONNX file, whose input is {dims} (e.g. --inputs "
                                      f"{'x'.join(str(d) if isinstance(d, int) and d > 0 else '1' for d in dims)})")
    example = torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    built = build_arm64_tvm(source, (example,), output, opt_level=optimization_level)
    return _arm64_details(built, "tvm", "Apache TVM (Relax ONNX frontend, LLVM for AArch64 -mcpu=cortex-a72 "
                          "with NEON), untuned: the ONNX graph compiled as it is, no PyTorch source needed",
                          precision="fp32", pruned=None, reference="ONNX Runtime")


def _arm64_details(built: Any, backend: str, why: str, **more: Any) -> dict[str, Any]:
    """What an arm64 lowering reports about the bundle it built, then ``more``."""
    verified = built.max_abs_diff is not None
    return {"output": str(built.library), "bundle": str(built.bundle), "backend": backend, "why": why,
            "ort_level": None, "size_bytes": built.library.stat().st_size, "program_bytes": built.program_bytes,
            "max_abs_diff": built.max_abs_diff if verified else float("nan"), "tolerance": built.tolerance,
            "verified_under": f"qemu-aarch64 -cpu {built.cpu}" if verified else None, "target_arch": "arm64",
            **more}


def _compile_arm64(model: str, *, output: str, inputs: list[tuple[int, ...]] | None, arch: str | None,
                   trust_pickle: bool, quantize: str | None, calib: str, samples: int, prune: PruneStep | None,
                   backend: str | None = None, optimization_level: int = 3) -> dict[str, Any]:
    if backend == "tvm" and isinstance(model, (str, os.PathLike)) and Path(model).suffix.lower() == ".onnx":
        return _compile_arm64_onnx(Path(model), output=output, inputs=inputs, prune=prune,
                                   optimization_level=optimization_level)
    module, examples, _, pruned = _torch_model(
        model, output, inputs, arch, trust_pickle, prune,
        "a PyTorch model (.pt2, TorchScript, state_dict + arch) for the default arm64 backend (ExecuTorch is lowered "
        "from torch.export); an ONNX file compiles with backend 'tvm'",
        calib if quantize == "int8" else None)
    calibration, check = _calibration(calib, samples, examples) if quantize == "int8" else (None, None)
    if backend == "tvm":
        from .arm64_tvm import build_arm64_tvm

        built = build_arm64_tvm(module, tuple(examples), output, opt_level=optimization_level)
        name, why = "tvm", ("Apache TVM (Relax, LLVM for AArch64 -mcpu=cortex-a72 with NEON), untuned: real generated "
                            "code, expect it slower than the default ExecuTorch + XNNPACK (3-8x in our trials)")
    else:
        from .arm64 import build_arm64

        built = build_arm64(module, tuple(examples), output, calibration=calibration,
                            check=[check] if check is not None and len(check) else None)
        name, why = "executorch+xnnpack", ("ExecuTorch with the XNNPACK delegate: a torch-free C++ runtime, the fastest "
                                           "arm64 path in our trials (TVM generated real code but ran 3-8x slower untuned)")
    checked = (len(check) or min(8, samples)) if calibration else 1
    return _arm64_details(built, name, why, precision=built.precision, int8_agreement=built.int8_agreement,
                          checked_samples=checked, pruned=pruned)


def _compile_x86_inductor(model: str, *, output: str, inputs: list[tuple[int, ...]] | None, arch: str | None,
                          trust_pickle: bool, quantize: str | None, calib: str, samples: int,
                          prune: PruneStep | None, bf16: bool = False) -> dict[str, Any]:
    import torch

    from .aoti import build_aoti

    module, examples, _, pruned = _torch_model(
        model, output, inputs, arch, trust_pickle, prune,
        "a PyTorch model (.pt2, TorchScript, state_dict + arch) for backend 'inductor'", calib if quantize else None)
    calibration, check = _calibration(calib, samples, examples) if quantize else (None, None)
    built = build_aoti(module, tuple(examples), output, calibration=calibration,
                       check_inputs=check if check is not None and len(check) else None, bf16=bf16)
    agreement = None
    if check is not None and len(check):
        from torch._inductor import aoti_load_package

        with torch.no_grad():
            agreement = float((aoti_load_package(str(output))(check).argmax(-1) == module(check).argmax(-1)).float().mean())
    return {"output": str(output), "backend": "inductor", "target_arch": "x86_64", "precision": built.precision,
            "why": "AOTInductor: Inductor's C++/oneDNN kernels compiled into a .so with frozen weights"
                   + ("; INT8 through PT2E and the x86 Inductor quantizer (VNNI/AMX integer kernels)" if quantize else "")
                   + " (the x86 default stays onnxruntime: faster in FP32 at batch 1, benchmarks/bench_compile_x86.py)",
            "size_bytes": built.size_bytes, "max_abs_diff": built.max_abs_diff, "tolerance": built.tolerance,
            "compile_s": built.compile_s, "int8_agreement": agreement,
            "checked_samples": len(check) if check is not None else 1, "pruned": pruned}


def compile_model(model: Any, *, target_arch: str, optimization_level: int, output: str,
                  inputs: Any = None, arch: str | None = None, trust_pickle: bool = False, quantize: str | None = None,
                  calib: str | None = None, samples: int | None = None, prune: float | None = None,
                  backend: str | None = None, precision: str = "auto") -> CompileResult:
    """Compile ``model`` (a file, a built-in name or an ``nn.Module``) into a verified artifact for
    ``target_arch``: the keyword form of :func:`build` with a :class:`CompileRecipe`.

    ``calib`` (default ``'photos'``) and ``samples`` (default 64) feed static INT8 (``quantize='int8'``; ``calib``
    also the float16 range check of target ``cuda``): given where nothing uses them they are refused, never ignored.
    ``prune`` removes that fraction of channels first (:func:`deepseek.pruning.prune_channels`, no fine-tuning:
    expect accuracy to drop — fine-tune in Python with its ``finetune=`` callback for a usable model); the
    artifact is verified against the pruned model."""
    recipe = CompileRecipe(target_arch=target_arch, optimization_level=optimization_level, backend=backend,
                           quantize=quantize, precision=precision, prune=prune,
                           calib="photos" if calib is None else calib, samples=64 if samples is None else samples)
    fp16 = recipe.target_arch == "cuda" and recipe.precision in ("auto", "fp16")
    if calib is not None and recipe.quantize != "int8" and not fp16:
        raise invalid("calib", calib, "None unless quantize='int8' (or a float16 build for target_arch 'cuda'): "
                                      "nothing else calibrates" + (" — dynamic INT8 needs no calibration data"
                                                                   if recipe.quantize == "int8-dynamic" else ""))
    if samples is not None and recipe.quantize != "int8":
        raise invalid("samples", samples, "None unless quantize='int8' (the calibration sample count)")
    return build(model, recipe, output, inputs=inputs, arch=arch, trust_pickle=trust_pickle)


def output_kind(recipe: CompileRecipe) -> tuple[str, str]:
    """(file suffix, description) of the artifact ``recipe`` builds."""
    lowering = recipe.lowering
    if lowering == "inductor":
        return ".pt2", "a .pt2 file for backend 'inductor' (an AOTInductor package)"
    if lowering in ("executorch", "tvm"):
        return ".so", "a .so file for target_arch 'arm64' (e.g. model_arm.so)"
    if lowering == "openvino":
        return ".xml", "an .xml file for backend 'openvino' (OpenVINO IR; its weights go to the .bin beside it)"
    return ".onnx", f"a .onnx file for target_arch {recipe.target_arch!r}"


def check_build_output(model: Any, recipe: CompileRecipe, output: Any) -> str:
    """``output`` as a string, after checking — before any work — that it names the right kind of file, is not an
    input, and can be written (with, for arm64, the bundle folder beside it)."""
    suffix, expected = output_kind(recipe)
    if not isinstance(output, (str, os.PathLike)) or not str(output).strip():
        raise invalid("output", output, expected)
    output = str(output)
    if Path(output).suffix.lower() != suffix:
        raise invalid("output", output, expected)
    inputs = (model,) if isinstance(model, (str, os.PathLike)) else ()
    if isinstance(model, (str, os.PathLike)) and Path(model).is_dir():
        inputs = (model, *Path(model).iterdir())
    check_output(output, argument="output", inputs=inputs)
    if suffix == ".xml":
        check_output(Path(output).with_suffix(".bin"), argument="output", inputs=inputs)
    if suffix == ".so":
        bundle = Path(output).with_name(f"{Path(output).stem}.bundle")
        check_output(bundle, argument="output", inputs=inputs, folder=True)
        if isinstance(model, (str, os.PathLike)) and Path(model).exists() and \
                Path(model).resolve().is_relative_to(bundle.resolve()):
            raise invalid("output", output, f"a path whose bundle folder {str(bundle)!r} does not hold the input")
    return output


def build(model: Any, recipe: CompileRecipe, output: str | os.PathLike[str], *, inputs: Any = None,
          arch: str | None = None, trust_pickle: bool = False) -> CompileResult:
    """Run ``recipe``'s steps on ``model`` — resolve, prune, calibrate, lower, verify — and write ``output``
    atomically; returns what was written and how it was verified. Every argument is checked before any work."""
    return CompileResult.of(_build(model, recipe, output, inputs=inputs, arch=arch, trust_pickle=trust_pickle))


def _build(model: Any, recipe: CompileRecipe, output: str | os.PathLike[str], *, inputs: Any,
           arch: str | None, trust_pickle: bool) -> dict[str, Any]:
    import onnxruntime as ort  # noqa: F401  (fail early with a clear import error)

    from ..quantization.calibration_data import CalibrationSource

    if not isinstance(recipe, CompileRecipe):
        raise invalid("recipe", type(recipe).__name__, "a CompileRecipe")
    output = check_build_output(model, recipe, output)
    if arch is not None and not isinstance(arch, str):
        raise invalid("arch", arch, "an architecture name such as 'torchvision:resnet18'")
    if isinstance(model, (str, os.PathLike)) and Path(model).suffix == ".pt2" and Path(model).is_file():
        from ..runtime.artifacts import is_aoti_package

        if is_aoti_package(Path(model)):
            raise invalid("model", model, "a model to compile (this .pt2 is already an AOTInductor package: "
                                          "run it with deepseek.load)")
    fp16 = recipe.target_arch == "cuda" and recipe.precision in ("auto", "fp16") and recipe.lowering == "ort-float"
    # the calibration data is read and checked now (a .npy: numbers, not empty, finite), not after the work
    calib = CalibrationSource(recipe.calib) if recipe.quantize == "int8" or fp16 else recipe.calib
    options = {"output": output, "inputs": inputs, "arch": arch, "trust_pickle": trust_pickle, "calib": calib,
               "samples": recipe.samples, "prune": PruneStep.of(recipe)}
    lowering = recipe.lowering
    if lowering == "inductor":
        return _compile_x86_inductor(model, quantize=recipe.quantize, bf16=recipe.precision == "bf16", **options)
    if lowering in ("executorch", "tvm"):
        return _compile_arm64(model, quantize=recipe.quantize, backend=recipe.backend,
                              optimization_level=recipe.optimization_level, **options)
    if lowering == "ort-int8":
        return _compile_x86_int8(model, recipe, **options)
    if lowering == "openvino":
        return _compile_openvino(model, recipe, **options)
    return _compile_onnx_float(model, recipe, **options)


def first_outputs(module: Any, artifact: Any, checked: Any, rows: int) -> tuple[Any, Any]:
    """(PyTorch's first output, the artifact's first output) on ``checked``, in calls of ``rows`` rows (a model
    exported for one fixed batch takes no other; a short remainder is dropped)."""
    import torch

    from ..runtime import load

    predictor = load(artifact)
    chunks = [c for c in checked.split(rows) if c.shape[0] == rows] or [checked[:rows]]
    with torch.no_grad():
        reference = [module(c) for c in chunks]
    reference = torch.cat([r[0] if isinstance(r, (tuple, list)) else r for r in reference])
    return reference, torch.cat([torch.from_numpy(predictor.run(c.numpy())[0]) for c in chunks])


def _compile_openvino(model: Any, recipe: CompileRecipe, *, output: str, inputs: Any, arch: str | None,
                      trust_pickle: bool, calib: Any, samples: int, prune: PruneStep | None) -> dict[str, Any]:
    """OpenVINO IR of the PyTorch model: float32 (checked against PyTorch), or NNCF's INT8 calibrated on ``calib``
    (checked on held-out samples: top-1 agreement for a classifier, the first output's SQNR otherwise)."""
    import torch

    from ..quantization.openvino_ptq import convert_openvino, quantize_openvino
    from ..quantization.sensitivity import sqnr_db
    from ..runtime.onnx_export import export_onnx

    module, examples, names, pruned = _torch_model(
        model, output, inputs, arch, trust_pickle, prune,
        "a PyTorch model for backend 'openvino' (it is exported to ONNX, then converted)",
        calib if recipe.quantize == "int8" else None)
    int8 = recipe.quantize == "int8"
    if int8:
        calibration, check = _calibration(calib, samples, examples)
    with tempfile.TemporaryDirectory(prefix="deepseek-compile-", ignore_cleanup_errors=True) as folder:
        workdir = Path(folder)
        if int8:
            built = quantize_openvino(module, torch.cat(calibration), output)
            size = built.size_bytes
            checked = check if len(check) else calibration[0]
        else:
            exported = export_onnx(module, examples, workdir / "exported.onnx", input_names=names).path
            convert_openvino(exported, output)
            size = Path(output).stat().st_size + Path(output).with_suffix(".bin").stat().st_size
            checked = examples[0]
        reference, got = first_outputs(module, output, checked, examples[0].shape[0])
    result: dict[str, Any] = {"output": str(output), "backend": "openvino", "target_arch": "x86_64",
                              "precision": "int8" if int8 else "fp32", "size_bytes": size, "pruned": pruned,
                              "checked_samples": int(got.shape[0])}
    if int8:
        classifier = reference.dim() == 2
        result.update(why="OpenVINO IR, INT8 by NNCF's post-training quantization (its default preset)",
                      int8_agreement=float((got.argmax(-1) == reference.argmax(-1)).float().mean()) if classifier
                      else None, int8_sqnr_db=None if classifier else sqnr_db(reference, got))
    else:
        diff = float((got - reference).abs().max())
        tolerance = 1e-4 * max(1.0, float(reference.abs().max()))
        if diff > tolerance:
            Path(output).unlink(missing_ok=True)
            Path(output).with_suffix(".bin").unlink(missing_ok=True)
            from .._core.errors import VerificationError

            raise VerificationError(f"{output}: OpenVINO FP32 differs from PyTorch by {diff:.3g} (tolerance "
                                    f"{tolerance:.3g}); not written")
        result.update(why="OpenVINO IR in float32 (its CPU plugin's kernels)", max_abs_diff=diff, tolerance=tolerance)
    return result


def _compile_onnx_float(model: Any, recipe: CompileRecipe, *, output: str, inputs: Any, arch: str | None,
                        trust_pickle: bool, calib: str, samples: int, prune: PruneStep | None) -> dict[str, Any]:
    from ..runtime.onnx_export import export_onnx, verify_onnx
    from .ort_optimize import optimize_onnx

    target_arch, optimization_level = recipe.target_arch, recipe.optimization_level
    use_fp16 = target_arch == "cuda" and recipe.precision in ("auto", "fp16")
    dynamic = recipe.quantize == "int8-dynamic"
    module, examples, names, pruned = _resolve(model, inputs, arch, trust_pickle, prune)
    if use_fp16 and isinstance(module, Path):
        raise invalid("precision", recipe.precision,
                      "'fp32' for an ONNX input (fp16 is checked against the PyTorch model)")
    if dynamic and isinstance(module, Path):
        raise invalid("quantize", recipe.quantize, "a PyTorch model (the INT8 model is checked against it)")
    if not isinstance(module, Path) and examples is None:
        raise invalid("inputs", None, "the input shape(s), e.g. [(1, 3, 224, 224)] (the model file does not record them)")
    with tempfile.TemporaryDirectory(prefix="deepseek-compile-", ignore_cleanup_errors=True) as folder:
        workdir = Path(folder)
        if isinstance(module, Path):
            source_onnx, reference = module, None
        else:
            source_onnx = export_onnx(module, examples, workdir / "exported.onnx", input_names=names).path
            reference = module
        fp16 = None
        if use_fp16:
            from .onnx_fp16 import convert_fp16

            feeds = _fp16_feeds(source_onnx, examples, calib)
            fp16 = convert_fp16(source_onnx, workdir / "fp16.onnx", feeds)
            source_onnx = fp16.path
        if dynamic:  # quantize the exported graph, then let ORT fuse it (DynamicQuantizeMatMul and friends)
            from ..quantization.onnx_dynamic import quantize_dynamic_onnx

            export_check = verify_onnx(source_onnx, reference, examples)  # the export itself, at fp32 tolerance
            source_onnx = quantize_dynamic_onnx(source_onnx, workdir / "dynamic.onnx")
        with atomic_path(output) as tmp:
            level = optimize_onnx(source_onnx, tmp.with_suffix(".onnx"), level=optimization_level, target_arch=target_arch)
            tmp.with_suffix(".onnx").replace(tmp)
            diff = tol = float("nan")
            # fp16 rounds at ~1e-3 relative per op: checked at 1% of the output scale. Dynamic INT8: the export was
            # checked above; the quantized outputs only have to be finite and shaped right — how far INT8 may move
            # them is an accuracy question, judged on held-out data (deepseek evaluate / deepseek optimize)
            loose = {"atol": 1e-3, "rtol": 1e-2} if fp16 else {"atol": float("inf"), "rtol": 0.0} if dynamic else {}
            if reference is not None:
                diff, tol = verify_onnx(tmp, reference, examples, **loose)
            size = tmp.stat().st_size
    why = ("ONNX Runtime: the fastest fp32 runtime measured on x86 CPUs (benchmarks/bench_runtimes.py)"
           if target_arch == "x86_64" else "ONNX Runtime with the CUDA / TensorRT execution providers"
           + ("; float16 (tensor cores) except nodes whose measured outputs approach float16's range" if fp16 else ""))
    return {"output": str(output), "backend": "onnxruntime", "why": why, "ort_level": level, "size_bytes": size,
            "max_abs_diff": diff, "tolerance": tol, "target_arch": target_arch, "pruned": pruned,
            "precision": "fp16" if fp16 else "int8-dynamic" if dynamic else "fp32", "kept_fp32": fp16.kept_fp32 if fp16 else [],
            "fp16_nodes": fp16.fp16_nodes if fp16 else 0,
            **({"tolerance": None, "export_max_abs_diff": export_check[0], "export_tolerance": export_check[1]}
               if dynamic else {})}


def _fp16_feeds(onnx_path: Path, examples: Any, calib: str) -> list[dict[str, Any]]:
    """Inputs for the float16 range check: real images from ``calib`` for an image model, else the examples."""
    import onnxruntime as ort

    from .._core.tensors import to_numpy

    names = [i.name for i in ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).get_inputs()]
    feeds = [{n: to_numpy(a) for n, a in zip(names, examples)}]
    first = examples[0]
    if len(examples) == 1 and first.dtype.is_floating_point and first.dim() == 4 and first.shape[1] == 3:
        data, _ = _calibration(calib, 16, examples)
        feeds += [{names[0]: to_numpy(batch)} for batch in data]
    return feeds
