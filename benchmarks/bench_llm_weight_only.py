"""SmolLM2-135M (real weights, GGUF) on Hamlet: weight-only int8/int4 vs float, same run.

    python benchmarks/bench_llm_weight_only.py [--windows 16] [--new-tokens 32] [--runs 5]

For each scheme: perplexity on the first ``windows`` x 512 tokens of Hamlet, greedy decoding speed with
the KV cache (tokens/s, median of ``runs``), one 512-token forward (prefill) latency, and the bytes of the
Linear weights. The float baseline is the dequantized GGUF (its weights were already 4-bit Q4_1, groups of
32; the tied embedding/output layer Q8_0), so the int4 rows keep ``lm_head`` at int8 as llama.cpp does, and
"int4 g32 (all)" shows what quantizing it to 4 bits costs. Writes benchmarks/results/llm_weight_only.json.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import logging
from pathlib import Path

import torch

from deepseek import assets
from deepseek._machine import summary
from deepseek.bench import measure
from deepseek.lm_metrics import generation_speed, perplexity
from deepseek.quantization import WeightOnlyConfig, quantize_weights, weight_only_layers

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"

SCHEMES: list[tuple[str, WeightOnlyConfig | None, str]] = [
    ("fp32", None, "float32"),
    ("bf16", None, "bfloat16"),
    ("int8 per-channel", WeightOnlyConfig(bits=8, group_size=None), "float32"),
    ("int8 g64", WeightOnlyConfig(bits=8, group_size=64), "float32"),
    ("int4 g32 (all)", WeightOnlyConfig(bits=4, group_size=32), "float32"),
    ("int4 g32", WeightOnlyConfig(bits=4, group_size=32, layer_bits={"lm_head": 8}), "float32"),
    ("int4 g64", WeightOnlyConfig(bits=4, group_size=64, layer_bits={"lm_head": 8}), "float32"),
    ("int4 g128", WeightOnlyConfig(bits=4, group_size=128, layer_bits={"lm_head": 8}), "float32"),
]


def linear_bytes(model: torch.nn.Module) -> int:
    total = 0
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            total += m.weight.numel() * m.weight.element_size()
    for m in weight_only_layers(model).values():
        total += sum(b.numel() * b.element_size() for b in (m.qweight, m.scales, m.zeros) if b is not None)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.manual_seed(0)
    base, tok = assets.smollm2()
    text = assets.hamlet()
    prefill = tok(text, return_tensors="pt").input_ids[:, :512]
    rows = []
    for name, config, dtype in SCHEMES:
        model = copy.deepcopy(base).to(getattr(torch, dtype))
        if config is not None:
            quantize_weights(model, config)
        ppl = perplexity(model, tok, text, max_windows=args.windows, progress=True)
        speed = generation_speed(model, tok, new_tokens=args.new_tokens, runs=args.runs)
        with torch.inference_mode():
            pre = measure(lambda m=model: m(prefill), warmup=1, runs=args.runs)
        row = {"scheme": name, "perplexity": ppl.value, "tokens": ppl.tokens, "decode_tokens_per_s": speed["tokens_per_s"],
               "prefill_512_ms": pre.median_ms, "linear_weight_mb": linear_bytes(model) / 1e6}
        rows.append(row)
        print(f"{name:18s} ppl {ppl.value:7.3f}  decode {speed['tokens_per_s']:6.1f} tok/s  "
              f"prefill {pre.median_ms:7.1f} ms  linear weights {row['linear_weight_mb']:6.1f} MB", flush=True)
        del model
        gc.collect()
    base_row = rows[0]
    for row in rows:
        row["decode_speedup_vs_fp32"] = row["decode_tokens_per_s"] / base_row["decode_tokens_per_s"]
        row["prefill_speedup_vs_fp32"] = base_row["prefill_512_ms"] / row["prefill_512_ms"]
        row["perplexity_change_vs_fp32"] = row["perplexity"] - base_row["perplexity"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"model": "SmolLM2-135M-Instruct (GGUF Q4_1, dequantized)", "text": "Hamlet",
           "window": 512, "windows": args.windows, "new_tokens": args.new_tokens, "machine": summary(), "rows": rows}
    (RESULTS / "llm_weight_only.json").write_text(json.dumps(out, indent=2))
    print(json.dumps([{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows], indent=1))


if __name__ == "__main__":
    main()
