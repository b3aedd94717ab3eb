"""SmolLM2-135M (real weights, GGUF) on Hamlet: weight-only int8/int4 vs float, same run.

    python benchmarks/bench_llm_weight_only.py [--windows 16] [--window 512] [--new-tokens 32] [--runs 5] [--smoke]

For each scheme: perplexity on the first ``windows`` x ``window`` (512) tokens of Hamlet, greedy decoding
speed with the KV cache (tokens/s, median of ``runs``), one ``window``-token forward (prefill) latency, and
the bytes of the Linear weights. The float baseline is the dequantized GGUF (its weights were already 4-bit
Q4_1, groups of 32; the tied embedding/output layer Q8_0), so the int4 rows keep ``lm_head`` at int8 as
llama.cpp does, and "int4 g32 (all)" shows what quantizing it to 4 bits costs. Writes
benchmarks/results/llm_weight_only.json.

``--smoke`` runs every scheme on a 2-layer random Llama (hidden 128, SmolLM2's tokenizer, tied embeddings) on
tiny sizes (2 windows of 32 tokens, a 32-token prefill, 4 new tokens, 2 timed runs) and writes to
``$DEEPSEEK_BENCH_RESULTS`` or a temporary folder; options given explicitly still win.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import logging

import torch

from _common import add_smoke_flag, write_results
from deepseek import assets
from deepseek._core.machine import summary
from deepseek.bench import measure
from deepseek.evaluation.lm import generation_speed, perplexity
from deepseek.quantization import WeightOnlyConfig, quantize_weights, weight_only_layers

SMOKE = {"windows": 2, "window": 32, "new_tokens": 4, "runs": 2}

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


def tiny_llama() -> tuple[torch.nn.Module, object]:
    """A 2-layer random Llama with SmolLM2's tokenizer: the smoke run's model (every group size divides 128)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = assets.smollm2_tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                         bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(config).eval(), tok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--window", type=int, default=512, help="tokens per perplexity window and in the prefill")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:  # tiny sizes, unless given explicitly
        parser.set_defaults(**SMOKE)
        args = parser.parse_args()
    prefill_key = f"prefill_{args.window}_ms"
    logging.disable(logging.WARNING)
    torch.manual_seed(0)
    base, tok = tiny_llama() if args.smoke else assets.smollm2()
    text = assets.hamlet()
    prefill = tok(text, return_tensors="pt").input_ids[:, :args.window]
    rows = []
    for name, config, dtype in SCHEMES:
        model = copy.deepcopy(base).to(getattr(torch, dtype))
        if config is not None:
            quantize_weights(model, config)
        ppl = perplexity(model, tok, text, window=args.window, max_windows=args.windows, progress=True)
        speed = generation_speed(model, tok, new_tokens=args.new_tokens, runs=args.runs)
        with torch.inference_mode():
            pre = measure(lambda m=model: m(prefill), warmup=1, runs=args.runs)
        row = {"scheme": name, "perplexity": ppl.value, "tokens": ppl.tokens, "decode_tokens_per_s": speed["tokens_per_s"],
               prefill_key: pre.median_ms, "linear_weight_mb": linear_bytes(model) / 1e6}
        rows.append(row)
        print(f"{name:18s} ppl {ppl.value:7.3f}  decode {speed['tokens_per_s']:6.1f} tok/s  "
              f"prefill {pre.median_ms:7.1f} ms  linear weights {row['linear_weight_mb']:6.1f} MB", flush=True)
        del model
        gc.collect()
    base_row = rows[0]
    for row in rows:
        row["decode_speedup_vs_fp32"] = row["decode_tokens_per_s"] / base_row["decode_tokens_per_s"]
        row["prefill_speedup_vs_fp32"] = base_row[prefill_key] / row[prefill_key]
        row["perplexity_change_vs_fp32"] = row["perplexity"] - base_row["perplexity"]
    model_name = "2-layer random Llama (smoke)" if args.smoke else "SmolLM2-135M-Instruct (GGUF Q4_1, dequantized)"
    out = {"model": model_name, "text": "Hamlet",
           "window": args.window, "windows": args.windows, "new_tokens": args.new_tokens, "machine": summary(), "rows": rows}
    write_results(args, "llm_weight_only.json", out)
    print(json.dumps([{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows], indent=1))


if __name__ == "__main__":
    main()
