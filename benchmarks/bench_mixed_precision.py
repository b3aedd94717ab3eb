"""Mixed precision under an accuracy budget vs all-INT8 / all-INT4, same run.

    python benchmarks/bench_mixed_precision.py [--runs 20] [--models mobilenet_v2,smollm2] [--smoke]

MobileNetV2 (real ImageNet weights): ``plan_mixed_precision`` (static INT8 or FP32 per layer, budget: output
SQNR >= ``--min-sqnr`` dB on 64 calibration crops) lowered through PT2E + Inductor with the planned layers
excluded, against eager FP32, a BF16 copy (the noise floor of any 8-bit-mantissa format), ORT FP32, ORT
static INT8 (U8S8, percentile; without and with bias correction, and with the ``--keep`` activations most
harmful to quantize left in float) and PT2E all-INT8. Agreement with FP32 is measured on the 184 fixed
photo views (8 per photo) and on 1,104 held-out random crops (48 per photo, a seed the calibration crops do
not use): overall, on confident views (FP32 top-1 probability >= 0.5) and on clear views (confident and a
margin of >= 0.2 over the runner-up, i.e. not a near-tie). Latency: median of ``--runs``
calls at batch 1 and 8 (2 threads).

SmolLM2-135M (real weights, GGUF): weight-only INT4 (``--group-size``) / INT8 / BF16 per Linear layer under
a KL budget (``--max-kl``), vs uniform INT4, uniform INT8 and BF16: perplexity on Hamlet (first 8 x 512 tokens; the plan is fitted on the
play's last 512 tokens), decode tokens/s, Linear weight MB.
Writes benchmarks/results/mixed_precision.json. ``--smoke``: every row on tiny sizes (MobileNetV2 at 32x32 with
the repeated blocks of each stage dropped, 8 calibration crops, 8 photo views, 8 held-out crops, batch 8 only;
a random 2-layer Llama, hidden 64, with the MiniLM WordPiece tokenizer in SmolLM2's place, fitted on 128 tokens,
1 perplexity window, 8 decoded tokens), 2 timed runs (figures meaningless; see benchmarks/_common.py).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

import deepseek
from deepseek import assets
from deepseek._core.machine import summary
from deepseek.bench import measure
from deepseek.quantization import (
    MixedPrecisionConfig,
    plan_mixed_precision,
    quantize_pt2e,
    quantize_static_onnx,
    quantize_weights,
    sqnr_db,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_smoke_flag, results_dir, scratch_dir, write_results
from bench_int8_lowerings import ort_runner
from bench_llm_weight_only import linear_bytes


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What a run measures: the full run's sizes by default, :data:`SMOKE` for ``--smoke``."""

    smoke: bool = False
    blocks: tuple[int, ...] | None = None  # the MobileNetV2 ``features`` kept (None: all)
    image_size: int = 224
    views: int = 8  # fixed views per photo
    max_views: int | None = None  # of those, the first (None: all)
    calibration: int = 128  # calibration crops (the plan uses the first 64)
    calibration_batch: int = 16
    crops: int | None = None  # held-out random crops (None: 48 per photo)
    batch_sizes: tuple[int, ...] = (1, 8)
    fit_tokens: int = 512  # the LM plan is fitted on the play's last tokens, in 2 batches
    new_tokens: int = 32  # decoded per timed generation


# Every PT2E call in smoke mode is a batch of 8, so each PT2E row compiles once (a cold compile of the full
# model takes ~30 s on 2 cores): view and crop counts are multiples of 8, the agreement chunk, as in the full run,
# and latency is timed at batch 8 only (batch 1 would be a second compile).
# The blocks: the first of each stage (where the channels change) and one residual block, real weights: every
# kind of layer the plan and the quantizers meet, in half the graph each export and compile walks.
SMOKE = Sizes(smoke=True, blocks=(0, 1, 2, 3, 4, 7, 11, 14, 17, 18), image_size=32, views=1, max_views=8,
              calibration=8, calibration_batch=8, crops=8, batch_sizes=(8,), fit_tokens=128, new_tokens=8)


