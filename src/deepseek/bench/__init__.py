"""Measure models: latency, throughput, memory and size across backends (and where the time goes)."""

from .._core.timing import LatencyStats, measure
from .benchmark import BenchmarkResult, BenchmarkRow, benchmark, rebatch

__all__ = ["BenchmarkResult", "BenchmarkRow", "LatencyStats", "benchmark", "measure", "rebatch"]
