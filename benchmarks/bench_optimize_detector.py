"""``deepseek optimize`` on a real ONNX detector, judged by the user's metric, against the single peers.

    python benchmarks/bench_optimize_detector.py [--trials 10] [--size 320] [--smoke]

The model: PP-OCRv4's text detector (DBNet) as the rapidocr-onnxruntime wheel ships it (``assets.text_detector()``),
an ONNX file exported from Paddle: no PyTorch source. The data: lines of *Hamlet* drawn on the bundled real photos,
each line's box its label (examples/text_detection/make_data.py; the composition is synthetic, the photos and words
real): 96 judged images and 64 calibration images at ``--size`` pixels square. The metric: box F1 at IoU 0.5 after
PP-OCR's post-processing (examples/text_detection/metric.py). Budget: 1.0 point of F1.

Rows, all from one run on one machine:
- ``optimize``: the artifact ``deepseek.optimize(det.onnx, data, metric=box_f1)`` chose, and what it searched.
- ``ort fp32``: the file in ONNX Runtime (the baseline).
- ``ort u8s8 default``: ONNX Runtime's ``quantize_static`` as its guide shows it (QDQ, U8S8, per channel, MinMax).
- ``openvino fp32``: the file in OpenVINO. ``openvino + nncf``: NNCF's default PTQ, in OpenVINO.
Every row's box F1 on the 96 images; latency batch 1 of the rows interleaved in one process (7 rounds, the order
rotating), the speed-up over ORT FP32 with a 95 % paired-bootstrap interval. Writes
benchmarks/results/optimize_detector_<cpu class>.json. ``--smoke``: 16 + 8 images at 96 pixels, 2 trials, ORT
lowerings only, no peers but ORT's (figures meaningless).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import deepseek
from _common import add_smoke_flag, scratch_dir, write_results
from bench_int8_cpu_class import cpu_class_slug
from deepseek import assets
from deepseek._core.machine import summary
from deepseek.optimize.latency import measure_interleaved
from deepseek.optimize.ranking import rank_latencies
from deepseek.quantization import choose_precision

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "text_detection"
METRIC = f"{EXAMPLE / 'metric.py'}:box_f1"


def _example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"text_detection_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ort_u8s8_default(source: Path, calibration: np.ndarray, output: Path) -> Path:
    """ONNX Runtime's static INT8 as its documentation shows it, on the same calibration images."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from deepseek.quantization.onnx_graph import prepare_graph
    from deepseek.quantization.onnx_static import CalibrationReader

    prepared = prepare_graph(source, output.with_name("prepared.onnx"))
    feeds = [{"x": calibration[i:i + 8]} for i in range(0, len(calibration), 8)]
    with contextlib.redirect_stdout(io.StringIO()):
        quantize_static(str(prepared), str(output), CalibrationReader(feeds), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return output


def box_f1_of(path: Path, x: np.ndarray, labels: np.ndarray, metric: Any) -> float:
    from deepseek.optimize.data import predict_all

    return float(metric([predict_all(deepseek.load(path, threads=2), x, batch_size=8)[0]], labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=None, help="candidates optimize measures (default 10; smoke 3)")
    parser.add_argument("--size", type=int, default=None, help="image side in pixels, a multiple of 32 (default 320)")
    add_smoke_flag(parser)
    args = parser.parse_args()
    size = args.size or (96 if args.smoke else 320)
    trials = args.trials or (2 if args.smoke else 10)  # smoke: the baseline and plain INT8 (no ranking of fallbacks)
    count, calibration_count = (16, 8) if args.smoke else (96, 64)
    work = scratch_dir("bench-optimize-detector-")
    source = assets.text_detector()
    data = _example("make_data").write_folder(work / "data", count=count, calibration=calibration_count, size=size)
    metric = _example("metric").box_f1
    x, labels = np.load(data / "inputs.npy"), np.load(data / "labels.npy")
    calibration = np.load(data / "calibration.npy")

    started = time.perf_counter()
    lowerings = ("ort-fp32", "ort-int8") if args.smoke else ()
    result = deepseek.optimize(str(source), data=str(data), metric=METRIC, max_accuracy_drop=1.0, trials=trials,
                               lowerings=lowerings, output=work / "optimized", progress=not args.smoke)
    search_s = time.perf_counter() - started
    rows: dict[str, Path] = {"optimize": result.artifact, "ort fp32": source}
    rows["ort u8s8 default"] = ort_u8s8_default(source, calibration, work / "ort_u8s8.onnx")
    if not args.smoke and any(c.params["lowering"].startswith("openvino") for c in result.candidates):
        from deepseek.quantization.openvino_ptq import convert_openvino, quantize_openvino

        rows["openvino fp32"] = convert_openvino(source, work / "ov_fp32.xml")
        rows["openvino + nncf"] = quantize_openvino(source, calibration, work / "ov_int8.xml").path
    f1 = {name: box_f1_of(path, x, labels, metric) for name, path in rows.items()}
    times = measure_interleaved(list(rows.values()), (1, 3, size, size), threads=2, rounds=3 if args.smoke else 7,
                                calls=3 if args.smoke else 20, sample=result.judge.timing_sample(work, 1))
    estimates = {e.name: e for e in rank_latencies({n: times[str(p)] for n, p in rows.items()}, "ort fp32")}
    peers = [n for n in rows if n not in ("optimize", "ort fp32")]
    fastest_peer = min(peers, key=lambda n: estimates[n].median_ms)
    within_budget = [n for n in peers if 100 * (f1["ort fp32"] - f1[n]) <= 1.0 + 1e-9]
    fastest_within = min(within_budget, key=lambda n: estimates[n].median_ms) if within_budget else None
    plan = choose_precision()
    out: dict[str, Any] = {
        "machine": summary(), "cpu_class": plan.isa_class, "model": "PP-OCRv4 det (rapidocr-onnxruntime 1.4.4)",
        "images": count, "calibration_images": calibration_count, "size": size, "budget_pp": 1.0,
        "search_s": search_s, "chosen": result.best.row()["candidate"],
        "candidates": [c.row() for c in result.candidates],
        "rows": {n: {"box_f1": f1[n], "drop_pp": 100 * (f1["ort fp32"] - f1[n]), "median_ms": estimates[n].median_ms,
                     "speedup": estimates[n].ratio, "speedup_ci": [estimates[n].ratio_low, estimates[n].ratio_high],
                     "within_noise_of": list(estimates[n].within_noise_of)} for n in rows},
        "fastest_peer": fastest_peer, "fastest_peer_within_budget": fastest_within,
        "optimize_vs_fastest_peer_within_budget": (estimates[fastest_within].median_ms / estimates["optimize"].median_ms
                                                   if fastest_within else None),
    }
    if args.smoke:
        out["smoke"] = True
    print(f"{out['model']} on {out['cpu_class']}, {count} images at {size}px; optimize chose: {out['chosen']} "
          f"({search_s:.0f} s, {len(result.candidates)} candidates)")
    print(f"{'row':<18} {'box F1':>7} {'drop pp':>8} {'ms':>8} {'x ORT FP32 [95% CI]':>22}")
    for n, r in out["rows"].items():
        print(f"{n:<18} {r['box_f1']:7.4f} {r['drop_pp']:8.2f} {r['median_ms']:8.2f} "
              f"{r['speedup']:8.2f} [{r['speedup_ci'][0]:.2f}, {r['speedup_ci'][1]:.2f}]")
    if fastest_within:
        print(f"optimize vs the fastest peer within the budget ({fastest_within}): "
              f"{out['optimize_vs_fastest_peer_within_budget']:.2f}x")
    write_results(args, f"optimize_detector_{cpu_class_slug(plan.isa_class)}.json", out)


if __name__ == "__main__":
    sys.exit(main())
