"""A served model's configuration: ``models/<name>/config.yaml`` (Triton's ``config.pbtxt``, as YAML)."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

from .._core.checks import check_choice, check_number
from .._core.config import BaseConfig, field, read_yaml
from .._core.errors import InvalidArgumentError, invalid

# KServe v2 / Triton datatypes and the numpy dtypes they carry
DATATYPES = {"BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
             "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64", "FP16": "float16",
             "FP32": "float32", "FP64": "float64", "BYTES": "object"}
NUMPY_TO_DATATYPE = {v: k for k, v in DATATYPES.items()}
MAX_SECONDS = threading.TIMEOUT_MAX  # the longest wait a thread can be given
MAX_DIMS = 32  # tensor dimensions a request or a config may name


@dataclasses.dataclass(frozen=True)
class TensorConfig:
    """One input or output: name, v2 datatype and shape without the batch dimension (-1: any size)."""

    name: str
    datatype: str = "FP32"
    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise invalid("inputs[].name", self.name, "a non-empty string")
        check_choice(self.datatype, f"inputs[{self.name}].datatype", DATATYPES)
        if not isinstance(self.shape, (list, tuple)):
            raise invalid(f"inputs[{self.name}].shape", self.shape, "a list of sizes > 0 or -1 (any), batch excluded")
        shape = tuple(self.shape)
        if len(shape) > MAX_DIMS or not all(isinstance(d, int) and not isinstance(d, bool) and (d == -1 or d > 0)
                                            for d in shape):
            raise invalid(f"inputs[{self.name}].shape", list(self.shape),
                          f"at most {MAX_DIMS} sizes > 0 or -1 (any), batch excluded")
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
        datatype = data.get("datatype", data.get("data_type", "FP32"))
        if not isinstance(datatype, str):
            raise invalid(f"{where}.datatype", datatype, f"one of {sorted(DATATYPES)}")
        shape = data.get("shape", data.get("dims", ()))
        if not isinstance(shape, (list, tuple)):
            raise invalid(f"{where}.shape", shape, "a list of sizes > 0 or -1 (any), batch excluded")
        return cls(data["name"], datatype.upper().removeprefix("TYPE_"), tuple(shape))


@dataclasses.dataclass(frozen=True)
class CanaryPolicy:
    """When a canary version is rolled back automatically: over the last ``window_s`` seconds (at least
    ``min_requests`` requests), its error rate is above ``max_error_rate`` or its p99 latency above
    ``max_p99_ms`` while the stable version's is not. The defaults are the service alert
    thresholds: error rate > 2 %, p99 latency > 800 ms."""

    max_error_rate: float = 0.02
    max_p99_ms: float = 800.0
    window_s: float = 60.0
    min_requests: int = 20

    def __post_init__(self) -> None:
        check_number(self.max_error_rate, "canary.max_error_rate", minimum=0)
        check_number(self.max_error_rate, "canary.max_error_rate", below=1, expected="a fraction in [0, 1)")
        check_number(self.max_p99_ms, "canary.max_p99_ms", above=0)
        check_number(self.window_s, "canary.window_s", above=0, maximum=MAX_SECONDS)
        check_number(self.min_requests, "canary.min_requests", minimum=1, integer=True)


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
        for name, maximum in (("max_batch_size", 2**20), ("max_queue_size", 2**20), ("instances", 256)):
            check_number(getattr(self, name), name, minimum=1, maximum=maximum, integer=True)
        if self.threads is not None:
            check_number(self.threads, "threads", minimum=1, maximum=4096, integer=True)
        check_number(self.max_queue_delay_ms, "max_queue_delay_ms", minimum=0, maximum=MAX_SECONDS * 1000)
        if self.timeout_ms is not None:
            check_number(self.timeout_ms, "timeout_ms", above=0, maximum=MAX_SECONDS * 1000)
        if self.handler is not None and (not isinstance(self.handler, str) or ":" not in self.handler):
            raise invalid("handler", self.handler, "'file.py:ClassName' or 'package.module:ClassName'")
        if not isinstance(self.parameters, dict):
            raise invalid("parameters", self.parameters, "a mapping")
        for name in ("inputs", "outputs"):
            if not isinstance(getattr(self, name), (list, tuple)):
                raise invalid(name, getattr(self, name), "a list of {name, datatype, shape}")
        if self.default_version is not None and (isinstance(self.default_version, bool) or
                                                 not isinstance(self.default_version, (str, int))):
            raise invalid("default_version", self.default_version, "a version folder name such as '2'")
        object.__setattr__(self, "inputs", tuple(TensorConfig.parse(t, f"inputs[{i}]") for i, t in enumerate(self.inputs)))
        object.__setattr__(self, "outputs", tuple(TensorConfig.parse(t, f"outputs[{i}]") for i, t in enumerate(self.outputs)))
        if not isinstance(self.canary, (dict, CanaryPolicy)):
            raise invalid("canary", self.canary, "a mapping of canary policy fields")
        if isinstance(self.canary, dict):
            unknown = set(self.canary) - {f.name for f in dataclasses.fields(CanaryPolicy)}
            if unknown:
                raise invalid("canary", sorted(unknown), f"only {[f.name for f in dataclasses.fields(CanaryPolicy)]}")
            object.__setattr__(self, "canary", CanaryPolicy(**self.canary))
        if self.default_version is not None:
            object.__setattr__(self, "default_version", str(self.default_version))

    @classmethod
    def load(cls, path: str | Path, override: str | Path | None = None) -> ModelConfig:
        """Read a model's ``config.yaml`` (missing: the defaults), with a version's own ``config.yaml`` over it.
        Every error names the file and the field."""
        data = _read_yaml(Path(path))
        cls._checked(data, Path(path))
        if override is not None:
            extra = _read_yaml(Path(override))
            cls._checked(extra, Path(override))
            if isinstance(extra.get("parameters"), dict) and isinstance(data.get("parameters"), dict):
                extra = {**extra, "parameters": {**data["parameters"], **extra["parameters"]}}
            data = {**data, **extra}
        return cls.from_dict(data)

    @classmethod
    def _checked(cls, data: dict[str, Any], path: Path) -> None:
        """Each field of one file: its type (with :func:`deepseek._core.config.field`), then its value."""
        source = str(path)
        types: dict[str, Any] = {
            "max_batch_size": int, "max_queue_size": int, "instances": int, "threads": (int, type(None)),
            "max_queue_delay_ms": (int, float), "timeout_ms": (int, float, type(None)), "inputs": list,
            "outputs": list, "handler": (str, type(None)), "default_version": (str, int, type(None)),
            "canary": dict, "parameters": dict, "_type": str, "_version": int}
        for key in data:
            if not isinstance(key, str):
                raise invalid(f"{source}: field {key!r}", key, f"field names among {sorted(types)}")
            if key in types:
                field(data, key, types[key], source=source)
        try:
            cls.from_dict(data)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{source}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["inputs"] = [dataclasses.asdict(t) for t in self.inputs]
        data["outputs"] = [dataclasses.asdict(t) for t in self.outputs]
        return data


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists() and not path.is_symlink():
        return {}
    return read_yaml(path, argument="config", what="the model's serving config (config.yaml)", mapping=True)
