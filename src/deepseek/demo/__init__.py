"""``make demo`` / ``deepseek demo``: the main job end to end on the bundled real MobileNetV2.

Export to ONNX (verified), quantize to static INT8 calibrated on real photos, check both against FP32
PyTorch on real photo views, benchmark eager PyTorch vs ONNX Runtime FP32 vs INT8 in the same run; then
train a CNN on real labeled images, prune half its channels, fine-tune and quantize it, and measure it against
the dense model (:mod:`deepseek.demo.pruned`); hand the dense CNN to ``deepseek optimize`` with a 0.5-point
accuracy budget; write a report folder (JSON, PNG, Markdown, the optimizer's folder).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .._core.checks import check_int
from .._core.errors import invalid

STEPS = ("load MobileNetV2 (real ImageNet weights)", "export to ONNX and verify", "quantize to INT8 (static, real photos)",
         "the peer: OpenVINO + NNCF INT8 on the same photos", "top-1 agreement on real photos",
         "benchmark eager vs ONNX Runtime FP32 vs INT8 vs the peer")
INT8_FLOOR = 0.95  # top-1 agreement with FP32 on held-out confident photo crops the INT8 model must keep


OPTIMIZE_BUDGET_PP = 0.5
# ONNX Runtime lowerings only: an AOTInductor candidate takes minutes to build on 2 cores
OPTIMIZE_LOWERINGS = ("ort-fp32", "ort-int8", "ort-int8-dynamic")
OPTIMIZE_PRUNE = (0.5,)  # pruned candidates are fine-tuned for an epoch on the first 10,000 training images


def run_demo(output: str | Path = "reports/demo", *, runs: int = 20, batch_sizes: tuple[int, ...] = (1, 8),
             cnn_epochs: int = 3, cnn_train_images: int | None = None, optimize_trials: int = 8,
             calibration_images: int = 128, console: Console | None = None) -> dict[str, Any]:
    """Run the demo and write ``output``/{report.json, benchmark.png, summary.md, the ONNX models, optimize/}.

    ``cnn_epochs`` / ``cnn_train_images`` size the pruning part's training (all images by default);
    ``optimize_trials`` the candidates ``deepseek optimize`` measures for the dense CNN; ``calibration_images``
    the photo crops MobileNetV2's static INT8 is calibrated on. The INT8 layout is the one this CPU's class
    calls for (:func:`deepseek.quantization.choose_precision`), held to :data:`INT8_FLOOR` on other crops; when
    OpenVINO and NNCF are installed, their INT8 of the same model on the same crops is measured beside it."""
    import importlib.util
    import logging

    import torch

    from .. import assets
    from .._core.atomic import check_output, output_folder, write_json, write_text
    from .._core.progress import progress
    from ..bench import benchmark
    from ..compile import export_onnx
    from ..evaluation import evaluate, reference_outputs
    from ..quantization import choose_precision, quantize_static_onnx
    from . import pruned as demo_pruned

    for name, value in (("runs", runs), ("cnn_epochs", cnn_epochs), ("optimize_trials", optimize_trials),
                        ("calibration_images", calibration_images)):
        check_int(value, name, minimum=1)
    check_int(cnn_train_images, "cnn_train_images", minimum=1, optional=True, expected="an integer >= 1")
    if not isinstance(batch_sizes, (tuple, list)) or not batch_sizes or \
            any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in batch_sizes):
        raise invalid("batch_sizes", batch_sizes, "a non-empty tuple of positive integers, e.g. (1, 8)")
    check_output(output, argument="output", folder=True)
    previous = Path(output) / "optimize"  # replaced at the end only when it is a previous demo's search
    if previous.exists() and not (previous.is_dir() and (not any(previous.iterdir())
                                                          or (previous / "recipe.yaml").is_file())):
        raise invalid("output", str(output), f"a new folder or a previous demo's ({previous} is not a previous "
                                             "deepseek optimize output, and the demo would replace it)")
    console = console or Console()
    out = output_folder(output)
    started = time.perf_counter()
    logging.getLogger().setLevel(logging.ERROR)  # ORT's quantizer logs a pre-processing hint per call
    with progress() as bar:
        task = bar.add_task(STEPS[0], total=len(STEPS) + len(demo_pruned.STEPS) + 1)
        model = assets.mobilenet_v2()
        example = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
        bar.update(task, advance=1, description=STEPS[1])
        exported = export_onnx(model, example, out / "mobilenet_v2.onnx", input_names=["input"])
        bar.update(task, advance=1, description=STEPS[2])
        # calibration: random crops of the photos; agreement is measured on the fixed views, not these
        # percentile calibration agreed best with FP32 on the held-out views (benchmarks/bench_quant_ort.py)
        calibration = assets.photo_calibration_batch(calibration_images)
        plan = choose_precision()
        int8 = quantize_static_onnx(model, calibration, out / "mobilenet_v2_int8.onnx", method="percentile",
                                    input_names=["input"], held_out=assets.photo_calibration_batch(64, seed=1),
                                    min_agreement=INT8_FLOOR)
        bar.update(task, advance=1, description=STEPS[3])
        peer = None
        if importlib.util.find_spec("openvino") and importlib.util.find_spec("nncf"):
            from ..quantization.openvino_ptq import quantize_openvino

            # the FP32 graph our rows use (dynamic batch): exporting the model again cost the demo ~12 s
            peer = quantize_openvino(exported.path, calibration, out / "mobilenet_v2_openvino_int8.xml")
        bar.update(task, advance=1, description=STEPS[4])
        reference = reference_outputs(model)  # FP32 PyTorch on the photo views, run once for the three
        agree_fp32 = evaluate(exported.path, data="photos", reference=reference)
        agree_int8 = evaluate(int8.path, data="photos", reference=reference)
        agree_peer = evaluate(peer.path, data="photos", reference=reference) if peer else None
        bar.update(task, advance=1, description=STEPS[5])
        fp32_bench = benchmark("mobilenet_v2", backends=["eager", "onnxruntime"], batch_sizes=list(batch_sizes),
                               runs=runs, progress=False)
        int8_bench = benchmark(int8.path, example, backends=["onnxruntime"], batch_sizes=list(batch_sizes), runs=runs,
                               progress=False)
        peer_bench = benchmark(peer.path, example, backends=["openvino"], batch_sizes=list(batch_sizes), runs=runs,
                               progress=False) if peer else None
        duel = head_to_head({"ONNX Runtime FP32": exported.path, f"ONNX Runtime INT8 ({int8.int8_format})": int8.path,
                             **({"OpenVINO + NNCF INT8": peer.path} if peer else {})}, rounds=max(3, min(runs, 15)))
        bar.update(task, advance=1)
        pruned, dense, cnn_data = demo_pruned.pruned_int8(out, bar, task, epochs=cnn_epochs,
                                                          train_images=cnn_train_images, runs=runs,
                                                          batch_sizes=(batch_sizes[0], 64))
        bar.update(task, description=f"deepseek optimize the dense CNN ({optimize_trials} candidates, "
                                     f"budget {OPTIMIZE_BUDGET_PP} pp)")
        optimized = optimize_step(dense, cnn_data, out / "optimize", optimize_trials)
        bar.update(task, advance=1, description="done")
    combined = fp32_bench.with_rows_of(int8_bench, "onnxruntime INT8")
    if peer_bench is not None:
        combined = combined.with_rows_of(peer_bench, "openvino INT8 (NNCF)")
    combined.plot(out / "benchmark.png")

    rows = {(r.backend, r.batch_size): r for r in fp32_bench.rows}
    rows.update({("int8", r.batch_size): r for r in int8_bench.rows})
    rows.update({("peer", r.batch_size): r for r in (peer_bench.rows if peer_bench else [])})
    columns = ["eager", "onnxruntime", "int8"] + (["peer"] if peer_bench else [])
    agreements = [agree_fp32, agree_int8] + ([agree_peer] if agree_peer else [])
    table = Table(title="MobileNetV2 (real ImageNet weights): before → after", title_justify="left")
    table.add_column("metric")
    for col in ("before: PyTorch eager FP32", "ONNX Runtime FP32", f"ONNX Runtime INT8 ({int8.int8_format})",
                "peer: OpenVINO + NNCF INT8")[: len(columns)]:
        table.add_column(col, justify="right")
    for b in batch_sizes:
        got = [rows.get((c, b)) for c in columns]
        if all(r is not None and r.status == "ok" for r in got):
            e = got[0].latency.median_ms
            table.add_row(f"latency, batch {b} (median ms)", f"{e:.2f}",
                          *(f"{r.latency.median_ms:.2f} ({e / r.latency.median_ms:.1f}x)" for r in got[1:]))
            table.add_row(f"throughput, batch {b} (img/s)", *(f"{r.throughput:.0f}" for r in got))
    first = [rows.get((c, batch_sizes[0])) for c in columns]
    if all(r is not None and r.status == "ok" for r in first):
        table.add_row("peak memory (MB, own process)", *(f"{r.peak_rss_mb:.0f}" for r in first))
        table.add_row("model size (MB)", *(f"{r.artifact_mb:.1f}" for r in first))
    table.add_row(f"top-1 agreement with FP32, all {agree_int8.samples} photo views", "reference",
                  *(f"{r.value:.1%}" for r in agreements))
    table.add_row(f"… on the {agree_int8.extra['confident_views']} confident views (FP32 top-1 p >= 0.5)", "reference",
                  *(_pct(r.extra["confident_agreement"]) for r in agreements))
    table.add_row(f"… on the {agree_int8.extra['clear_views']} clear views (confident, top-1 margin >= 0.2)", "reference",
                  *(_pct(r.extra["clear_agreement"]) for r in agreements))
    table.add_row("mean KL vs FP32", "", *(f"{r.extra['mean_kl']:.1e}" for r in agreements))
    table.caption = agreement_note(agree_int8)
    table.caption_justify = "left"
    console.print(combined.table())
    console.print(f"INT8 layout for this CPU: {plan.reason}")
    console.print(int8.summary())
    if peer is None:
        console.print("peer not measured: OpenVINO + NNCF are not installed (pip install 'deepseek-core[openvino]')")
    console.print(table)
    console.print(duel_line(duel))
    console.print(demo_pruned.table(pruned))
    console.print(optimize_table(optimized))

    report = {"model": "mobilenet_v2 (torchvision, ImageNet-1k weights, sha256 verified)",
              "export": exported.to_dict(), "int8": int8.to_dict(), "int8_summary": int8.summary(),
              "int8_plan": dataclasses.asdict(plan), "peer_openvino_nncf": peer.to_dict() if peer else None,
              "agreement": {"fp32_onnx": agree_fp32.to_dict(), "int8_onnx": agree_int8.to_dict(),
                            "peer_openvino_int8": agree_peer.to_dict() if agree_peer else None},
              "benchmark": {"fp32": fp32_bench.to_dict(), "int8": int8_bench.to_dict(),
                            "peer_openvino_int8": peer_bench.to_dict() if peer_bench else None},
              "head_to_head": duel, "pruned_int8": pruned,
              "optimize": optimized, "seconds": time.perf_counter() - started}
    write_json(out / "report.json", report)
    write_text(out / "summary.md", _markdown([b for b in (fp32_bench, int8_bench, peer_bench) if b], agreements, exported,
                                             pruned, int8.summary()) + f"\n{duel_line(duel)}\n"
               + _optimize_markdown(optimized))
    console.print(f"report: {out}/report.json, {out}/benchmark.png, {out}/summary.md ({report['seconds']:.0f} s)")
    return report


def head_to_head(paths: dict[str, Path], *, rounds: int) -> list[dict[str, Any]]:
    """Batch-1 latency of each artifact in ``paths`` (the first is the baseline), timed together in one process,
    interleaved with the order rotating each round, each speed-up with a 95 % paired-bootstrap interval: on a shared
    machine, rows timed one after another can drift apart; rows timed together cannot."""
    from .._core import machine as _machine
    from ..optimize.latency import measure_interleaved
    from ..optimize.ranking import rank_latencies

    times = measure_interleaved(list(paths.values()), (1, 3, 224, 224), threads=_machine.physical_cores(),
                                rounds=rounds, calls=20)
    estimates = rank_latencies({label: times[str(path)] for label, path in paths.items()}, next(iter(paths)))
    return [dataclasses.asdict(e) for e in estimates]


def duel_line(estimates: list[dict[str, Any]]) -> str:
    """One line of :func:`head_to_head`'s figures, fastest first."""
    return ("Batch 1, timed together (interleaved, the order rotating; x = vs the first, 95 % interval over rounds): "
            + "; ".join(f"{e['name']} {e['median_ms']:.2f} ms" + ("" if e["name"] == e["baseline"] else
                        f" ({e['ratio']:.2f}x [{e['ratio_low']:.2f}, {e['ratio_high']:.2f}])") for e in estimates))


