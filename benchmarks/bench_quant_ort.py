"""Static INT8 on ONNX Runtime (QDQ U8S8, per-channel) vs FP32, same run.

    python benchmarks/bench_quant_ort.py [--runs 30] [--smoke]

MobileNetV2 with real ImageNet weights, calibrated (percentile) on 128 random crops of the real photos and
checked on the 8 fixed views of each photo (top-1 agreement with FP32, overall and on confident views).
ResNet-50 (random weights: speed only) also against ONNX Runtime's default S8S8 quantization.
Writes benchmarks/results/quant_ort.json. ``--smoke``: the same steps at 64x64 (MobileNetV2 on 1 view of each
photo, calibrated on 8 crops; a 10-class ResNet-18 in ResNet-50's place), batch 1 only, measured in this process (no
worker process per row), 2 timed runs (figures meaningless; see benchmarks/_common.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

import deepseek
from _common import add_smoke_flag, scratch_dir, write_results
from deepseek import assets, models
from deepseek.quantization import quantize_static_onnx
from deepseek.quantization.onnx_static import CalibrationReader


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What a run measures: the full run's sizes by default, :data:`SMOKE` for ``--smoke``."""

    smoke: bool = False
    image_size: int = 224
    views: int = 8  # fixed views per photo the agreement is measured on
    calibration: int = 128  # photo crops MobileNetV2 is calibrated on
    resnet_calibration: int = 32  # random inputs ResNet is calibrated on
    resnet_calibration_batch: int = 8
    batch_sizes: tuple[int, ...] = (1, 8)


SMOKE = Sizes(smoke=True, image_size=64, views=1, calibration=8, resnet_calibration=8, resnet_calibration_batch=4,
              batch_sizes=(1,))


def resnet(sizes: Sizes) -> tuple[torch.nn.Module, tuple]:
    """ResNet-50 (random weights) and its example input; in smoke mode a 10-class ResNet-18 at 64x64."""
    if sizes.smoke:
        import torchvision

        return torchvision.models.resnet18(num_classes=10).eval(), (torch.randn(1, 3, sizes.image_size, sizes.image_size),)
    spec = models.get("resnet50")
    return spec.model, spec.example_inputs(1)


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
    parser.add_argument("--runs", type=int, default=None, help="timed calls per measurement (default 30; 2 with --smoke)")
    add_smoke_flag(parser)
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else Sizes()
    if args.runs is None:
        args.runs = 2 if args.smoke else 30
    logging.disable(logging.WARNING)  # ORT's quantizer suggests pre-processing on every call
    console = Console(width=140)
    out: dict = {"smoke": dataclasses.asdict(sizes)} if args.smoke else {}
    work = scratch_dir("bench-quant-")

    x, _ = assets.photo_batch(size=sizes.image_size, views=sizes.views)
    held_out = x.numpy()
    calib = assets.photo_calibration_batch(sizes.calibration, size=sizes.image_size)
    mbv2 = assets.mobilenet_v2()
    fp32 = deepseek.export_onnx(mbv2, x[:1], work / "mbv2_fp32.onnx").path
    q = quantize_static_onnx(mbv2, calib, work / "mbv2_int8.onnx", method="percentile")
    out["mobilenet_v2"] = {"agreement_held_out": agreement(fp32, q.path, held_out),
                           "size_mb": {"fp32": fp32.stat().st_size / 1e6, "int8": q.size_bytes / 1e6}}
    for label, model in (("fp32", mbv2), ("int8", q.path)):
        backends = ["eager", "onnxruntime"] if label == "fp32" else ["onnxruntime"]
        r = deepseek.benchmark(model, x[:1], backends=backends, baseline=backends[0], batch_sizes=list(sizes.batch_sizes),
                               runs=args.runs, isolate=not sizes.smoke)
        console.print(r.table())
        out["mobilenet_v2"][label] = r.to_dict()

    r50_model, ex = resnet(sizes)
    rfp32 = deepseek.export_onnx(r50_model, ex, work / "r50_fp32.onnx").path
    n, step, side = sizes.resnet_calibration, sizes.resnet_calibration_batch, sizes.image_size
    calib50 = torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(1))
    r50 = quantize_static_onnx(r50_model, calib50, work / "r50_int8.onnx")
    from onnxruntime.quantization import QuantFormat, quantize_static

    quantize_static(str(rfp32), str(work / "r50_ort_default.onnx"),
                    CalibrationReader.from_batches("input", [calib50[i:i + step] for i in range(0, n, step)]),
                    quant_format=QuantFormat.QDQ, per_channel=True)  # ORT defaults: S8S8
    out["resnet50"] = {}
    for label, model, backends in (("fp32", r50_model, ["eager", "onnxruntime"]), ("deepseek_int8_u8s8", r50.path, ["onnxruntime"]),
                                   ("ort_default_int8_s8s8", work / "r50_ort_default.onnx", ["onnxruntime"])):
        r = deepseek.benchmark(model, ex, backends=backends, baseline=backends[0], batch_sizes=list(sizes.batch_sizes),
                               runs=args.runs, isolate=not sizes.smoke)
        console.print(f"[bold]resnet50 {label}[/]")
        console.print(r.table())
        out["resnet50"][label] = r.to_dict()
    write_results(args, "quant_ort.json", out)

    def med(d, backend, b):
        return next(r["median_ms"] for r in d["rows"] if r["backend"] == backend and r["batch_size"] == b)

    for name, ref_key, keys in (("mobilenet_v2", "fp32", ["int8"]), ("resnet50", "fp32", ["deepseek_int8_u8s8", "ort_default_int8_s8s8"])):
        for b in sizes.batch_sizes:
            e, o = med(out[name][ref_key], "eager", b), med(out[name][ref_key], "onnxruntime", b)
            parts = ", ".join(f"{k} {med(out[name][k], 'onnxruntime', b):.2f} ms ({e / med(out[name][k], 'onnxruntime', b):.2f}x eager, "
                              f"{o / med(out[name][k], 'onnxruntime', b):.2f}x ORT fp32)" for k in keys)
            console.print(f"{name} batch {b}: eager {e:.2f} ms, ORT fp32 {o:.2f} ms, {parts}")
    console.print(out["mobilenet_v2"]["agreement_held_out"], out["mobilenet_v2"]["size_mb"])


if __name__ == "__main__":
    main()
