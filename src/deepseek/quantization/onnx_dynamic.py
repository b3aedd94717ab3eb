"""Dynamic INT8 for ONNX Runtime: int8 weights, activations quantized on the fly (no calibration data).

The usual choice for transformer encoders on CPU, where activation ranges vary by input.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .._core.atomic import atomic_path, check_output
from .._core.checks import check_flag
from .._core.config import BaseConfig, config_or_fields
from .._core.errors import invalid


@dataclasses.dataclass(frozen=True)
class DynamicINT8Config(BaseConfig):
    """Dynamic INT8 for ONNX Runtime (int8 weights, activations quantized on each call): what
    :func:`quantize_dynamic_onnx` builds. The fields are described there."""

    per_channel: bool = True
    reduce_range: bool = True
    op_types: tuple[str, ...] = ("MatMul", "Gemm", "Gather")
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("per_channel", "reduce_range"):
            check_flag(getattr(self, name), name)
        op_types = (self.op_types,) if isinstance(self.op_types, str) else tuple(self.op_types)
        if not op_types or not all(isinstance(t, str) and t for t in op_types):
            raise invalid("op_types", list(op_types), "a non-empty list of ONNX operator types, e.g. ['MatMul', 'Gemm']")
        exclude = (self.exclude,) if isinstance(self.exclude, str) else tuple(self.exclude)
        if not all(isinstance(n, str) and n for n in exclude):
            raise invalid("exclude", list(exclude), "names of ONNX nodes (non-empty strings)")
        object.__setattr__(self, "op_types", op_types)
        object.__setattr__(self, "exclude", exclude)


def quantize_dynamic_onnx(source: str | Path, output: str | Path, config: DynamicINT8Config | None = None,
                          **options: Any) -> Path:
    """Quantize the weights of ``op_types`` nodes in the ONNX model ``source`` to int8 (activations at run time).

    ``per_channel`` gives each output channel its own weight scale (ONNX Runtime's default is one scale per
    tensor, which costs transformer encoders most of their INT8 accuracy loss). ``reduce_range`` stores
    weights in 7 bits: ONNX Runtime's x86 MatMulInteger kernel sums pairs of uint8 x int8 products in int16,
    which saturates when full-range per-channel weights meet large activations (measured on AMD EPYC with
    VNNI: up to 20 % error per output channel at 8 bits, 1.3 % at 7 bits; docs/notes/quantization.md).
    ``exclude`` lists node names to keep in float. Pass a :class:`DynamicINT8Config` or its fields as keywords.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ..runtime.artifacts import load_onnx_model

    config = config_or_fields(DynamicINT8Config, config, options)
    exclude = config.exclude
    if not isinstance(source, (str, Path)) or not Path(source).is_file():
        raise invalid("source", str(source), "an existing .onnx file")
    source = Path(source)
    if not isinstance(output, (str, Path)) or Path(output).suffix.lower() != ".onnx":
        raise invalid("output", output, "a file name ending in .onnx")
    check_output(output, argument="output", inputs=(source,))
    graph = load_onnx_model(source, argument="source").graph  # a corrupt file is refused before any work
    if exclude:
        nodes = [n.name for n in graph.node]
        unknown = [n for n in exclude if n not in set(nodes)]
        if unknown:
            raise invalid("exclude", unknown[:3], f"names of nodes in {source.name} (e.g. {[n for n in nodes if n][:4]})")
    work = Path(tempfile.mkdtemp(prefix="deepseek-dq-"))
    try:
        tmp_out = work / "int8.onnx"
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_dynamic(str(source), str(tmp_out), per_channel=config.per_channel,
                             reduce_range=config.reduce_range, weight_type=QuantType.QInt8,
                             op_types_to_quantize=list(config.op_types), nodes_to_exclude=list(exclude))
        with atomic_path(output) as tmp:
            shutil.copyfile(tmp_out, tmp)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Path(output)