def optimize_step(model: Any, data: str, output: Path, trials: int) -> dict[str, Any]:
    """``deepseek optimize`` on ``model`` (judged on ``data``'s held-out part); the figures the demo shows."""
    import torch

    from ..optimize import optimize

    # optimize writes only into a new folder: it searches into a staging one beside ``output``, which then replaces
    # a previous demo's (a second ``make demo`` in the same place works, and a failed search leaves the old one)
    staging = Path(tempfile.mkdtemp(prefix=".optimize-", dir=output.parent))
    try:
        result = optimize(model, (torch.zeros(1, 1, 28, 28),), data=data, max_accuracy_drop=OPTIMIZE_BUDGET_PP,
                          trials=trials, lowerings=OPTIMIZE_LOWERINGS, prune_ratios=OPTIMIZE_PRUNE,
                          output=staging / "new", progress=False)
        if output.exists():
            output.rename(staging / "old")
        (staging / "new").rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    rows = [{"candidate": c.row()["candidate"], "accuracy": c.scores.get("accuracy"), "drop_pp": c.scores.get("drop_pp"),
             "latency_ms": c.latency_ms, "size_mb": None if c.size_bytes is None else c.size_bytes / 1e6,
             "within_budget": c.feasible, "chosen": c is result.best, "error": c.error} for c in result.candidates]
    return {"data": data, "budget_pp": OPTIMIZE_BUDGET_PP, "reference_accuracy": result.reference_accuracy,
            "chosen": result.best.row()["candidate"], "speedup_vs_fp32_ort": result.speedup, "rows": rows,
            "output": str(output), "artifact": str(output / Path(result.artifact).name)}


