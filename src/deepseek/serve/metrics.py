"""Prometheus metrics of a serving process (prometheus-client), in base units with conventional names.

Each :class:`ServingMetrics` owns its registry, so several routers in one process (tests) never share counters.
With ``--workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set for every worker) the values live in per-process files that
any worker's ``/metrics`` — and the supervisor's ``--metrics-port`` — sums: counters and histograms add up, the
in-flight and CPU gauges are sums over live workers, the loaded and traffic gauges their maximum.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.8, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


CPU_NAME = "deepseek_process_cpu_utilisation_ratio"
CPU_HELP = "CPU time used per wall second per core since the last scrape"


class _CpuUtilisation:
    """``deepseek_process_cpu_utilisation_ratio``: CPU seconds this process used per wall second per core, since
    the last reading (0-1)."""

    def __init__(self) -> None:
        self._last = (time.monotonic(), _cpu_seconds())
        self._cores = os.cpu_count() or 1

    def ratio(self) -> float:
        now, cpu = time.monotonic(), _cpu_seconds()
        then, cpu_then = self._last
        self._last = (now, cpu)
        return min(1.0, max(0.0, (cpu - cpu_then) / max(1e-9, now - then) / self._cores))

    def collect(self) -> Any:
        family = GaugeMetricFamily(CPU_NAME, CPU_HELP)
        family.add_metric([], self.ratio())
        yield family


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class ServingMetrics:
    """Counters, histograms and gauges that a :class:`~deepseek.serve.ModelRouter` and its HTTP app update."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        self.registry = CollectorRegistry()
        r = self.registry
        live_sum = {"multiprocess_mode": "livesum"}
        live_max = {"multiprocess_mode": "livemax"}
        self.requests = Counter("deepseek_requests", "Inference requests by outcome",
                                ["model", "version", "status"], registry=r)
        self.duration = Histogram("deepseek_request_duration_seconds", "Time from arrival to response",
                                  ["model", "version"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue = Histogram("deepseek_queue_duration_seconds", "Time a request waited for its batch to run",
                               ["model", "version"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("deepseek_batch_size", "Requests per executed batch", ["model", "version"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.in_flight = Gauge("deepseek_requests_in_flight", "Requests queued or running", ["model"], registry=r,
                               **live_sum)
        self.loaded = Gauge("deepseek_model_loaded", "1 while a model version is loaded and ready",
                            ["model", "version"], registry=r, **live_max)
        self.traffic = Gauge("deepseek_traffic_weight", "Share of unpinned traffic a version receives",
                             ["model", "version"], registry=r, **live_max)
        self.rollbacks = Counter("deepseek_canary_rollbacks", "Canary versions rolled back automatically",
                                 ["model", "version"], registry=r)
        self._in_flight_sources: dict[str, Callable[[], int]] = {}
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        if self.multiprocess:
            # Values are files shared by every worker; callbacks cannot cross processes, so a thread samples the
            # in-flight counts and this process's CPU share into them.
            self._cpu_gauge = Gauge(CPU_NAME, CPU_HELP, registry=r, **live_sum)
            self._sampler = threading.Thread(target=self._sample, name="deepseek-metrics-sampler", daemon=True)
            self._sampler.start()
        else:
            r.register(_CpuUtilisation())

    def track_in_flight(self, model: str, count: Callable[[], int]) -> None:
        """Report ``count()`` as the model's in-flight gauge."""
        if self.multiprocess:
            self._in_flight_sources[model] = count
        else:
            self.in_flight.labels(model).set_function(count)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (of every worker in multiprocess mode)."""
        return render_multiprocess() if self.multiprocess else generate_latest(self.registry)

    def close(self) -> None:
        self._stop.set()

    def _sample(self, interval: float = 0.5) -> None:
        cpu = _CpuUtilisation()
        while not self._stop.wait(interval):
            for model, count in list(self._in_flight_sources.items()):
                self.in_flight.labels(model).set(count())
            self._cpu_gauge.set(cpu.ratio())


def render_multiprocess() -> bytes:
    """The sum over every worker's files in ``$PROMETHEUS_MULTIPROC_DIR``."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)
