"""deepseek optimize on a causal language model: a small Llama trained here on Hamlet (SmolLM2's real tokenizer),
searched over weight-only int8/int4 and bfloat16, judged by next-token accuracy on held-out Hamlet, each
candidate's decoding timed in a process of its own; the written folder loads and scores the same."""

from __future__ import annotations

import json

import pytest
import torch

import deepseek
from deepseek import assets
from deepseek._core.errors import InvalidArgumentError
from deepseek.optimize import load_lm, replay
from deepseek.optimize.lm import LMJudge, describe_lm


@pytest.fixture(scope="module")
def tiny_lm():
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = assets.smollm2_tokenizer()  # SmolLM2's tokenizer alone (the 135M weights are not needed)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    ids = tokenizer(assets.hamlet(), return_tensors="pt").input_ids[0]
    train = ids[8 * 128:]  # the judge reads the first windows: training starts after them
    opt = torch.optim.AdamW(model.parameters(), 1e-2)
    for step in range(12):  # to ~14 % next-token accuracy on the judged windows (chance: 1/49152)
        batch = torch.stack([train[i:i + 64] for i in range(step * 512, step * 512 + 8 * 64, 64)])
        loss = model(batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), tokenizer


def test_a_language_model_is_searched_over_weight_only_and_bf16(tiny_lm, tmp_path):
    model, tokenizer = tiny_lm
    result = deepseek.optimize(model, tokenizer=tokenizer, data="hamlet", max_accuracy_drop=1.0, trials=2,
                               windows=4, window=128, new_tokens=8, output=tmp_path / "out", progress=False)
    assert [c.params["lowering"] for c in result.candidates] == ["torch-float", "torch-weight-only"]
    judge = LMJudge(model, tokenizer, "hamlet", windows=4, window=128)
    assert result.reference_accuracy == judge.reference_accuracy > 0.05  # it learned more than chance (1/49152)
    for c in result.candidates:
        assert c.scores["drop_pp"] == pytest.approx(100 * (judge.reference_accuracy - c.scores["accuracy"]))
        assert (c.latency_ms is not None) == (c.feasible or c is result.baseline)
    # the float embedding table dominates this small model; the Linear layers (lm_head among them) shrink
    assert all(c.size_bytes < 0.75 * result.baseline.size_bytes for c in result.candidates[1:])
    assert result.best.feasible and result.best.latency_ms == min(c.latency_ms for c in result.candidates if c.feasible)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["model", "pareto.json", "pareto.png", "recipe.yaml", "report.md"]
    pareto = json.loads((out / "pareto.json").read_text())
    assert sum(r["chosen"] for r in pareto["candidates"]) == 1
    assert describe_lm(result.best.params) in (out / "report.md").read_text()
    loaded = load_lm(out / "model")  # safetensors + the recorded scheme, no pickle
    assert judge.score(loaded)["drop_pp"] == pytest.approx(result.best.scores["drop_pp"], abs=1e-9)
    # the recipe rebuilds the same candidate, judged on the same windows
    again = replay(out / "recipe.yaml", output=tmp_path / "again", model=model, tokenizer=tokenizer)
    assert again["drop_pp"] == pytest.approx(result.best.scores["drop_pp"], abs=1e-9)
    assert again["size_bytes"] == result.best.size_bytes and again["latency_ms"] > 0
    assert json.loads((tmp_path / "again" / "model" / "deepseek_weight_only.json").read_text()) == result.best.params


def test_language_model_bad_input_is_refused(tiny_lm, tmp_path):
    model, tokenizer = tiny_lm
    with pytest.raises(InvalidArgumentError, match=r"^data"):
        deepseek.optimize(model, tokenizer=tokenizer, data="photos", progress=False)
    with pytest.raises(InvalidArgumentError, match="tokenizer"):
        deepseek.optimize(model, data="hamlet", progress=False)
    with pytest.raises(InvalidArgumentError, match=r"^max_accuracy_drop"):
        deepseek.optimize(model, tokenizer=tokenizer, data="hamlet", max_accuracy_drop=-1, progress=False)
    with pytest.raises(InvalidArgumentError, match="folder"):
        load_lm(tmp_path)


def test_a_model_read_from_gguf_is_saved_for_the_latency_process(tmp_path):
    """transformers refuses save_pretrained on a GGUF-loaded model; the search still hands it to its own process."""
    from deepseek.optimize.lm import load_source, save_source

    model, tokenizer = assets.smollm2()
    save_source(model, tokenizer, tmp_path / "src")
    again, _ = load_source(str(tmp_path / "src"))
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, model(ids).logits, rtol=1e-5, atol=1e-5)
