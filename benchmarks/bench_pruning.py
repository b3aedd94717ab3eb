"""Gradual unstructured pruning on real labeled images, same run: dense vs pruned accuracy.

    python benchmarks/bench_pruning.py [--data fashion-mnist|digits] [--epochs 6] [--finetune 4] [--target 0.7] [--smoke]

Trains the small CNN of bench_qat.py densely, then from that model: (a) one-shot global magnitude pruning to
``--target`` with no fine-tuning; the dense model fine-tuned as long without pruning (the fair baseline); (b) ``SparsityScheduler`` (cubic schedule, global magnitude) fine-tuning
``--finetune`` epochs at lr/3, pruning every 50 steps until 2/3 of the way; (c) the same with Taylor scores;
(d) a random-pruning control with the same schedule; (e) dynamic sparse training (RigL) at ``--dsa-sparsity``:
sparse by magnitude from the dense model, then every 100 steps 5% (cosine-decayed) of each layer's connections
dropped by magnitude and regrown by gradient, vs (f) the same sparsity with a fixed one-shot mask and the same
fine-tuning; (g) structured: ``prune_channels`` removes 50% of the channels in 2 progressive steps, fine-tuning
half of ``--finetune`` epochs after each, then (h) that model quantized to static INT8 for ONNX Runtime
(calibrated on 256 training images) and evaluated with ONNX Runtime. ``--rows`` picks which of
magnitude,taylor,random,dsa,structured to run (results merge into the JSON).
Held-out accuracy and the per-layer sparsity of the result are reported. Writes benchmarks/results/pruning_<data>.json.
``--smoke``: every chosen row on the first 512 training and 256 test samples of ``--data``, 1 dense epoch and 2
fine-tuning epochs, pruning every 5 steps and DSA updates every 10 (instead of 50 and 100, so that the schedules
still take several steps); figures meaningless, merged into pruning_<data>.json in the smoke folder instead.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from deepseek.pruning import DynamicSparseTraining, SparsityScheduler, sparsity_report
from deepseek.train import accuracy, fit_classifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_smoke_flag, results_dir, scratch_dir, write_results
from bench_qat import SMOKE_TEST, SMOKE_TRAIN, SmallCNN, head, labeled_splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="fashion-mnist", choices=("digits", "fashion-mnist"))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--finetune", type=int, default=4)
    parser.add_argument("--target", type=float, default=0.7)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--dsa-sparsity", type=float, default=0.9)
    parser.add_argument("--rows", default="magnitude,taylor,random,dsa,structured")
    add_smoke_flag(parser)
    args = parser.parse_args()
    # training steps between pruning events (gradual rows) and between DSA drop/regrow updates
    args.prune_every, args.dsa_every = (5, 10) if args.smoke else (50, 100)
    if args.smoke:
        args.epochs, args.finetune = 1, 2
    torch.manual_seed(0)
    train_set, test_set = labeled_splits(args.data)
    if args.smoke:
        train_set, test_set = head(train_set, SMOKE_TRAIN), head(test_set, SMOKE_TEST)
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
    every = args.prune_every
    end = int(args.finetune * steps_per_epoch * 2 / 3) // every * every
    chosen = args.rows.split(",")
    for method in [m for m in ("magnitude", "taylor", "random") if m in chosen]:
        model = copy.deepcopy(dense)
        scheduler = SparsityScheduler(args.target, every, method, schedule="cubic", end_step=end)

        def prune(step: int, m: torch.nn.Module, s: SparsityScheduler = scheduler) -> None:
            if step % every == 0 and step <= end:
                s.step(m, step=step)

        fit_classifier(model, train_set, epochs=args.finetune, lr=args.lr / 3, on_step=prune)
        scheduler.finalize(model)
        report = sparsity_report(model)
        rows.append({"scheme": f"gradual {args.target:.0%} {method} (cubic, fine-tuned)", "accuracy": accuracy(model, test_set),
                     "sparsity": report.sparsity, "layers": report.to_dict()["layers"], "events": len(scheduler.history)})
        print(f"{method}: {rows[-1]['accuracy']:.2%} at {report.sparsity:.1%} sparsity", flush=True)
    if "dsa" in chosen:
        rows += dynamic_sparse_rows(dense, train_set, test_set, args)
    if "structured" in chosen:
        rows += structured_rows(dense, train_set, test_set, args)
    base = rows[0]["accuracy"]
    for r in rows:
        r["delta_pt"] = 100 * (r["accuracy"] - base)
        print(f"{r['scheme']:48s} {r['accuracy']:.2%} ({r['delta_pt']:+.2f} pt) sparsity {r['sparsity']:.1%}")
    name = f"pruning_{args.data}.json"
    folder = results_dir(args)  # in smoke mode the smoke folder: benchmarks/results stays untouched
    path = folder / name
    previous = {r["scheme"]: r for r in json.loads(path.read_text())["rows"]} if path.exists() else {}
    merged = list({**previous, **{r["scheme"]: r for r in rows}}.values())  # rows not rerun keep their last figures
    write_results(args, name, {"data": args.data, "train": len(train_set), "test": len(test_set), "epochs": args.epochs,
                               "finetune_epochs": args.finetune, "rows": merged, "seconds": time.perf_counter() - started})


def structured_rows(dense: torch.nn.Module, train_set: Any, test_set: Any, args: argparse.Namespace) -> list[dict]:

    import onnxruntime as ort

    from deepseek.pruning import prune_channels
    from deepseek.quantization import quantize_static_onnx

    epochs = max(1, args.finetune // 2)
    result = prune_channels(dense, 0.5, train_set.x[:1], steps=2,
                            finetune=lambda m, step: fit_classifier(m, train_set, epochs=epochs, lr=args.lr / 3))
    pruned = result.model.eval()
    rows = [{"scheme": "structured 50% channels (2 steps, fine-tuned)", "accuracy": accuracy(pruned, test_set),
             "sparsity": 1 - result.param_ratio, "params": result.params_after, "macs_ratio": result.mac_ratio}]
    q = quantize_static_onnx(pruned, train_set.x[:256], scratch_dir() / "pruned_int8.onnx", method="percentile")
    sess = ort.InferenceSession(str(q.path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    hits = sum(int((torch.from_numpy(sess.run(None, {name: x.numpy()})[0]).argmax(1) == y).sum()) for x, y in test_set.loader(512))
    rows.append({"scheme": "structured 50% + static INT8 (ONNX Runtime)", "accuracy": hits / len(test_set),
                 "sparsity": 1 - result.param_ratio, "size_mb": q.size_bytes / 1e6, "fp32_size_mb": q.fp32_size_bytes / 1e6})
    for r in rows:
        print(f"{r['scheme']}: {r['accuracy']:.2%}", flush=True)
    return rows


def dynamic_sparse_rows(dense: torch.nn.Module, train_set: Any, test_set: Any, args: argparse.Namespace) -> list[dict]:
    rows = []
    steps = args.finetune * -(-len(train_set) // 64)
    for label in ("dsa", "static"):
        model = copy.deepcopy(dense)
        if label == "dsa":
            dst = DynamicSparseTraining(args.dsa_sparsity, 0.05, update_freq=args.dsa_every, end_step=int(steps * 0.75))
            dst.start(model)
            fit_classifier(model, train_set, epochs=args.finetune, lr=args.lr / 3, on_step=lambda step, m, d=dst: d.step(m, step))
            dst.finalize(model)
            name, extra = f"DSA {args.dsa_sparsity:.0%} (RigL regrowth, fine-tuned)", {"updates": len(dst.updates),
                                                                                      "moved": sum(u["moved"] for u in dst.updates)}
        else:
            sched = SparsityScheduler(args.dsa_sparsity, 1, schedule="one_shot")
            sched.step(model)
            fit_classifier(model, train_set, epochs=args.finetune, lr=args.lr / 3)
            sched.finalize(model)
            name, extra = f"fixed {args.dsa_sparsity:.0%} mask (one-shot, fine-tuned)", {}
        report = sparsity_report(model)
        rows.append({"scheme": name, "accuracy": accuracy(model, test_set), "sparsity": report.sparsity, **extra})
        print(f"{name}: {rows[-1]['accuracy']:.2%} at {report.sparsity:.1%}", flush=True)
    return rows


if __name__ == "__main__":
    main()
