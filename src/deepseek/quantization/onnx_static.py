"""Post-training static INT8 for ONNX Runtime: QDQ, uint8 activations × int8 per-channel weights (U8S8).

U8S8 is the layout ONNX Runtime's x86 int8 kernels (VNNI/AMX) run fast; its default S8S8 gives no
speedup there (notes/x86-perf.md). The layers most sensitive to quantization can be kept in FP32, chosen
by measured sensitivity until the INT8 model agrees with FP32 on the calibration data.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._atomic import atomic_path
from .._errors import invalid
from .qat import QATConfig, fold_batchnorm
from .sensitivity import LayerSensitivity, as_batches, layer_sensitivity

METHODS = ("minmax", "percentile", "entropy")


@dataclasses.dataclass(frozen=True)
class StaticQuantResult:
    path: Path
    method: str
    kept_fp32: list[str]  # PyTorch layer names left in FP32
    calibration_agreement: float  # top-1 agreement INT8 vs FP32 on the calibration inputs
    calibration_samples: int
    size_bytes: int
    fp32_size_bytes: int
    sensitivity: list[LayerSensitivity]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        return d


def quantize_static_onnx(
    model: torch.nn.Module,
    calibration: Any,
    output: str | Path,
    *,
    method: str = "minmax",
    percentile: float = 99.99,
    per_channel: bool = True,
    keep_fp32: int | str = 0,
    target_agreement: float = 0.99,
    exclude: Sequence[str] = (),
    input_names: Sequence[str] | None = None,
) -> StaticQuantResult:
    """Export ``model`` and quantize it statically for ONNX Runtime, calibrated on real ``calibration`` data.

    ``keep_fp32``: how many of the most quantization-sensitive layers stay FP32, or ``"auto"`` for the
    fewest (0, 1, 2, 4, 8, ...) whose INT8 model reaches ``target_agreement`` top-1 agreement with FP32 on
    the calibration inputs. ``exclude`` names more PyTorch layers to keep in FP32. ``percentile`` (for
    ``method="percentile"``) clips activation ranges there, as our percentile observer does (ORT's own default,
    99.999, leaves MobileNetV2's outliers in: 13.1 vs 15.4 dB output SQNR, benchmarks/bench_mixed_precision.py).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from ..compile import export_onnx, onnx_module_scopes

    if method not in METHODS:
        raise invalid("method", method, f"one of {METHODS}")
    if not (keep_fp32 == "auto" or (isinstance(keep_fp32, int) and keep_fp32 >= 0)):
        raise invalid("keep_fp32", keep_fp32, "a count >= 0 or 'auto'")
    if not 50 < percentile <= 100:
        raise invalid("percentile", percentile, "a number in (50, 100]")
    if not 0 < target_agreement <= 1:
        raise invalid("target_agreement", target_agreement, "a fraction in (0, 1]")
    batches = as_batches(calibration)
    if not batches:
        raise invalid("calibration", "empty", "at least one batch of real inputs")
    folded = copy.deepcopy(model).eval()
    fold_batchnorm(folded)  # export without BN so ONNX Conv nodes carry their PyTorch layer's name
    names = dict(folded.named_modules())
    for n in exclude:
        if n not in names:
            raise invalid("exclude", n, "names of layers in the model")

    work = Path(tempfile.mkdtemp(prefix="deepseek-quant-"))
    try:
        fp32 = export_onnx(folded, batches[0][:1], work / "fp32.onnx", input_names=input_names).path
        scopes = onnx_module_scopes(fp32)
        feed_name = _input_name(fp32)
        ranking = layer_sensitivity(folded, batches[:4], QATConfig()) if keep_fp32 != 0 else []
        counts = _candidates(keep_fp32, len(ranking))
        ref = _run(fp32, feed_name, batches)
        calibrate_method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                            "entropy": CalibrationMethod.Entropy}[method]
        best = None
        for k in counts:
            kept = [s.name for s in ranking[:k]] + list(exclude)
            nodes = _nodes_of(kept, scopes)
            candidate = work / f"int8_{k}.onnx"
            with contextlib.redirect_stdout(io.StringIO()), _quiet_root_logger():  # ORT prints progress and hints
                quantize_static(
                    str(fp32), str(candidate), _Reader(feed_name, batches), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=calibrate_method, nodes_to_exclude=nodes,
                    extra_options={"CalibPercentile": percentile} if method == "percentile" else {},
                )
            agree = float(np.mean(_run(candidate, feed_name, batches).argmax(-1) == ref.argmax(-1)))
            if best is None or agree > best[2]:
                best = (candidate, kept, agree)
            if agree >= target_agreement:
                break
        assert best is not None
        if keep_fp32 == "auto" and best[2] < target_agreement:
            warnings.warn(f"no candidate reached {target_agreement:.1%} agreement with FP32 on the calibration data; "
                          f"kept the best ({best[2]:.1%}, {len(best[1])} layers in FP32)", stacklevel=2)
        with atomic_path(output) as tmp:
            shutil.copyfile(best[0], tmp)
            size = tmp.stat().st_size
        return StaticQuantResult(Path(output), method, best[1], best[2], int(ref.shape[0]), size, fp32.stat().st_size, ranking)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _quiet_root_logger() -> Any:
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _nodes_of(layers: list[str], scopes: dict[str, str]) -> list[str]:
    """ONNX nodes of each layer and of the activation that follows it inside the same block
    (``features.1.conv.0.0`` → also ``features.1.conv.0.2``, its ReLU6), so the layer's output stays FP32."""
    blocks = {name.rpartition(".")[0] for name in layers}
    return sorted({node for node, scope in scopes.items()
                   if scope in layers or (scope.rpartition(".")[0] in blocks and scope.rpartition(".")[0])})


def _candidates(keep: int | str, n_layers: int) -> list[int]:
    if keep != "auto":
        return [int(keep)]
    counts, k = [0], 1
    while k < n_layers:
        counts.append(k)
        k *= 2
    return counts


def _input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


def _run(path: Path, name: str, batches: list[torch.Tensor]) -> np.ndarray:
    import onnxruntime as ort

    from ..runtime.backends import session_options

    s = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {name: b.numpy()})[0] for b in batches])


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over our batches."""

    def __init__(self, name: str, batches: list[torch.Tensor]) -> None:
        self._it = iter([{name: b.numpy()} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - ORT calls it for some methods
        pass
