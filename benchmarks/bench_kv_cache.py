"""Compressed KV caches on SmolLM2-135M (real weights) and Hamlet: KV memory and perplexity against the float cache.

    python benchmarks/bench_kv_cache.py [--tokens 2048] [--chunk 64] [--residual 64] [--smoke]

The first ``--tokens`` tokens of Hamlet are fed in chunks of ``--chunk`` (the first chunk included), each chunk's
logits computed with the cache holding everything before it — so every prediction after the first chunks reads
keys and values from the compressed history, as in generation. Perplexity is over all predicted tokens; memory is
what each cache holds at the end (transformers' ``DynamicCache`` in float32 as the baseline). The model is
:class:`deepseek.nn.DeepSeekForCausalLM` converted from the GGUF checkpoint. Targets (issue 17): int8 -50 % KV memory at
<= +1 % perplexity, int4 -75 % at <= +5 %. Writes benchmarks/results/kv_cache.json. ``--smoke``: a 2-layer
random-weight model, 96 tokens (figures meaningless).
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import torch

from _common import add_smoke_flag, write_results
from deepseek import assets
from deepseek._core.machine import describe, summary
from deepseek.nn import DeepSeekConfig, DeepSeekForCausalLM, QuantizedKVCache
from deepseek.nn.kv_cache import float_cache_bytes


def chunked_nll(model: Any, ids: torch.Tensor, cache: Any, chunk: int) -> tuple[float, int]:
    """Summed next-token negative log-likelihood over ``ids`` fed ``chunk`` tokens at a time through ``cache``."""
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, ids.shape[1], chunk):
            piece = ids[:, start:start + chunk]
            logits = model(piece, past_key_values=cache, use_cache=True).logits.float()
            targets = ids[:, start + 1:start + 1 + piece.shape[1]]
            logits = logits[:, : targets.shape[1]]
            total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                             reduction="sum"))
            count += targets.numel()
    return total, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--residual", type=int, default=64)
    add_smoke_flag(parser)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.smoke:
        args.tokens, args.chunk, args.residual = 96, 16, 16
        tokenizer = assets.smollm2_tokenizer()
        torch.manual_seed(0)
        model = DeepSeekForCausalLM(DeepSeekConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=128,
                                                   num_hidden_layers=2, num_attention_heads=4,
                                                   num_key_value_heads=2)).eval()
    else:
        llama, tokenizer = assets.smollm2()
        model = DeepSeekForCausalLM.from_llama(llama).eval()
        del llama
    ids = tokenizer(assets.hamlet(), return_tensors="pt").input_ids[:, : args.tokens]
    from transformers import DynamicCache

    variants: dict[str, Any] = {
        "float32 (DynamicCache)": lambda: DynamicCache(config=model.config),
        "int8, per head+token": lambda: QuantizedKVCache(bits=8, residual=args.residual, config=model.config),
        "int4, groups of 32": lambda: QuantizedKVCache(bits=4, group_size=32, residual=args.residual, config=model.config),
        "int4, per head+token": lambda: QuantizedKVCache(bits=4, residual=args.residual, config=model.config),
    }
    rows: dict[str, Any] = {}
    for name, make in variants.items():
        cache = make()
        started = time.perf_counter()
        nll, count = chunked_nll(model, ids, cache, args.chunk)
        memory = cache.memory_bytes() if isinstance(cache, QuantizedKVCache) else float_cache_bytes(cache)
        rows[name] = {"perplexity": math.exp(nll / count), "tokens_scored": count, "kv_bytes": memory,
                      "seconds": time.perf_counter() - started}
        print(f"{name:28s} perplexity {rows[name]['perplexity']:8.3f}   KV {memory / 2**20:7.2f} MiB", flush=True)
    base = rows["float32 (DynamicCache)"]
    for row in rows.values():
        row["memory_vs_float"] = row["kv_bytes"] / base["kv_bytes"]
        row["perplexity_change"] = row["perplexity"] / base["perplexity"] - 1
    write_results(args, "kv_cache.json", {"machine": describe(summary(threads=2)), "model": "SmolLM2-135M" if not
                                          args.smoke else "tiny random", "tokens": args.tokens, "chunk": args.chunk,
                                          "residual": args.residual, "rows": rows})


if __name__ == "__main__":
    main()