def optimize_table(result: dict[str, Any]) -> Any:
    from .._core.table import Table

    t = Table(title=f"deepseek optimize, the dense CNN on {result['data']}: budget {result['budget_pp']} pp below FP32 "
                    f"({result['reference_accuracy']:.2%}), objective batch-1 latency", title_justify="left")
    for col in ("candidate", "held-out accuracy", "drop (pp)", "batch-1 ms", "size MB", "within budget"):
        t.add_column(col, justify="left" if col == "candidate" else "right")
    for r in result["rows"]:
        t.add_row(*_optimize_cells(r))
    speed = result["speedup_vs_fp32_ort"]
    t.caption = (f"chosen: {result['chosen']}" + (f", {speed:.2f}x the FP32 ONNX Runtime baseline" if speed else "")
                 + f"; artifact, pareto.json/png, report.md and recipe.yaml in {result['output']}. Candidates outside "
                   "the budget are not timed (cheapest checks first).")
    t.caption_justify = "left"
    return t


def _optimize_markdown(result: dict[str, Any]) -> str:
    lines = [f"## deepseek optimize: the dense CNN on {result['data']}, budget {result['budget_pp']} pp", "",
             "| candidate | held-out accuracy | drop (pp) | batch-1 ms | size MB | within budget |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(_optimize_cells(r)) + " |" for r in result["rows"]]
    speed = result["speedup_vs_fp32_ort"]
    lines += ["", f"Chosen: {result['chosen']}" + (f", {speed:.2f}x the FP32 ONNX Runtime baseline." if speed else "."), ""]
    return "\n".join(lines)


def _optimize_cells(r: dict[str, Any]) -> list[str]:
    """One candidate of :func:`optimize_step` as the cells of its table row."""
    return [r["candidate"] + (" (chosen)" if r["chosen"] else ""), _pct(r["accuracy"]),
            "–" if r["drop_pp"] is None else f"{r['drop_pp']:+.2f}",
            "–" if r["latency_ms"] is None else f"{r['latency_ms']:.3f}",
            "–" if r["size_mb"] is None else f"{r['size_mb']:.2f}",
            "failed" if r["error"] else "yes" if r["within_budget"] else "no"]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def agreement_note(result: Any) -> str:
    """One measured line on what the INT8 model's disagreements with FP32 are."""
    e = result.extra
    if not e["disagreements"]:
        return f"INT8 picks FP32's top-1 class on all {result.samples} views."
    return (f"INT8 picks another class than FP32 on {e['disagreements']} of {result.samples} views; "
            f"{e['disagreements_near_tie']} of them are near-ties, where FP32's own top two classes are within 0.2 "
            f"probability of each other, so any small change of the numbers can swap them. Where FP32 is clear, "
            f"INT8 agrees on {_pct(e['clear_agreement'])} of {e['clear_views']} views; mean KL "
            f"{e['mean_kl']:.1e} says how far the probabilities move.")


def _markdown(benches: list[Any], agreements: list[Any], exported: Any, pruned: dict[str, Any], int8_line: str) -> str:
    lines = ["# DeepSeek demo: MobileNetV2", "", "| model | backend | batch | median ms | items/s | peak MB | size MB |",
             "|---|---|---|---|---|---|---|"]
    for bench in benches:
        for r in bench.rows:
            if r.status == "ok":
                lines.append(f"| {bench.model['name']} | {r.backend} | {r.batch_size} | {r.latency.median_ms:.2f} | "
                             f"{r.throughput:.0f} | {r.peak_rss_mb:.0f} | {r.artifact_mb:.1f} |")
    lines.append("")
    for a in agreements:
        lines.append(f"- {a.model}: top-1 agreement with FP32 PyTorch on all {a.samples} real photo views {a.value:.2%}, "
                     f"on {a.extra['confident_views']} confident views {_pct(a.extra['confident_agreement'])}, on "
                     f"{a.extra['clear_views']} clear views {_pct(a.extra['clear_agreement'])}; mean KL "
                     f"{a.extra['mean_kl']:.1e}")
    lines += ["", agreement_note(agreements[1]), "", int8_line]
    m = benches[0].machine
    lines += ["", f"Export max |diff| {exported.max_abs_diff:.1e}. Machine: {m['cpu']}, {m['threads']} threads, {m['date']}.", ""]
    batch_sizes = list(pruned["rows"][0]["median_ms"])
    lines += [f"## CNN trained on {pruned['data']}: dense → pruned 50% → pruned + INT8", "",
              "| variant | held-out accuracy | " + " | ".join(f"batch {b} median ms" for b in batch_sizes) + " | size MB |",
              "|---|---|" + "---|" * len(batch_sizes) + "---|"]
    for r in pruned["rows"]:
        ms = " | ".join("failed" if r["median_ms"][b] is None else f"{r['median_ms'][b]:.3f}" for b in batch_sizes)
        lines.append(f"| {r['variant']} | {r['accuracy']:.2%} | {ms} | {r['size_mb']:.2f} |")
    lines.append("")
    return "\n".join(lines)
