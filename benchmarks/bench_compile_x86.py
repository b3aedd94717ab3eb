"""x86_64: the ``deepseek-compile`` artifact of ResNet-50 vs eager PyTorch and vs the plain ONNX export, same run.

    python benchmarks/bench_compile_x86.py [--runs 20] [--level 3]

ResNet-50 (torchvision, random-init weights: speed only) saved as a ``.pt2``, exported from it to ONNX as is
("plain"), and compiled from it with
``compile_model(..., target_arch="x86_64", optimization_level=--level)`` (our passes + ONNX Runtime's offline
graph optimization). Each runs in a fresh process (``deepseek.benchmark``, median of ``--runs``, batch 1 and 8,
2 threads). ONNX Runtime optimizes a plain model again when it loads it, so the artifact's gain is mostly
session start-up: that is measured too (median of 5 session creations each). Writes
benchmarks/results/compile_x86.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torchvision

import deepseek
from deepseek.compile.cli import compile_model

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def session_seconds(path: Path, repeats: int = 5) -> float:
    import onnxruntime as ort

    times = []
    for _ in range(repeats):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        started = time.perf_counter()
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--level", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-compile-"))
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    x = torch.randn(1, 3, 224, 224)
    # a dynamic batch (traced with 2 rows: torch.export specializes size-1 dimensions)
    torch.export.save(torch.export.export(model, (torch.cat([x, x]),), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},)),
                      work / "resnet50.pt2")
    # the plain baseline comes from the same .pt2, so both rows start from the same graph
    plain = deepseek.export_onnx(torch.export.load(str(work / "resnet50.pt2")), (torch.cat([x, x]),),
                                 work / "resnet50.onnx").path
    compiled = compile_model(str(work / "resnet50.pt2"), target_arch="x86_64", optimization_level=args.level,
                             output=str(work / "resnet50_compiled.onnx"), inputs=[tuple(x.shape)])
    rows = {}
    eager = deepseek.benchmark(model, x, backends=["eager"], batch_sizes=[1, 8], runs=args.runs, progress=False)
    for label, path in (("plain ONNX, ONNX Runtime", plain), (f"deepseek-compile -O{args.level}", Path(compiled["output"]))):
        result = deepseek.benchmark(str(path), x, backends=["onnxruntime"], batch_sizes=[1, 8], runs=args.runs, progress=False)
        rows[label] = {f"bs{r.batch_size}_ms": r.latency.median_ms for r in result.rows} | {
            "session_s": session_seconds(path), "size_mb": path.stat().st_size / 1e6}
    rows = {"eager PyTorch": {f"bs{r.batch_size}_ms": r.latency.median_ms for r in eager.rows}} | rows
    base = rows["eager PyTorch"]
    for label, row in rows.items():
        print(f"{label:28s} bs1 {row['bs1_ms']:7.2f} ms ({base['bs1_ms'] / row['bs1_ms']:.2f}x)  bs8 {row['bs8_ms']:7.2f} ms "
              f"({base['bs8_ms'] / row['bs8_ms']:.2f}x)" + (f"  session {row['session_s']:.2f} s" if "session_s" in row else ""),
              flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "compile_x86.json").write_text(json.dumps({"machine": eager.machine, "compiled": compiled, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
