"""Structured channel pruning: measured latency of the pruned model vs the dense one, same run.

    python benchmarks/bench_structured_pruning.py [--model resnet50] [--ratio 0.5] [--runs 20] [--smoke]

``prune_channels(model, ratio, round_to=8)`` (L1 group importance, Torch-Pruning dependency graph), then
eager PyTorch and ONNX Runtime latency (median of ``--runs``) at batch 1 and 8 for dense and pruned, plus
parameters and MACs; then the pruned model quantized to static INT8 for ONNX Runtime (U8S8, calibrated on
random inputs — speed only), against the dense FP32 baseline. Random-init torchvision weights (no offline ResNet-50 checkpoint): speed only —
accuracy after pruning + fine-tuning is measured on real labeled data in bench_pruning.py.
Writes benchmarks/results/structured_pruning_<model>.json. ``--smoke``: the same rows for resnet18 with 10 classes
at 64x64 (8 calibration inputs), batch 1 only, measured in this process, 2 timed runs after 1 warm-up; figures
meaningless, written outside benchmarks/results.
"""

from __future__ import annotations

import argparse

import torch
import torchvision
from rich.console import Console

import deepseek
from _common import add_smoke_flag, scratch_dir, write_results
from deepseek._core.machine import summary
from deepseek.pruning import prune_channels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=20)
    add_smoke_flag(parser)
    args = parser.parse_args()
    # smoke: a small model and input, fewer warm-up calls; otherwise torchvision's defaults and deepseek.benchmark's
    side, calib_n, build, timing, batches = 224, 32, {}, {}, [1, 8]
    if args.smoke:  # in-process: a worker process per row costs more than the row
        args.model, args.runs = "resnet18", 2
        side, calib_n, build, timing, batches = 64, 8, {"num_classes": 10}, {"warmup": 1, "isolate": False}, [1]
    console = Console(width=140)
    torch.manual_seed(0)
    dense = getattr(torchvision.models, args.model)(weights=None, **build).eval()
    x = torch.randn(1, 3, side, side)
    result = prune_channels(dense, args.ratio, x, round_to=8)
    pruned = result.model
    console.print(str(result).splitlines()[0])
    out = {"model": args.model, "ratio": args.ratio, "machine": summary(), "pruning": result.to_dict(), "rows": {}}
    out["pruning"]["groups"] = len(result.groups)
    for label, model in (("dense", dense), ("pruned", pruned)):
        r = deepseek.benchmark(model, x, backends=["eager", "onnxruntime"], baseline="eager", batch_sizes=batches, runs=args.runs,
                               **timing)
        console.print(f"[bold]{args.model} {label}[/]")
        console.print(r.table())
        out["rows"][label] = {f"{row['backend']} bs{row['batch_size']}": row["median_ms"] for row in r.to_dict()["rows"]}

    from deepseek.quantization import quantize_static_onnx

    calib = torch.randn(calib_n, 3, side, side, generator=torch.Generator().manual_seed(1))
    int8 = quantize_static_onnx(pruned, calib, scratch_dir() / "pruned_int8.onnx")
    r = deepseek.benchmark(int8.path, x, backends=["onnxruntime"], batch_sizes=batches, runs=args.runs, **timing)
    console.print(f"[bold]{args.model} pruned + INT8[/]")
    console.print(r.table())
    out["rows"]["pruned+int8"] = {f"{row['backend']} bs{row['batch_size']}": row["median_ms"] for row in r.to_dict()["rows"]}
    for key, ms in out["rows"]["pruned+int8"].items():
        console.print(f"pruned + INT8 {key}: {ms:.1f} ms → {out['rows']['dense']['eager ' + key.split()[1]] / ms:.2f}x dense eager, "
                      f"{out['rows']['dense'][key] / ms:.2f}x dense ORT FP32")
    for key, ms in out["rows"]["dense"].items():
        speedup = ms / out["rows"]["pruned"][key]
        out["rows"].setdefault("speedup", {})[key] = speedup
        console.print(f"{key}: dense {ms:.1f} ms, pruned {out['rows']['pruned'][key]:.1f} ms → {speedup:.2f}x")
    write_results(args, f"structured_pruning_{args.model}.json", out)


if __name__ == "__main__":
    main()
