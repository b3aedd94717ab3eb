"""Prometheus metrics of a serving process (prometheus-client), in base units with conventional names.

Each :class:`ServingMetrics` owns its registry, so several routers in one process (tests) never share counters.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.8, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class _CpuUtilisation:
    """``deepseek_process_cpu_utilisation_ratio``: CPU seconds this process used per wall second per core, since
    the last scrape (0-1)."""

    def __init__(self) -> None:
        self._last = (time.monotonic(), _cpu_seconds())
        self._cores = os.cpu_count() or 1

    def collect(self) -> Any:
        now, cpu = time.monotonic(), _cpu_seconds()
        then, cpu_then = self._last
        self._last = (now, cpu)
        ratio = (cpu - cpu_then) / max(1e-9, now - then) / self._cores
        family = GaugeMetricFamily("deepseek_process_cpu_utilisation_ratio",
                                   "CPU time used per wall second per core since the last scrape")
        family.add_metric([], min(1.0, max(0.0, ratio)))
        yield family


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class ServingMetrics:
    """Counters, histograms and gauges that a :class:`~deepseek.serve.ModelRouter` and its HTTP app update."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("deepseek_requests", "Inference requests by outcome",
                                ["model", "version", "status"], registry=r)
        self.duration = Histogram("deepseek_request_duration_seconds", "Time from arrival to response",
                                  ["model", "version"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue = Histogram("deepseek_queue_duration_seconds", "Time a request waited for its batch to run",
                               ["model", "version"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("deepseek_batch_size", "Requests per executed batch", ["model", "version"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.in_flight = Gauge("deepseek_requests_in_flight", "Requests queued or running", ["model"], registry=r)
        self.loaded = Gauge("deepseek_model_loaded", "1 while a model version is loaded and ready",
                            ["model", "version"], registry=r)
        self.traffic = Gauge("deepseek_traffic_weight", "Share of unpinned traffic a version receives",
                             ["model", "version"], registry=r)
        self.rollbacks = Counter("deepseek_canary_rollbacks", "Canary versions rolled back automatically",
                                 ["model", "version"], registry=r)
        r.register(_CpuUtilisation())

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
