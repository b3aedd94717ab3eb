"""DeepSeekConfig / DeepSeekModel / DeepSeekForCausalLM: a Hugging Face-native decoder built from our blocks —
RMSNorm, rotary positions, :class:`~deepseek.nn.DynamicAttention` (gate optional), a SwiGLU MLP or a
:class:`~deepseek.nn.MoELayer` every ``moe_layer_freq`` layers — that works with ``generate()``, ``Trainer``,
``pipeline("text-generation")``, peft and the Auto classes (``model_type="deepseek_core"``; transformers already
owns several ``deepseek_*`` types, for DeepSeek-AI's models, which this is not).

Weight names follow Llama's (``model.layers.N.self_attn.q_proj`` ...), so a Llama checkpoint such as SmolLM2 loads
with the gate off and dense MLPs: :meth:`DeepSeekForCausalLM.from_llama`. Only local files are read: nothing is
ever downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import AutoConfig, AutoModelForCausalLM, GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import MoeCausalLMOutputWithPast, MoeModelOutputWithPast

from .._core.checks import check_choice, check_int
from .._core.errors import invalid
from .attention import GATES, DynamicAttention, build_attention_mask
from .moe import ROUTERS, MoELayer, SwiGLU
from .rope import RotaryEmbedding

MODEL_TYPE = "deepseek_core"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


class DeepSeekConfig(PreTrainedConfig):
    """Llama's field names (``vocab_size``, ``hidden_size``, ``intermediate_size``, ``num_hidden_layers``,
    ``num_attention_heads``, ``num_key_value_heads``, ``max_position_embeddings``, ``rope_theta``,
    ``tie_word_embeddings``, ``rms_norm_eps``) plus the gate (``attention_gate``: None, ``"headwise"``,
    ``"elementwise"``), sliding-window attention (``sliding_window``, ``attention_sinks``) and the experts under
    Mixtral / DeepSeek names (``num_local_experts`` (0: dense), ``num_experts_per_tok``, ``moe_intermediate_size``,
    ``n_shared_experts``, ``router_aux_loss_coef``, ``router_z_loss_coef``, ``moe_router``, ``moe_layer_freq``,
    ``first_k_dense_replace``, ``capacity_factor``). The defaults are SmolLM2-135M's shape. Invalid values raise
    naming the field."""

    model_type = MODEL_TYPE
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["past_key_values"]

    vocab_size: int = 49152
    hidden_size: int = 576
    intermediate_size: int = 1536
    num_hidden_layers: int = 30
    num_attention_heads: int = 9
    num_key_value_heads: int | None = 3
    head_dim: int | None = None
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    tie_word_embeddings: bool = True
    attention_bias: bool = False
    attention_dropout: float = 0.0
    attention_gate: str | None = None
    sliding_window: int | None = None
    attention_sinks: int = 0
    num_local_experts: int = 0
    num_experts_per_tok: int = 2
    moe_intermediate_size: int | None = None
    n_shared_experts: int = 0
    router_aux_loss_coef: float = 0.01
    router_z_loss_coef: float = 1e-3
    moe_router: str = "softmax"
    moe_layer_freq: int = 1
    first_k_dense_replace: int = 0
    capacity_factor: float | None = None
    router_bias_update_rate: float = 1e-3
    initializer_range: float = 0.02
    use_cache: bool = True
    pad_token_id: int | None = None
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2

    def __post_init__(self, **kwargs: Any) -> None:
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        self._check()
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        super().__post_init__(**kwargs)

    def _check(self) -> None:
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "max_position_embeddings", "moe_layer_freq"):
            setattr(self, name, check_int(getattr(self, name), name, minimum=1, expected="a positive integer"))
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            raise invalid("hidden_size", self.hidden_size, f"a multiple of num_attention_heads "
                                                            f"({self.num_attention_heads}), or set head_dim")
        if self.num_attention_heads % self.num_key_value_heads:
            raise invalid("num_key_value_heads", self.num_key_value_heads,
                          f"a divisor of num_attention_heads ({self.num_attention_heads})")
        check_choice(self.attention_gate, "attention_gate", GATES, expected=f"one of {GATES}")
        check_choice(self.moe_router, "moe_router", ROUTERS, expected=f"one of {ROUTERS}")
        if not isinstance(self.num_local_experts, int) or self.num_local_experts < 0:
            raise invalid("num_local_experts", self.num_local_experts, "0 (dense MLPs) or a number of experts")
        if self.num_local_experts and not 1 <= self.num_experts_per_tok <= self.num_local_experts:
            raise invalid("num_experts_per_tok", self.num_experts_per_tok,
                          f"between 1 and num_local_experts ({self.num_local_experts})")
        if not self.rope_theta > 0:
            raise invalid("rope_theta", self.rope_theta, "a positive base, e.g. 10000")

    def is_moe_layer(self, index: int) -> bool:
        """Whether decoder layer ``index`` has experts (DeepSeek's ``first_k_dense_replace``, then every
        ``moe_layer_freq``-th layer)."""
        return bool(self.num_local_experts) and index >= self.first_k_dense_replace and \
            (index - self.first_k_dense_replace) % self.moe_layer_freq == 0


class RMSNorm(torch.nn.Module):
    """``weight * x / sqrt(mean(x^2) + eps)``, computed in float32 whatever the input dtype (as Llama does)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class DeepSeekDecoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: DeepSeekConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.self_attn = DynamicAttention(
            config.hidden_size, config.num_attention_heads, num_kv_heads=config.num_key_value_heads,
            head_dim=config.head_dim, gate=config.attention_gate, rope_theta=config.rope_theta,
            bias=config.attention_bias, dropout=config.attention_dropout, window=config.sliding_window,
            sinks=config.attention_sinks)
        if config.is_moe_layer(layer_idx):
            self.mlp = MoELayer(config.hidden_size, config.num_local_experts, config.num_experts_per_tok,
                                expert_dim=config.moe_intermediate_size or config.intermediate_size,
                                router=config.moe_router, n_shared_experts=config.n_shared_experts,
                                capacity_factor=config.capacity_factor, aux_loss_coef=config.router_aux_loss_coef,
                                z_loss_coef=config.router_z_loss_coef, bias_update_rate=config.router_bias_update_rate)
        else:
            self.mlp = SwiGLU(config.hidden_size, config.intermediate_size)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, past_key_values: Cache | None = None,
                position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None, **_: Any) -> torch.Tensor:
        hidden_states = hidden_states + self.self_attn(
            self.input_layernorm(hidden_states), attention_mask=attention_mask, position_ids=position_ids,
            cache=past_key_values, layer_idx=self.layer_idx, position_embeddings=position_embeddings)
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))


