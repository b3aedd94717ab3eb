"""Static graphs vs eager, the memory planner, and activation checkpointing — each against its baseline, same run.

    python benchmarks/bench_static_graph.py [--runs 20] [--no-inductor] [--smoke]

1. The matmul-plus-bias example (``x.matmul(weight) + bias``, 64x1024 @ 1024x1024) and torchvision ResNet-50
   (random init: speed only; batch 1 and 8, 224x224): eager vs ``@static_graph`` (our passes, planned
   executor) vs ``static_graph(backend="inductor")`` (our passes, then TorchInductor's generated kernels).
   Median of ``--runs`` calls, calls interleaved round-robin so machine noise hits every row alike, 2 threads;
   outputs checked against eager. Capture (and compile) time reported.
2. Memory plan of ResNet-50 (batch 1, 224x224) and BERT-base (random init, batch 1, 128 tokens): peak
   activation memory with every intermediate in its own buffer (naive) vs planned (greedy by size) vs the
   lower bound (most bytes live at once), and the arena the planned executor really uses.
3. Activation checkpointing on ResNet-50 training (batch 8, 224x224): bytes autograd keeps for backward
   and median step time (forward + backward, ``--train-runs``) with and without ``layer1``-``layer4``
   checkpointed.
Writes benchmarks/results/static_graph.json.

``--smoke``: every part on tiny sizes — the matmul-plus-bias example at 8x64 @ 64x64, a torchvision ResNet with
one basic block per stage (ResNet-10: 10 classes, 64x64, batch 1; eager and planned only) in place of ResNet-50
(batch 2 for checkpointing), a 2-layer BERT (hidden 64, 16 tokens) in place of BERT-base, 2 runs and 2 training
steps; the JSON goes to ``$DEEPSEEK_BENCH_RESULTS`` or a temporary folder.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
import torchvision

import deepseek
from _common import add_smoke_flag, write_results
from deepseek._core.machine import summary
from deepseek.graph import capture, optimize, plan_memory, saved_activation_bytes


def interleaved(fns: dict[str, Any], x: torch.Tensor, runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    with torch.no_grad():
        for f in fns.values():
            f(x), f(x)
        for _ in range(runs):
            for k, f in fns.items():
                t0 = time.perf_counter()
                f(x)
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def speed(name: str, fn: Any, x: torch.Tensor, runs: int, inductor: bool) -> dict[str, Any]:
    rows: dict[str, Any] = {"eager": fn}
    capture_s: dict[str, float] = {}
    for backend in ("planned", "inductor") if inductor else ("planned",):
        sg = deepseek.static_graph(fn, backend=backend)
        t0 = time.perf_counter()
        with torch.no_grad():
            got = sg(x)
            ref = fn(x)
        capture_s[backend] = time.perf_counter() - t0
        err = float((got - ref).abs().max())
        assert err <= 1e-3 * max(1.0, float(ref.abs().max())), f"{name} {backend}: max diff {err}"
        rows[f"static ({backend})"] = sg
    ms = interleaved(rows, x, runs)
    out = {"shape": list(x.shape), "median_ms": ms, "speedup_vs_eager": {k: ms["eager"] / v for k, v in ms.items()},
           "capture_s": capture_s}
    print(f"{name} {tuple(x.shape)}: " + "  ".join(f"{k} {v:.2f} ms ({ms['eager'] / v:.2f}x)" for k, v in ms.items())
          + "  capture " + ", ".join(f"{k} {v:.1f} s" for k, v in capture_s.items()), flush=True)
    return out


def memory(name: str, model: torch.nn.Module, args: tuple[Any, ...]) -> dict[str, Any]:
    graph = capture(model, args)
    passes = optimize(graph)
    plan, executed = plan_memory(graph), plan_memory(graph, native_out_only=True)
    mb = 2 ** 20
    row = {**{k: v for k, v in plan.to_dict().items()}, "executor_arena_bytes": executed.arena_bytes,
           "executor_planned_buffers": sum(b.offset is not None for b in executed.buffers), "passes": passes.to_dict()}
    print(f"{name}: naive {plan.naive_bytes / mb:.1f} MiB, planned {plan.planned_bytes / mb:.1f} MiB "
          f"({-plan.saving:.0%}), lower bound {plan.lower_bound_bytes / mb:.1f} MiB; {len(plan.buffers)} buffers; "
          f"executor arena {executed.arena_bytes / mb:.1f} MiB ({row['executor_planned_buffers']} buffers with native out=)",
          flush=True)
    return row


def checkpointing(runs: int, make: Any, label: str = "ResNet-50", batch: int = 8, size: int = 224) -> dict[str, Any]:
    torch.manual_seed(0)
    plain, ckpt = make().train(), make().train()
    ckpt.load_state_dict(plain.state_dict())
    deepseek.checkpoint_activations(ckpt, ["layer1", "layer2", "layer3", "layer4"])
    x = torch.randn(batch, 3, size, size)
    row: dict[str, Any] = {}
    for name, m in (("plain", plain), ("checkpointed", ckpt)):
        row[f"{name}_saved_bytes"] = saved_activation_bytes(m, x)
    times: dict[str, list[float]] = {"plain": [], "checkpointed": []}
    for i in range(runs + 1):
        for name, m in (("plain", plain), ("checkpointed", ckpt)):
            t0 = time.perf_counter()
            m(x).sum().backward()
            if i:  # first round warms up
                times[name].append(time.perf_counter() - t0)
            m.zero_grad(set_to_none=True)
    for name, t in times.items():
        row[f"{name}_step_ms"] = statistics.median(t) * 1e3
    mb = 2 ** 20
    print(f"checkpointing {label} bs{batch}: saved activations {row['plain_saved_bytes'] / mb:.0f} -> "
          f"{row['checkpointed_saved_bytes'] / mb:.0f} MiB ({row['checkpointed_saved_bytes'] / row['plain_saved_bytes']:.0%}); "
          f"step {row['plain_step_ms']:.0f} -> {row['checkpointed_step_ms']:.0f} ms "
          f"({row['checkpointed_step_ms'] / row['plain_step_ms']:.2f}x)", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--train-runs", type=int, default=3)
    parser.add_argument("--no-inductor", action="store_true", help="skip the (slow to compile) Inductor rows")
    add_smoke_flag(parser)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    if args.smoke:  # the same parts on tiny sizes
        runs, train_runs, dim, rows_in = 2, 2, 64, 8
        arch, label, size, batches = "resnet10", "ResNet-10", 64, (1,)

        def make() -> torch.nn.Module:  # ResNet-18 with one block per stage: half the graph to compile
            return torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=10)

        bert_key, bert_label, tokens, train_batch = "bert_tiny", "BERT 2x64", 16, 2
        bert_sizes = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128,
                      "vocab_size": 1000, "max_position_embeddings": 64}
    else:
        runs, train_runs, dim, rows_in = args.runs, args.train_runs, 1024, 64
        arch, label, size, batches = "resnet50", "ResNet-50", 224, (1, 8)

        def make() -> torch.nn.Module:
            return torchvision.models.get_model(arch)

        bert_key, bert_label, tokens, train_batch, bert_sizes = "bert_base", "BERT-base", 128, 8, {}
    out: dict[str, Any] = {"machine": summary(2), "speed": {}, "memory": {}}
    weight, bias = torch.randn(dim, dim), torch.randn(dim)

    def spec_example(x: torch.Tensor) -> torch.Tensor:
        return x.matmul(weight) + bias

    out["speed"]["spec_example"] = speed("spec example", spec_example, torch.randn(rows_in, dim), runs, not args.no_inductor)
    resnet = make().eval()
    # a smoke run compiles with Inductor once, the example above: ResNet's compile alone takes ~25 s
    resnet_inductor = not (args.no_inductor or args.smoke)
    for b in batches:
        out["speed"][f"{arch}_bs{b}"] = speed(label, resnet, torch.randn(b, 3, size, size), runs, resnet_inductor)
    out["memory"][arch] = memory(f"{label} bs1 {size}", resnet, (torch.randn(1, 3, size, size),))
    from transformers import BertConfig, BertModel

    config = BertConfig(**bert_sizes)
    bert = BertModel(config).eval()
    out["memory"][bert_key] = memory(f"{bert_label} bs1 {tokens} tokens", bert,
                                     (torch.randint(0, config.vocab_size, (1, tokens)),))
    out["checkpointing"] = checkpointing(train_runs, make, label, train_batch, size)
    write_results(args, "static_graph.json", out)


if __name__ == "__main__":
    main()
