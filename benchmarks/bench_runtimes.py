"""Runtime comparison behind README's results table: eager vs torch.compile vs ONNX Runtime, same run.

    python benchmarks/bench_runtimes.py [--runs 30] [--update-readme]

Writes benchmarks/results/runtimes.json (+ one PNG per model) and, with --update-readme, rewrites the
table between the RUNTIMES markers in README.md. Every figure is a median over --runs timed calls after
warm-up, each backend in its own process; speedups are against eager PyTorch measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from rich.console import Console

import deepseek

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CASES = [  # (model, batch sizes)
    ("resnet50", [1, 8]),
    ("bert-base", [1]),
    ("mobilenet_v2", [1, 8]),
]
BACKENDS = ["eager", "compile", "onnxruntime"]


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
    args = parser.parse_args()
    console = Console(width=140)
    wanted = args.models.split(",")
    results = []
    for name, sizes in CASES:
        if name not in wanted:
            continue
        result = deepseek.benchmark(name, backends=BACKENDS, batch_sizes=sizes, runs=args.runs, warmup=5)
        console.print(result.table())
        result.plot(RESULTS / f"runtimes_{name}.png")
        results.append(result.to_dict())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "runtimes.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
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
