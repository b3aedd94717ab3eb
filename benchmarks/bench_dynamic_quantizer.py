"""``DynamicQuantizer`` on a real encoder: all-MiniLM-L6-v2 (Hugging Face folder) on Rotten Tomatoes snippets.

    python benchmarks/bench_dynamic_quantizer.py [--runs 20] [--seq 128]

The SPEC.md recipe — ``DynamicQuantizer(model_path, quant_bits=8, activation_threshold=0.6)`` then
``quantize(method=..., weight_bits=..., activation_bits=...)`` and ``benchmark()`` — for each method, every
measurement FP32 vs quantized in the same call (median latency at batch 1, size, SQNR of the last hidden
state against FP32). Writes benchmarks/results/dynamic_quantizer.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

from deepseek import assets
from deepseek._machine import summary
from deepseek.quantization import DynamicQuantizer

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"

RECIPES = [
    {"method": "dynamic"},
    {"method": "hybrid", "weight_bits": [4, 8], "activation_bits": 8},
    {"method": "hybrid", "weight_bits": [4, 8], "activation_bits": 16},
    {"method": "hybrid", "weight_bits": 4, "activation_bits": 16},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seq", type=int, default=128)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    tokenizer = assets.minilm()[1]
    enc = tokenizer(assets.rotten_tomatoes().texts[:1], padding="max_length", max_length=args.seq, truncation=True,
                    return_tensors="pt")
    quantizer = DynamicQuantizer(assets.minilm_path(), quant_bits=8, activation_threshold=0.6,
                                 example_inputs=(enc["input_ids"], enc["attention_mask"]))
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
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dynamic_quantizer.json").write_text(json.dumps(
        {"model": "all-MiniLM-L6-v2", "seq": args.seq, "machine": summary(), "rows": rows}, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
