"""What ``deepseek quantize`` does, as one call: resolve a model, read real calibration data, write a per-layer error
report and/or a static INT8 ONNX file held to an agreement floor on held-out samples."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._core.errors import MissingDependencyError, invalid
from .onnx_static import StaticINT8Config, StaticQuantResult
from .report import QuantReport


@dataclasses.dataclass(frozen=True)
class QuantizeOutcome:
    """The INT8 file's :class:`StaticQuantResult` (with ``output``), the per-layer :class:`QuantReport` and the folder
    it was written to (with ``report``), and the model's label."""

    label: str
    result: StaticQuantResult | None
    report: QuantReport | None
    report_folder: Path | None

    def summary(self) -> list[str]:
        lines = []
        if self.report is not None:
            lines.append(f"keep in higher precision: {', '.join(self.report.keep) or 'none'}; wrote "
                         f"{self.report_folder}/report.json, report.png")
        r = self.result
        if r is not None:
            lines.append(f"wrote {r.path} from {self.label}: {r.size_bytes / 1e6:.1f} MB (FP32 "
                         f"{r.fp32_size_bytes / 1e6:.1f} MB), top-1 agreement with FP32 on the {r.calibration_samples} "
                         f"calibration inputs {r.calibration_agreement:.1%} (output SQNR {r.calibration_sqnr_db:.1f} dB), "
                         f"{r.bias_corrected_layers} biases corrected, activations left in float: "
                         f"{', '.join(r.float_activations) or 'none'}")
            lines.append(r.summary())
        return lines


def quantize_model(model: str | Path, *, calib: str | Path = "photos", samples: int = 128, output: str | Path | None = None,
                   report: str | Path | None = None, inputs: Sequence[tuple[int, ...]] | None = None,
                   arch: str | None = None, trust_pickle: bool = False, calibration_method: str | None = None,
                   keep_fp32: int | str | None = None, int8_format: str = "auto",
                   min_agreement: float = 0.95) -> QuantizeOutcome:
    """Quantize the model at ``model`` (a built-in name, a state_dict with ``arch``, or a pickled module with
    ``trust_pickle``) to static INT8 for ONNX Runtime, calibrated on ``samples`` real inputs from ``calib``
    (``photos``, a folder of images or a .npy); write the INT8 file to ``output`` and/or the per-layer error report
    (report.json, report.png) to the folder ``report``. A classifier is held to ``min_agreement`` top-1 agreement with
    FP32 on calibration samples the quantizer does not see."""
    from ..models import refuse_arch_unless_weights, resolve_model
    from .calibration_data import CalibrationSource

    if not output and not report:
        raise invalid("output", None, "a file to write, or a report folder (at least one of output and report)")
    source = CalibrationSource(calib)  # read and checked before anything else
    if output and (not isinstance(output, (str, Path)) or Path(output).suffix.lower() != ".onnx"):
        raise invalid("output", output, "a file name ending in .onnx")
    if not output:
        for name, value in (("keep_fp32", keep_fp32), ("calibration_method", calibration_method)):
            if value is not None:
                raise invalid(name, value, "None without output (it tunes the INT8 .onnx file; the report measures "
                                           "each layer alone)")
    folder = Path(report) if report else None
    if folder is not None:
        for name in ("report.json", "report.png"):
            if (folder / name).is_dir():
                raise invalid("report", str(report), f"a folder in which {name} can be written (it is a folder)")
            if output and Path(output).absolute() == (folder / name).absolute():
                raise invalid("output", str(output), f"a path other than the report's {folder / name}")
    config = StaticINT8Config(method=calibration_method or "percentile", keep_fp32=0 if keep_fp32 is None else keep_fp32,
                              int8_format=int8_format, min_agreement=min_agreement)
    if not isinstance(model, (str, Path)) or Path(model).suffix.lower() in (".pt2", ".onnx") or _is_torchscript(model):
        raise invalid("model", model, "a model with its layers intact — a built-in name, a state_dict/.safetensors "
                                      "with arch, or a pickled nn.Module with trust_pickle (.pt2, TorchScript and ONNX "
                                      "files hold flattened graphs that layer-wise quantization cannot edit)")
    refuse_arch_unless_weights(model, arch)
    module, examples, names, label = resolve_model(str(model), list(inputs) if inputs else None, arch=arch,
                                                   trust_pickle=trust_pickle)
    if examples is not None:
        source.check_examples(tuple(examples))
    calibration = source.load(samples, tuple(examples[0].shape) if examples else tuple(inputs[0]) if inputs else None)
    from .onnx_static import check_runs

    check_runs(module, calibration[:1], argument="calib")  # one sample: wrong shapes fail now, not mid-way
    written_report = None
    if folder is not None:
        from .report import quantization_report

        written_report = quantization_report(module, calibration[: min(len(calibration), 32)])
        written_report.save_json(folder / "report.json")
        written_report.plot(folder / "report.png")
    result = None
    if output:
        import torch

        from .onnx_static import quantize_static_onnx

        with torch.no_grad():
            first = module(calibration[:1])
        shape = first.shape if isinstance(first, torch.Tensor) else None
        # a classifier is held to the INT8 floor on samples the calibration does not see (as deepseek compile does)
        held = min(64, len(calibration) // 4) if shape is not None and len(shape) == 2 and len(calibration) >= 16 else 0
        try:
            result = quantize_static_onnx(module, calibration[held:], output, config, input_names=names,
                                          held_out=calibration[:held] if held else None)
        except ImportError as exc:
            raise MissingDependencyError("onnxruntime's quantization tools are missing: pip install onnxruntime") from exc
    return QuantizeOutcome(label, result, written_report, folder)


def _is_torchscript(model: Any) -> bool:
    from ..runtime.artifacts import detect_kind

    return Path(model).is_file() and detect_kind(Path(model)) == "torchscript"
