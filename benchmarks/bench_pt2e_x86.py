"""torchao PT2E X86InductorQuantizer (static INT8) + torch.compile vs eager FP32, ResNet-50 batch 1, same run.

    python benchmarks/bench_pt2e_x86.py [--runs 20]

The peer our ONNX Runtime U8S8 path is compared with (benchmarks/bench_quant_ort.py). Needs torchao
(`pip install torchao==0.18.0`). Inductor's weight freezing must be switched on globally for the quantized
graph (``torch.compile(options={"freezing": True})`` fails on onednn.qconv_prepack).
"""

from __future__ import annotations

import argparse
import time

import torch
import torchvision

from deepseek.bench import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    import torch._inductor.config as inductor_config
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        graph = torch.export.export(model, (x,), strict=True).module()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(graph, quantizer)
        for _ in range(8):
            prepared(torch.randn(1, 3, 224, 224))
        quantized = convert_pt2e(prepared)
        inductor_config.freezing = True
        started = time.perf_counter()
        compiled = torch.compile(quantized)
        compiled(x)
        compile_s = time.perf_counter() - started
        eager = measure(lambda: model(x), warmup=3, runs=args.runs).median_ms
        int8 = measure(lambda: compiled(x), warmup=3, runs=args.runs).median_ms
    print(f"resnet50 batch 1, {torch.get_num_threads()} threads: eager FP32 {eager:.1f} ms, "
          f"PT2E INT8 + Inductor {int8:.1f} ms ({eager / int8:.2f}x); compile {compile_s:.0f} s")


if __name__ == "__main__":
    main()
