"""Benchmark results as a rich table and a PNG chart."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._core import machine as _machine

if TYPE_CHECKING:
    from .benchmark import BenchmarkResult


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def benchmark_table(result: BenchmarkResult) -> Any:
    from .._core.table import Table

    gen = any(r.tokens_per_s is not None for r in result.rows)
    table = Table(title=f"{result.model.get('name')} — {_machine.describe(result.machine)}", title_justify="left")
    for col in ("backend", "batch", "median ms", "p90 ms", "p99 ms", "tokens/s" if gen else "items/s",
                "peak MB", "size MB", f"vs {result.baseline}" if result.baseline else "speedup", "max |diff|"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for r in result.rows:
        if r.status != "ok":
            table.add_row(r.backend, str(r.batch_size), f"[yellow]{r.status}[/]", *[""] * 7)
            continue
        lat = r.latency
        table.add_row(
            r.backend, str(r.batch_size), _fmt(lat.median_ms, ".2f"), _fmt(lat.p90_ms, ".2f"), _fmt(lat.p99_ms, ".2f"),
            _fmt(r.tokens_per_s if gen else r.throughput, ".1f"), _fmt(r.peak_rss_mb, ".0f"), _fmt(r.artifact_mb, ".1f"),
            _fmt(r.speedup, ".2f", "x"), _fmt(r.max_abs_diff, ".1e"),
        )
    notes = [f"{r.backend} batch {r.batch_size} {r.status}: {r.reason}" for r in result.rows if r.status != "ok"]
    if notes:
        table.caption = "\n".join(notes)
        table.caption_justify = "left"
    return table


def benchmark_plot(result: BenchmarkResult, path: str | Path) -> Path:
    """Latency per backend grouped by batch size (speedup labelled), and peak memory per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .._core.atomic import atomic_path

    ok = [r for r in result.rows if r.status == "ok"]
    backends = list(dict.fromkeys(r.backend for r in ok))
    sizes = sorted({r.batch_size for r in ok})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    width = 0.8 / max(1, len(backends))
    x = np.arange(len(sizes))
    for i, b in enumerate(backends):
        vals = [next((r.median_ms for r in ok if r.backend == b and r.batch_size == s), np.nan) for s in sizes]
        bars = ax1.bar(x + i * width, vals, width, label=b)
        for bar, s in zip(bars, sizes):
            r = next((r for r in ok if r.backend == b and r.batch_size == s), None)
            if r is not None and r.speedup is not None:
                ax1.annotate(f"{r.speedup:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                             ha="center", va="bottom", fontsize=8)
    ax1.set_xticks(x + width * (len(backends) - 1) / 2, [f"batch {s}" for s in sizes])
    ax1.set_ylabel("median latency per call (ms)")
    ax1.set_title(f"{result.model.get('name')}: latency (label: speedup vs {result.baseline})", fontsize=10)
    ax1.legend(fontsize=8)
    mem = [max((r.peak_rss_mb or 0) for r in ok if r.backend == b) for b in backends]
    ax2.bar(backends, mem, color=[f"C{i}" for i in range(len(backends))])
    ax2.set_ylabel("peak memory (MB)")
    ax2.set_title("peak memory (largest batch)", fontsize=10)
    ax2.tick_params(axis="x", labelrotation=20)
    fig.text(0.01, 0.01, _machine.describe(result.machine), fontsize=7, color="gray")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
