"""A served model's configuration: ``models/<name>/config.yaml`` (Triton's ``config.pbtxt``, as YAML)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .._config import BaseConfig
from .._errors import invalid

# KServe v2 / Triton datatypes and the numpy dtypes they carry
DATATYPES = {"BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
             "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64", "FP16": "float16",
             "FP32": "float32", "FP64": "float64", "BYTES": "object"}
NUMPY_TO_DATATYPE = {v: k for k, v in DATATYPES.items()}


@dataclasses.dataclass(frozen=True)
class TensorConfig:
    """One input or output: name, v2 datatype and shape without the batch dimension (-1: any size)."""

    name: str
    datatype: str = "FP32"
    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise invalid("inputs[].name", self.name, "a non-empty string")
        if self.datatype not in DATATYPES:
            raise invalid(f"inputs[{self.name}].datatype", self.datatype, f"one of {sorted(DATATYPES)}")
        shape = tuple(self.shape)
        if not all(isinstance(d, int) and (d == -1 or d > 0) for d in shape):
            raise invalid(f"inputs[{self.name}].shape", list(self.shape), "sizes > 0 or -1 (any), batch excluded")
        object.__setattr__(self, "shape", shape)

    @classmethod
    def parse(cls, data: Any, where: str) -> TensorConfig:
        if isinstance(data, TensorConfig):
            return data
        if not isinstance(data, dict) or "name" not in data:
            raise invalid(where, data, "a mapping with name, datatype and shape")
        unknown = set(data) - {"name", "datatype", "shape", "dims", "data_type"}
        if unknown:
            raise invalid(where, sorted(unknown), "only name, datatype, shape")
        datatype = str(data.get("datatype", data.get("data_type", "FP32"))).upper().removeprefix("TYPE_")
        return cls(data["name"], datatype, tuple(data.get("shape", data.get("dims", ()))))


@dataclasses.dataclass(frozen=True)
class CanaryPolicy:
    """When a canary version is rolled back automatically: over the last ``window_s`` seconds (at least
    ``min_requests`` requests), its error rate is above ``max_error_rate`` or its p99 latency above
    ``max_p99_ms`` while the stable version's is not. The defaults are SPEC.md §8's alert thresholds."""

    max_error_rate: float = 0.02
    max_p99_ms: float = 800.0
    window_s: float = 60.0
    min_requests: int = 20

    def __post_init__(self) -> None:
        if not 0 <= self.max_error_rate < 1:
            raise invalid("canary.max_error_rate", self.max_error_rate, "a fraction in [0, 1)")
        if not self.max_p99_ms > 0:
            raise invalid("canary.max_p99_ms", self.max_p99_ms, "milliseconds > 0")
        if not self.window_s > 0:
            raise invalid("canary.window_s", self.window_s, "seconds > 0")
        if not (isinstance(self.min_requests, int) and self.min_requests >= 1):
            raise invalid("canary.min_requests", self.min_requests, "an integer >= 1")


@dataclasses.dataclass(frozen=True)
class ModelConfig(BaseConfig):
    """How one model is served (every version of it).

    ``max_batch_size``: requests stacked into one call (1: no batching); ``max_queue_delay_ms``: how long the
    first request of a batch waits for others; ``max_queue_size``: requests waiting at most, beyond which new
    ones are refused at once (HTTP 503 with Retry-After); ``timeout_ms``: default per-request deadline;
    ``instances``: model copies running batches in parallel; ``threads``: intra-op threads per instance;
    ``inputs``/``outputs``: tensor specs (read from the model file when omitted); ``handler``: a custom handler,
    ``"file.py:Class"`` (inside the model folder) or ``"package.module:Class"``; ``default_version``: served
    when a request names none (default: the newest); ``parameters``: passed to the handler's ``setup``.
    """

    max_batch_size: int = 8
    max_queue_delay_ms: float = 2.0
    max_queue_size: int = 64
    timeout_ms: float | None = None
    instances: int = 1
    threads: int | None = None
    inputs: tuple[TensorConfig, ...] = ()
    outputs: tuple[TensorConfig, ...] = ()
    handler: str | None = None
    default_version: str | None = None
    canary: CanaryPolicy = CanaryPolicy()
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, minimum in (("max_batch_size", 1), ("max_queue_size", 1), ("instances", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, int) and value >= minimum):
                raise invalid(name, value, f"an integer >= {minimum}")
        if self.threads is not None and not (isinstance(self.threads, int) and self.threads >= 1):
            raise invalid("threads", self.threads, "an integer >= 1, or omitted")
        if not (isinstance(self.max_queue_delay_ms, (int, float)) and self.max_queue_delay_ms >= 0):
            raise invalid("max_queue_delay_ms", self.max_queue_delay_ms, "milliseconds >= 0")
        if self.timeout_ms is not None and not (isinstance(self.timeout_ms, (int, float)) and self.timeout_ms > 0):
            raise invalid("timeout_ms", self.timeout_ms, "milliseconds > 0, or omitted")
        if self.handler is not None and (not isinstance(self.handler, str) or ":" not in self.handler):
            raise invalid("handler", self.handler, "'file.py:ClassName' or 'package.module:ClassName'")
        if not isinstance(self.parameters, dict):
            raise invalid("parameters", self.parameters, "a mapping")
        object.__setattr__(self, "inputs", tuple(TensorConfig.parse(t, f"inputs[{i}]") for i, t in enumerate(self.inputs)))
        object.__setattr__(self, "outputs", tuple(TensorConfig.parse(t, f"outputs[{i}]") for i, t in enumerate(self.outputs)))
        if isinstance(self.canary, dict):
            unknown = set(self.canary) - {f.name for f in dataclasses.fields(CanaryPolicy)}
            if unknown:
                raise invalid("canary", sorted(unknown), f"only {[f.name for f in dataclasses.fields(CanaryPolicy)]}")
            object.__setattr__(self, "canary", CanaryPolicy(**self.canary))
        if self.default_version is not None:
            object.__setattr__(self, "default_version", str(self.default_version))

    @classmethod
    def load(cls, path: str | Path, override: str | Path | None = None) -> ModelConfig:
        """Read a model's ``config.yaml`` (missing: the defaults), with a version's own ``config.yaml`` over it."""
        data = _read_yaml(Path(path))
        if override is not None:
            extra = _read_yaml(Path(override))
            if "parameters" in extra and isinstance(data.get("parameters"), dict):
                extra = {**extra, "parameters": {**data["parameters"], **(extra["parameters"] or {})}}
            data = {**data, **extra}
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["inputs"] = [dataclasses.asdict(t) for t in self.inputs]
        data["outputs"] = [dataclasses.asdict(t) for t in self.outputs]
        return data


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise invalid(str(path), "unparseable YAML", f"a YAML mapping ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise invalid(str(path), type(data).__name__, "a YAML mapping of config fields")
    return data
