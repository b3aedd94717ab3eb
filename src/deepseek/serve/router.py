"""ModelRouter: several models and versions in one process, routed by version, request metadata or a weighted
traffic split (sticky by a routing key), with hot loads and swaps, promote / rollback, and automatic rollback of
a canary whose error rate or p99 latency breaches its policy while the stable version's does not."""

from __future__ import annotations

import bisect
import dataclasses
import math
import random
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from .._core.checks import check_number
from .._core.errors import ArtifactError, DeepSeekError, InvalidArgumentError, invalid
from .batcher import (
    BatchStats,
    DynamicBatcher,
    HandlerError,
    InputRejected,
    QueueFull,
    RequestTimeout,
    VersionClosed,
)
from .config import MAX_SECONDS, ModelConfig
from .handler import load_handler
from .metrics import ServingMetrics
from .routing import breaches, matches, unit_interval
from .versions import (
    ModelVersion,
    OutcomeWindow,
    check_name,
    retire,
    version_key,
    version_name,
    warm_up,
)


class ModelNotFound(DeepSeekError):
    """No such model or version is loaded (HTTP 404)."""


@dataclasses.dataclass
class _Model:
    versions: dict[str, ModelVersion] = dataclasses.field(default_factory=dict)
    default: str | None = None
    traffic: dict[str, float] = dataclasses.field(default_factory=dict)  # empty: everything to the default
    rules: list[tuple[str, Any, str]] = dataclasses.field(default_factory=list)  # (metadata key, value, version)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)  # version -> why it is not loaded
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)


