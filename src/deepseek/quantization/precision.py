"""``precision="auto"``: which number formats and which INT8 lowering run fastest on the hardware at hand.

The choices follow measurements on the project's machines (benchmarks/bench_int8_lowerings.py,
../shared/notes/x86-perf.md): on x86 CPUs with AMX, PT2E + Inductor (oneDNN) is the fastest INT8 path
and bfloat16 is nearly free; on AVX-512 VNNI CPUs without AMX, ONNX Runtime's U8S8 QDQ kernels beat
PT2E; on CUDA GPUs, float16; on arm64, ONNX Runtime / XNNPACK int8 with float32 elsewhere.
"""

from __future__ import annotations

import dataclasses
import platform

from .._errors import invalid

INT8_LOWERINGS = ("pt2e-inductor", "onnxruntime-u8s8", "onnxruntime-s8s8", "tensorrt")
FLOAT_DTYPES = ("float32", "bfloat16", "float16")


@dataclasses.dataclass(frozen=True)
class PrecisionPlan:
    """What to run on a device: the float format for layers kept in float, the INT8 lowering, and why."""

    device: str
    float_dtype: str
    int8_lowering: str
    weight_only_compute: str  # activation dtype for int4/int8 weight-only matmuls
    reason: str

    def __post_init__(self) -> None:
        if self.float_dtype not in FLOAT_DTYPES:
            raise invalid("float_dtype", self.float_dtype, f"one of {FLOAT_DTYPES}")
        if self.int8_lowering not in INT8_LOWERINGS:
            raise invalid("int8_lowering", self.int8_lowering, f"one of {INT8_LOWERINGS}")


def choose_precision(device: str = "cpu", features: dict[str, bool] | None = None,
                     machine: str | None = None) -> PrecisionPlan:
    """The fastest formats for ``device`` ("cpu" or "cuda"); ``features``/``machine`` override detection (for tests)."""
    if device not in ("cpu", "cuda"):
        raise invalid("device", device, "'cpu' or 'cuda'")
    if device == "cuda":
        return PrecisionPlan("cuda", "float16", "tensorrt", "float16",
                             "CUDA GPU: float16 tensor cores; int8 through TensorRT's execution provider")
    from .._machine import cpu_features

    f = cpu_features() if features is None else features
    arch = (machine or platform.machine()).lower()
    if arch in ("aarch64", "arm64"):
        return PrecisionPlan("cpu", "float32", "onnxruntime-s8s8", "float32",
                             "arm64: int8 dot-product kernels take signed activations; no fast bfloat16 matmul assumed")
    if f.get("amx_int8") or f.get("amx_bf16"):
        return PrecisionPlan("cpu", "bfloat16", "pt2e-inductor", "bfloat16",
                             "x86 with AMX: oneDNN AMX int8/bf16 tiles through PT2E + Inductor are fastest")
    bf16 = "bfloat16" if f.get("avx512_bf16") else "float32"
    if f.get("avx512_vnni") or f.get("avx_vnni"):
        return PrecisionPlan("cpu", bf16, "onnxruntime-u8s8", "bfloat16",
                             "x86 with VNNI but no AMX: ONNX Runtime's U8S8 kernels measured fastest (PT2E second)")
    return PrecisionPlan("cpu", "float32", "onnxruntime-u8s8", "bfloat16",
                         "x86 without VNNI: ONNX Runtime U8S8 (uint8 activations avoid int16 overflow tricks)")
