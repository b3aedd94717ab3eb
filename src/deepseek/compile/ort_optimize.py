"""Offline ONNX Runtime graph optimization: the x86_64 and CUDA artifacts of ``deepseek compile``."""

from __future__ import annotations

from pathlib import Path

from .._core.checks import check_choice
from .._core.errors import ArtifactError
from ..runtime.backends import session_options

# optimization level -> ORT graph optimization level name
LEVELS = {0: "disable", 1: "basic", 2: "extended", 3: "all"}


def optimize_onnx(source: str | Path, output: str | Path, *, level: int, target_arch: str) -> str:
    """Write ``source`` optimized by ONNX Runtime at ``level`` to ``output``; return the level name used.

    Level 3 ("all") adds layout transforms that are specific to the CPU that runs them, so it is kept to
    the x86_64 target; CUDA artifacts stop at "basic" (hardware-independent) and ORT finishes on the GPU.
    """
    import onnxruntime as ort

    check_choice(level, "optimization_level", LEVELS, expected="0, 1, 2 or 3")
    name = "basic" if target_arch != "x86_64" and level > 1 else LEVELS[level]
    opts = session_options(name)
    opts.optimized_model_filepath = str(output)
    try:
        ort.InferenceSession(str(source), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArtifactError(f"model: ONNX Runtime cannot load {source} ({first})") from exc
    if not Path(output).exists():
        raise ArtifactError(f"ONNX Runtime did not write the optimized model to {output}")
    return name
