"""Runtime comparison behind README's results table: eager vs torch.compile vs ONNX Runtime, same run.

    python benchmarks/bench_runtimes.py [--runs 30] [--update-readme] [--smoke]

Writes benchmarks/results/runtimes.json (+ one PNG per model) and, with --update-readme, rewrites the
table between the RUNTIMES markers in README.md. Every figure is a median over --runs timed calls after
warm-up, each backend in its own process; speedups are against eager PyTorch measured in the same run.

``--smoke``: the same backends and outputs on small sizes (a ResNet of one basic block per stage, 10 classes, on
32x32 inputs in place of resnet50; a 1-layer BERT of hidden size 64 on 16 tokens in place of bert-base; mobilenet_v2,
a third image model on the same path, left out: its torch.compile alone takes a minute on 2 cores), batch 1, 2 runs
after 2 warm-up calls, every backend in this process (a process per backend imports torch again, and transformers
for the BERT: there is no peak memory worth isolating in a smoke). The JSON and PNGs go to ``$DEEPSEEK_BENCH_RESULTS``
or a temporary folder, and README.md is never touched (``--update-readme`` is refused).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from rich.console import Console

import deepseek
from _common import add_smoke_flag, results_dir, write_results

ROOT = Path(__file__).resolve().parents[1]
CASES = [  # (model, batch sizes)
    ("resnet50", [1, 8]),
    ("bert-base", [1]),
    ("mobilenet_v2", [1, 8]),
]
BACKENDS = ["eager", "compile", "onnxruntime"]


def smoke_case(name: str) -> tuple[str, Any, tuple[Any, ...]]:
    """--smoke: a small stand-in for built-in model ``name`` → (label, model, example inputs): the smallest torchvision
    ResNet for the image models, a 1-layer BERT of hidden size 64 on 16 tokens for BERT-base (few layers:
    torch.compile's time grows with them)."""
    import torch

    torch.manual_seed(0)
    if name != "bert-base":
        from torchvision.models.resnet import BasicBlock, ResNet

        return "resnet10", ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10).eval(), (torch.randn(1, 3, 32, 32),)
    from transformers import BertConfig, BertModel

    from deepseek.models import HiddenStates

    config = BertConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128,
                        vocab_size=1000, max_position_embeddings=64, attn_implementation="eager")
    ids = torch.randint(0, config.vocab_size, (1, 16))
    return "bert-1x64", HiddenStates(BertModel(config, add_pooling_layer=False)).eval(), (ids, torch.ones_like(ids))


def markdown(results: list[dict]) -> str:
    lines = ["| model | batch | eager ms | torch.compile ms (×) | ONNX Runtime ms (×) | peak MB eager / ORT |",
             "|---|---|---|---|---|---|"]
    for res in results:
        rows = {(r["backend"], r["batch_size"]): r for r in res["rows"]}
        for b in sorted({r["batch_size"] for r in res["rows"]}):
            e, c, o = rows.get(("eager", b)), rows.get(("compile", b)), rows.get(("onnxruntime", b))

            def cell(r):
                return "failed" if not r or r["status"] != "ok" else f"{r['median_ms']:.1f} ({r['speedup']:.2f}×)"

            mem = f"{e['peak_rss_mb']:.0f} / {o['peak_rss_mb']:.0f}" if e and o and e["status"] == o["status"] == "ok" else "–"
            lines.append(f"| {res['model']['name']} | {b} | {e['median_ms']:.1f} | {cell(c)} | {cell(o)} | {mem} |")
    m = results[0]["machine"]
    lines.append("")
    lines.append(f"Measured by `python benchmarks/bench_runtimes.py` on {m['cpu']}, {m['threads']} threads "
                 f"({', '.join(m['features'])}), torch {m['versions']['torch']}, onnxruntime {m['versions']['onnxruntime']}, "
                 f"{m['date']}. Median of the timed runs; × = speedup vs eager in the same run.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--models", default=",".join(c[0] for c in CASES))
    parser.add_argument("--update-readme", action="store_true")
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke and args.update_readme:
        parser.error("--update-readme with --smoke: smoke figures are not meaningful and never go into README.md")
    console = Console(width=140)
    wanted = args.models.split(",")
    results = []
    for name, sizes in CASES:
        if name not in wanted or (args.smoke and name == "mobilenet_v2"):
            continue
        if args.smoke:
            label, model, inputs = smoke_case(name)
            result = deepseek.benchmark(model, inputs, backends=BACKENDS, batch_sizes=[1], runs=2, warmup=2,
                                        isolate=False)
        else:
            label = name
            result = deepseek.benchmark(name, backends=BACKENDS, batch_sizes=sizes, runs=args.runs, warmup=5)
        console.print(result.table())
        result.plot(results_dir(args) / f"runtimes_{label}.png")
        results.append(result.to_dict())
    write_results(args, "runtimes.json", results)
    table = markdown(results)
    console.print(table)
    if args.update_readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        new = re.sub(r"(<!-- RUNTIMES:BEGIN -->\n).*?(\n<!-- RUNTIMES:END -->)", lambda m: m.group(1) + table + m.group(2),
                     text, flags=re.S)
        readme.write_text(new)
        console.print("README.md updated")


if __name__ == "__main__":
    main()
