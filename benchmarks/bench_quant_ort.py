"""Static INT8 on ONNX Runtime (QDQ U8S8, per-channel) vs FP32, same run.

    python benchmarks/bench_quant_ort.py [--runs 30]

MobileNetV2 with real ImageNet weights, calibrated (percentile) on 128 random crops of the real photos and
checked on the 8 fixed views of each photo (top-1 agreement with FP32, overall and on confident views).
ResNet-50 (random weights: speed only) also against ONNX Runtime's default S8S8 quantization.
Writes benchmarks/results/quant_ort.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

import deepseek
from deepseek import assets, models
from deepseek.quantization import quantize_static_onnx

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def agreement(fp32: Path, int8: Path, x: np.ndarray) -> dict:
    import onnxruntime as ort

    def run(p):
        s = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        return s.run(None, {s.get_inputs()[0].name: x})[0]

    ref, got = run(fp32), run(int8)
    confident = torch.tensor(ref).softmax(-1).max(-1).values.numpy() >= 0.5
    agree = ref.argmax(1) == got.argmax(1)
    return {"views": len(x), "agreement": float(agree.mean()), "confident_views": int(confident.sum()),
            "confident_agreement": float(agree[confident].mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # ORT's quantizer suggests pre-processing on every call
    console = Console(width=140)
    out: dict = {}
    work = Path(tempfile.mkdtemp(prefix="bench-quant-"))

    x, _ = assets.photo_batch(views=8)
    held_out = x.numpy()
    calib = assets.photo_calibration_batch(128)
    mbv2 = assets.mobilenet_v2()
    fp32 = deepseek.export_onnx(mbv2, x[:1], work / "mbv2_fp32.onnx").path
    q = quantize_static_onnx(mbv2, calib, work / "mbv2_int8.onnx", method="percentile")
    out["mobilenet_v2"] = {"agreement_held_out": agreement(fp32, q.path, held_out),
                           "size_mb": {"fp32": fp32.stat().st_size / 1e6, "int8": q.size_bytes / 1e6}}
    for label, model in (("fp32", mbv2), ("int8", q.path)):
        backends = ["eager", "onnxruntime"] if label == "fp32" else ["onnxruntime"]
        r = deepseek.benchmark(model, x[:1], backends=backends, baseline=backends[0], batch_sizes=[1, 8], runs=args.runs)
        console.print(r.table())
        out["mobilenet_v2"][label] = r.to_dict()

    spec = models.get("resnet50")
    ex = spec.example_inputs(1)
    rfp32 = deepseek.export_onnx(spec.model, ex, work / "r50_fp32.onnx").path
    calib50 = torch.randn(32, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    r50 = quantize_static_onnx(spec.model, calib50, work / "r50_int8.onnx")
    from onnxruntime.quantization import QuantFormat, quantize_static

    from deepseek.quantization.onnx_static import _Reader

    quantize_static(str(rfp32), str(work / "r50_ort_default.onnx"), _Reader("input", [calib50[i:i + 8] for i in range(0, 32, 8)]),
                    quant_format=QuantFormat.QDQ, per_channel=True)  # ORT defaults: S8S8
    out["resnet50"] = {}
    for label, model, backends in (("fp32", spec.model, ["eager", "onnxruntime"]), ("deepseek_int8_u8s8", r50.path, ["onnxruntime"]),
                                   ("ort_default_int8_s8s8", work / "r50_ort_default.onnx", ["onnxruntime"])):
        r = deepseek.benchmark(model, ex, backends=backends, baseline=backends[0], batch_sizes=[1, 8], runs=args.runs)
        console.print(f"[bold]resnet50 {label}[/]")
        console.print(r.table())
        out["resnet50"][label] = r.to_dict()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quant_ort.json").write_text(json.dumps(out, indent=2, default=str) + "\n")

    def med(d, backend, b):
        return next(r["median_ms"] for r in d["rows"] if r["backend"] == backend and r["batch_size"] == b)

    for name, ref_key, keys in (("mobilenet_v2", "fp32", ["int8"]), ("resnet50", "fp32", ["deepseek_int8_u8s8", "ort_default_int8_s8s8"])):
        for b in (1, 8):
            e, o = med(out[name][ref_key], "eager", b), med(out[name][ref_key], "onnxruntime", b)
            parts = ", ".join(f"{k} {med(out[name][k], 'onnxruntime', b):.2f} ms ({e / med(out[name][k], 'onnxruntime', b):.2f}x eager, "
                              f"{o / med(out[name][k], 'onnxruntime', b):.2f}x ORT fp32)" for k in keys)
            console.print(f"{name} batch {b}: eager {e:.2f} ms, ORT fp32 {o:.2f} ms, {parts}")
    console.print(out["mobilenet_v2"]["agreement_held_out"], out["mobilenet_v2"]["size_mb"])


if __name__ == "__main__":
    main()
