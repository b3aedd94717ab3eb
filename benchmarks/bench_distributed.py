"""Data-parallel training on this machine: 1 process vs 2 or 4 (Gloo), per strategy and gradient compression, same run.

    python benchmarks/bench_distributed.py [--dataset fashion_mnist] [--epochs 1] [--smoke]

Every row runs ``deepseek train examples/train_cnn.py`` (the CNN with BatchNorm and dropout, AdamW, clipping,
fp32) from the same seed on the same data order: one process with batch 64, or two processes with 32 each (the
same global batch). Reported: test accuracy, the bytes of gradients each process handed to all-reduce per
optimizer step (counted in the communication hook), the optimizer state each process holds, and the wall time
of ``fit`` (training plus the end-of-epoch evaluation). Writes benchmarks/results/distributed.json.
Rows "2 nodes x 2 x 16" are two launches of two processes meeting at one rendezvous endpoint, like two machines;
for them the bytes handed to collectives that span the nodes, summed over the job, are reported too (the machine
has 2 cores: 4 processes oversubscribe it, so their fit times are not comparable with the others').
``--smoke``: digits, the first 128 training samples (``--limit``: 2 steps), 1 epoch, and 2 of the 12 rows
(``SMOKE_ROWS``: ring_allreduce, hierarchical on 2 nodes; each row is a torchrun launch with seconds of start-up
per process); figures meaningless, compared with the ring row, written outside benchmarks/results.
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
RING = "2 x 32, ring_allreduce"
ROWS: list[tuple[str, int, list[str]]] = [
    ("1 process, batch 64", 1, []),
    (RING, 2, []),
    ("2 x 32, ring_allreduce + sync BN", 2, ["--sync-bn"]),
    ("2 x 32, zero1", 2, ["--strategy", "zero1"]),
    ("2 x 32, fsdp", 2, ["--strategy", "fsdp"]),
    ("2 x 32, ring_allreduce, fp16 compression", 2, ["--compression", "fp16"]),
    ("2 x 32, ring_allreduce, bf16 compression", 2, ["--compression", "bf16"]),
    ("2 x 32, ring_allreduce, PowerSGD rank 2", 2, ["--compression", "powersgd"]),
    ("2 x 32, ring_allreduce, 2-bit + error feedback", 2, ["--compression", "2bit"]),
    # two "machines" of two processes (two launches meeting at one rendezvous endpoint), 16 samples each
    ("2 nodes x 2 x 16, ring_allreduce", 4, ["--strategy", "ring_allreduce"]),
    ("2 nodes x 2 x 16, hierarchical", 4, ["--strategy", "hierarchical"]),
    ("2 nodes x 2 x 16, hsdp", 4, ["--strategy", "hsdp"]),
]
# --smoke runs one row per launch code path (one launch, two launches) and no more: a row costs seconds of
# interpreter start-up per process whatever its options
SMOKE_ROWS = (RING, "2 nodes x 2 x 16, hierarchical")


def run_row(nproc: int, options: list[str], args: argparse.Namespace, out: Path) -> dict[str, Any]:
    batch = 64 // nproc
    script = ["--", "--dataset", args.dataset, "--epochs", str(args.epochs), "--batch-size", str(batch),
              "--out", str(out)] + (["--limit", str(args.limit)] if args.limit else [])
    train = [sys.executable, "-m", "deepseek", "train", str(ROOT / "examples" / "train_cnn.py"), "--max-restarts", "0"]
    # one process may use both cores; two or more get one each (torchrun's default)
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, 2 // nproc))}
    if nproc <= 2:
        commands = [[*train, "--nproc", str(nproc), *options, *script]]
    else:  # two launches of nproc/2 processes, like two machines
        endpoint = f"127.0.0.1:{_free_port()}"
        commands = [[*train, "--nproc", str(nproc // 2), "--nnodes", "2", "--rdzv-endpoint", endpoint,
                     "--job-id", out.name, *options, *script] for _ in range(2)]
    launches = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                for c in commands]
    for command, launch in zip(commands, launches, strict=True):
        _, err = launch.communicate()
        if launch.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{err[-3000:]}")
    return json.loads((out / "metrics.json").read_text())


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["fashion_mnist", "digits"], default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, help="first N training samples only (quick check)")
    add_smoke_flag(parser)
    args = parser.parse_args()
    rows_to_run = ROWS
    if args.smoke:
        args.dataset, args.epochs, args.limit = "digits", 1, 128
        rows_to_run = [row for row in ROWS if row[0] in SMOKE_ROWS]
    from rich.progress import track

    from deepseek._core.machine import summary

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, nproc, options) in enumerate(track(rows_to_run, description="training runs")):
            m = run_row(nproc, options, args, Path(tmp) / str(i))
            rows.append({"row": name, "processes": nproc, "accuracy": m["history"][-1]["eval_accuracy"],
                         "steps": m["steps"],
                         "allreduce_bytes_per_step": m["bytes_allreduced"] / m["steps"] if m["bytes_allreduced"] else None,
                         "internode_bytes_per_step": (m["job_bytes_internode"] / m["steps"]
                                                      if m.get("job_bytes_internode") else None),
                         "optimizer_state_bytes": m["optimizer_state_bytes"], "fit_seconds": m["fit_seconds"]})
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]  # 1 process (--smoke: the ring row)
    ring = next(r["allreduce_bytes_per_step"] for r in rows if r["row"] == RING)
    machine = summary()
    print(f"\n{args.dataset}, {args.epochs} epoch(s), global batch 64, {machine['cpu']}, {machine['logical_cpus']} CPUs")
    print("| run | test accuracy | vs 1 process | all-reduced / step | vs uncompressed | across nodes / step (job) | "
          "optimizer state / process | fit time |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        sent = r["allreduce_bytes_per_step"]
        sent_txt = f"{sent / 1e3:.0f} kB" if sent is not None else "— (reduce-scatter, not hooked)"
        ratio = f"{sent / ring:.2f}x" if sent is not None and ring else "—"
        across = f"{r['internode_bytes_per_step'] / 1e3:.0f} kB" if r["internode_bytes_per_step"] else "—"
        print(f"| {r['row']} | {100 * r['accuracy']:.2f}% | {100 * (r['accuracy'] - base['accuracy']):+.2f} pt | "
              f"{sent_txt} | {ratio} | {across} | {r['optimizer_state_bytes'] / 1e3:.0f} kB | "
              f"{r['fit_seconds']:.1f} s |")
    write_results(args, "distributed.json", {"machine": machine, "dataset": args.dataset, "epochs": args.epochs,
                                             "rows": rows})


if __name__ == "__main__":
    main()
