"""Measure models: latency, throughput, memory and size across backends (and where the time goes)."""

from .benchmark import BenchmarkResult, BenchmarkRow, benchmark, rebatch
from .timing import LatencyStats, measure

__all__ = ["BenchmarkResult", "BenchmarkRow", "LatencyStats", "benchmark", "measure", "rebatch"]
