"""x86_64 AOTInductor packages: torch.export → Inductor C++ code compiled into a ``.so`` inside a ``.pt2``.

Weights are frozen into the package (Inductor pre-packs them for oneDNN), and with a calibration set the
model is first quantized with PT2E and the x86 Inductor quantizer, so the package runs integer kernels
(VNNI/AMX). Loads with ``torch._inductor.aoti_load_package`` (needs torch, not Python model code).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from .._core.atomic import atomic_path
from .._core.errors import VerificationError
from .._core.export import dynamic_batch as dynamic_batch_examples
from .._core.export import export_failure, export_or_explain
from .._core.tensors import eval_mode


@dataclasses.dataclass(frozen=True)
class AotiPackage:
    path: Path
    precision: str  # "fp32" or "int8"
    size_bytes: int
    max_abs_diff: float  # vs the model it was built from (the PT2E reference graph for int8)
    tolerance: float
    compile_s: float


def build_aoti(model: torch.nn.Module, examples: tuple[Any, ...], output: str | Path, *,
               calibration: list[torch.Tensor] | None = None, dynamic_batch: bool = True,
               tolerance: float | None = None, check_inputs: torch.Tensor | None = None,
               bf16: bool = False) -> AotiPackage:
    """Compile ``model`` into an AOTInductor package at ``output`` (INT8 via PT2E when ``calibration`` is given),
    after checking that the compiled code reproduces the model on ``examples`` — or, for a one-input model, on
    ``check_inputs`` (real samples the calibration did not see: an INT8 program's integer kernels and its float
    reference graph drift apart on random inputs far outside the calibrated ranges, not on real ones).

    ``bf16``: weights and activations in bfloat16 (oneDNN's AVX512-BF16 / AMX kernels where the CPU has them),
    float32 in and out; checked against the same bfloat16 model run eagerly."""
    from torch._inductor import aoti_compile_and_package, aoti_load_package

    from .._core.atomic import check_output
    from .._core.checks import check_number
    from .._core.errors import invalid
    from .._core.tensors import as_input_tuple
    from ..runtime.predictor import INPUTS_ENTRY, program_input_specs

    if not isinstance(model, torch.nn.Module):
        raise invalid("model", type(model).__name__, "a torch.nn.Module")
    examples = as_input_tuple(examples, "examples")
    check_output(output, argument="output")
    check_number(tolerance, "tolerance", minimum=0, optional=True, expected="None or a finite number >= 0")
    if calibration is not None and bf16:
        raise invalid("bf16", bf16, "False with calibration (INT8): one precision per package")

    source: Any = eval_mode(model)
    precision = "fp32"
    if calibration is not None:
        from ..quantization import quantize_pt2e

        source = quantize_pt2e(model, examples, calibration, observer="histogram", compile=False).graph_module
        precision = "int8"
    elif bf16:
        source, precision = Bfloat16(model), "bf16"
    program = None
    if dynamic_batch:
        traced, shapes = dynamic_batch_examples(examples)
        try:
            program = torch.export.export(source, traced, dynamic_shapes=shapes)
        except Exception as e:  # e.g. a .pt2 exported at a fixed batch guards on it: keep that batch
            warnings.warn(f"export with a dynamic batch dimension failed ({export_failure(e)}); "
                          f"compiled for batch {examples[0].shape[0]} only", stacklevel=2)
    if program is None:
        program = export_or_explain(source, examples)
    with tempfile.TemporaryDirectory(prefix="deepseek-aoti-", ignore_cleanup_errors=True) as folder:
        work = Path(folder)
        built = work / "model.pt2"  # the packager insists on the suffix
        started = time.perf_counter()
        with torch.no_grad():
            aoti_compile_and_package(program, package_path=str(built), inductor_configs={"freezing": True})
            compile_s = time.perf_counter() - started
            specs = program_input_specs(program)
            with zipfile.ZipFile(built, "a") as zf:  # the compiled code does not check input shapes: we do
                root = zf.namelist()[0].split("/", 1)[0]  # entries outside the package's root folder make
                zf.writestr(f"{root}/{INPUTS_ENTRY}",  # torch warn that the package is outdated
                            json.dumps([dataclasses.asdict(spec) for spec in specs]))
            compiled = aoti_load_package(str(built))
            rows = examples[0].shape[0] if isinstance(examples[0], torch.Tensor) and examples[0].dim() else 1
            real = check_inputs is not None and len(examples) == 1 and len(check_inputs) >= rows
            checks = [(check_inputs[:rows],)] if real else [examples]
            if specs and specs[0].shape and specs[0].shape[0] is None:  # a dynamic batch: check another size too
                checks.append((check_inputs[: max(rows + 1, min(3 * rows, len(check_inputs)))],) if real and
                              len(check_inputs) > rows else
                              tuple(torch.cat([x, x, x]) if isinstance(x, torch.Tensor) and x.dim() else x for x in examples))
            pairs = [(_first(source(*c)), _first(compiled(*c))) for c in checks]
        for want, got in pairs:
            if want.shape != got.shape:
                raise VerificationError(f"AOTInductor package returned shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        want = pairs[0][0]
        diff = max(float((w.float() - g.float()).abs().max()) for w, g in pairs)
        # integer kernels requantize where the reference graph stays float between quantize/dequantize pairs:
        # they agree to a few output quantization steps, not to float rounding
        # bfloat16 keeps 8 significant bits: fused kernels round at other points than the eager graph
        scale = 5e-2 if precision in ("int8", "bf16") else 1e-3
        tol = tolerance if tolerance is not None else scale * max(1.0, float(want.abs().max()))
        if not diff <= tol:
            raise VerificationError(f"AOTInductor package differs from the model: max abs diff {diff:.3g} > {tol:.3g}")
        with atomic_path(output) as tmp:
            shutil.copyfile(built, tmp)
            size = tmp.stat().st_size
    return AotiPackage(Path(output), precision, size, diff, tol, compile_s)


class Bfloat16(torch.nn.Module):
    """``model`` in bfloat16 behind a float32 interface: floating inputs cast in, the output cast back."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        import copy

        self.model = eval_mode(copy.deepcopy(model)).to(torch.bfloat16)

    def forward(self, *args: Any) -> Any:
        cast = [a.to(torch.bfloat16) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
        out = self.model(*cast)
        return out.float() if isinstance(out, torch.Tensor) else type(out)(o.float() for o in out)


def _first(out: Any) -> torch.Tensor:
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out
