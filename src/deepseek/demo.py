"""``make demo`` / ``deepseek demo``: the main job end to end on the bundled real MobileNetV2.

Export to ONNX (verified), run it on ONNX Runtime, check top-1 agreement with FP32 PyTorch on real photos,
benchmark against eager PyTorch in the same run, and write a report folder (JSON, PNG, Markdown).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

STEPS = ("load MobileNetV2 (real ImageNet weights)", "export to ONNX and verify", "top-1 agreement on real photos",
         "benchmark eager vs ONNX Runtime")


def run_demo(output: str | Path = "reports/demo", *, runs: int = 20, batch_sizes: tuple[int, ...] = (1, 8),
             console: Console | None = None) -> dict[str, Any]:
    """Run the demo and write ``output``/{report.json, benchmark.png, summary.md, mobilenet_v2.onnx}."""
    import torch

    from . import assets
    from ._atomic import write_json, write_text
    from ._progress import progress
    from .bench import benchmark
    from .compile import export_onnx
    from .evaluate import evaluate

    console = console or Console()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with progress() as bar:
        task = bar.add_task(STEPS[0], total=len(STEPS))
        model = assets.mobilenet_v2()
        example = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
        bar.update(task, advance=1, description=STEPS[1])
        exported = export_onnx(model, example, out / "mobilenet_v2.onnx", input_names=["input"])
        bar.update(task, advance=1, description=STEPS[2])
        agreement = evaluate(exported.path, data="photos")
        bar.update(task, advance=1, description=STEPS[3])
        bench = benchmark("mobilenet_v2", backends=["eager", "onnxruntime"], batch_sizes=list(batch_sizes), runs=runs,
                          progress=False)
        bar.update(task, advance=1, description="done")
    bench.plot(out / "benchmark.png")

    rows = {(r.backend, r.batch_size): r for r in bench.rows}
    table = Table(title="MobileNetV2 (real ImageNet weights): before → after", title_justify="left")
    table.add_column("metric")
    table.add_column("before: PyTorch eager FP32", justify="right")
    table.add_column("after: ONNX Runtime FP32", justify="right")
    table.add_column("change", justify="right")
    for b in batch_sizes:
        e, o = rows[("eager", b)], rows[("onnxruntime", b)]
        if e.status == o.status == "ok":
            table.add_row(f"latency, batch {b} (median ms)", f"{e.latency.median_ms:.2f}", f"{o.latency.median_ms:.2f}",
                          f"{o.speedup:.2f}x faster")
            table.add_row(f"throughput, batch {b} (img/s)", f"{e.throughput:.0f}", f"{o.throughput:.0f}", "")
    e1, o1 = rows[("eager", batch_sizes[0])], rows[("onnxruntime", batch_sizes[0])]
    if e1.status == o1.status == "ok":
        table.add_row("peak memory (MB, own process)", f"{e1.peak_rss_mb:.0f}", f"{o1.peak_rss_mb:.0f}",
                      f"{o1.peak_rss_mb / e1.peak_rss_mb:.0%} of before")
        table.add_row("model size (MB)", f"{e1.artifact_mb:.1f}", f"{o1.artifact_mb:.1f}", "")
    table.add_row(f"top-1 agreement on {agreement.samples} real photo views", "reference",
                  f"{agreement.value:.2%}", f"KL {agreement.extra['mean_kl']:.1e}")
    table.add_row("max |diff| vs PyTorch (export check)", "", f"{exported.max_abs_diff:.1e}", "")
    console.print(bench.table())
    console.print(table)

    report = {"model": "mobilenet_v2 (torchvision, ImageNet-1k weights, sha256 verified)",
              "export": exported.to_dict(), "agreement": agreement.to_dict(), "benchmark": bench.to_dict(),
              "seconds": time.perf_counter() - started}
    write_json(out / "report.json", report)
    summary = _markdown(bench, agreement, exported)
    write_text(out / "summary.md", summary)
    console.print(f"report: {out}/report.json, {out}/benchmark.png, {out}/summary.md "
                  f"({report['seconds']:.0f} s)")
    return report


def _markdown(bench: Any, agreement: Any, exported: Any) -> str:
    lines = ["# DeepSeek demo: MobileNetV2", "", "| backend | batch | median ms | items/s | peak MB | speedup |", "|---|---|---|---|---|---|"]
    for r in bench.rows:
        if r.status == "ok":
            lines.append(f"| {r.backend} | {r.batch_size} | {r.latency.median_ms:.2f} | {r.throughput:.0f} | "
                         f"{r.peak_rss_mb:.0f} | {r.speedup:.2f}x |")
    lines += ["", f"Top-1 agreement with FP32 PyTorch on {agreement.samples} real photo views: {agreement.value:.2%} "
              f"(confident views: {agreement.extra['confident_agreement']}, mean KL {agreement.extra['mean_kl']:.1e}); "
              f"export max |diff| {exported.max_abs_diff:.1e}.", "", f"Machine: {bench.machine['cpu']}, "
              f"{bench.machine['threads']} threads, {bench.machine['date']}.", ""]
    return "\n".join(lines)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", default="reports/demo", help="report folder")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per benchmark measurement")


def run_cli(args: argparse.Namespace) -> int:
    from ._cli_common import console

    run_demo(args.output, runs=args.runs, console=console())
    return 0
