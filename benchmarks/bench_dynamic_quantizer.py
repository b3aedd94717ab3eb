"""``DynamicQuantizer`` on a real encoder: all-MiniLM-L6-v2 (Hugging Face folder) on Rotten Tomatoes snippets.

    python benchmarks/bench_dynamic_quantizer.py [--runs 20] [--seq 128] [--accuracy] [--smoke]

The recipe from the articles — ``DynamicQuantizer(model_path, quant_bits=8, activation_threshold=0.6)`` then
``quantize(method=..., weight_bits=..., activation_bits=...)`` and ``benchmark()`` — for each method, every
measurement FP32 vs quantized in the same call (median latency at batch 1, size, SQNR of the last hidden
state against FP32). Writes benchmarks/results/dynamic_quantizer.json.

``--accuracy`` instead measures accuracy through ``benchmark(eval_data=...)``: the encoder plus mean pooling
plus a logistic-regression head (trained with scikit-learn on FP32 embeddings of ``--train`` snippets) is the
model given to ``DynamicQuantizer``; ``--test`` held-out snippets are classified by FP32 and by each
quantized model in the same call. Writes benchmarks/results/dynamic_quantizer_accuracy.json.

``--smoke`` runs both (the latency run with every recipe on the encoder's first layer only, then ``--accuracy`` with
the first recipe, uncompiled; only the latter if ``--accuracy`` is also given) on tiny sizes (16 tokens, 2 timed runs,
64 training and 32 test snippets), writing to ``$DEEPSEEK_BENCH_RESULTS`` or a temporary folder; options given
explicitly still win.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import numpy as np
import torch

from _common import add_smoke_flag, write_results
from deepseek import assets
from deepseek._core.machine import summary
from deepseek.quantization import DynamicQuantizer

SMOKE = {"runs": 2, "seq": 16, "train": 64, "test": 32}

RECIPES = [
    {"method": "dynamic"},
    {"method": "hybrid", "weight_bits": [4, 8], "activation_bits": 8},
    {"method": "hybrid", "weight_bits": [4, 8], "activation_bits": 16},
    {"method": "hybrid", "weight_bits": 4, "activation_bits": 16},
]


class SentimentClassifier(torch.nn.Module):
    """Encoder → mean of the token states under the attention mask → linear head (2 classes)."""

    def __init__(self, encoder: torch.nn.Module, head: torch.nn.Linear) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return self.head((h * m).sum(1) / m.sum(1))


def accuracy(args: argparse.Namespace) -> None:
    from sklearn.linear_model import LogisticRegression

    encoder, tokenizer = assets.minilm()
    data = assets.rotten_tomatoes()
    order = np.random.default_rng(0).permutation(len(data.labels))
    train, test = order[args.test:args.test + args.train], order[:args.test]
    enc = tokenizer(list(data.texts), padding="max_length", max_length=args.seq, truncation=True, return_tensors="pt")
    ids, mask, labels = enc["input_ids"], enc["attention_mask"], torch.tensor(data.labels)
    identity = torch.nn.Linear(384, 384, bias=False)
    with torch.no_grad():
        identity.weight.copy_(torch.eye(384))
        embed = SentimentClassifier(encoder.eval(), identity)
        emb = torch.cat([embed(ids[train[i:i + 64]], mask[train[i:i + 64]]) for i in range(0, len(train), 64)])
    lr = LogisticRegression(max_iter=2000).fit(emb.numpy(), labels[train].numpy())
    head = torch.nn.Linear(384, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor(np.vstack([-lr.coef_[0], lr.coef_[0]]) / 2, dtype=torch.float32))
        head.bias.copy_(torch.tensor([-lr.intercept_[0] / 2, lr.intercept_[0] / 2], dtype=torch.float32))
    model = SentimentClassifier(encoder, head).eval()
    eval_data = [((ids[test[i:i + 64]], mask[test[i:i + 64]]), labels[test[i:i + 64]]) for i in range(0, len(test), 64)]
    quantizer = DynamicQuantizer(model, quant_bits=8, activation_threshold=0.6, example_inputs=(ids[test[:1]], mask[test[:1]]))
    rows = []
    # the smoke run's latency part has tried every recipe, compiled; here one, uncompiled (Inductor would compile
    # again for batch 1 and for the test batch: minutes on 2 cores), shows the accuracy path works
    for recipe in RECIPES[:1] if args.smoke else RECIPES:
        quantizer.quantize(**recipe, compile=not args.smoke)
        result = quantizer.benchmark(eval_data=eval_data, runs=args.runs)
        rows.append({"recipe": recipe, **result.to_dict()})
        print(recipe, f"FP32 {result.fp32_accuracy:.2%} → {result.quantized_accuracy:.2%} "
              f"({100 * (result.quantized_accuracy - result.fp32_accuracy):+.2f} pt), {result.speedup:.2f}x at batch 1", flush=True)
    write_results(args, "dynamic_quantizer_accuracy.json",
                  {"model": "all-MiniLM-L6-v2 + logistic head", "seq": args.seq, "train": len(train),
                   "test": len(test), "machine": summary(), "rows": rows})


def latency(args: argparse.Namespace) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(assets.minilm_path(), local_files_only=True)
    enc = tokenizer(assets.rotten_tomatoes().texts[:1], padding="max_length", max_length=args.seq, truncation=True,
                    return_tensors="pt")
    quantizer = DynamicQuantizer(assets.minilm_path(), quant_bits=8, activation_threshold=0.6,
                                 example_inputs=(enc["input_ids"], enc["attention_mask"]))
    if args.smoke:  # the first layer only: each Inductor compile's time grows with the layers
        quantizer.model.encoder.layer = quantizer.model.encoder.layer[:1]
        quantizer.model.config.num_hidden_layers = 1
    rows = []
    for recipe in RECIPES:
        started = time.perf_counter()
        quantizer.quantize(**recipe)
        result = quantizer.benchmark(runs=args.runs)
        row = {"recipe": recipe, **result.to_dict(), "quantize_and_measure_s": time.perf_counter() - started,
               "int8_activation_layers": sum("dynamic" in p for p in quantizer.layer_plan.values())}
        rows.append(row)
        print(recipe, f"({row['int8_activation_layers']} of {len(quantizer.layer_plan)} layers with int8 activations)")
        print(result, flush=True)
    write_results(args, "dynamic_quantizer.json",
                  {"model": "all-MiniLM-L6-v2" + (" (first layer)" if args.smoke else ""), "seq": args.seq,
                   "machine": summary(), "rows": rows})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--test", type=int, default=1000)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:  # tiny sizes, unless given explicitly
        parser.set_defaults(**SMOKE)
        args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    if not args.accuracy:
        latency(args)
    if args.accuracy or args.smoke:
        accuracy(args)


if __name__ == "__main__":
    main()
