"""Data-parallel training on this machine: 1 process vs 2 (Gloo), per strategy and gradient compression, same run.

    python benchmarks/bench_distributed.py [--dataset fashion_mnist] [--epochs 1] [--smoke]

Every row runs ``deepseek train examples/train_cnn.py`` (the CNN with BatchNorm and dropout, AdamW, clipping,
fp32) from the same seed on the same data order: one process with batch 64, or two processes with 32 each (the
same global batch). Reported: test accuracy, the bytes of gradients each process handed to all-reduce per
optimizer step (counted in the communication hook), the optimizer state each process holds, and the wall time
of ``fit`` (training plus the end-of-epoch evaluation). Writes benchmarks/results/distributed.json.
``--smoke``: digits, the first 320 training samples (``--limit``), 1 epoch, and 4 of the 8 rows (``SMOKE_ROWS``:
1 process, ring_allreduce, zero1, fp16 compression; each row is a torchrun launch with seconds of start-up);
figures meaningless, written outside benchmarks/results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import add_smoke_flag, write_results

ROOT = Path(__file__).resolve().parents[1]
ROWS: list[tuple[str, int, list[str]]] = [
    ("1 process, batch 64", 1, []),
    ("2 x 32, ring_allreduce", 2, []),
    ("2 x 32, ring_allreduce + sync BN", 2, ["--sync-bn"]),
    ("2 x 32, zero1", 2, ["--strategy", "zero1"]),
    ("2 x 32, fsdp", 2, ["--strategy", "fsdp"]),
    ("2 x 32, ring_allreduce, fp16 compression", 2, ["--compression", "fp16"]),
    ("2 x 32, ring_allreduce, bf16 compression", 2, ["--compression", "bf16"]),
    ("2 x 32, ring_allreduce, PowerSGD rank 2", 2, ["--compression", "powersgd"]),
]
# --smoke runs these (all 8 take ~2.5 min on 2 cores, mostly torchrun start-up): one process, the ring baseline the
# others are compared with, sharded optimizer state and one compression hook; the first two stay first (see main)
SMOKE_ROWS = ("1 process, batch 64", "2 x 32, ring_allreduce", "2 x 32, zero1", "2 x 32, ring_allreduce, fp16 compression")


def run_row(nproc: int, options: list[str], args: argparse.Namespace, out: Path) -> dict[str, Any]:
    batch = 64 // nproc
    command = [sys.executable, "-m", "deepseek", "train", str(ROOT / "examples" / "train_cnn.py"),
               "--nproc", str(nproc), "--max-restarts", "0", *options, "--", "--dataset", args.dataset,
               "--epochs", str(args.epochs), "--batch-size", str(batch), "--out", str(out)]
    if args.limit:
        command += ["--limit", str(args.limit)]
    # one process may use both cores; two processes get one each (torchrun's default)
    env = {**os.environ, "OMP_NUM_THREADS": str(2 // nproc)}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["fashion_mnist", "digits"], default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, help="first N training samples only (quick check)")
    add_smoke_flag(parser)
    args = parser.parse_args()
    rows_to_run = ROWS
    if args.smoke:
        args.dataset, args.epochs, args.limit = "digits", 1, 320
        rows_to_run = [row for row in ROWS if row[0] in SMOKE_ROWS]
    from rich.progress import track

    from deepseek._machine import summary

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, nproc, options) in enumerate(track(rows_to_run, description="training runs")):
            m = run_row(nproc, options, args, Path(tmp) / str(i))
            rows.append({"row": name, "processes": nproc, "accuracy": m["history"][-1]["eval_accuracy"],
                         "steps": m["steps"],
                         "allreduce_bytes_per_step": m["bytes_allreduced"] / m["steps"] if m["bytes_allreduced"] else None,
                         "optimizer_state_bytes": m["optimizer_state_bytes"], "fit_seconds": m["fit_seconds"]})
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    ring = rows[1]["allreduce_bytes_per_step"]
    machine = summary()
    print(f"\n{args.dataset}, {args.epochs} epoch(s), global batch 64, {machine['cpu']}, {machine['logical_cpus']} CPUs")
    print("| run | test accuracy | vs 1 process | all-reduced / step | vs uncompressed | optimizer state / process | fit time |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        sent = r["allreduce_bytes_per_step"]
        sent_txt = f"{sent / 1e3:.0f} kB" if sent is not None else "— (reduce-scatter, not hooked)"
        ratio = f"{sent / ring:.2f}x" if sent is not None and ring else "—"
        print(f"| {r['row']} | {100 * r['accuracy']:.2f}% | {100 * (r['accuracy'] - base['accuracy']):+.2f} pt | "
              f"{sent_txt} | {ratio} | {r['optimizer_state_bytes'] / 1e3:.0f} kB | {r['fit_seconds']:.1f} s |")
    write_results(args, "distributed.json", {"machine": machine, "dataset": args.dataset, "epochs": args.epochs,
                                             "rows": rows})


if __name__ == "__main__":
    main()
