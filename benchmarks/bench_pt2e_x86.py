"""torchao PT2E X86InductorQuantizer (static INT8) + torch.compile vs eager FP32, ResNet-50 batch 1, same run.

    python benchmarks/bench_pt2e_x86.py [--runs 20] [--smoke]

The peer our ONNX Runtime U8S8 path is compared with (benchmarks/bench_quant_ort.py). Needs torchao
(`pip install torchao==0.18.0`). Inductor's weight freezing must be switched on globally for the quantized
graph (``torch.compile(options={"freezing": True})`` fails on onednn.qconv_prepack).
Writes benchmarks/results/pt2e_x86.json. ``--smoke``: the same steps on a ResNet-18 (10 classes) at 64x64 with
2 calibration inputs and 2 timed runs (figures meaningless; see benchmarks/_common.py).
"""

from __future__ import annotations

import argparse
import time

import torch
import torchvision

from _common import add_smoke_flag, write_results
from deepseek.bench import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=None, help="timed calls per row (default 20; 2 with --smoke)")
    add_smoke_flag(parser)
    args = parser.parse_args()
    import torch._inductor.config as inductor_config
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if args.smoke:
        name, size, calibration_inputs = "resnet18 (10 classes, 64x64)", 64, 2
    else:
        name, size, calibration_inputs = "resnet50", 224, 8
    runs = args.runs if args.runs is not None else 2 if args.smoke else 20
    torch.manual_seed(0)
    model = (torchvision.models.resnet18(num_classes=10) if args.smoke else torchvision.models.resnet50()).eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        graph = torch.export.export(model, (x,), strict=True).module()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(graph, quantizer)
        for _ in range(calibration_inputs):
            prepared(torch.randn(1, 3, size, size))
        quantized = convert_pt2e(prepared)
        inductor_config.freezing = True
        started = time.perf_counter()
        compiled = torch.compile(quantized)
        compiled(x)
        compile_s = time.perf_counter() - started
        eager = measure(lambda: model(x), warmup=3, runs=runs).median_ms
        int8 = measure(lambda: compiled(x), warmup=3, runs=runs).median_ms
    print(f"{name} batch 1, {torch.get_num_threads()} threads: eager FP32 {eager:.1f} ms, "
          f"PT2E INT8 + Inductor {int8:.1f} ms ({eager / int8:.2f}x); compile {compile_s:.0f} s")
    write_results(args, "pt2e_x86.json", {
        "model": name, "batch_size": 1, "input_size": size, "threads": torch.get_num_threads(), "runs": runs,
        "calibration_inputs": calibration_inputs, "eager_fp32_median_ms": eager, "pt2e_int8_inductor_median_ms": int8,
        "speedup_vs_eager": eager / int8, "compile_s": compile_s, "smoke": args.smoke,
    })


if __name__ == "__main__":
    main()
