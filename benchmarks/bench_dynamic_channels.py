"""Dynamic channel selection (FBS-style gates) against the dense model and static channel pruning at about the same
MACs: accuracy after fine-tuning on real data, MACs actually executed, eager latency at batch 1 and 8; one run.

    python benchmarks/bench_dynamic_channels.py [--keep 0.7] [--epochs 2] [--runs 30] [--smoke]

Data: Fashion-MNIST (bundled, real; 60,000 train / 10,000 test). Models, each trained here from the same seed:
- a 5-conv CNN (BatchNorm, ReLU, two max-pools) on 28x28 images (the first ``--cnn-train`` training images);
- torchvision's ResNet-18 (10 classes) on the images resized to 32x32 and repeated to 3 channels (the first
  ``--resnet-train`` training images).
For each: the dense model trained ``--epochs`` epochs; ``dynamic_channels(model, keep)`` then fine-tuned 1 epoch;
``prune_channels`` at the ratio whose MACs come closest to the gated model's executed MACs, fine-tuned 1 epoch.
Latency: median of ``--runs`` eager forwards (after warm-up), 1 thread, batch 1 and 8; for batch 8 the gated
model is timed both ways (each sample with its own filters, and the dense convolution masked). MACs: every
Conv2d/Linear's multiply-accumulates for the dense and pruned models (Torch-Pruning's counter), the gated
model's own count of what it ran (kept filters x read channels, plus its predictors). Writes
benchmarks/results/dynamic_channels.json. ``--smoke``: 128 training (one batch) / 64 test images, 1 epoch, 2 runs.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from _common import add_smoke_flag, write_results
from deepseek import assets
from deepseek._core.machine import describe, summary
from deepseek.pruning import dynamic_channels, prune_channels


def cnn() -> torch.nn.Module:
    def block(i: int, o: int) -> list[torch.nn.Module]:
        return [torch.nn.Conv2d(i, o, 3, padding=1, bias=False), torch.nn.BatchNorm2d(o), torch.nn.ReLU()]

    return torch.nn.Sequential(*block(1, 32), *block(32, 64), torch.nn.MaxPool2d(2), *block(64, 128),
                               *block(128, 128), torch.nn.MaxPool2d(2), *block(128, 256),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(256, 10))


def resnet18() -> torch.nn.Module:
    import torchvision

    return torchvision.models.resnet18(num_classes=10)


def data(kind: str, train_n: int, test_n: int) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]:
    train, test = assets.fashion_mnist("train"), assets.fashion_mnist("test")
    out = []
    for ds, n in ((train, train_n), (test, test_n)):
        x, y = ds.x[:n], ds.y[:n]
        x = (x - 0.2860) / 0.3530
        if kind == "resnet18":
            x = F.interpolate(x, size=32, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
        out.append((x, y))
    return out[0], out[1]


def fit(model: torch.nn.Module, train: tuple[torch.Tensor, torch.Tensor], epochs: int, lr: float,
        l1: float = 0.0) -> None:
    x, y = train
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x) + 127) // 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for rows in torch.randperm(len(x), generator=generator).split(128):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x[rows]), y[rows])
            if l1:
                loss = loss + l1 * model.saliency_l1()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()


def accuracy(model: torch.nn.Module, test: tuple[torch.Tensor, torch.Tensor]) -> float:
    x, y = test
    model.eval()
    with torch.no_grad():
        return float(sum((model(x[i:i + 256]).argmax(1) == y[i:i + 256]).sum() for i in range(0, len(x), 256)) / len(x))


def latency_ms(model: torch.nn.Module, x: torch.Tensor, runs: int) -> float:
    with torch.no_grad():
        for _ in range(3):
            model(x)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def dense_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    from deepseek.pruning.structured import _tp

    macs, _ = _tp().utils.count_ops_and_params(model, (x,))
    return int(macs)


def run(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(0)
    train_n = 128 if args.smoke else (args.cnn_train if kind == "cnn" else args.resnet_train)
    train, test = data(kind, train_n, 64 if args.smoke else 10_000)
    epochs = 1 if args.smoke else args.epochs
    dense = cnn() if kind == "cnn" else resnet18()
    t0 = time.perf_counter()
    fit(dense, train, epochs, lr=3e-3)
    print(f"{kind}: dense trained ({time.perf_counter() - t0:.0f} s)", flush=True)
    one = test[0][:1]
    gated = dynamic_channels(dense, keep=args.keep, example_inputs=one)
    fit(gated, train, 1, lr=1e-3, l1=1e-4)
    with torch.no_grad():
        gated.eval()(one)
    gated_macs = gated.executed_macs
    gated_conv_dense = gated.set_per_sample(False)(one) is not None and gated.executed_macs
    gated.set_per_sample(True)
    full_macs = dense_macs(dense, one)
    # the gated convolutions' saving applies to their share of the model's MACs
    effective_macs = full_macs - gated_conv_dense + gated_macs
    best = None
    for ratio in (0.2, 0.3) if args.smoke else (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5):
        result = prune_channels(copy.deepcopy(dense), ratio, one, round_to=1)
        if best is None or abs(result.macs_after - effective_macs) < abs(best[1].macs_after - effective_macs):
            best = (ratio, result)
    ratio, pruned = best
    static = pruned.model
    fit(static, train, 1, lr=1e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = {}
    for name, model, macs in (("dense", dense, full_macs), ("dynamic", gated, effective_macs),
                              (f"static pruning {ratio:.0%}", static, pruned.macs_after)):
        model.eval()
        row = {"accuracy": accuracy(model, test), "macs": macs, "mac_ratio": macs / full_macs,
               "latency_ms_batch1": latency_ms(model, one, args.runs),
               "latency_ms_batch8": latency_ms(model, test[0][:8], args.runs)}
        if name == "dynamic":
            gated.set_per_sample(False)
            row["latency_ms_batch8_masked_dense"] = latency_ms(model, test[0][:8], args.runs)
            gated.set_per_sample(True)
        rows[name] = row
        print(f"  {name}: accuracy {100 * row['accuracy']:.2f} %, MACs {macs / 1e6:.1f} M ({100 * row['mac_ratio']:.0f} %), "
              f"batch 1 {row['latency_ms_batch1']:.2f} ms, batch 8 {row['latency_ms_batch8']:.2f} ms"
              + (f" (masked dense {row['latency_ms_batch8_masked_dense']:.2f} ms)" if name == "dynamic" else ""),
              flush=True)
    torch.set_num_threads(threads)
    return {"train_images": train_n, "test_images": len(test[0]), "epochs": epochs, "keep": args.keep,
            "gates": len(gated.gates), "static_ratio": ratio, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=float, default=0.7)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--cnn-train", type=int, default=60_000)
    parser.add_argument("--resnet-train", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--models", default="cnn,resnet18")
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.runs = 2
    results: dict[str, Any] = {"machine": describe(summary(threads=1)), "smoke": args.smoke}
    for kind in args.models.split(","):
        results[kind] = run(kind, args)
    write_results(args, "dynamic_channels.json", results)


if __name__ == "__main__":
    main()
