"""INT8 lowerings compared in one run: ResNet-50 and BERT-base on this CPU.

    python benchmarks/bench_int8_lowerings.py [--runs 20] [--models resnet50,bert-base] [--smoke]

Rows: eager FP32; ONNX Runtime FP32; ORT's own quantizers (``quantize_static`` with its defaults, S8S8,
and configured U8S8 per-channel; ``quantize_dynamic`` defaults for BERT); torchao PT2E with its default
``X86InductorQuantizer`` + ``torch.compile``; and ours (``quantize_static_onnx`` / ``quantize_dynamic_onnx``,
``quantize_pt2e``). Latency is the median of ``--runs`` calls in this process (2 threads); fidelity is the
SQNR (dB) of the INT8 output against FP32 on real inputs (photo views; Rotten Tomatoes snippets). The
models have random weights (no offline ResNet-50/BERT-base checkpoints): speed and numerical fidelity
only; accuracy on real weights is in bench_quant_ort.py (MobileNetV2) and bench_minilm_int8.py (MiniLM).
Writes benchmarks/results/int8_lowerings.json. ``--smoke``: every row on tiny stand-ins (a ResNet of one basic
block per stage with 10 classes at 32x32, batch 1 only; a 1-layer BERT, hidden 64, at 16 tokens), 8 calibration
inputs, 4 checked inputs, 2 timed runs (figures meaningless; see benchmarks/_common.py).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import deepseek
from _common import add_smoke_flag, scratch_dir, write_results
from deepseek import assets, models
from deepseek._core.machine import int8_fast_path, summary
from deepseek.bench import measure
from deepseek.quantization import quantize_dynamic_onnx, quantize_pt2e, quantize_static_onnx, sqnr_db
from deepseek.quantization.onnx_static import CalibrationReader


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What a run measures: the full run's sizes by default, :data:`SMOKE` for ``--smoke``."""

    smoke: bool = False
    image_size: int = 224  # ResNet input side
    calibration: int = 32  # photo crops (ResNet) / snippets after the checked ones (BERT)
    calibration_batch: int = 8
    check: int = 16  # inputs the SQNR is measured on
    batch_sizes: tuple[int, ...] = (1, 8)  # ResNet timed batch sizes
    seq_len: int = 128  # BERT tokens


SMOKE = Sizes(smoke=True, image_size=32, calibration=8, calibration_batch=4, check=4, batch_sizes=(1,), seq_len=16)


def image_model(sizes: Sizes) -> tuple[torch.nn.Module, tuple]:
    """ResNet-50 (random weights) and its example input; in smoke mode a 10-class ResNet of one basic block per
    stage (each Inductor compile's time grows with the layers)."""
    if sizes.smoke:
        from torchvision.models.resnet import BasicBlock, ResNet

        model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10).eval()
        return model, (torch.randn(1, 3, sizes.image_size, sizes.image_size),)
    spec = models.get("resnet50")
    return spec.model, spec.example_inputs(1)


def text_model(sizes: Sizes) -> torch.nn.Module:
    """BERT-base (random weights) returning its hidden states; in smoke mode 1 layer, hidden 64."""
    if not sizes.smoke:
        return models.get("bert-base").model
    from transformers import BertConfig, BertModel

    config = BertConfig(num_hidden_layers=1, hidden_size=64, num_attention_heads=2, intermediate_size=128,
                        attn_implementation="eager")  # bert-base-uncased vocabulary
    return models.HiddenStates(BertModel(config, add_pooling_layer=False).eval()).eval()


def ort_runner(path: Path, names: list[str]) -> Callable[..., Any]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(*xs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {n: x.numpy() for n, x in zip(names, xs)})[0])

    return run


def torchao_default_pt2e(model: torch.nn.Module, examples: tuple, calibration: list[tuple], dynamic: bool = False) -> Any:
    """torchao's documented recipe, untouched: strict export, default quantizer, compile with freezing."""
    import torch._inductor.config as inductor_config
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    with torch.no_grad():
        try:
            graph = torch.export.export(model, examples, strict=True).module()
        except Exception:
            graph = torch.export.export(model, examples).module()
        graph.graph.eliminate_dead_code()
        graph.recompile()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config(is_dynamic=dynamic))
        prepared = prepare_pt2e(graph, quantizer)
        rows = examples[0].shape[0]  # the exported graph is specialized to the example's batch size
        for batch in calibration:
            for i in range(0, batch[0].shape[0] - rows + 1, rows):
                prepared(*(t[i:i + rows] for t in batch))
        compiled = torch.compile(convert_pt2e(prepared))

    def run(*xs: torch.Tensor) -> torch.Tensor:
        with inductor_config.patch(freezing=True), torch.no_grad():
            return compiled(*xs)

    return run


