"""Structured channel pruning: measured latency of the pruned model vs the dense one, same run.

    python benchmarks/bench_structured_pruning.py [--model resnet50] [--ratio 0.5] [--runs 20]

``prune_channels(model, ratio, round_to=8)`` (L1 group importance, Torch-Pruning dependency graph), then
eager PyTorch and ONNX Runtime latency (median of ``--runs``) at batch 1 and 8 for dense and pruned, plus
parameters and MACs; then the pruned model quantized to static INT8 for ONNX Runtime (U8S8, calibrated on
random inputs — speed only), against the dense FP32 baseline. Random-init torchvision weights (no offline ResNet-50 checkpoint): speed only —
accuracy after pruning + fine-tuning is measured on real labeled data in bench_pruning.py.
Writes benchmarks/results/structured_pruning_<model>.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torchvision
from rich.console import Console

import deepseek
from deepseek._machine import summary
from deepseek.pruning import prune_channels

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    console = Console(width=140)
    torch.manual_seed(0)
    dense = getattr(torchvision.models, args.model)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    result = prune_channels(dense, args.ratio, x, round_to=8)
    pruned = result.model
    console.print(str(result).splitlines()[0])
    out = {"model": args.model, "ratio": args.ratio, "machine": summary(), "pruning": result.to_dict(), "rows": {}}
    out["pruning"]["groups"] = len(result.groups)
    for label, model in (("dense", dense), ("pruned", pruned)):
        r = deepseek.benchmark(model, x, backends=["eager", "onnxruntime"], baseline="eager", batch_sizes=[1, 8], runs=args.runs)
        console.print(f"[bold]{args.model} {label}[/]")
        console.print(r.table())
        out["rows"][label] = {f"{row['backend']} bs{row['batch_size']}": row["median_ms"] for row in r.to_dict()["rows"]}
    import tempfile

    from deepseek.quantization import quantize_static_onnx

    calib = torch.randn(32, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    int8 = quantize_static_onnx(pruned, calib, Path(tempfile.mkdtemp()) / "pruned_int8.onnx")
    r = deepseek.benchmark(int8.path, x, backends=["onnxruntime"], batch_sizes=[1, 8], runs=args.runs)
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
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"structured_pruning_{args.model}.json").write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