def tiny_llm() -> tuple[Any, Any]:
    """Smoke stand-in for SmolLM2: a random 2-layer Llama (hidden 64, tied embeddings like SmolLM2's) over the
    MiniLM WordPiece tokenizer, which loads in about a second (SmolLM2's is read from its GGUF file: ~10 s)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(assets.minilm_path(), local_files_only=True)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval(), tok


def agreement(ref: torch.Tensor, got: torch.Tensor) -> dict[str, Any]:
    p = ref.softmax(-1)
    top2 = p.topk(2, dim=-1).values
    confident = top2[:, 0] >= 0.5
    clear = confident & (top2[:, 0] - top2[:, 1] >= 0.2)
    agree = ref.argmax(-1) == got.argmax(-1)
    missed = (~agree & confident).nonzero().flatten().tolist()
    return {"views": len(ref), "agreement": float(agree.float().mean()), "sqnr_db": sqnr_db(ref, got),
            "confident_views": int(confident.sum()), "confident_agreement": float(agree[confident].float().mean()),
            "clear_views": int(clear.sum()), "clear_agreement": float(agree[clear].float().mean()),
            "confident_misses_margin": [round(float(top2[i, 0] - top2[i, 1]), 3) for i in missed]}


def mobilenet_v2(runs: int, min_sqnr: float, keep: int, sizes: Sizes = Sizes()) -> dict[str, Any]:
    work = scratch_dir("bench-mixed-")
    model = assets.mobilenet_v2().eval()
    if sizes.blocks is not None:
        model.features = torch.nn.Sequential(*(model.features[i] for i in sizes.blocks))
    views, _ = assets.photo_batch(size=sizes.image_size, views=sizes.views)
    views = views[:sizes.max_views]
    calib = assets.photo_calibration_batch(sizes.calibration, size=sizes.image_size)
    step = sizes.calibration_batch
    batches = [calib[i:i + step] for i in range(0, sizes.calibration, step)]
    plan = plan_mixed_precision(model, calib, MixedPrecisionConfig(formats=("int8", "fp32"), min_sqnr_db=min_sqnr))
    print(f"plan: {len(plan.float_layers)} of {len(plan.formats)} layers kept FP32: {plan.float_layers}", flush=True)
    fp32_onnx = deepseek.export_onnx(model, views[:1], work / "fp32.onnx").path
    ort_plain = quantize_static_onnx(model, calib, work / "int8_plain.onnx", method="percentile", bias_correction=False)
    ort_int8 = quantize_static_onnx(model, calib, work / "int8.onnx", method="percentile", bias_correction=True)
    ort_keep = quantize_static_onnx(model, calib, work / "int8_keep.onnx", method="percentile", keep_fp32=keep,
                                    bias_correction=True)
    print(f"ORT: {ort_int8.bias_corrected_layers} biases corrected; float activations {ort_keep.float_activations}", flush=True)
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    rows: dict[str, Any] = {
        "eager fp32": model,
        "eager bf16 (noise floor)": lambda x: bf16(x.to(torch.bfloat16)).float(),
        "onnxruntime fp32": ort_runner(fp32_onnx, ["input"]),
        "onnxruntime int8 (U8S8, percentile)": ort_runner(ort_plain.path, ["input"]),
        "onnxruntime int8 + bias correction": ort_runner(ort_int8.path, ["input"]),
        f"onnxruntime int8 + bias corr. + {keep} float acts": ort_runner(ort_keep.path, ["input"]),
        "pt2e int8 all layers": quantize_pt2e(model, calib[:1], batches, observer="percentile"),
        f"pt2e mixed (plan, >= {min_sqnr:g} dB)": quantize_pt2e(model, calib[:1], batches, observer="percentile",
                                                               exclude=plan.float_layers),
    }
    out: dict[str, Any] = {"plan": {"float_layers": plan.float_layers, "layers": len(plan.formats), "scores": plan.scores,
                                    "steps": plan.steps, "weight_mb": plan.weight_bytes / 1e6}, "rows": {}}
    crops = assets.photo_calibration_batch(sizes.crops or 48 * len(assets.real_photos()), size=sizes.image_size,
                                           seed=12345)  # held-out random crops
    out["float_activations"] = ort_keep.float_activations
    with torch.no_grad():
        ref = torch.cat([model(views[i:i + 8]) for i in range(0, len(views), 8)])
        ref_crops = torch.cat([model(crops[i:i + 8]) for i in range(0, len(crops), 8)])
        for name, fn in rows.items():
            got = torch.cat([fn(views[i:i + 8]) for i in range(0, len(views), 8)])
            row = agreement(ref, got)
            row["crops"] = agreement(ref_crops, torch.cat([fn(crops[i:i + 8]) for i in range(0, len(crops), 8)]))
            for b in sizes.batch_sizes:
                x = views[:b]
                fn(x)
                row[f"bs{b}_median_ms"] = measure(lambda fn=fn, x=x: fn(x), warmup=2, runs=runs).median_ms
            out["rows"][name] = row
            latency = "".join(f"bs{b} {row[f'bs{b}_median_ms']:{6 if b == 1 else 7}.2f} ms  " for b in sizes.batch_sizes)
            print(f"  {name:34s} agreement {row['agreement']:.1%}  confident {row['confident_agreement']:.1%} "
                  f"({row['confident_views']})  clear {row['clear_agreement']:.1%} ({row['clear_views']})  "
                  f"SQNR {row['sqnr_db']:5.1f} dB  {latency}"
                  f"misses (margin) {row['confident_misses_margin']}", flush=True)
            c = row["crops"]
            print(f"  {'':34s} {c['views']} crops: agreement {c['agreement']:.1%}  confident {c['confident_agreement']:.1%} "
                  f"({c['confident_views']})  clear {c['clear_agreement']:.1%} ({c['clear_views']})  SQNR {c['sqnr_db']:5.1f} dB",
                  flush=True)
    base = out["rows"]["eager fp32"]
    for row in out["rows"].values():
        for b in sizes.batch_sizes:
            row[f"bs{b}_speedup_vs_eager"] = base[f"bs{b}_median_ms"] / row[f"bs{b}_median_ms"]
    return out


def smollm2(runs: int, windows: int, max_kl: float, group_size: int, sizes: Sizes = Sizes()) -> dict[str, Any]:
    from deepseek.evaluation.lm import generation_speed, perplexity

    base, tok = tiny_llm() if sizes.smoke else assets.smollm2()
    text = assets.hamlet()
    ids = tok(text, return_tensors="pt").input_ids
    fit = ids[:, -sizes.fit_tokens:]  # fitted on the end of the play, scored on its beginning
    half = sizes.fit_tokens // 2
    plan = plan_mixed_precision(base, [fit[:, :half], fit[:, half:]], MixedPrecisionConfig(
        scheme="weight_only", formats=("int4", "int8", "bf16"), group_size=group_size, max_kl=max_kl), max_batches=2)
    counts = {f: len(plan.layers_in(f)) for f in ("int4", "int8", "bf16")}
    print(f"plan: {counts}, fitted KL {plan.scores['kl']:.4f}", flush=True)
    schemes = {"bf16": None, "int8 per-channel (all)": dict(bits=8, group_size=None),
               f"int4 g{group_size} (all)": dict(bits=4, group_size=group_size),
               f"mixed (KL <= {max_kl:g})": plan.weight_only_config()}
    out: dict[str, Any] = {"plan": {"counts": counts, "scores": plan.scores, "steps": plan.steps,
                                    "formats": plan.formats}, "rows": {}}
    for name, config in schemes.items():
        model = copy.deepcopy(base).to(torch.bfloat16)
        if isinstance(config, dict):
            quantize_weights(model, **config)
        elif config is not None:
            quantize_weights(model, config)
        ppl = perplexity(model, tok, text, max_windows=windows, progress=True)
        speed = generation_speed(model, tok, new_tokens=sizes.new_tokens, runs=runs)
        out["rows"][name] = {"perplexity": ppl.value, "decode_tokens_per_s": speed["tokens_per_s"],
                             "linear_weight_mb": linear_bytes(model) / 1e6}
        print(f"  {name:22s} ppl {ppl.value:7.3f}  decode {speed['tokens_per_s']:6.1f} tok/s  "
              f"linear weights {out['rows'][name]['linear_weight_mb']:6.1f} MB", flush=True)
        del model
        gc.collect()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=None, help="timed calls per row (default 20; 2 with --smoke)")
    parser.add_argument("--models", default="mobilenet_v2,smollm2")
    parser.add_argument("--min-sqnr", type=float, default=20.0)
    parser.add_argument("--max-kl", type=float, default=0.02)
    parser.add_argument("--windows", type=int, default=None,
                        help="perplexity windows of 512 tokens (default 8; 1 with --smoke)")
    parser.add_argument("--group-size", type=int, default=32)
    parser.add_argument("--keep", type=int, default=8, help="activations ORT INT8 leaves in float (keep_fp32)")
    add_smoke_flag(parser)
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else Sizes()
    if args.runs is None:
        args.runs = 2 if args.smoke else 20
    if args.windows is None:
        args.windows = 1 if args.smoke else 8
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    out: dict[str, Any] = {"machine": summary(), "threads": torch.get_num_threads()}
    if args.smoke:
        out["smoke"] = dataclasses.asdict(sizes)
    chosen = args.models.split(",")
    if "mobilenet_v2" in chosen:
        out["mobilenet_v2"] = mobilenet_v2(args.runs, args.min_sqnr, args.keep, sizes)
    if "smollm2" in chosen:
        out["smollm2"] = smollm2(args.runs if args.smoke else max(3, args.runs // 4), args.windows, args.max_kl,
                                 args.group_size, sizes)
    path = results_dir(args) / "mixed_precision.json"
    previous = json.loads(path.read_text()) if path.exists() else {}  # keep the other model's last results
    write_results(args, path.name, {**previous, **out})


if __name__ == "__main__":
    main()
