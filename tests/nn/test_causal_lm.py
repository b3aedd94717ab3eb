"""DeepSeekForCausalLM as a Hugging Face model: generate (cache, static cache, sampling, beam), save/load,
the Auto classes, Trainer, pipeline, peft LoRA; the gate and the experts inside it; refusals."""

from __future__ import annotations

import json

import pytest
import torch

from deepseek import InvalidArgumentError, assets
from deepseek.nn import DeepSeekConfig, DeepSeekForCausalLM

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tokenizer():
    return assets.smollm2_tokenizer()  # SmolLM2's real tokenizer


def tiny(tokenizer, **overrides) -> DeepSeekForCausalLM:
    torch.manual_seed(0)
    fields = {"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128,
              "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
              "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id}
    return DeepSeekForCausalLM(DeepSeekConfig(**{**fields, **overrides})).eval()


def _greedy_without_cache(model, ids, steps):
    for _ in range(steps):
        with torch.no_grad():
            logits = model(ids, use_cache=False).logits[:, -1]
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], 1)
    return ids


@pytest.mark.parametrize("variant", [{}, {"attention_gate": "headwise"},
                                     {"num_local_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32}])
def test_generate_with_dynamic_and_static_caches_equals_recomputing_everything(tokenizer, variant):
    model = tiny(tokenizer, **variant)
    ids = tokenizer("To be, or not to be", return_tensors="pt").input_ids
    expected = _greedy_without_cache(model, ids, 6)
    kwargs = {"max_new_tokens": 6, "min_new_tokens": 6, "do_sample": False}
    assert torch.equal(model.generate(ids, **kwargs), expected)
    assert torch.equal(model.generate(ids, cache_implementation="static", **kwargs), expected)


def test_sampling_and_beam_search_run_and_sampling_is_seeded(tokenizer):
    model = tiny(tokenizer)
    ids = tokenizer("Something is rotten", return_tensors="pt").input_ids
    torch.manual_seed(1)
    a = model.generate(ids, max_new_tokens=5, min_new_tokens=5, do_sample=True, top_k=20, temperature=0.9)
    torch.manual_seed(1)
    b = model.generate(ids, max_new_tokens=5, min_new_tokens=5, do_sample=True, top_k=20, temperature=0.9)
    assert torch.equal(a, b) and a.shape[1] == ids.shape[1] + 5
    beams = model.generate(ids, max_new_tokens=5, min_new_tokens=5, num_beams=3, num_return_sequences=2, do_sample=False)
    assert beams.shape == (2, ids.shape[1] + 5)


def test_left_padded_batches_generate_what_each_prompt_generates_alone(tokenizer):
    model = tiny(tokenizer)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    prompts = ["Words, words, words", "The rest is silence, my good lord"]
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    together = model.generate(**batch, max_new_tokens=4, min_new_tokens=4, do_sample=False)[:, -4:]
    for row, prompt in zip(together, prompts):
        alone = model.generate(tokenizer(prompt, return_tensors="pt").input_ids, max_new_tokens=4, min_new_tokens=4,
                               do_sample=False)[0, -4:]
        assert torch.equal(row, alone)


def test_save_load_sharded_and_the_auto_classes(tokenizer, tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    model = tiny(tokenizer, attention_gate="elementwise", num_local_experts=2, num_experts_per_tok=1,
                 moe_router="sigmoid", moe_intermediate_size=16)
    model.save_pretrained(tmp_path / "m", max_shard_size="500KB")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert "model.safetensors.index.json" in files and sum(f.endswith(".safetensors") for f in files) > 1
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"] == "deepseek_core"
    assert AutoConfig.from_pretrained(tmp_path / "m").attention_gate == "elementwise"
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert type(loaded) is DeepSeekForCausalLM
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        # the same weights; float32 kernels may block a loaded (differently aligned) tensor differently: ~1 ulp
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=1e-5, atol=1e-6)
    for name, tensor in model.state_dict().items():
        if name.endswith("tokens_per_expert"):
            continue  # last-forward statistics, not weights
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()  # tied


def test_from_pretrained_never_downloads_and_names_what_is_missing(tmp_path):
    with pytest.raises(InvalidArgumentError, match="never downloads"):
        DeepSeekForCausalLM.from_pretrained("HuggingFaceTB/SmolLM2-135M")
    DeepSeekConfig(num_hidden_layers=1).save_pretrained(tmp_path)
    with pytest.raises(InvalidArgumentError, match=r"model\.safetensors"):
        DeepSeekForCausalLM.from_pretrained(tmp_path)


@pytest.mark.parametrize(("fields", "name"), [({"hidden_size": 30}, "hidden_size"),
                                              ({"num_key_value_heads": 3}, "num_key_value_heads"),
                                              ({"attention_gate": "sparse"}, "attention_gate"),
                                              ({"num_local_experts": 4, "num_experts_per_tok": 5}, "num_experts_per_tok")])
def test_invalid_configs_name_the_field(fields, name):
    with pytest.raises(InvalidArgumentError, match=f"^{name}:"):
        DeepSeekConfig(**{"hidden_size": 32, "num_attention_heads": 8, "num_key_value_heads": 2, **fields})


def test_a_trainer_step_with_experts_adds_the_balancing_loss(tokenizer, tmp_path):
    from transformers import Trainer, TrainingArguments

    model = tiny(tokenizer, num_local_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                 attention_gate="headwise").train()
    ids = tokenizer(assets.hamlet()[:20000], return_tensors="pt").input_ids[0]
    rows = [ids[i:i + 32].tolist() for i in range(0, 32 * 16, 32)]
    data = [{"input_ids": torch.tensor(r), "labels": torch.tensor(r)} for r in rows]  # any map-style dataset
    with torch.no_grad():
        out = model(torch.tensor(rows[:2]), labels=torch.tensor(rows[:2]))
    plain = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, out.logits.shape[-1]),
                                              torch.tensor(rows[:2])[:, 1:].reshape(-1))
    assert out.aux_loss > 0 and float(out.loss) == pytest.approx(float(plain + out.aux_loss), rel=1e-5)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=4, learning_rate=1e-2,
                             report_to=[], logging_steps=1, save_strategy="no", use_cpu=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = Trainer(model=model, args=args, train_dataset=data).train()
    assert torch.isfinite(torch.tensor(result.training_loss))
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert any("gate_proj" in n and "self_attn" in n for n in moved) and any("router" in n for n in moved)
    load = model.expert_load()
    assert set(load) == {0, 1} and sum(load[0]["tokens_per_expert"]) > 0


def test_pipeline_and_peft_lora_round_trip(tokenizer, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import pipeline

    model = tiny(tokenizer)
    text = pipeline("text-generation", model=model, tokenizer=tokenizer)("To be", max_new_tokens=4, do_sample=False)
    assert text[0]["generated_text"].startswith("To be")
    lora = get_peft_model(tiny(tokenizer), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    assert trainable > 0 and all("lora_" in n for n, p in lora.named_parameters() if p.requires_grad)
    with torch.no_grad():
        for n, p in lora.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)  # a trained adapter, not the identity it starts as
    lora.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        adapted = lora(input_ids=ids).logits
        again = PeftModel.from_pretrained(tiny(tokenizer), tmp_path / "adapter")(input_ids=ids).logits
        merged = lora.merge_and_unload()(ids).logits
    torch.testing.assert_close(again, adapted, rtol=0, atol=1e-6)
    torch.testing.assert_close(merged, adapted, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(adapted, tiny(tokenizer)(ids).logits)


def test_smollm2_real_weights_give_llamas_logits_and_perplexity():
    llama, tokenizer = assets.smollm2()  # transformers' LlamaForCausalLM
    ours = DeepSeekForCausalLM.from_llama(llama)
    assert ours.config.attention_gate is None and ours.config.num_local_experts == 0
    ids = tokenizer(assets.hamlet()[:4000], return_tensors="pt").input_ids[:, :256]
    with torch.no_grad():
        a, b = llama(ids, labels=ids), ours(ids, labels=ids)
    assert float((a.logits - b.logits).abs().max()) <= 1e-4
    assert float(b.loss.exp()) == pytest.approx(float(a.loss.exp()), rel=1e-5)  # perplexity on Hamlet
    with pytest.raises(InvalidArgumentError, match="missing"):
        DeepSeekForCausalLM.from_llama(llama, attention_gate="headwise")  # gate weights the checkpoint lacks


def test_the_convert_command_writes_a_verified_folder(tmp_path):
    import subprocess
    import sys

    run = [sys.executable, "-m", "deepseek", "convert", "llama"]
    done = subprocess.run([*run, "smollm2", "--output", str(tmp_path / "m")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and (tmp_path / "m" / "model.safetensors").is_file()
    assert (tmp_path / "m" / "tokenizer.json").is_file() or (tmp_path / "m" / "tokenizer_config.json").is_file()
    model = DeepSeekForCausalLM.from_pretrained(tmp_path / "m")
    assert model.config.num_hidden_layers == 30 and model.config.attention_gate is None
    bad = subprocess.run([*run, "no/such/model", "--output", str(tmp_path / "x")], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "nothing is downloaded" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x").exists()


def test_weight_only_quantization_applies_to_its_linear_layers(tokenizer):
    from deepseek.quantization import WeightOnlyConfig, quantize_weights, weight_only_layers

    model = tiny(tokenizer, attention_gate="headwise", num_local_experts=2, num_experts_per_tok=1,
                 moe_intermediate_size=32)
    ids = tokenizer("Though this be madness", return_tensors="pt").input_ids
    with torch.no_grad():
        before = model(ids).logits
    quantized = quantize_weights(model, WeightOnlyConfig(bits=8, group_size=None))
    layers = weight_only_layers(quantized)
    assert any("gate_proj" in n and "self_attn" in n for n in layers) and any("experts.1" in n for n in layers)
    with torch.no_grad():
        after = quantized(ids).logits
    assert float((after - before).abs().max()) < 0.05 * float(before.abs().max())  # int8 weights: close, not equal
    assert quantized.generate(ids, max_new_tokens=3, min_new_tokens=3, do_sample=False).shape[1] == ids.shape[1] + 3
