"""A loaded model version: its handler behind its batcher and its recent outcomes, with the warm-up that admits it,
the drain that retires it, and the rules for model and version names."""

from __future__ import annotations

import collections
import dataclasses
import gc
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._core.errors import ArtifactError, InvalidArgumentError, invalid
from .batcher import DynamicBatcher
from .config import ModelConfig
from .handler import Handler


@dataclasses.dataclass
class OutcomeWindow:
    """Outcomes of the last ``seconds`` of requests: (time, ok, latency seconds)."""

    seconds: float
    events: collections.deque = dataclasses.field(default_factory=collections.deque)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def add(self, ok: bool, latency_s: float) -> None:
        now = time.monotonic()
        with self.lock:
            self.events.append((now, ok, latency_s))
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self.events and self.events[0][0] < now - self.seconds:
            self.events.popleft()

    def summary(self) -> dict[str, float]:
        """Requests, error rate and p99 latency (ms) over the window."""
        with self.lock:
            self._trim(time.monotonic())
            events = list(self.events)
        if not events:
            return {"requests": 0, "error_rate": 0.0, "p99_ms": 0.0}
        errors = sum(1 for _, ok, _ in events if not ok)
        p99 = float(np.percentile([lat for _, _, lat in events], 99)) * 1000
        return {"requests": len(events), "error_rate": errors / len(events), "p99_ms": p99}


@dataclasses.dataclass
class ModelVersion:
    """One loaded version: its handler behind its batcher, and its recent outcomes."""

    name: str
    version: str
    path: Path
    config: ModelConfig
    handler: Handler
    batcher: DynamicBatcher
    window: OutcomeWindow
    loaded_at: float

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "versions": [self.version], "platform": platform_of(self.handler),
                **self.handler.metadata()}


def warm_up(handler: Handler, label: str) -> None:
    """Run the handler's sample request end to end; refuse the version if it fails or returns non-finite numbers."""
    sample = handler.sample_request()
    if sample is None:
        return
    try:
        request = handler.decode_request(sample, {})
        outputs = handler.unbatch(handler.predict(handler.batch([request])), [handler.batch_size_of(request)])
        result = handler.encode_response(outputs[0])
    except Exception as exc:
        raise ArtifactError(f"model {label}: its warm-up request failed: {type(exc).__name__}: {exc}") from exc
    for key, value in (result or {}).items():
        array = np.asarray(value)
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            raise ArtifactError(f"model {label}: its warm-up output {key!r} holds NaN or inf")


def retire(mv: ModelVersion) -> None:
    """Let queued requests finish on ``mv`` (in the background), then release its memory."""

    def drain() -> None:
        mv.batcher.close(wait=True)
        mv.handler.close()
        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    threading.Thread(target=drain, name=f"deepseek-retire-{mv.name}-{mv.version}", daemon=True).start()


def platform_of(handler: Handler) -> str:
    path = getattr(handler, "path", None)
    if path is None:
        return "deepseek_python"
    return {".onnx": "onnxruntime_onnx", ".pt2": "pytorch_pt2", ".so": "deepseek_arm64"}.get(Path(path).suffix, "deepseek")


def version_key(version: str) -> tuple[int, Any]:
    return (0, int(version)) if str(version).isdigit() else (1, str(version))


def check_name(name: str) -> None:
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise InvalidArgumentError(f"model: got {name!r}, expected a model name (a folder name, no '/')")


def version_name(version: Any, argument: str) -> str:
    """A version folder name given as a string or an integer (``"2"``, ``2``)."""
    if isinstance(version, bool) or not isinstance(version, (str, int)) or not str(version) or \
            any(c in str(version) for c in "/\\\0") or str(version).startswith("."):
        raise invalid(argument, version, "a version folder name such as '2'")
    return str(version)
