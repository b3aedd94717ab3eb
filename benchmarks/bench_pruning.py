"""Gradual unstructured pruning on real labeled images, same run: dense vs pruned accuracy.

    python benchmarks/bench_pruning.py [--data fashion-mnist|digits] [--epochs 6] [--finetune 4] [--target 0.7]

Trains the small CNN of bench_qat.py densely, then from that model: (a) one-shot global magnitude pruning to
``--target`` with no fine-tuning; the dense model fine-tuned as long without pruning (the fair baseline); (b) ``SparsityScheduler`` (cubic schedule, global magnitude) fine-tuning
``--finetune`` epochs at lr/3, pruning every 50 steps until 2/3 of the way; (c) the same with Taylor scores;
(d) a random-pruning control with the same schedule. Held-out accuracy and the per-layer sparsity of the
result are reported. Writes benchmarks/results/pruning_<data>.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

from deepseek.pruning import SparsityScheduler, sparsity_report
from deepseek.train import accuracy, fit_classifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_qat import SmallCNN, labeled_splits

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="fashion-mnist", choices=("digits", "fashion-mnist"))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--finetune", type=int, default=4)
    parser.add_argument("--target", type=float, default=0.7)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    torch.manual_seed(0)
    train_set, test_set = labeled_splits(args.data)
    side = train_set.x.shape[-1]
    started = time.perf_counter()
    dense = fit_classifier(SmallCNN(side), train_set, epochs=args.epochs, lr=args.lr)
    rows = [{"scheme": "dense FP32", "accuracy": accuracy(dense, test_set), "sparsity": 0.0}]
    print(f"dense: {rows[0]['accuracy']:.2%} ({time.perf_counter() - started:.0f} s)", flush=True)

    tuned = fit_classifier(copy.deepcopy(dense), train_set, epochs=args.finetune, lr=args.lr / 3)
    rows.append({"scheme": "dense, fine-tuned as long (no pruning)", "accuracy": accuracy(tuned, test_set), "sparsity": 0.0})
    one_shot = copy.deepcopy(dense)
    SparsityScheduler(args.target, 1, schedule="one_shot").step(one_shot)
    rows.append({"scheme": f"one-shot {args.target:.0%} magnitude, no fine-tuning", "accuracy": accuracy(one_shot, test_set),
                 "sparsity": sparsity_report(one_shot).sparsity})

    steps_per_epoch = -(-len(train_set) // 64)
    end = int(args.finetune * steps_per_epoch * 2 / 3) // 50 * 50
    for method in ("magnitude", "taylor", "random"):
        model = copy.deepcopy(dense)
        scheduler = SparsityScheduler(args.target, 50, method, schedule="cubic", end_step=end)

        def prune(step: int, m: torch.nn.Module, s: SparsityScheduler = scheduler) -> None:
            if step % 50 == 0 and step <= end:
                s.step(m, step=step)

        fit_classifier(model, train_set, epochs=args.finetune, lr=args.lr / 3, on_step=prune)
        scheduler.finalize(model)
        report = sparsity_report(model)
        rows.append({"scheme": f"gradual {args.target:.0%} {method} (cubic, fine-tuned)", "accuracy": accuracy(model, test_set),
                     "sparsity": report.sparsity, "layers": report.to_dict()["layers"], "events": len(scheduler.history)})
        print(f"{method}: {rows[-1]['accuracy']:.2%} at {report.sparsity:.1%} sparsity", flush=True)
    base = rows[0]["accuracy"]
    for r in rows:
        r["delta_pt"] = 100 * (r["accuracy"] - base)
        print(f"{r['scheme']:48s} {r['accuracy']:.2%} ({r['delta_pt']:+.2f} pt) sparsity {r['sparsity']:.1%}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"pruning_{args.data}.json").write_text(json.dumps(
        {"data": args.data, "train": len(train_set), "test": len(test_set), "epochs": args.epochs,
         "finetune_epochs": args.finetune, "rows": rows, "seconds": time.perf_counter() - started}, indent=2) + "\n")


if __name__ == "__main__":
    main()
