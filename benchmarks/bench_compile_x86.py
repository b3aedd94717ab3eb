"""x86_64: the ``deepseek-compile`` artifacts of ResNet-50 vs eager PyTorch and vs the plain ONNX export, same run.

    python benchmarks/bench_compile_x86.py [--runs 20] [--level 3] [--no-inductor] [--no-int8] [--smoke]

Rows: eager; the plain ONNX export on ONNX Runtime; the default ``-O`` artifact (ONNX Runtime); its static
INT8 (``--quantize int8``, ORT U8S8, calibrated on 64 bundled photo crops); and the AOTInductor packages
(``--backend inductor``, FP32 and PT2E INT8 with the x86 Inductor quantizer, built from the same weights as
a state_dict with ``--arch torchvision:resnet50``: PT2E's x86 quantizer matches layers by module, which a
graph reloaded from a ``.pt2`` no longer has).

ResNet-50 (torchvision, random-init weights: speed only) saved as a ``.pt2``, exported from it to ONNX as is
("plain"), and compiled from it with
``compile_model(..., target_arch="x86_64", optimization_level=--level)`` (our passes + ONNX Runtime's offline
graph optimization). Each runs in a fresh process (``deepseek.benchmark``, median of ``--runs``, batch 1 and 8,
2 threads). ONNX Runtime optimizes a plain model again when it loads it, so the artifact's gain is mostly
session start-up: that is measured too (median of 5 session creations each). Writes
benchmarks/results/compile_x86.json.

``--smoke``: every row but the FP32 AOTInductor package (the INT8 one takes the same path) on torchvision ResNet-18
(``--arch torchvision:resnet18``) at 64x64, 8 calibration crops, batch 1 only, 2 runs and 2 session creations; the JSON goes to ``$DEEPSEEK_BENCH_RESULTS`` or a temporary folder.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torchvision

import deepseek
from _common import add_smoke_flag, scratch_dir, write_results
from deepseek.compile.pipeline import compile_model


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
    parser.add_argument("--no-inductor", action="store_true", help="skip the AOTInductor packages (minutes to compile)")
    parser.add_argument("--no-int8", action="store_true", help="skip the INT8 artifacts")
    add_smoke_flag(parser)
    args = parser.parse_args()
    # the smoke run: the same rows, on a small torchvision model (an --arch the inductor rows can rebuild it from)
    name, size, samples, sizes, sessions = ("resnet18", 64, 8, [1], 2) if args.smoke else ("resnet50", 224, 64, [1, 8], 5)
    runs = 2 if args.smoke else args.runs
    work = scratch_dir("bench-compile-")
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None).eval()
    x = torch.randn(1, 3, size, size)
    # a dynamic batch (traced with 2 rows: torch.export specializes size-1 dimensions)
    torch.export.save(torch.export.export(model, (torch.cat([x, x]),), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},)),
                      work / f"{name}.pt2")
    torch.save(model.state_dict(), work / f"{name}.pth")
    # the plain baseline comes from the same .pt2, so both rows start from the same graph
    plain = deepseek.export_onnx(torch.export.load(str(work / f"{name}.pt2")), (torch.cat([x, x]),),
                                 work / f"{name}.onnx").path
    compiled = compile_model(str(work / f"{name}.pt2"), target_arch="x86_64", optimization_level=args.level,
                             output=str(work / f"{name}_compiled.onnx"), inputs=[tuple(x.shape)])
    artifacts = {"plain ONNX, ONNX Runtime": plain, f"deepseek-compile -O{args.level}": Path(compiled["output"])}
    builds = {"compiled": compiled}
    if not args.no_int8:
        builds["ort_int8"] = compile_model(str(work / f"{name}.pt2"), target_arch="x86_64", optimization_level=args.level,
                                           output=str(work / f"{name}_int8.onnx"), inputs=[tuple(x.shape)],
                                           quantize="int8", calib="photos", samples=samples)
        artifacts["deepseek-compile --quantize int8 (ORT U8S8)"] = work / f"{name}_int8.onnx"
    if not args.no_inductor:
        for label, quantize in (("--backend inductor", None), ("--backend inductor --quantize int8", "int8")):
            if (quantize and args.no_int8) or (args.smoke and not quantize and not args.no_int8):
                continue  # smoke: the INT8 package only (the FP32 one is the same call without quantize: a minute)
            out = work / f"{name}_aoti_{quantize or 'fp32'}.pt2"
            # from the state_dict: PT2E's x86 quantizer matches layers by module, which a reloaded .pt2 has lost
            builds[label] = compile_model(str(work / f"{name}.pth"), target_arch="x86_64", optimization_level=args.level,
                                          output=str(out), inputs=[tuple(x.shape)], backend="inductor",
                                          arch=f"torchvision:{name}", quantize=quantize, calib="photos" if quantize else None,
                                          samples=samples if quantize else None)
            print(f"built {label} in {builds[label]['compile_s']:.0f} s", flush=True)
            artifacts[f"deepseek-compile {label}"] = out
    rows = {}
    eager = deepseek.benchmark(model, x, backends=["eager"], batch_sizes=sizes, runs=runs, progress=False)
    for label, path in artifacts.items():
        backend = "eager" if path.suffix == ".pt2" else "onnxruntime"  # an AOTInductor package runs as compiled
        result = deepseek.benchmark(str(path), x, backends=[backend], batch_sizes=sizes, runs=runs, progress=False)
        rows[label] = {f"bs{r.batch_size}_ms": r.latency.median_ms for r in result.rows} | {
            "size_mb": path.stat().st_size / 1e6} | ({"session_s": session_seconds(path, sessions)}
                                                     if backend == "onnxruntime" else {})
    rows = {"eager PyTorch": {f"bs{r.batch_size}_ms": r.latency.median_ms for r in eager.rows}} | rows
    base = rows["eager PyTorch"]
    for label, row in rows.items():
        print(f"{label:28s} " + "  ".join(f"bs{b} {row[f'bs{b}_ms']:7.2f} ms ({base[f'bs{b}_ms'] / row[f'bs{b}_ms']:.2f}x)"
                                          for b in sizes)
              + (f"  session {row['session_s']:.2f} s" if "session_s" in row else ""), flush=True)
    write_results(args, "compile_x86.json", {"machine": eager.machine, "builds": builds, "rows": rows})


if __name__ == "__main__":
    main()
