"""Facts about this machine that every report names: CPU model, ISA features, cores, memory, versions."""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.metadata
import os
import platform
from typing import Any

# reported feature -> the /proc/cpuinfo flag (x86) or Features word (arm64) that proves it
X86_FEATURES = {
    "avx2": "avx2", "avx512f": "avx512f", "avx512_vnni": "avx512_vnni", "avx_vnni": "avx_vnni",
    "avx512_bf16": "avx512_bf16", "avx512_fp16": "avx512_fp16", "amx_tile": "amx_tile", "amx_int8": "amx_int8",
    "amx_bf16": "amx_bf16",
}
ARM_FEATURES = {"neon": "asimd", "sve": "sve", "sve2": "sve2", "i8mm": "i8mm", "bf16": "bf16", "dotprod": "asimddp"}


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "hardware", "cpu model") and value.strip():
                    model = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, frozenset(flags)


def cpu_model() -> str:
    return _cpuinfo()[0]


def cpu_features() -> dict[str, bool]:
    """The ISA features that decide which fast kernels run (int8 VNNI/AMX, bf16, NEON, SVE)."""
    _, flags = _cpuinfo()
    arm = platform.machine().lower() in ("aarch64", "arm64")
    table = ARM_FEATURES if arm else X86_FEATURES
    return {name: flag in flags for name, flag in table.items()}


def int8_fast_path(features: dict[str, bool] | None = None) -> str:
    """The fastest int8 matrix instructions this CPU has, in words."""
    f = cpu_features() if features is None else features
    fastest = (("amx_int8", "AMX-INT8"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
               ("i8mm", "NEON dot-product"), ("dotprod", "NEON dot-product"))
    return next((name for key, name in fastest if f.get(key)), "none (int8 runs on generic SIMD)")


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def version_of(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def summary(threads: int | None = None) -> dict[str, Any]:
    """A compact description of the machine for benchmark reports."""
    import psutil

    feats = cpu_features()
    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "features": [k for k, v in feats.items() if v],
        "int8_fast_path": int8_fast_path(feats),
        "python": platform.python_version(),
        "versions": {d: version_of(d) for d in ("torch", "torchvision", "onnx", "onnxruntime", "transformers")},
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def describe(info: dict[str, Any]) -> str:
    """One line: CPU, cores/threads, features, versions."""
    v = info.get("versions", {})
    return (f"{info['cpu']} ({info['arch']}), {info['physical_cores']} cores, {info['threads']} threads, "
            f"{'/'.join(info['features']) or 'no AVX2'}; torch {v.get('torch')}, onnxruntime {v.get('onnxruntime')}; {info['date']}")
