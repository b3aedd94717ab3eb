"""How fast batch-1 decoding of SmolLM2-135M can be on this machine: memory bandwidth x bytes read per token.

    python benchmarks/bench_decode_roofline.py [--repeats 15] [--smoke]

At batch 1 each new token multiplies every weight matrix by one vector, so decode speed is bounded by how fast the
weights stream from memory. This script measures that stream rate the way decoding uses it — a matrix-vector
product over a matrix far larger than the caches (512 MiB), in float32 and bfloat16, on 2 threads, median of
``--repeats`` calls — and divides it by the bytes of SmolLM2-135M's matrices read per token (every decoder linear
layer plus the tied output head) to get the ceiling in tokens/s for float32, bfloat16 and 4-bit weights. Compare
with benchmarks/results/generation.json (bench_generation.py) for the speeds reached. Writes
benchmarks/results/decode_roofline.json. ``--smoke``: a 16 MiB matrix, 2 repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from _common import add_smoke_flag, write_results
from deepseek._core.machine import describe, summary


def stream_rate(rows: int, cols: int, dtype: torch.dtype, repeats: int) -> dict[str, float]:
    """GB/s of weight bytes read by ``W @ x`` (W rows x cols), median over ``repeats`` calls after a warm-up."""
    w = torch.randn(rows, cols).to(dtype)
    x = torch.randn(cols).to(dtype)
    torch.mv(w, x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mv(w, x)
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    return {"matrix_mib": w.numel() * w.element_size() / 2**20, "median_ms": 1e3 * seconds,
            "gb_per_s": w.numel() * w.element_size() / seconds / 1e9}


def smollm2_weights_per_token() -> int:
    """Weights SmolLM2-135M multiplies per decoded token: 30 layers of q/k/v/o + gate/up/down, and the output head."""
    hidden, inter, layers, heads, kv_heads, vocab = 576, 1536, 30, 9, 3, 49152
    head_dim = hidden // heads
    attention = hidden * hidden * 2 + hidden * kv_heads * head_dim * 2
    mlp = 3 * hidden * inter
    return layers * (attention + mlp) + vocab * hidden


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    add_smoke_flag(parser)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows, cols = (2048, 2048) if args.smoke else (16384, 8192)
    repeats = 2 if args.smoke else args.repeats
    rates = {name: stream_rate(rows, cols, dtype, repeats)
             for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16))}
    for name, r in rates.items():
        print(f"  W @ x, {r['matrix_mib']:.0f} MiB of {name}: {r['median_ms']:.1f} ms -> {r['gb_per_s']:.1f} GB/s",
              flush=True)
    weights = smollm2_weights_per_token()
    bandwidth = rates["float32"]["gb_per_s"] * 1e9
    ceilings = {}
    for fmt, bytes_per_weight in (("float32", 4.0), ("bfloat16", 2.0), ("int4 g32 (+ fp16 scale and zero)", 0.625)):
        per_token = weights * bytes_per_weight
        ceilings[fmt] = {"mb_per_token": per_token / 1e6, "max_tokens_per_s": bandwidth / per_token}
        print(f"  SmolLM2-135M {fmt}: {per_token / 1e6:.0f} MB per token -> at most "
              f"{bandwidth / per_token:.1f} tokens/s at batch 1", flush=True)
    write_results(args, "decode_roofline.json", {
        "machine": describe(summary(threads=2)), "smoke": args.smoke, "threads": 2, "repeats": repeats,
        "stream_rate": rates, "smollm2_weights_per_token": weights,
        "ceiling_uses": "float32 matrix-vector stream rate", "ceilings_batch_1": ceilings})


if __name__ == "__main__":
    main()
