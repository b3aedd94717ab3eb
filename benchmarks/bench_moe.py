"""MoELayer's grouped dispatch against every-expert-on-every-token and transformers' MixtralSparseMoeBlock.

    python benchmarks/bench_moe.py [--tokens 4096] [--dim 512] [--expert-dim 1024] [--rounds 7] [--smoke]

8 experts, top-2, softmax routing, float32, 2 threads. Every implementation holds the same weights (copied into
Mixtral's fused layout; its block run by each of transformers' experts implementations: eager, grouped_mm,
batched_mm) and is checked to give the same output before timing. Each round times, in turn,
forward (no grad) and forward + backward of each; the figures are medians over ``--rounds`` interleaved rounds.
Writes benchmarks/results/moe.json. ``--smoke``: 256 tokens, width 64, 2 rounds (figures meaningless).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from _common import add_smoke_flag, write_results
from deepseek._core.machine import describe, summary
from deepseek.nn import MoELayer

MIXTRAL_IMPLEMENTATIONS = ("eager", "grouped_mm", "batched_mm")  # transformers' experts interface


def mixtral_block(moe: MoELayer, implementation: str = "eager") -> torch.nn.Module:
    """transformers' MixtralSparseMoeBlock holding ``moe``'s weights (gate and up projections fused per expert),
    its experts run by ``implementation``."""
    from transformers import MixtralConfig
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    expert_dim = moe.experts[0].gate_proj.out_features
    config = MixtralConfig(hidden_size=moe.dim, intermediate_size=expert_dim, num_local_experts=moe.num_experts,
                           num_experts_per_tok=moe.top_k)
    config._experts_implementation = implementation
    block = MixtralSparseMoeBlock(config)
    with torch.no_grad():
        block.gate.weight.copy_(moe.router.weight)
        for e, expert in enumerate(moe.experts):
            block.experts.gate_up_proj[e].copy_(torch.cat([expert.gate_proj.weight, expert.up_proj.weight]))
            block.experts.down_proj[e].copy_(expert.down_proj.weight)
    return block


def _time(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--expert-dim", type=int, default=1024)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.tokens, args.dim, args.expert_dim, args.rounds = 256, 64, 128, 2
    torch.set_num_threads(2)
    torch.manual_seed(0)
    moe = MoELayer(args.dim, args.experts, args.top_k, expert_dim=args.expert_dim)
    peers = {f"transformers MixtralSparseMoeBlock ({name})": mixtral_block(moe, name) for name in MIXTRAL_IMPLEMENTATIONS}
    x = torch.randn(1, args.tokens, args.dim)
    impls = {"grouped (deepseek MoELayer)": moe.forward, "all experts on all tokens (baseline)": moe.forward_dense,
             **peers}
    failed: dict[str, str] = {}
    with torch.no_grad():
        reference = moe(x)
        for name, fn in list(impls.items()):
            try:
                diff = float((fn(x) - reference).abs().max())
            except RuntimeError as exc:  # batched_mm gathers every token's expert weights: tokens x k x 2H x D floats
                failed[name] = str(exc).splitlines()[0][:200]
                print(f"{name}: cannot run at this size: {failed[name]}", flush=True)
                del impls[name]
                peers.pop(name, None)
                continue
            assert diff < 1e-4, f"{name} differs from the grouped dispatch by {diff}"

    def forward(fn: Any) -> Any:
        def run() -> None:
            with torch.no_grad():
                fn(x)
        return run

    def train_step(fn: Any) -> Any:
        params = [*moe.parameters(), *(p for block in peers.values() for p in block.parameters())]

        def run() -> None:
            for p in params:
                p.grad = None
            xg = x.detach().requires_grad_(True)
            fn(xg).pow(2).mean().backward()
        return run

    times: dict[str, dict[str, list[float]]] = {n: {"forward": [], "forward+backward": []} for n in impls}
    for fn in impls.values():  # warm-up: one of each
        forward(fn)()
        train_step(fn)()
    for _ in range(args.rounds):
        for name, fn in impls.items():
            times[name]["forward"].append(_time(forward(fn)))
            times[name]["forward+backward"].append(_time(train_step(fn)))
    rows = {n: {k: statistics.median(v) for k, v in t.items()} for n, t in times.items()}
    grouped, dense = rows["grouped (deepseek MoELayer)"], rows["all experts on all tokens (baseline)"]
    fastest_peer = {k: min(rows[name][k] for name in peers) for k in ("forward", "forward+backward")}
    out = {"machine": describe(summary(threads=2)), "tokens": args.tokens, "dim": args.dim, "expert_dim": args.expert_dim,
           "experts": args.experts, "top_k": args.top_k, "rounds": args.rounds, "median_ms": rows,
           "samples_ms": times, "load": moe.load(), "could_not_run": failed,
           "speedup_vs_dense": {k: dense[k] / grouped[k] for k in grouped},
           "speedup_vs_fastest_mixtral_block": {k: fastest_peer[k] / grouped[k] for k in grouped}}
    for name, r in rows.items():
        print(f"{name:40s} forward {r['forward']:9.2f} ms   forward+backward {r['forward+backward']:9.2f} ms")
    print(f"grouped vs dense: {out['speedup_vs_dense']}; vs the fastest Mixtral block: "
          f"{out['speedup_vs_fastest_mixtral_block']}")
    write_results(args, "moe.json", out)


if __name__ == "__main__":
    main()