class DeepSeekPreTrainedModel(PreTrainedModel):
    config_class = DeepSeekConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules: ClassVar[list[str]] = ["DeepSeekDecoderLayer"]
    _skip_keys_device_placement: ClassVar[list[str]] = ["past_key_values"]
    _supports_sdpa = True
    _keys_to_ignore_on_load_unexpected: ClassVar[list[str]] = [r"\.rotary_emb\.inv_freq", r"\.rotary\.inv_freq"]

    @torch.no_grad()
    def _init_weights(self, module: torch.nn.Module) -> None:
        # transformers' init functions skip tensors already loaded from a checkpoint
        from transformers import initialization as init

        std = self.config.initializer_range
        if isinstance(module, torch.nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, torch.nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, RMSNorm):
            init.ones_(module.weight)
        elif isinstance(module, MoELayer):
            init.zeros_(module.expert_bias)
            init.zeros_(module.tokens_per_expert)
        elif isinstance(module, RotaryEmbedding):  # a non-persistent buffer: never in a checkpoint, always rebuilt
            init.copy_(module.inv_freq, module.frequencies())

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Any:
        """Load a local folder saved by ``save_pretrained`` (safetensors, sharded or not). Nothing is downloaded:
        a hub name, or a folder without weights, is refused with what is missing."""
        folder = Path(pretrained_model_name_or_path)
        if not folder.is_dir():
            raise invalid("pretrained_model_name_or_path", str(pretrained_model_name_or_path),
                          "a local folder (deepseek never downloads: save_pretrained it, or copy it here first)")
        if not (folder / "config.json").is_file():
            raise invalid("pretrained_model_name_or_path", str(folder), "a folder holding config.json")
        if not any((folder / name).is_file() for name in WEIGHT_FILES):
            raise invalid("pretrained_model_name_or_path", str(folder),
                          f"a folder holding the weights ({' or '.join(WEIGHT_FILES)}); only config.json is there")
        kwargs["local_files_only"] = True
        return super().from_pretrained(folder, *args, **kwargs)


