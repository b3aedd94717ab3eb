"""Llama-architecture checkpoints (SmolLM2, Llama 2/3 shapes) as :class:`DeepSeekForCausalLM`: the same weight
names, the gate off, dense SwiGLU MLPs; mismatched weights are refused with the missing and unexpected keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._errors import invalid


def load_llama(source: Any) -> Any:
    """A ``LlamaForCausalLM`` from a loaded model, a local Hugging Face folder or a GGUF file (never downloaded)."""
    from transformers import AutoModelForCausalLM, PreTrainedModel

    if isinstance(source, PreTrainedModel):
        return source
    path = Path(source)
    if path.is_dir() and (path / "config.json").is_file():
        return AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    if path.is_file() and path.suffix == ".gguf":
        return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    raise invalid("source", str(source), "a LlamaForCausalLM, a local Hugging Face folder (config.json + weights) or "
                                         "a .gguf file (nothing is downloaded)")


def llama_to_deepseek(source: Any, **config_overrides: Any) -> Any:
    """:class:`DeepSeekForCausalLM` holding ``source``'s weights unchanged (float32 unless the source is not)."""
    from .modeling import DeepSeekConfig, DeepSeekForCausalLM

    llama = load_llama(source)
    lc = llama.config
    if lc.model_type != "llama":
        raise invalid("source", lc.model_type, "a Llama-architecture model (model_type 'llama')")
    if getattr(lc, "hidden_act", "silu") != "silu" or getattr(lc, "mlp_bias", False):
        raise invalid("source", f"hidden_act={lc.hidden_act}, mlp_bias={getattr(lc, 'mlp_bias', False)}",
                      "a SwiGLU (silu) MLP without biases")
    rope = dict(getattr(lc, "rope_parameters", None) or {})
    if rope.get("rope_type", "default") != "default":
        raise invalid("source", f"rope_type={rope.get('rope_type')}", "plain rotary positions (rope_type 'default')")
    fields = {"vocab_size": lc.vocab_size, "hidden_size": lc.hidden_size, "intermediate_size": lc.intermediate_size,
              "num_hidden_layers": lc.num_hidden_layers, "num_attention_heads": lc.num_attention_heads,
              "num_key_value_heads": lc.num_key_value_heads, "head_dim": getattr(lc, "head_dim", None),
              "max_position_embeddings": lc.max_position_embeddings,
              "rope_theta": float(rope.get("rope_theta", getattr(lc, "rope_theta", 10000.0))),
              "rms_norm_eps": lc.rms_norm_eps, "tie_word_embeddings": bool(lc.tie_word_embeddings),
              "attention_bias": bool(getattr(lc, "attention_bias", False)), "pad_token_id": lc.pad_token_id,
              "bos_token_id": lc.bos_token_id, "eos_token_id": lc.eos_token_id}
    config = DeepSeekConfig(**{**fields, **config_overrides})
    model = DeepSeekForCausalLM(config).to(next(llama.parameters()).dtype)
    state = {k: v for k, v in llama.state_dict().items() if not k.endswith("rotary_emb.inv_freq")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if config.tie_word_embeddings:
        missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise invalid("source", "its weights", f"the same tensors as DeepSeekForCausalLM with this config: missing "
                                              f"{missing[:8]}{' ...' if len(missing) > 8 else ''}, unexpected "
                                              f"{unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
    if config.tie_word_embeddings:
        model.tie_weights()
    return model.eval()