class ModelRouter:
    """Serve the models of a repository (``root/<name>/<version>/`` with an optional ``root/<name>/config.yaml``).

    ``router.infer("m", {"input": x})`` runs on the default version; ``version="2"`` pins one;
    ``metadata={"use_v2": True}`` follows a rule from :meth:`route_by`; :meth:`set_traffic` splits the
    remaining traffic by weight, the same ``routing_key`` always reaching the same version. Every load warms the
    version up on a sample request and checks its outputs before it is swapped in; requests already queued on an
    old version finish there.
    """

    def __init__(self, repository: str | Path | None = None, *, metrics: ServingMetrics | None = None,
                 load: bool = True, seed: int | None = None) -> None:
        self.repository = Path(repository) if repository is not None else None
        if self.repository is not None and not self.repository.is_dir():
            raise invalid("repository", str(repository), "a folder holding <model>/<version>/ folders")
        self.metrics = metrics or ServingMetrics()
        self._models: dict[str, _Model] = {}
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        if load and self.repository is not None:
            self.load_repository()

    # -- repository ------------------------------------------------------------------------------------------
    def load_repository(self, progress: Any = None) -> dict[str, list[str]]:
        """Load every version found in the repository; a broken one is recorded (see :meth:`index`) and skipped."""
        found = self.scan()
        loaded: dict[str, list[str]] = {}
        for name, versions in found.items():
            for version in versions:
                try:
                    self.load(name, version)
                    loaded.setdefault(name, []).append(version)
                except DeepSeekError:
                    pass  # recorded in the index with its reason; every other model keeps serving
                if progress is not None:
                    progress(name, version)
        return loaded

    def poll(self) -> dict[str, list[str]]:
        """Load versions that appeared in the repository and unload those whose folder is gone."""
        found = self.scan()
        changes: dict[str, list[str]] = {"loaded": [], "unloaded": []}
        for name, versions in found.items():
            model = self._models.get(name)
            for version in versions:
                if model is None or (version not in model.versions and version not in model.errors):
                    try:
                        self.load(name, version)
                        changes["loaded"].append(f"{name}/{version}")
                    except DeepSeekError:
                        pass
        for name, model in list(self._models.items()):
            for version in list(model.versions):
                if version not in found.get(name, []):
                    self.unload(name, version)
                    changes["unloaded"].append(f"{name}/{version}")
        return changes

    def watch(self, interval_s: float = 5.0) -> None:
        """Poll the repository every ``interval_s`` seconds in a background thread (until :meth:`close`)."""
        check_number(interval_s, "interval_s", above=0, maximum=MAX_SECONDS)
        if self._poller is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.poll()

        self._poller = threading.Thread(target=loop, name="deepseek-repository-poll", daemon=True)
        self._poller.start()

    def index(self) -> list[dict[str, Any]]:
        """Triton's repository index: every model version found or loaded, its state and, if unavailable, why."""
        rows = []
        found = self.scan()
        for name in sorted(set(self._models) | set(found)):
            model = self._models.get(name, _Model())
            for version in sorted(set(found.get(name, [])) | set(model.versions) | set(model.errors), key=version_key):
                ready = version in model.versions
                rows.append({"name": name, "version": version, "state": "READY" if ready else "UNAVAILABLE",
                             "reason": "" if ready else model.errors.get(version, "not loaded")})
        return rows

    def scan(self) -> dict[str, list[str]]:
        """The repository's models and their version folders (``{name: [versions, oldest first]}``), nothing loaded."""
        if self.repository is None:
            return {}
        found = {}
        for model_dir in sorted(p for p in self.repository.iterdir() if p.is_dir() and not p.name.startswith(".")):
            versions = [p.name for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
            if versions:
                found[model_dir.name] = sorted(versions, key=version_key)
        return found

    # -- load / unload ---------------------------------------------------------------------------------------
    def load(self, name: str, version: str | None = None, *, path: str | Path | None = None,
             config: ModelConfig | None = None) -> ModelVersion:
        """Load (or reload) one version, warm it up, check it, then swap it in atomically.

        ``path`` is the version folder (default: ``repository/name/version``); ``version`` defaults to the
        newest folder. A reload of a loaded version replaces it only once the new copy passed its check."""
        check_name(name)
        if version is not None:
            version = version_name(version, "version")
        if path is None:
            if self.repository is None:
                raise invalid("path", None, "the version folder, as this router has no repository")
            model_dir = self.repository / name
            versions = self.scan().get(name, [])
            if not versions:
                raise ModelNotFound(f"model: {name!r} not found in {self.repository}")
            version = str(version) if version is not None else versions[-1]
            if version not in versions:
                raise ModelNotFound(f"model: {name!r} has no version {version!r} (found {versions})")
            version_dir = model_dir / version
        else:
            version_dir = Path(path)
            model_dir = version_dir.parent
            version = str(version) if version is not None else version_dir.name
            if not version_dir.is_dir():
                raise invalid("path", str(path), "a version folder holding a model file")
        model = self._model(name)
        try:
            cfg = config or ModelConfig.load(model_dir / "config.yaml", version_dir / "config.yaml")
            mv = self._build(name, version, version_dir, model_dir, cfg)
        except Exception as exc:  # a custom handler's setup failing is the model's problem, not the server's
            known = isinstance(exc, DeepSeekError)
            with self._lock:
                model.errors[version] = str(exc) if known else f"{type(exc).__name__}: {exc}"
            self.metrics.loaded.labels(name, version).set(0)
            if known:
                raise
            raise ArtifactError(f"model {name}/{version}: failed to load: {type(exc).__name__}: {exc}") from exc
        with self._lock:
            old = model.versions.get(version)
            model.versions[version] = mv
            model.errors.pop(version, None)
            if cfg.default_version is not None and cfg.default_version in model.versions:
                model.default = cfg.default_version
            elif model.default is None or (cfg.default_version is None and version_key(version) > version_key(model.default)
                                            and not model.traffic):
                model.default = version
            model.events.append({"time": time.time(), "event": "reloaded" if old else "loaded", "version": version})
        self.metrics.loaded.labels(name, version).set(1)
        self.metrics.track_in_flight(name, lambda: self._in_flight_or_zero(name))
        self._publish_traffic(name)
        if old is not None:
            retire(old)
        return mv

    def unload(self, name: str, version: str | None = None) -> None:
        """Stop serving a version (all versions when None); its queued requests finish, then it is released."""
        if version is not None:
            version = version_name(version, "version")
        with self._lock:
            model = self._models.get(name)
            if model is None or (version is not None and str(version) not in model.versions):
                raise ModelNotFound(f"model: {name}/{version} is not loaded")
            versions = list(model.versions) if version is None else [str(version)]
            retired = [model.versions.pop(v) for v in versions]
            for v in versions:
                model.traffic.pop(v, None)
                model.rules = [r for r in model.rules if r[2] != v]
            if model.default in versions:
                model.default = max(model.versions, key=version_key) if model.versions else None
            model.events.append({"time": time.time(), "event": "unloaded", "versions": versions})
        for mv in retired:
            self.metrics.loaded.labels(name, mv.version).set(0)
            retire(mv)
        self._publish_traffic(name)

    def close(self) -> None:
        """Unload everything and stop polling."""
        self._stop.set()
        self.metrics.close()
        for name in list(self._models):
            if self._models[name].versions:
                self.unload(name)

    def _build(self, name: str, version: str, version_dir: Path, model_dir: Path, cfg: ModelConfig) -> ModelVersion:
        handler = load_handler(cfg.handler, model_dir)
        handler.config = cfg
        handler.setup(version_dir, cfg)
        warm_up(handler, f"{name}/{version}")
        mv_ref: list[ModelVersion] = []
        batcher = DynamicBatcher(handler, max_batch_size=cfg.max_batch_size, max_queue_delay_ms=cfg.max_queue_delay_ms,
                                 max_queue_size=cfg.max_queue_size, instances=cfg.instances, name=f"{name}-{version}",
                                 on_batch=lambda stats: self._on_batch(mv_ref[0], stats))
        mv = ModelVersion(name, version, version_dir, cfg, handler, batcher, OutcomeWindow(cfg.canary.window_s), time.time())
        mv_ref.append(mv)
        return mv

    # -- routing ---------------------------------------------------------------------------------------------
    def set_default(self, name: str, version: str) -> None:
        version = version_name(version, "version")
        with self._lock:
            model = self._loaded(name, version)
            model.default = str(version)
            model.events.append({"time": time.time(), "event": "default", "version": str(version)})
        self._publish_traffic(name)

    def set_traffic(self, name: str, weights: dict[str, float]) -> None:
        """Split traffic that names no version: ``{"1": 0.9, "2": 0.1}`` (weights are relative: they are divided
        by their sum). A request with a ``routing_key`` (a user id) always reaches the same version while the
        weights stay the same. Every weight must be a finite number >= 0 and their sum finite and > 0; nothing
        changes unless all of them (and every version named) are valid."""
        if not isinstance(weights, dict) or not weights:
            raise invalid("weights", weights, "a mapping of version -> weight, e.g. {'1': 0.9, '2': 0.1}")
        clean: dict[str, float] = {}
        for v, w in weights.items():
            version = version_name(v, f"weights key {v!r}")
            if version in clean:
                raise invalid("weights", weights, f"each version once (version {version!r} twice)")
            clean[version] = check_number(w, f"weights[{v!r}]", minimum=0)
        largest = max(clean.values())
        if largest <= 0:
            raise invalid("weights", weights, "at least one weight > 0")
        total = sum(clean.values())
        if math.isfinite(total):
            shares = {v: w / total for v, w in clean.items() if w > 0}
        else:  # huge weights: scaled first, so their sum stays finite
            total = sum(w / largest for w in clean.values())
            shares = {v: (w / largest) / total for v, w in clean.items() if w > 0}
        shares = {v: s for v, s in shares.items() if s > 0}  # a weight too small beside the others: no share
        if not all(math.isfinite(s) and s <= 1 for s in shares.values()) or not shares:
            raise invalid("weights", weights, "finite weights >= 0 with a finite sum > 0")
        with self._lock:
            for v in clean:
                self._loaded(name, v)
            model = self._models[name]
            model.traffic = shares
            model.events.append({"time": time.time(), "event": "traffic", "weights": dict(model.traffic)})
        self._publish_traffic(name)

    def traffic(self, name: str) -> dict[str, float]:
        """The current split of unpinned traffic (version -> share)."""
        model = self._existing(name)
        return dict(model.traffic) if model.traffic else ({model.default: 1.0} if model.default else {})

    def route_by(self, name: str, key: str, version: str, value: Any = True) -> None:
        """Requests whose metadata (v2 ``parameters`` or an ``X-<Key>`` header) has ``key == value`` go to
        ``version``: ``route_by("m", "use_v2", "2")``."""
        if not isinstance(key, str) or not key:
            raise invalid("key", key, "a metadata key such as 'use_v2'")
        version = version_name(version, "version")
        if (isinstance(value, float) and not math.isfinite(value)) or not isinstance(value, (str, int, float, bool)):
            raise invalid("value", value, "a string, an integer, a finite number or true/false")
        with self._lock:
            self._loaded(name, version)
            model = self._models[name]
            model.rules = [r for r in model.rules if r[0] != key] + [(key, value, version)]

    def promote(self, name: str, version: str) -> None:
        """Make ``version`` the default and send it all unpinned traffic."""
        version = version_name(version, "version")
        with self._lock:
            model = self._loaded(name, version)
            model.default, model.traffic = str(version), {}
            model.events.append({"time": time.time(), "event": "promoted", "version": str(version)})
        self._publish_traffic(name)

    def rollback(self, name: str, reason: str = "manual") -> str | None:
        """Send all unpinned traffic back to the default (stable) version; returns the version taken out."""
        with self._lock:
            model = self._existing(name)
            canaries = [v for v in model.traffic if v != model.default]
            model.traffic = {}
            model.events.append({"time": time.time(), "event": "rollback", "versions": canaries, "reason": reason})
        self._publish_traffic(name)
        return canaries[0] if canaries else None

    def events(self, name: str) -> list[dict[str, Any]]:
        return list(self._existing(name).events)

    def resolve(self, name: str, version: str | None = None, *, metadata: dict[str, Any] | None = None,
                routing_key: str | None = None) -> ModelVersion:
        """The version that serves this request: the one named, else a matching metadata rule, else the split."""
        if not isinstance(name, str):
            raise invalid("name", name, "a model name (a string)")
        if metadata is not None and not isinstance(metadata, dict):
            raise invalid("metadata", metadata, "a mapping of request metadata")
        with self._lock:
            model = self._models.get(name)
            if model is None or not model.versions:
                raise ModelNotFound(f"model: {name!r} is not loaded (loaded: {self.models()})")
            if version is not None:
                return self._loaded(name, version).versions[str(version)]
            for key, value, target in model.rules:
                if metadata and key in metadata and matches(metadata[key], value) and target in model.versions:
                    return model.versions[target]
            if model.traffic:
                versions = list(model.traffic)
                edges = list(np.cumsum([model.traffic[v] for v in versions]))
                u = unit_interval(routing_key) if routing_key is not None else self._rng.random()
                chosen = versions[min(bisect.bisect_right(edges, u), len(versions) - 1)]
                if chosen in model.versions:
                    return model.versions[chosen]
            assert model.default is not None
            return model.versions[model.default]

    def models(self) -> dict[str, list[str]]:
        return {n: sorted(m.versions, key=version_key) for n, m in self._models.items() if m.versions}

    def default_version(self, name: str) -> str | None:
        return self._existing(name).default

    # -- inference -------------------------------------------------------------------------------------------
    def submit(self, name: str, inputs: dict[str, np.ndarray], *, version: str | None = None,
               parameters: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
               routing_key: str | None = None, timeout_s: float | None = None) -> tuple[ModelVersion, Future]:
        """Queue one request; the future gets the output dict. Raises :class:`QueueFull` when the queue is full.

        A handler's ``decode_request`` refusing the inputs (``ValueError``, ``TypeError``, ``KeyError`` or
        :class:`~deepseek.InvalidArgumentError`) is the request's fault: :class:`InvalidArgumentError` (HTTP 400)."""
        if timeout_s is not None:
            check_number(timeout_s, "timeout_s", above=0, maximum=MAX_SECONDS)
        if not isinstance(inputs, dict) or not all(isinstance(k, str) and isinstance(v, np.ndarray)
                                                   for k, v in inputs.items()):
            raise invalid("inputs", inputs if not isinstance(inputs, dict) else {k: type(v).__name__ for k, v in
                          inputs.items()}, "a mapping of input name -> numpy array")
        if version is not None:
            version = version_name(version, "version")
        for _ in range(3):  # a version swapped out between resolve and submit: resolve again
            mv = self.resolve(name, version, metadata=metadata, routing_key=routing_key)
            try:
                request = mv.handler.decode_request(inputs, parameters or {})
            except DeepSeekError:
                raise
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                raise InvalidArgumentError(f"inputs: model {name}/{mv.version} cannot take this request: "
                                           f"{type(exc).__name__}: {exc}") from exc
            except Exception as exc:
                raise HandlerError(f"decode_request: {type(exc).__name__}: {exc}") from exc
            timeout = timeout_s if timeout_s is not None else (mv.config.timeout_ms / 1000 if mv.config.timeout_ms else None)
            try:
                return mv, mv.batcher.submit(request, mv.handler.batch_size_of(request), timeout)
            except VersionClosed:
                continue
        raise QueueFull(f"model {name}: versions are being swapped; retry")

    def infer(self, name: str, inputs: dict[str, np.ndarray], **options: Any) -> dict[str, np.ndarray]:
        """Run one request and wait for its outputs (the Python twin of ``POST /v2/models/{name}/infer``)."""
        started = time.monotonic()
        timeout = options.get("timeout_s")
        mv, future = self.submit(name, inputs, **options)
        try:
            result = future.result(timeout=None if timeout is None else timeout + 1)
        except (HandlerError, RequestTimeout) as exc:
            self.record_failure(mv, exc, time.monotonic() - started)
            raise
        self.record(mv, True, time.monotonic() - started, "ok")
        return result

    def record(self, mv: ModelVersion, ok: bool, seconds: float, status: str) -> None:
        """One finished request: metrics, the version's window, and the canary check."""
        self.metrics.requests.labels(mv.name, mv.version, status).inc()
        self.metrics.duration.labels(mv.name, mv.version).observe(seconds)
        mv.window.add(ok, seconds)
        self._check_canary(mv)

    def record_failure(self, mv: ModelVersion, exc: BaseException, seconds: float) -> None:
        """One request that failed: an input the model refused is the client's error (no mark against the version
        or its canary check); anything else is the version's."""
        if isinstance(exc, InputRejected):
            self.record(mv, True, seconds, "bad_request")
        else:
            self.record(mv, False, seconds, "error")

    def admission_limit(self, name: str) -> int | None:
        """Requests for ``name`` the server may hold at once (queued, running, or still being read): the queues'
        capacity plus a batch per instance for every loaded version. None for a model that is not loaded."""
        model = self._models.get(name)
        versions = list(model.versions.values()) if model else []
        if not versions:
            return None
        return sum(mv.config.max_queue_size + mv.config.max_batch_size * mv.config.instances for mv in versions)

    def in_flight(self, name: str | None = None) -> int:
        names = [name] if name else list(self._models)
        return sum(mv.batcher.in_flight for n in names for mv in self._existing(n).versions.values())

    def _in_flight_or_zero(self, name: str) -> int:
        model = self._models.get(name)
        return sum(mv.batcher.in_flight for mv in list(model.versions.values())) if model else 0

    def _on_batch(self, mv: ModelVersion, stats: BatchStats) -> None:
        self.metrics.batch_size.labels(mv.name, mv.version).observe(stats.requests)
        for q in stats.queue_seconds:
            self.metrics.queue.labels(mv.name, mv.version).observe(q)

    def _check_canary(self, mv: ModelVersion) -> None:
        with self._lock:
            model = self._models.get(mv.name)
            if model is None or not model.traffic or mv.version == model.default or mv.version not in model.traffic:
                return
            stable = model.versions.get(model.default or "")
        policy = mv.config.canary
        canary = mv.window.summary()
        if canary["requests"] < policy.min_requests:
            return
        breached = breaches(canary, policy)
        # a stable version as bad is not the canary's fault (overload, bad input)
        if not breached or (stable is not None and breaches(stable.window.summary(), policy)):
            return
        self.rollback(mv.name, reason=f"canary {mv.version}: {breached}")
        self.metrics.rollbacks.labels(mv.name, mv.version).inc()

    # -- internals -------------------------------------------------------------------------------------------
    def _model(self, name: str) -> _Model:
        with self._lock:
            return self._models.setdefault(name, _Model())

    def _existing(self, name: str) -> _Model:
        if not isinstance(name, str):
            raise invalid("name", name, "a model name (a string)")
        model = self._models.get(name)
        if model is None:
            raise ModelNotFound(f"model: {name!r} is not loaded (loaded: {self.models()})")
        return model

    def _loaded(self, name: str, version: str) -> _Model:
        model = self._existing(name)
        if str(version) not in model.versions:
            raise ModelNotFound(f"model: {name!r} has no loaded version {version!r} (loaded: {sorted(model.versions, key=version_key)})")
        return model

    def _publish_traffic(self, name: str) -> None:
        model = self._models.get(name)
        if model is None:
            return
        shares = self.traffic(name) if model.versions else {}
        for v in set(model.versions) | set(shares):
            self.metrics.traffic.labels(name, v).set(shares.get(v, 0.0))