class DeepSeekModel(DeepSeekPreTrainedModel):
    """The decoder stack: embeddings, ``num_hidden_layers`` decoder layers, the final norm."""

    def __init__(self, config: DeepSeekConfig) -> None:
        super().__init__(config)
        self.embed_tokens = torch.nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = torch.nn.ModuleList(DeepSeekDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, past_key_values: Cache | None = None,
                inputs_embeds: torch.Tensor | None = None, use_cache: bool | None = None,
                **_: Any) -> MoeModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise invalid("input_ids", None if input_ids is None else list(input_ids.shape),
                          "exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache(config=self.config)
        batch, seq = inputs_embeds.shape[:2]
        past = past_key_values.get_seq_length() if past_key_values is not None else 0
        if position_ids is None:
            position_ids = (torch.arange(seq, device=inputs_embeds.device) + past)[None].expand(batch, seq)
        mask = self._mask(attention_mask, seq, past, past_key_values, inputs_embeds.device)
        first = self.layers[0].self_attn if len(self.layers) else None
        rotary = first.rotary(position_ids, inputs_embeds.dtype) if first is not None and first.rotary else None
        hidden = inputs_embeds
        for layer in self.layers:
            hidden = layer(hidden, attention_mask=mask, position_ids=position_ids, past_key_values=past_key_values,
                           position_embeddings=rotary)
        return MoeModelOutputWithPast(last_hidden_state=self.norm(hidden), past_key_values=past_key_values)

    def _mask(self, attention_mask: torch.Tensor | None, seq: int, past: Any, cache: Cache | None,
              device: torch.device) -> torch.Tensor | None:
        """One mask for every layer (None: the fused causal kernel)."""
        if attention_mask is not None and attention_mask.dim() == 4:
            return attention_mask.bool() if attention_mask.dtype != torch.bool and attention_mask.max() <= 1 \
                and attention_mask.min() >= 0 else attention_mask
        key_positions = cache.key_positions(0, seq) if hasattr(cache, "key_positions") else None  # evicting caches
        if self.config.sliding_window is not None and key_positions is None and isinstance(past, int) and past == 0 \
                and (attention_mask is None or bool(attention_mask.all())):
            return None  # each layer masks its own window (on FlexAttention when the sequence is long)
        max_len = cache.get_max_cache_shape() if cache is not None and hasattr(cache, "get_max_cache_shape") else None
        if isinstance(max_len, int) and max_len > 0:  # a static cache returns all its slots
            k_len = max_len
        else:  # never int() a static cache's tensor length: that would break a compiled graph
            k_len = seq + (past if isinstance(past, int) else int(past))
        padding = None if attention_mask is None or bool(attention_mask.all()) else attention_mask
        return build_attention_mask(seq, k_len, past, causal=True, padding_mask=padding,
                                    window=self.config.sliding_window, sinks=self.config.attention_sinks,
                                    device=device, key_positions=key_positions)


class DeepSeekForCausalLM(DeepSeekPreTrainedModel, GenerationMixin):
    """:class:`DeepSeekModel` with a language-model head (tied to the embeddings when ``tie_word_embeddings``).
    With ``labels``, the loss is next-token cross-entropy plus the experts' balancing losses (``aux_loss``)."""

    _tied_weights_keys: ClassVar[dict[str, str]] = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: DeepSeekConfig) -> None:
        super().__init__(config)
        self.model = DeepSeekModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = torch.nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: torch.nn.Module) -> None:
        self.model.embed_tokens = value

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, past_key_values: Cache | None = None,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                use_cache: bool | None = None, logits_to_keep: int | torch.Tensor = 0,
                **kwargs: Any) -> MoeCausalLMOutputWithPast:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=past_key_values, inputs_embeds=inputs_embeds, use_cache=use_cache)
        hidden = out.last_hidden_state
        if isinstance(logits_to_keep, int) and logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        elif isinstance(logits_to_keep, torch.Tensor):
            hidden = hidden[:, logits_to_keep]
        logits = self.lm_head(hidden)
        aux = self.balancing_loss()
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size,
                                      **{k: v for k, v in kwargs.items() if k == "num_items_in_batch"})
            if aux is not None:
                loss = loss + aux.to(loss.device)
        return MoeCausalLMOutputWithPast(loss=loss, aux_loss=aux, logits=logits, past_key_values=out.past_key_values)

    def balancing_loss(self) -> torch.Tensor | None:
        """The experts' auxiliary and z-losses of the last forward, summed over layers (None: a dense model)."""
        losses = [m.losses.total for m in self.modules() if isinstance(m, MoELayer) and m.losses is not None]
        return torch.stack(losses).sum() if losses else None

    def expert_load(self) -> dict[int, dict[str, Any]]:
        """Per MoE layer: the last forward's tokens per expert, dead experts, max/min load, dropped tokens."""
        return {i: layer.mlp.load() for i, layer in enumerate(self.model.layers) if isinstance(layer.mlp, MoELayer)}

    @classmethod
    def from_llama(cls, source: Any, **config_overrides: Any) -> DeepSeekForCausalLM:
        """A Llama-architecture model as ours (gate off, dense MLPs), weights unchanged: ``source`` a loaded
        ``LlamaForCausalLM``, a local Hugging Face folder, or a GGUF file (dequantized by transformers)."""
        from .convert import (
            llama_to_deepseek,  # import-cycle: from_llama is the class's front door to the converter
        )

        return llama_to_deepseek(source, **config_overrides)


def _register() -> None:
    try:
        AutoConfig.register(MODEL_TYPE, DeepSeekConfig)
        AutoModelForCausalLM.register(DeepSeekConfig, DeepSeekForCausalLM)
    except ValueError:  # registered already (a reload)
        pass


_register()

__all__ = ["DeepSeekConfig", "DeepSeekForCausalLM", "DeepSeekModel", "DeepSeekPreTrainedModel", "RMSNorm"]
