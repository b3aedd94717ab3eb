"""Run under `deepseek train`: one optimizer step of examples/train_cnn.py's CNN in float64; rank 0 saves the final
(all-reduced) gradients that the optimizer would apply, for the test to compare with a direct computation."""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from train_cnn import cnn, data

import deepseek
from deepseek import assets
from deepseek.train import Callback


class _SaveGradients(Callback):
    def __init__(self, path: Path) -> None:
        self.path = path

    def before_optimizer_step(self, trainer):
        if trainer.step == 0 and trainer.rank == 0:
            torch.save({n: p.grad.detach().clone() for n, p in trainer._module.named_parameters()}, self.path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    train, _ = data("digits", args.samples)
    train = assets.Dataset(train.name, train.x.double(), train.y, train.classes)
    trainer = deepseek.DistributedTrainer(optimizer_config={"type": "SGD", "lr": 0.1}, batch_size=args.batch_size,
                                          callbacks=[_SaveGradients(args.out)], precision="fp32", progress=False)
    trainer.fit(train, epochs=1, model=cnn(1, 8, dropout=0.0).double())
    trainer.close()


if __name__ == "__main__":
    main()
