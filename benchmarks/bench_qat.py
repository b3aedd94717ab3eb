"""Quantization-aware training vs post-training quantization on real labeled digits, same run.

    python benchmarks/bench_qat.py [--data digits|fashion-mnist] [--epochs 12]

Trains a small CNN in FP32 on the train split, then for each weight width: PTQ (calibrate + convert)
and LSQ QAT (learned scales, a few fine-tuning epochs at a lower rate); reports held-out accuracy.
Writes benchmarks/results/qat_<data>.json.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch

from deepseek import assets
from deepseek.quantization import QATConfig, calibrate, convert, fake_quantizers
from deepseek.train import accuracy, fit_classifier

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


class SmallCNN(torch.nn.Module):
    def __init__(self, side: int) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = torch.nn.Conv2d(32, 32, 3, padding=1)
        self.fc = torch.nn.Linear(32 * (side // 2) ** 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.max_pool2d(self.c2(self.c1(x).relu()).relu(), 2)
        return self.fc(x.flatten(1))


def labeled_splits(data: str) -> tuple[assets.Dataset, assets.Dataset]:
    """(train, test) of a bundled labeled set: digits (80/20 split) or Fashion-MNIST (its own split)."""
    if data == "digits":
        return assets.digits().split(0.2, seed=0)
    return assets.fashion_mnist("train"), assets.fashion_mnist("test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="digits", choices=("digits", "fashion-mnist"))
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    torch.manual_seed(0)
    train_set, test_set = labeled_splits(args.data)
    side = train_set.x.shape[-1]
    fp32 = fit_classifier(SmallCNN(side), train_set, epochs=args.epochs, lr=3e-3)
    rows = [{"scheme": "fp32", "accuracy": accuracy(fp32, test_set)}]
    for bits in (8, 4, 2):
        ptq = QATConfig(weight_bits=bits, per_channel_weights=False).apply(copy.deepcopy(fp32))
        calibrate(ptq, train_set.loader(256), max_batches=8)
        torch.manual_seed(0)
        qat = QATConfig(weight_bits=bits, per_channel_weights=False, learnable=True).apply(copy.deepcopy(fp32))
        calibrate(qat, train_set.loader(256), max_batches=1)
        for _, fq in fake_quantizers(qat):
            fq.observe = False
        qat = convert(fit_classifier(qat, train_set, epochs=max(1, args.epochs // 2), lr=1e-3))
        rows.append({"scheme": f"W{bits}A8 PTQ", "accuracy": accuracy(convert(ptq), test_set)})
        rows.append({"scheme": f"W{bits}A8 LSQ QAT", "accuracy": accuracy(qat, test_set)})
    for r in rows:
        print(f"{r['scheme']:>14}: {r['accuracy']:.4f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"qat_{args.data}.json").write_text(json.dumps({"data": args.data, "test_samples": len(test_set), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
