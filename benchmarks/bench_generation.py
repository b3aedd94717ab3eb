"""Generation speed on SmolLM2-135M (real weights): deepseek's causal LM against transformers' Llama, and the ways
deepseek decodes it, in one run.

    python benchmarks/bench_generation.py [--rounds 3] [--new-tokens 32] [--batch-sizes 1,4] [--smoke]

The same weights twice — transformers' ``LlamaForCausalLM`` (eager, its default attention) and
``DeepSeekForCausalLM.from_llama`` — greedy-decoding ``--new-tokens`` tokens after the first 32 Hamlet tokens.
Ours is also measured with a static KV cache + ``torch.compile``, weight-only int4 (groups of 32) and int8/int4 KV
caches: each a backend of ``deepseek.benchmark`` (``deepseek bench --model smollm2`` runs the same code), each
measurement in a fresh process. ``--rounds`` rounds alternate the two models; figures are medians over rounds of
each process's median, with the share of generated tokens equal to our eager model's. Targets (issue 17): ours eager
>= transformers' Llama eager; static cache + compile >= 2x our eager at batch 1. Writes
benchmarks/results/generation.json. ``--smoke``: a 2-layer random Llama, 4 tokens, one round, no compiled variant,
every measurement in this process.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import torch

from _common import add_smoke_flag, write_results
from deepseek import assets, benchmark
from deepseek._core.machine import describe, summary
from deepseek.nn import DeepSeekForCausalLM

OURS = ("eager", "compile", "int4", "kv-int8", "kv-int4")


def models(smoke: bool) -> tuple[Any, Any, torch.Tensor]:
    """(transformers' Llama, ours on the same weights, prompt ids)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if smoke:
        tokenizer = assets.smollm2_tokenizer()
        torch.manual_seed(0)
        llama = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                             bos_token_id=1, eos_token_id=2)).eval()
    else:
        llama, tokenizer = assets.smollm2()
    ids = tokenizer(assets.hamlet(), return_tensors="pt").input_ids[:, :32]
    return llama, DeepSeekForCausalLM.from_llama(llama).eval(), ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--runs", type=int, default=5, help="timed generate() calls per process")
    add_smoke_flag(parser)
    args = parser.parse_args()
    rounds, new_tokens, runs = (1, 4, 2) if args.smoke else (args.rounds, args.new_tokens, args.runs)
    sizes = [1] if args.smoke else [int(b) for b in args.batch_sizes.split(",")]
    llama, ours, ids = models(args.smoke)
    # the smoke run leaves out the compiled variant (minutes of Inductor; tests/test_bench.py decodes with it)
    variants = tuple(v for v in OURS if v != "compile") if args.smoke else OURS
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in range(rounds):
        print(f"round {r + 1}/{rounds}", flush=True)
        for label, model, backends in (("transformers Llama eager", llama, ("eager",)), ("deepseek", ours, variants)):
            result = benchmark(model, ids, backends=backends, batch_sizes=sizes, runs=runs, warmup=2,
                               new_tokens=new_tokens, threads=2, isolate=not args.smoke, progress=True)
            for row in result.rows:
                name = label if label != "deepseek" else f"deepseek {row.backend}"
                entry = {"status": row.status, "reason": row.reason}
                if row.status == "ok":
                    entry.update(tokens_per_s=row.tokens_per_s, median_ms=row.median_ms, setup_s=row.setup_s,
                                 weights_mb=row.artifact_mb, peak_rss_mb=row.peak_rss_mb,
                                 tokens_same=row.extra.get("tokens_same_as_baseline") if label == "deepseek" else None)
                    print(f"  {name} batch {row.batch_size}: {row.tokens_per_s:.1f} tokens/s", flush=True)
                else:
                    print(f"  {name} batch {row.batch_size}: {row.status}: {row.reason}", flush=True)
                samples.setdefault((name, row.batch_size), []).append(entry)
    table: dict[str, dict[str, Any]] = {}
    for (name, batch), entries in samples.items():
        ok = [e for e in entries if e["status"] == "ok"]
        row: dict[str, Any] = {"rounds": entries}
        if ok:
            row.update(tokens_per_s=statistics.median(e["tokens_per_s"] for e in ok),
                       weights_mb=ok[0]["weights_mb"], tokens_same_as_ours_eager=ok[0]["tokens_same"],
                       setup_s=statistics.median(e["setup_s"] for e in ok))
        table.setdefault(f"batch {batch}", {})[name] = row

    def tps(batch: int, name: str) -> float | None:
        return table[f"batch {batch}"].get(name, {}).get("tokens_per_s")

    ratios = {}
    for b in sizes:
        eager = tps(b, "deepseek eager")
        if eager:
            ratios[f"batch {b}"] = {
                "ours eager / transformers eager": eager / tps(b, "transformers Llama eager")
                if tps(b, "transformers Llama eager") else None,
                **{f"{name} / ours eager": (tps(b, f"deepseek {name}") or 0) / eager for name in variants[1:]}}
    out = {"machine": describe(summary(threads=2)), "smoke": args.smoke, "model": "SmolLM2-135M (GGUF Q4_1, "
           "dequantized to float32)" if not args.smoke else "2-layer random Llama (smoke)",
           "prompt_tokens": int(ids.shape[1]), "new_tokens": new_tokens, "rounds": rounds, "runs_per_process": runs,
           "results": table, "ratios": ratios}
    for b, r in ratios.items():
        print(f"{b}: " + ", ".join(f"{k} {v:.2f}x" for k, v in r.items() if v is not None), flush=True)
    write_results(args, "generation.json", out)


if __name__ == "__main__":
    main()
