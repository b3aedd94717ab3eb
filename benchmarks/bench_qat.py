"""Quantization-aware training vs post-training quantization on real labeled digits, same run.

    python benchmarks/bench_qat.py [--data digits|fashion-mnist] [--epochs 12] [--smoke]

Trains a small CNN in FP32 on the train split, then for each weight width: PTQ (calibrate + convert)
and LSQ QAT (learned scales, a few fine-tuning epochs at a lower rate); reports held-out accuracy.
Writes benchmarks/results/qat_<data>.json. ``--smoke``: the same rows on the first 512 training and 256
test samples of ``--data``, 1 epoch (seconds; figures meaningless, written outside benchmarks/results).
"""

from __future__ import annotations

import argparse
import copy

import torch

from _common import add_smoke_flag, write_results
from deepseek import assets
from deepseek.quantization import QATConfig
from deepseek.quantization.qat import calibrate, convert, fake_quantizers
from deepseek.train import accuracy, fit_classifier

SMOKE_TRAIN, SMOKE_TEST = 512, 256  # samples --smoke keeps (here and in bench_pruning.py)


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


def head(data: assets.Dataset, n: int) -> assets.Dataset:
    """The first ``n`` samples of ``data`` (all of them when it has fewer): the small sets of ``--smoke``."""
    return data if n >= len(data) else assets.Dataset(data.name, data.x[:n], data.y[:n], data.classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="digits", choices=("digits", "fashion-mnist"))
    parser.add_argument("--epochs", type=int, default=12)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.epochs = 1
    torch.manual_seed(0)
    train_set, test_set = labeled_splits(args.data)
    if args.smoke:
        train_set, test_set = head(train_set, SMOKE_TRAIN), head(test_set, SMOKE_TEST)
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
    write_results(args, f"qat_{args.data}.json", {"data": args.data, "test_samples": len(test_set), "rows": rows})


if __name__ == "__main__":
    main()