def measure_rows(rows: dict[str, Callable[..., Any]], inputs: tuple, check: tuple, runs: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        reference = rows["eager fp32"](*check)
        for name, fn in rows.items():
            started = time.perf_counter()
            fn(*inputs)  # warm-up (compiles torch.compile rows)
            first_s = time.perf_counter() - started
            rows_per_call = inputs[0].shape[0]  # static-shape graphs: check in calls of the timed batch size
            got = torch.cat([fn(*(t[i:i + rows_per_call] for t in check)) for i in range(0, check[0].shape[0], rows_per_call)])
            fidelity = sqnr_db(reference, got)
            stats = measure(lambda fn=fn: fn(*inputs), warmup=2, runs=runs)
            out[name] = {"median_ms": stats.median_ms, "p90_ms": stats.p90_ms, "sqnr_db": fidelity, "first_call_s": first_s}
            print(f"  {name:34s} {stats.median_ms:8.2f} ms   SQNR {fidelity:6.1f} dB   (first call {first_s:.1f} s)", flush=True)
    base = out["eager fp32"]["median_ms"]
    ort = out["onnxruntime fp32"]["median_ms"]
    for row in out.values():
        row["speedup_vs_eager"] = base / row["median_ms"]
        row["speedup_vs_ort_fp32"] = ort / row["median_ms"]
    return out


def resnet50(work: Path, runs: int, sizes: Sizes = Sizes()) -> dict[str, Any]:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    model, example = image_model(sizes)
    calib = assets.photo_calibration_batch(sizes.calibration, size=sizes.image_size)
    views, _ = assets.photo_batch(size=sizes.image_size, views=1)
    fp32 = deepseek.export_onnx(model, example, work / "r50.onnx").path
    step = sizes.calibration_batch
    batches = [calib[i:i + step] for i in range(0, sizes.calibration, step)]
    ort_default = work / "r50_ort_default.onnx"
    ort_u8s8 = work / "r50_ort_u8s8.onnx"
    with contextlib.redirect_stdout(io.StringIO()):
        quantize_static(str(fp32), str(ort_default), CalibrationReader.from_batches("input", batches),
                        quant_format=QuantFormat.QDQ, per_channel=True)
        quantize_static(str(fp32), str(ort_u8s8), CalibrationReader.from_batches("input", batches),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    ours_ort = quantize_static_onnx(model, calib, work / "r50_ours.onnx", method="percentile").path
    results = {}
    for batch in sizes.batch_sizes:
        x = calib[:batch]
        print(f"resnet50 batch {batch}", flush=True)
        rows = {
            "eager fp32": model,
            "onnxruntime fp32": ort_runner(fp32, ["input"]),
            "ORT quantize_static default (S8S8)": ort_runner(ort_default, ["input"]),
            "ORT quantize_static U8S8": ort_runner(ort_u8s8, ["input"]),
            "deepseek static ONNX (U8S8)": ort_runner(ours_ort, ["input"]),
            "torchao PT2E x86 + compile": torchao_default_pt2e(model, (x,), [(b,) for b in batches]),
            "deepseek PT2E (mse) + compile": quantize_pt2e(model, (x,), batches, observer="mse", dynamic_batch=False),
        }
        results[f"batch{batch}"] = measure_rows(rows, (x,), (views[:sizes.check],), runs)
    return results


def bert_base(work: Path, runs: int, sizes: Sizes = Sizes()) -> dict[str, Any]:
    from onnxruntime.quantization import quantize_dynamic
    from transformers import AutoTokenizer

    model = text_model(sizes)
    # the bert-base-uncased WordPiece vocabulary (30,522 tokens)
    tokenizer = AutoTokenizer.from_pretrained(assets.minilm_path(), local_files_only=True)
    texts = assets.rotten_tomatoes().texts
    count = sizes.check + sizes.calibration
    enc = tokenizer(texts[:count], padding="max_length", truncation=True, max_length=sizes.seq_len, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    fp32 = deepseek.export_onnx(model, (ids[:1], mask[:1]), work / "bert.onnx", input_names=["input_ids", "attention_mask"]).path
    ort_dynamic = work / "bert_ort_dynamic.onnx"
    with contextlib.redirect_stdout(io.StringIO()):
        quantize_dynamic(str(fp32), str(ort_dynamic))
    ours_dynamic = quantize_dynamic_onnx(fp32, work / "bert_ours_dynamic.onnx")
    names = ["input_ids", "attention_mask"]
    step = sizes.calibration_batch
    calibration = [(ids[i:i + step], mask[i:i + step]) for i in range(sizes.check, count, step)]
    x = (ids[:1], mask[:1])
    print(f"bert-base{' (smoke: 1 layer, hidden 64)' if sizes.smoke else ''} seq {sizes.seq_len} batch 1", flush=True)
    rows = {
        "eager fp32": model,
        "onnxruntime fp32": ort_runner(fp32, names),
        "ORT quantize_dynamic default": ort_runner(ort_dynamic, names),
        "deepseek dynamic ONNX (per-channel)": ort_runner(ours_dynamic, names),
        "torchao PT2E x86 + compile": torchao_default_pt2e(model, x, calibration),
        "torchao PT2E x86 dynamic + compile": torchao_default_pt2e(model, x, calibration[:1], dynamic=True),
        "deepseek PT2E (mse) + compile": quantize_pt2e(model, x, calibration, observer="mse", dynamic_batch=False),
    }
    return {"batch1": measure_rows(rows, x, (ids[:sizes.check], mask[:sizes.check]), runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=None, help="timed calls per row (default 20; 2 with --smoke)")
    parser.add_argument("--models", default="resnet50,bert-base")
    add_smoke_flag(parser)
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else Sizes()
    if args.runs is None:
        args.runs = 2 if args.smoke else 20
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    work = scratch_dir("bench-int8-")
    out: dict[str, Any] = {"machine": summary(), "int8_fast_path": int8_fast_path(), "runs": args.runs,
                           "threads": torch.get_num_threads()}
    if args.smoke:
        out["smoke"] = dataclasses.asdict(sizes)
    chosen = args.models.split(",")
    if "resnet50" in chosen:
        out["resnet50"] = resnet50(work, args.runs, sizes)
    if "bert-base" in chosen:
        out["bert-base"] = bert_base(work, args.runs, sizes)
    write_results(args, "int8_lowerings.json", out)
    for model in chosen:
        for batch, rows in out[model].items():
            print(f"\n{model} {batch}: " + "; ".join(f"{k} {v['speedup_vs_eager']:.2f}x eager / {v['speedup_vs_ort_fp32']:.2f}x ORT"
                                                      for k, v in rows.items() if k != "eager fp32"))


if __name__ == "__main__":
    main()
