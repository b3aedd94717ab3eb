"""Model blocks and a Hugging Face-native causal LM.

- :class:`DynamicAttention`: gated (Qiu et al. 2025), grouped-query, rotary, sliding-window attention with a KV cache.
- :func:`sparse_attention`: sliding window + sinks and block-sparse layouts on FlexAttention (empty blocks skipped)
  or SDPA with a dense mask.
- :class:`MoELayer`: top-k SwiGLU experts dispatched by expert; softmax (Mixtral) or sigmoid + bias balancing
  (DeepSeek-V3) routing; auxiliary and z-losses; per-expert load.
- :class:`DeepSeekConfig`, :class:`DeepSeekModel`, :class:`DeepSeekForCausalLM`: a ``PreTrainedModel`` +
  ``GenerationMixin`` built from them (``model_type="deepseek_core"``), loading Llama checkpoints such as SmolLM2
  (:meth:`DeepSeekForCausalLM.from_llama`); :class:`QuantizedKVCache` (int8/int4 keys and values, a float window)
  and :class:`SinkKVCache` (sliding window + attention sinks, bounded memory).
  Imported on first use: the blocks alone do not import transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._core.lazy import lazy_getattr
from .attention import GATES, DynamicAttention, KVCache, build_attention_mask
from .moe import ROUTERS, MoELayer, MoELosses, SwiGLU
from .rope import RotaryEmbedding, apply_rotary
from .sparse import sparse_attention

if TYPE_CHECKING:
    from .convert import convert_checkpoint, llama_to_deepseek
    from .kv_cache import QuantizedKVCache, SinkKVCache
    from .modeling import DeepSeekConfig, DeepSeekForCausalLM, DeepSeekModel, RMSNorm

_LAZY = {"DeepSeekConfig": "modeling", "DeepSeekModel": "modeling", "DeepSeekForCausalLM": "modeling",
         "RMSNorm": "modeling", "llama_to_deepseek": "convert", "convert_checkpoint": "convert",
         "QuantizedKVCache": "kv_cache",
         "SinkKVCache": "kv_cache"}

__all__ = ["GATES", "ROUTERS", "DeepSeekConfig", "DeepSeekForCausalLM", "DeepSeekModel", "DynamicAttention", "KVCache",
           "MoELayer", "MoELosses", "QuantizedKVCache", "RMSNorm", "RotaryEmbedding", "SinkKVCache", "SwiGLU", "apply_rotary", "build_attention_mask",
           "convert_checkpoint", "llama_to_deepseek", "sparse_attention"]


__getattr__ = lazy_getattr(__name__, _LAZY)
