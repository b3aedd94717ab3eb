"""Sliding-window attention at 2k / 8k / 16k tokens on this CPU: FlexAttention (compiled) and SDPA with a dense mask
against dense causal SDPA, time and memory, same run.

    python benchmarks/bench_sparse_attention.py [--tokens 2048,8192,16384] [--window 512] [--runs 5] [--smoke]

Batch 1, 8 query heads / 2 key-value heads of 64, float32, 2 threads, window 512 + 4 sink tokens. Each (kind, length)
runs in a process of its own: the figure is the median of ``--runs`` calls after one warm-up (FlexAttention's compile
time is reported apart), and the memory is the peak resident memory during those calls above what the process held
before them (sampled every 0.5 ms: the attention's transient buffers — scores, masks — are mmapped and returned). The outputs of the sparse kinds are checked against each other first. Target (issue 17):
sliding-window attention at 16k tokens >= 3x faster than dense SDPA. Writes benchmarks/results/sparse_attention.json.
``--smoke``: 256 tokens, window 64, 2 runs, the three kinds in one process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import psutil

from _common import add_smoke_flag, write_results

KINDS = ("dense causal SDPA", "window: SDPA + dense mask", "window: FlexAttention")


def one(kind: str, tokens: int, window: int, runs: int) -> dict[str, Any]:
    """Time one kind at one length in this process."""
    import torch

    from deepseek.nn.sparse import sparse_attention

    torch.set_num_threads(2)
    torch.manual_seed(0)
    q = torch.randn(1, 8, tokens, 64)
    k, v = torch.randn(1, 2, tokens, 64), torch.randn(1, 2, tokens, 64)

    def call() -> Any:
        with torch.no_grad():
            if kind == KINDS[0]:
                return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            backend = "flex" if kind == KINDS[2] else "sdpa"
            return sparse_attention(q, k, v, window=window, sinks=4, backend=backend)

    started = time.perf_counter()
    out = call()
    first_s = time.perf_counter() - started  # FlexAttention: includes its compile
    del out
    process = psutil.Process()
    base = process.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample() -> None:  # the call's transient memory: large buffers are mmapped and returned, so RSS shows them
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        out = call()
        times.append((time.perf_counter() - started) * 1000)
        del out
    stop.set()
    sampler.join()
    return {"median_ms": statistics.median(times), "first_call_s": first_s,
            "peak_extra_mb": (peak[0] - base) / 2**20, "checksum": float(call().double().sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="2048,8192,16384")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.one:  # "kind@tokens", several joined by ";": one JSON line each
        for job in args.one.split(";"):
            kind, tokens = job.rsplit("@", 1)
            print(json.dumps(one(kind, int(tokens), args.window, args.runs)), flush=True)
        return
    if args.smoke:
        args.tokens, args.window, args.runs = "256", 64, 2
    lengths = [int(t) for t in args.tokens.split(",")]
    # a smoke run's figures mean nothing: its kinds share one process (one torch import, not three)
    groups = [KINDS] if args.smoke else [(kind,) for kind in KINDS]
    rows: dict[str, dict[str, Any]] = {}
    for tokens in lengths:
        for group in groups:
            jobs = ";".join(f"{kind}@{tokens}" for kind in group)
            done = subprocess.run([sys.executable, __file__, "--one", jobs, "--window", str(args.window),
                                   "--runs", str(args.runs)], capture_output=True, text=True, timeout=1800,
                                  env={**os.environ, "OMP_NUM_THREADS": "2"})
            if done.returncode != 0:
                raise SystemExit(f"{jobs}: {done.stderr.strip()[-800:]}")
            for kind, line in zip(group, done.stdout.strip().splitlines()[-len(group):]):
                r = rows.setdefault(str(tokens), {})[kind] = json.loads(line)
                print(f"{tokens:6d} {kind:28s} {r['median_ms']:10.2f} ms  +{r['peak_extra_mb']:8.1f} MB peak",
                      flush=True)
        flex, masked = rows[str(tokens)][KINDS[2]], rows[str(tokens)][KINDS[1]]
        if abs(flex["checksum"] - masked["checksum"]) > 1e-3 * max(1.0, abs(masked["checksum"])):
            raise SystemExit(f"FlexAttention and the masked SDPA disagree at {tokens} tokens")
        dense = rows[str(tokens)][KINDS[0]]["median_ms"]
        for kind in KINDS[1:]:
            rows[str(tokens)][kind]["speedup_vs_dense"] = dense / rows[str(tokens)][kind]["median_ms"]
    from deepseek._core.machine import describe, summary

    write_results(args, "sparse_attention.json", {"machine": describe(summary(threads=2)), "window": args.window,
                                                  "sinks": 4, "heads": "8 query / 2 key-value, head_dim 64",
                                                  "runs": args.runs, "rows": rows})


if __name__ == "__main__":
    main()
