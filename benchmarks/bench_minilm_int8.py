"""MiniLM (all-MiniLM-L6-v2, real weights) on Rotten Tomatoes: FP32 vs dynamic INT8 on ONNX Runtime, same run.

    python benchmarks/bench_minilm_int8.py [--max-length 64] [--samples N] [--runs 10] [--smoke]

A logistic-regression head is trained on FP32 sentence embeddings (mean pooling) of 80% of the 12,808
snippets (or of a random ``--samples`` of them); the other 20% are classified with embeddings from the FP32
encoder, from ONNX Runtime's default dynamic INT8 (per-tensor weights) and from ours (per-channel weights).
Also reports encoder latency per batch of 32 (median of ``--runs``). Writes benchmarks/results/minilm_int8.json.

``--smoke`` does the same on tiny sizes (the first of the 6 encoder layers only; 160 snippets: 128 to train, 32 to
test; 32 tokens; 2 timed runs) and writes to ``$DEEPSEEK_BENCH_RESULTS`` or a temporary folder; options given
explicitly still win.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

import deepseek
from _common import add_smoke_flag, scratch_dir, write_results
from deepseek import assets
from deepseek.bench import measure
from deepseek.models import HiddenStates
from deepseek.quantization import quantize_dynamic_onnx

SMOKE = {"max_length": 32, "samples": 160, "runs": 2}


def embed(path: Path, ids: np.ndarray, mask: np.ndarray, batch: int = 64) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = []
    for i in range(0, len(ids), batch):
        h = s.run(None, {"input_ids": ids[i:i + batch], "attention_mask": mask[i:i + batch]})[0]
        m = mask[i:i + batch][..., None].astype(np.float32)
        out.append((h * m).sum(1) / m.sum(1))
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--samples", type=int, default=None,
                        help="use this many snippets, drawn at random (default: all 12,808); at least 160")
    parser.add_argument("--runs", type=int, default=10, help="timed runs of the batch-of-32 latency")
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:  # tiny sizes, unless given explicitly
        parser.set_defaults(**SMOKE)
        args = parser.parse_args()
    if args.samples is not None and args.samples < 160:
        parser.error("--samples: at least 160 (the test fifth must fill a batch of 32)")
    logging.disable(logging.WARNING)
    from sklearn.linear_model import LogisticRegression

    model, tok = assets.minilm()
    if args.smoke:  # the same export and quantization on a sixth of the graph
        model.encoder.layer = model.encoder.layer[:1]
        model.config.num_hidden_layers = 1
    data = assets.rotten_tomatoes()
    enc = tok(data.texts, padding="max_length", truncation=True, max_length=args.max_length, return_tensors="np")
    ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
    labels = np.asarray(data.labels)
    order = np.random.default_rng(0).permutation(len(labels))[:args.samples]
    n_test = len(order) // 5
    test, train = order[:n_test], order[n_test:]

    work = scratch_dir("bench-minilm-")
    wrapped = HiddenStates(model).eval()
    fp32 = deepseek.export_onnx(wrapped, (torch.from_numpy(ids[:2]), torch.from_numpy(mask[:2])), work / "fp32.onnx",
                                input_names=["input_ids", "attention_mask"]).path
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(work / "ort_default.onnx"), weight_type=QuantType.QInt8)  # ORT defaults
    quantize_dynamic_onnx(fp32, work / "ours.onnx", per_channel=True)

    t = time.perf_counter()
    train_emb = embed(fp32, ids[train], mask[train])
    head = LogisticRegression(max_iter=2000, C=1.0).fit(train_emb, labels[train])
    print(f"FP32 train embeddings + head: {time.perf_counter() - t:.0f} s")
    import onnxruntime as ort

    rows = {}
    for name in ("fp32", "ort_default", "ours"):
        path = work / f"{name}.onnx"
        emb = embed(path, ids[test], mask[test])
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {"input_ids": ids[test[:32]], "attention_mask": mask[test[:32]]}
        lat = measure(lambda s=s, feed=feed: s.run(None, feed), warmup=2, runs=args.runs).median_ms
        rows[name] = {"accuracy": float((head.predict(emb) == labels[test]).mean()), "ms_per_batch32": lat,
                      "size_mb": path.stat().st_size / 1e6}
    base = rows["fp32"]["accuracy"]
    for name, r in rows.items():
        print(f"{name:>12}: accuracy {r['accuracy']:.4f} ({100 * (r['accuracy'] - base):+.2f} pt), "
              f"{r['ms_per_batch32']:.0f} ms per batch of 32 ({rows['fp32']['ms_per_batch32'] / r['ms_per_batch32']:.2f}x), "
              f"{r['size_mb']:.1f} MB")
    write_results(args, "minilm_int8.json", {"test_samples": int(n_test), "max_length": args.max_length, "rows": rows})


if __name__ == "__main__":
    main()
