"""arm64 bundles of MobileNetV2 (real ImageNet weights), FP32 and INT8, checked under qemu, same run.

    python benchmarks/bench_arm64.py [--views 3] [--cpu cortex-a72]

Builds both bundles with ``build_arm64`` (ExecuTorch 1.5.1 + XNNPACK, cross-built with aarch64-linux-gnu-g++),
INT8 calibrated on 64 random photo crops, then runs each bundle's example runner under
``qemu-aarch64 -cpu <cpu>`` on the fixed photo views (``--views`` per photo) and compares with PyTorch FP32:
max abs diff (FP32) and top-1 agreement (INT8). Sizes: program bytes. Emulated timings are not ARM
performance, so none are reported. Writes benchmarks/results/arm64.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from deepseek import assets
from deepseek._machine import summary
from deepseek.compile.arm64 import QEMU, SYSROOT, build_arm64

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def run_bundle(bundle: Path, x: torch.Tensor, cpu: str, work: Path) -> torch.Tensor:
    x.numpy().astype("<f4").tofile(work / "in.f32")
    subprocess.run([QEMU, "-cpu", cpu, "-L", str(SYSROOT), str(bundle / "run_model"), str(work / "in.f32"),
                    str(work / "out.f32")], check=True, capture_output=True)
    return torch.from_numpy(np.fromfile(work / "out.f32", dtype="<f4").copy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--cpu", default="cortex-a72")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-arm64-"))
    model = assets.mobilenet_v2().eval()
    views, _ = assets.photo_batch(views=args.views)
    calib = assets.photo_calibration_batch(64)
    fp32 = build_arm64(model, (views[:1],), work / "mobilenet_v2_arm.so", cpu=args.cpu)
    int8 = build_arm64(model, (views[:1],), work / "mobilenet_v2_arm_int8.so", cpu=args.cpu, calibration=list(calib.split(16)))
    with torch.no_grad():
        ref = model(views)
    out = {"machine": summary(1), "cpu": args.cpu, "views": len(views), "rows": {}}
    for label, built in (("fp32", fp32), ("int8", int8)):
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
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "arm64.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
