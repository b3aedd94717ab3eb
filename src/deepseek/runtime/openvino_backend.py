"""OpenVINO as a backend of :func:`deepseek.load` and ``deepseek bench``: ONNX files and OpenVINO IR (.xml + .bin).

OpenVINO is an optional extra (``pip install deepseek-core[openvino]``); without it, asking for this backend is a
:class:`MissingDependencyError` saying what to install. Like the ONNX Runtime backend, it imports no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._core.errors import ArtifactError, MissingDependencyError, invalid
from .._core.tensors import to_numpy

INSTALL_HINT = "pip install 'deepseek-core[openvino]' (openvino and nncf)"


def openvino_core() -> Any:
    """An ``openvino.Core``, or a :class:`MissingDependencyError` naming the extra to install."""
    try:
        import openvino
    except ImportError as exc:
        raise MissingDependencyError(f"backend 'openvino' needs OpenVINO: {INSTALL_HINT}") from exc
    return openvino.Core()


class OpenVinoBackend:
    """Runs an ONNX file, an OpenVINO IR ``.xml`` or an in-memory ``openvino.Model`` on OpenVINO's CPU plugin,
    tuned for latency (``PERFORMANCE_HINT=LATENCY``) on ``threads`` threads (default: OpenVINO's own)."""

    name = "openvino"

    def __init__(self, model: Path | Any, *, device: str = "cpu", threads: int | None = None) -> None:
        if device != "cpu":
            raise invalid("device", device, "'cpu' for the openvino backend (its GPU plugin targets Intel GPUs)")
        core = openvino_core()
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if threads is None:
            from .backends import _omp_threads

            threads = _omp_threads()
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.path = Path(model) if isinstance(model, (str, Path)) else None
        try:
            source = core.read_model(str(self.path)) if self.path is not None else model
            self.compiled = core.compile_model(source, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with multi-line reasons
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ArtifactError(f"model: {self.path or 'the given model'} is not loadable by OpenVINO ({first})") from exc
        self.device = device
        self.artifact_bytes = _artifact_bytes(self.path) if self.path is not None else 0
        from .backends import InputSpec

        self.input_specs = [
            InputSpec(p.get_any_name(), tuple(d.get_length() if d.is_static else None for d in p.get_partial_shape()),
                      _dtype(p.get_element_type()))
            for p in self.compiled.inputs
        ]
        self._request = self.compiled.create_infer_request()

    @property
    def providers(self) -> list[str]:
        return ["OpenVINO CPU"]

    def run(self, args: tuple[Any, ...]) -> list[np.ndarray]:
        feed = {i: np.ascontiguousarray(to_numpy(a)) for i, a in enumerate(args)}
        result = self._request.infer(feed)
        return [np.array(result[out]) for out in self.compiled.outputs]  # copies: the request reuses its buffers


def _artifact_bytes(path: Path) -> int:
    size = path.stat().st_size
    weights = path.with_suffix(".bin")
    if path.suffix.lower() == ".xml" and weights.exists():
        size += weights.stat().st_size
    return size


def _dtype(element_type: Any) -> str:
    name = str(element_type.get_type_name())
    return {"f32": "float32", "f16": "float16", "f64": "float64", "i64": "int64", "i32": "int32", "u8": "uint8",
            "i8": "int8", "boolean": "bool", "bf16": "float32"}.get(name, "float32")
