"""arm64 bundles of MobileNetV2 (real ImageNet weights): ExecuTorch FP32 and INT8, TVM FP32, checked under qemu.

    python benchmarks/bench_arm64.py [--views 3] [--cpu cortex-a72] [--runs 20] [--smoke]

Builds the bundles with ``build_arm64`` (ExecuTorch 1.5.1 + XNNPACK, cross-built with aarch64-linux-gnu-g++;
INT8 calibrated on 64 random photo crops) and ``build_arm64_tvm`` (Apache TVM 0.27 Relax, LLVM for AArch64,
untuned), then runs each bundle's example runner under ``qemu-aarch64 -cpu <cpu>`` on the fixed photo views
(``--views`` per photo) and compares with PyTorch FP32: max abs diff and top-1 agreement. Sizes: program
bytes. Emulated timings are not ARM performance, so none are reported; as a proxy for how good untuned TVM
code is, the same Relax module compiled for this x86 host (LLVM, -mcpu=<host CPU>) is timed against ONNX Runtime
and eager PyTorch (median of ``--runs``, batch 1, 2 threads, same run). Writes benchmarks/results/arm64.json.

``--smoke``: the same three bundles and the x86 proxy for a small random-init conv net (stem, depthwise and
pointwise convolutions, ReLU6, pooling, linear) on 64x64 photo views (the first 4), 8 calibration crops, 2 runs;
the JSON goes to ``$DEEPSEEK_BENCH_RESULTS`` or a temporary folder. Exits 77 (skipped) with a one-line reason
when the aarch64 cross toolchain, qemu-aarch64, ExecuTorch or TVM is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from _common import add_smoke_flag, results_dir, scratch_dir, write_results
from deepseek import assets
from deepseek._core.errors import MissingDependencyError
from deepseek._core.machine import summary
from deepseek.bench import measure
from deepseek.compile.arm64 import CC, CXX, QEMU, SYSROOT, build_arm64, toolchain
from deepseek.compile.arm64_tvm import build_arm64_tvm

SKIPPED = 77  # tests/test_benchmarks_smoke.py: a dependency is missing


def missing_dependency() -> str | None:
    """Why the bundles cannot be built and run here, or None."""
    absent = [tool for tool, path in toolchain().items() if path is None]
    if absent:
        return f"the arm64 cross toolchain / qemu is missing ({', '.join(absent)}): apt-get install " \
               + " ".join(pkg for tool, pkg in ((CXX, "g++-aarch64-linux-gnu"), (CC, "gcc-aarch64-linux-gnu"),
                                                (QEMU, "qemu-user")) if tool in absent)
    absent = [name for name in ("executorch", "tvm") if importlib.util.find_spec(name) is None]
    if absent:
        return f"{' and '.join(absent)} not installed: pip install -e '.[arm]'"
    return None


def smoke_model() -> torch.nn.Module:
    """A small MobileNet-like conv net (random init) for --smoke: seconds to lower, compile and run under qemu."""
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16), nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    ).eval()


def run_bundle(bundle: Path, x: torch.Tensor, cpu: str, work: Path) -> torch.Tensor:
    x.numpy().astype("<f4").tofile(work / "in.f32")
    subprocess.run([QEMU, "-cpu", cpu, "-L", str(SYSROOT), str(bundle / "run_model"), str(work / "in.f32"),
                    str(work / "out.f32")], check=True, capture_output=True)
    return torch.from_numpy(np.fromfile(work / "out.f32", dtype="<f4").copy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--cpu", default="cortex-a72")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--proxy-only", action="store_true", help="rerun only the x86 proxy timing (updates the JSON)")
    add_smoke_flag(parser)
    args = parser.parse_args()
    reason = missing_dependency()
    if reason:
        print(f"skipped: {reason}", flush=True)
        sys.exit(SKIPPED)
    runs = 2 if args.smoke else args.runs
    work = scratch_dir("bench-arm64-")
    if args.smoke:
        model = smoke_model()
        views, _ = assets.photo_batch(size=64, views=1)
        views = views[:4]
    else:
        model = assets.mobilenet_v2().eval()
        views, _ = assets.photo_batch(views=args.views)
    if args.proxy_only:
        path = results_dir(args) / "arm64.json"
        out = json.loads(path.read_text()) if path.exists() or not args.smoke else {}
        out["x86_proxy_ms"] = x86_proxy(model, views[:1], runs, work)
        write_results(args, "arm64.json", out)
        return
    calib = assets.photo_calibration_batch(8, size=64) if args.smoke else assets.photo_calibration_batch(64)
    try:
        fp32 = build_arm64(model, (views[:1],), work / "mobilenet_v2_arm.so", cpu=args.cpu)
        int8 = build_arm64(model, (views[:1],), work / "mobilenet_v2_arm_int8.so", cpu=args.cpu,
                           calibration=list(calib.split(16)))
        tvm = build_arm64_tvm(model, (views[:1],), work / "mobilenet_v2_arm_tvm.so", cpu=args.cpu)
    except MissingDependencyError as e:  # e.g. the aarch64 runtime wheels could not be fetched
        print(f"skipped: {str(e).splitlines()[0] if str(e) else type(e).__name__}", flush=True)
        sys.exit(SKIPPED)
    with torch.no_grad():
        ref = model(views)
    out = {"machine": summary(1), "cpu": args.cpu, "views": len(views), "rows": {}}
    for label, built in (("fp32", fp32), ("int8", int8), ("tvm fp32", tvm)):
        got = torch.stack([run_bundle(built.bundle, views[i:i + 1], args.cpu, work) for i in range(len(views))])
        confident = ref.softmax(-1).amax(-1) >= 0.5
        agree = got.argmax(-1) == ref.argmax(-1)
        row = {"program_mb": built.program_bytes / 1e6, "max_abs_diff": float((got - ref).abs().max()),
               "agreement": float(agree.float().mean()), "confident_views": int(confident.sum()),
               "confident_agreement": float(agree[confident].float().mean())}
        out["rows"][label] = row
        print(f"{label}: program {row['program_mb']:.1f} MB, max |diff| vs PyTorch FP32 {row['max_abs_diff']:.2e}, "
              f"top-1 agreement {row['agreement']:.1%} ({len(views)} views), confident {row['confident_agreement']:.1%} "
              f"({row['confident_views']})", flush=True)
    out["x86_proxy_ms"] = x86_proxy(model, views[:1], runs, work)
    write_results(args, "arm64.json", out)


def x86_proxy(model: torch.nn.Module, x: torch.Tensor, runs: int, work: Path) -> dict[str, float]:
    """Untuned TVM code quality on this host: the same import and passes, LLVM for x86, vs ORT and eager."""
    import onnxruntime as ort
    import tvm
    from tvm import relax
    from tvm.relax.frontend.torch import from_exported_program

    import deepseek

    torch.set_num_threads(2)
    module = from_exported_program(torch.export.export(model, (x,)), keep_params_as_input=False)
    with tvm.transform.PassContext(opt_level=3):
        host = tvm.target.codegen.llvm_get_system_cpu()  # "native" is refused with the wheel's default triple
        executable = tvm.compile(module, target=tvm.target.Target({"kind": "llvm", "mcpu": host}))
    vm = relax.VirtualMachine(executable, tvm.cpu())
    data = tvm.runtime.tensor(x.numpy())
    onnx_path = deepseek.export_onnx(model, x, work / "m.onnx").path
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}
    with torch.no_grad():
        got = vm["main"](data)
        got = got[0] if not hasattr(got, "numpy") else got
        assert np.abs(got.numpy() - model(x).numpy()).max() < 1e-3
        ms = {"eager": measure(lambda: model(x), warmup=3, runs=runs).median_ms,
              "onnxruntime": measure(lambda: session.run(None, feed), warmup=3, runs=runs).median_ms,
              f"tvm untuned (llvm -mcpu={host})": measure(lambda: vm["main"](data), warmup=3, runs=runs).median_ms}
    print("x86 proxy, batch 1: " + "  ".join(f"{k} {v:.2f} ms" for k, v in ms.items())
          + f"  -> TVM untuned is {ms[f'tvm untuned (llvm -mcpu={host})'] / ms['onnxruntime']:.1f}x ONNX Runtime's time",
          flush=True)
    return ms


if __name__ == "__main__":
    main()
