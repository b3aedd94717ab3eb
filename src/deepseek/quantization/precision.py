"""``precision="auto"``: which number formats and which INT8 lowering run fastest on the hardware at hand.

The choices follow measurements on the project's machines (benchmarks/bench_int8_lowerings.py,
../shared/notes/x86-perf.md): on x86 CPUs with AMX, PT2E + Inductor (oneDNN) is the fastest INT8 path
and bfloat16 is nearly free; on AVX-512 VNNI CPUs without AMX, ONNX Runtime's U8S8 QDQ kernels beat
PT2E; on CUDA GPUs, float16; on arm64, ONNX Runtime / XNNPACK int8 with float32 elsewhere.
"""

from __future__ import annotations

import dataclasses
import platform

from .._core.checks import check_choice

INT8_LOWERINGS = ("pt2e-inductor", "onnxruntime-u8s8", "onnxruntime-u8u8", "onnxruntime-s8s8", "tensorrt")
FLOAT_DTYPES = ("float32", "bfloat16", "float16")


@dataclasses.dataclass(frozen=True)
class Int8Format:
    """An activation × weight integer layout for ONNX Runtime's static INT8 (QDQ) kernels."""

    name: str
    activation_type: str  # onnxruntime.quantization.QuantType member name
    weight_type: str
    reduce_range: bool  # 7-bit weights: room for the int16 pair sums of VPMADDUBSW
    summary: str
    # 7-bit weights only in the layers where saturating int16 pair sums, measured on the calibration data, cost
    # more than the lost bit does (:mod:`.onnx_overflow`)
    overflow_fix: bool = False


INT8_FORMATS = {f.name: f for f in (
    Int8Format("u8s8", "QUInt8", "QInt8", False,
               "uint8 activations x int8 weights: VNNI / AMX add products in int32, ORT's fastest x86 layout"),
    Int8Format("u8s8-7bit", "QUInt8", "QInt8", True,
               "uint8 activations x 7-bit int8 weights: no int16 saturation on AVX2, one bit of weight precision less"),
    Int8Format("u8s8-overflow-fix", "QUInt8", "QInt8", False,
               "uint8 activations x int8 weights, 7-bit weights where int16 pair sums saturate enough on "
               "the calibration data: AVX2's U8S8 speed without its overflow", True),
    Int8Format("u8u8", "QUInt8", "QUInt8", False,
               "uint8 activations x uint8 weights: ORT widens to int16 before multiplying, so nothing saturates"),
    Int8Format("s8s8", "QInt8", "QInt8", False,
               "int8 activations x int8 weights: arm64 dot-product kernels (SDOT/SMMLA) take signed inputs"),
)}


def resolve_int8_format(name: str = "auto", features: dict[str, bool] | None = None,
                        machine: str | None = None) -> Int8Format:
    """The :class:`Int8Format` called ``name``, or for ``"auto"`` the one :func:`choose_precision` names here."""
    if name == "auto":
        return INT8_FORMATS[choose_precision("cpu", features, machine).int8_format]
    check_choice(name, "int8_format", INT8_FORMATS, expected=f"'auto' or one of {tuple(INT8_FORMATS)}")
    return INT8_FORMATS[name]


@dataclasses.dataclass(frozen=True)
class PrecisionPlan:
    """What to run on a device: the float format for layers kept in float, the INT8 lowering, and why."""

    device: str
    float_dtype: str
    int8_lowering: str
    weight_only_compute: str  # activation dtype for int4/int8 weight-only matmuls
    reason: str
    int8_format: str = "u8s8"  # the ONNX Runtime static INT8 layout (:data:`INT8_FORMATS`) for this CPU
    isa_class: str = ""  # the CPU class the choice was made for, in words

    def __post_init__(self) -> None:
        check_choice(self.float_dtype, "float_dtype", FLOAT_DTYPES, expected=f"one of {FLOAT_DTYPES}")
        check_choice(self.int8_lowering, "int8_lowering", INT8_LOWERINGS, expected=f"one of {INT8_LOWERINGS}")
        check_choice(self.int8_format, "int8_format", INT8_FORMATS, expected=f"one of {tuple(INT8_FORMATS)}")


def choose_precision(device: str = "cpu", features: dict[str, bool] | None = None,
                     machine: str | None = None) -> PrecisionPlan:
    """The fastest formats for ``device`` ("cpu" or "cuda"); ``features``/``machine`` override detection (for tests)."""
    check_choice(device, "device", ("cpu", "cuda"), expected="'cpu' or 'cuda'")
    if device == "cuda":
        return PrecisionPlan("cuda", "float16", "tensorrt", "float16",
                             "CUDA GPU: float16 tensor cores; int8 through TensorRT's execution provider")
    from .._core.machine import cpu_features

    f = cpu_features() if features is None else features
    arch = (machine or platform.machine()).lower()
    if arch in ("aarch64", "arm64"):
        dot = "dot-product (SDOT)" + (" and i8mm (SMMLA)" if f.get("i8mm") else "") if f.get("dotprod") else ""
        isa = f"arm64 NEON{' with ' + dot if dot else ''}"
        return PrecisionPlan("cpu", "float32", "onnxruntime-s8s8", "float32",
                             f"{isa}: int8 kernels take signed activations; no fast bfloat16 matmul assumed",
                             "s8s8", isa)
    if f.get("amx_int8") or f.get("amx_bf16"):
        return PrecisionPlan("cpu", "bfloat16", "pt2e-inductor", "bfloat16",
                             "x86 AMX: oneDNN AMX int8/bf16 tiles through PT2E + Inductor are fastest; "
                             "ONNX Runtime files use U8S8 (AMX adds int8 products in int32)", "u8s8", "x86 AMX")
    bf16 = "bfloat16" if f.get("avx512_bf16") else "float32"
    if f.get("avx512_vnni") or f.get("avx_vnni"):
        isa = "x86 AVX-512 VNNI" if f.get("avx512_vnni") else "x86 AVX-VNNI"
        return PrecisionPlan("cpu", bf16, "onnxruntime-u8s8", "bfloat16",
                             f"{isa} without AMX: ONNX Runtime's U8S8 kernels measured fastest (PT2E second); "
                             "VNNI adds int8 products in int32, nothing saturates", "u8s8", isa)
    isa = "x86 AVX-512 without VNNI" if f.get("avx512f") else "x86 AVX2 without VNNI" if f.get("avx2") else "x86 SSE"
    return PrecisionPlan("cpu", "float32", "onnxruntime-u8s8", "bfloat16",
                         f"{isa}: ONNX Runtime's U8S8 kernels (VPMADDUBSW) add int8 products in saturating int16 "
                         "pairs; the layers where that costs more than one bit of weight precision get 7-bit "
                         "weights, measured on the calibration data (U8U8 never saturates but is no faster than "
                         "FP32 on MobileNetV2 here)", "u8s8-overflow-fix", isa)
