"""Static INT8 for OpenVINO with NNCF's post-training quantization, optionally under its accuracy control.

NNCF quantizes the OpenVINO model converted from the same ONNX export the ONNX Runtime path uses, calibrated on the
same real inputs, and writes OpenVINO IR (``.xml`` + ``.bin``) that :func:`deepseek.load` runs with
``backend="openvino"``. It is the OpenVINO lowering and the peer the ONNX Runtime INT8 path is measured against in
the same runs. With ``held_out`` inputs NNCF's accuracy control (``quantize_with_accuracy_control``) returns layers
to float until top-1 agreement with FP32 on them drops by at most ``max_drop``.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .._core.checks import check_choice, check_int, check_number
from .._core.config import BaseConfig, config_or_fields
from .._core.errors import invalid
from .._core.tensors import to_numpy
from ..runtime.openvino_backend import openvino_core

PRESETS = ("performance", "mixed")


@dataclasses.dataclass(frozen=True)
class OpenVinoQuantResult:
    """What :func:`quantize_openvino` wrote: the IR's ``.xml`` (weights in the ``.bin`` beside it) and its size."""

    path: Path
    size_bytes: int
    calibration_samples: int
    accuracy_control: bool
    max_drop: float | None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        return d


@dataclasses.dataclass(frozen=True)
class OpenVINOINT8Config(BaseConfig):
    """OpenVINO + NNCF static INT8: what :func:`quantize_openvino` builds. ``max_drop``: the largest top-1 agreement
    drop NNCF's accuracy control allows (used with held-out inputs); ``subset_size``: calibration samples NNCF uses
    (``None``: all); ``preset``: ``performance`` (symmetric activations) or ``mixed`` (asymmetric)."""

    max_drop: float = 0.01
    subset_size: int | None = None
    preset: str = "performance"

    def __post_init__(self) -> None:
        check_number(self.max_drop, "max_drop", minimum=0, below=1,
                     expected="a fraction in [0, 1), e.g. 0.01")
        check_int(self.subset_size, "subset_size", minimum=1, optional=True, expected="None or a count >= 1")
        check_choice(self.preset, "preset", PRESETS, expected=f"one of {PRESETS}")


def quantize_openvino(model: Any, calibration: Any, output: str | Path, config: OpenVINOINT8Config | None = None, *,
                      held_out: Any = None, **options: Any) -> OpenVinoQuantResult:
    """Quantize ``model`` (an ``nn.Module`` or an ``.onnx`` file) to INT8 for OpenVINO with NNCF, calibrated on
    ``calibration`` (real inputs: a tensor/array, or a list of batches), and save OpenVINO IR at ``output`` (.xml).

    ``held_out``: inputs NNCF's accuracy control judges on (top-1 agreement with the FP32 model), keeping
    ``max_drop`` as the largest allowed drop; without it, NNCF's default PTQ (what its users run first).
    ``subset_size``: calibration samples NNCF uses (default: all given). ``preset``: NNCF's ``performance``
    (symmetric activations) or ``mixed`` (asymmetric activations, for inputs that are not centred on zero). Pass
    an :class:`OpenVINOINT8Config` or its fields as keywords.
    """
    config = config_or_fields(OpenVINOINT8Config, config, options)
    import nncf
    import openvino as ov

    from .onnx_static import calibration_batches

    _check_ir_output(output)
    max_drop, preset = config.max_drop, nncf.QuantizationPreset(config.preset)
    samples = np.concatenate([to_numpy(b) for b in calibration_batches(calibration)])
    check = np.concatenate([to_numpy(b) for b in calibration_batches(held_out, argument="held_out")]) \
        if held_out is not None else None
    core = openvino_core()
    work = Path(tempfile.mkdtemp(prefix="deepseek-ov-"))
    try:
        fp32 = ov.convert_model(str(_as_onnx(model, samples, work)))
        dataset = nncf.Dataset([samples[i: i + 1] for i in range(len(samples))])
        size = config.subset_size or len(samples)
        if check is None:
            quantized = nncf.quantize(fp32, dataset, subset_size=size, preset=preset)
        else:
            reference = _run(core.compile_model(fp32, "CPU"), check)

            def agreement(compiled: Any, items: Any) -> float:
                got = _run(compiled, np.concatenate(list(items)))
                return float(np.mean(got.argmax(-1) == reference.argmax(-1)))

            quantized = nncf.quantize_with_accuracy_control(
                fp32, dataset, nncf.Dataset([check[i: i + 1] for i in range(len(check))]), validation_fn=agreement,
                max_drop=max_drop, drop_type=nncf.DropType.ABSOLUTE, subset_size=size, preset=preset)
        _save_ir(quantized, work / "int8.xml", output)
        total = Path(output).stat().st_size + Path(output).with_suffix(".bin").stat().st_size
        return OpenVinoQuantResult(Path(output), total, len(samples), check is not None,
                                   max_drop if check is not None else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def convert_openvino(model: str | Path, output: str | Path) -> Path:
    """The ONNX file ``model`` as OpenVINO IR in float32 at ``output`` (.xml, weights in the .bin beside it)."""
    import openvino as ov

    _check_ir_output(output, inputs=(model,))
    openvino_core()
    work = Path(tempfile.mkdtemp(prefix="deepseek-ov-"))
    try:
        _save_ir(ov.convert_model(str(_as_onnx(model, np.empty(0), work))), work / "fp32.xml", output)
        return Path(output)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_ir_output(output: Any, inputs: tuple[Any, ...] = ()) -> None:
    """Refuse an ``output`` that is not a writable .xml whose .bin beside it is writable too."""
    from .._core.atomic import check_output

    if not isinstance(output, (str, Path)) or Path(output).suffix.lower() != ".xml":
        raise invalid("output", output, "a file name ending in .xml (OpenVINO IR; the weights go to the .bin "
                                        "beside it)")
    check_output(output, argument="output", inputs=inputs)
    check_output(Path(output).with_suffix(".bin"), argument="output")


def _save_ir(model: Any, saved: Path, output: str | Path) -> None:
    """Save the OpenVINO ``model`` as ``saved`` (in a work folder), then copy it to ``output``: the weights
    first, then the graph, so a reader never finds an .xml whose .bin is not complete."""
    import openvino as ov

    from .._core.atomic import atomic_path

    ov.save_model(model, str(saved), compress_to_fp16=False)
    output = Path(output)
    for source, target in ((saved.with_suffix(".bin"), output.with_suffix(".bin")), (saved, output)):
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)


def _as_onnx(model: Any, samples: np.ndarray, work: Path) -> Path:
    """An ONNX file of ``model``: the file itself, or the export of an ``nn.Module`` (dynamic batch)."""
    if isinstance(model, (str, Path)):
        from ..runtime.artifacts import detect_kind

        if detect_kind(Path(model)) != "onnx":
            raise invalid("model", str(model), "an nn.Module or an .onnx file")
        return Path(model)
    if not hasattr(model, "parameters"):
        raise invalid("model", type(model).__name__, "an nn.Module or an .onnx file")
    import torch

    from ..runtime.onnx_export import export_onnx

    return export_onnx(model, torch.from_numpy(samples[:1]), work / "fp32.onnx", input_names=["input"]).path


def _run(compiled: Any, x: np.ndarray, batch: int = 16) -> np.ndarray:
    request = compiled.create_infer_request()
    return np.concatenate([np.array(request.infer({0: x[i: i + batch]})[compiled.outputs[0]])
                           for i in range(0, len(x), batch)])
