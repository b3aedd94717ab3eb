"""Compressed KV caches: keys and values kept as int8 or int4 with a scale and zero point per head, token and
group of ``group_size`` channels (asymmetric, round to nearest), the newest ``residual`` tokens kept in float.

Unlike transformers' ``QuantizedCache`` (which dequantizes and re-quantizes the whole history every time its float
window fills), tokens leaving the float window are quantized once, in blocks of ``residual``, and appended: no
value is ever quantized twice. ``QuantizedKVCache`` is a transformers ``Cache`` (pass it to ``generate`` as
``past_key_values``, or to :class:`~deepseek.nn.DynamicAttention` as ``cache``); ``memory_bytes()`` is what it holds.

``SinkKVCache(window, sinks)`` is the sliding-window + attention-sink cache (StreamingLLM, Xiao et al. 2023): it keeps
the first ``sinks`` tokens and the last ``window - 1`` before the current step, and evicts the rest, so its memory is
bounded however long the stream. Keys keep the rotary positions they were computed at (no re-rotation), and the
attention mask is built from the positions the cache holds (``key_positions``): on a model whose own attention uses
the same window and sinks (``DeepSeekConfig(sliding_window=, attention_sinks=)``) generating with it gives exactly the
outputs of the full forward, and on any other model it is the bounded-memory approximation StreamingLLM describes.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

from .._core.checks import check_choice, check_int
from .._core.errors import invalid

BITS = (8, 4)


def quantize(x: torch.Tensor, bits: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes, scale, zero) of ``x`` ``(..., tokens, dim)``, per token and group of ``group_size`` channels:
    ``x ~= codes * scale + zero`` with codes in ``[0, 2**bits - 1]``; int4 codes packed two to a byte."""
    *lead, dim = x.shape
    g = x.float().reshape(*lead, dim // group_size, group_size)
    lo, hi = g.amin(-1, keepdim=True), g.amax(-1, keepdim=True)
    levels = 2 ** bits - 1
    scale = ((hi - lo) / levels).clamp_min(1e-8)
    codes = torch.round((g - lo) / scale).clamp(0, levels).to(torch.uint8).reshape(*lead, dim)
    if bits == 4:
        codes = codes[..., 0::2] | (codes[..., 1::2] << 4)
    return codes, scale.squeeze(-1).to(torch.float16), lo.squeeze(-1).to(torch.float16)


def dequantize(codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int, group_size: int,
               dtype: torch.dtype) -> torch.Tensor:
    if bits == 4:
        codes = torch.stack([codes & 0x0F, codes >> 4], dim=-1).flatten(-2)
    *lead, dim = codes.shape
    g = codes.float().reshape(*lead, dim // group_size, group_size)
    return (g * scale.float()[..., None] + zero.float()[..., None]).reshape(*lead, dim).to(dtype)


class _BatchedLayer(DynamicLayer):
    """Beam search and batch expansion for a layer that keeps more than ``keys``/``values``: every per-row tensor
    goes through ``_select``."""

    is_croppable = False

    def _select(self, fn: Any) -> None:
        self.keys, self.values = fn(self.keys), fn(self.values)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self._select(lambda t: t.index_select(0, beam_idx.to(t.device)))

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._select(lambda t: t.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._select(lambda t: t[indices, ...])


class QuantizedKVLayer(_BatchedLayer):
    """One layer's cache: quantized history (``codes``, ``scales``, ``zeros`` for keys and values) + float tail."""

    def __init__(self, bits: int = 8, group_size: int | None = None, residual: int = 64) -> None:
        super().__init__()
        check_choice(bits, "bits", BITS, expected=f"one of {BITS}")
        if group_size is not None and (not isinstance(group_size, int) or group_size < 2 or group_size % 2):
            raise invalid("group_size", group_size, "None (the whole head) or an even number of channels")
        check_int(residual, "residual", minimum=0, expected="a number of recent tokens kept in float, >= 0")
        self.bits, self.group_size, self.residual = bits, group_size, residual
        self.cumulative_length = 0
        self.quantized: dict[str, list[torch.Tensor]] | None = None  # "keys"/"values": [codes, scales, zeros]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            dim = key_states.shape[-1]
            self.group = self.group_size or dim
            if dim % self.group:
                raise invalid("group_size", self.group_size, f"a divisor of the head dimension ({dim})")
        self.cumulative_length += key_states.shape[-2]
        self.keys = torch.cat([self.keys, key_states], dim=-2)
        self.values = torch.cat([self.values, value_states], dim=-2)
        overflow = self.keys.shape[-2] - self.residual
        # move whole blocks (of `residual` tokens, or everything past it on a long prompt) into the quantized store
        if overflow > 0 and (overflow >= self.residual or self.residual == 0 or self.quantized is None):
            self._store(self.keys[..., :overflow, :], self.values[..., :overflow, :])
            self.keys, self.values = self.keys[..., overflow:, :], self.values[..., overflow:, :]
        if self.quantized is None:
            return self.keys, self.values
        old_k, old_v = (dequantize(*self.quantized[n], self.bits, self.group, self.dtype) for n in ("keys", "values"))
        return torch.cat([old_k, self.keys], dim=-2), torch.cat([old_v, self.values], dim=-2)

    def _store(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        new = {"keys": quantize(keys, self.bits, self.group), "values": quantize(values, self.bits, self.group)}
        if self.quantized is None:
            self.quantized = {n: list(parts) for n, parts in new.items()}
        else:
            for n, parts in new.items():
                self.quantized[n] = [torch.cat([old, part], dim=-2) for old, part in zip(self.quantized[n], parts)]

    def get_seq_length(self) -> int:
        return self.cumulative_length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.cumulative_length + query_length, 0

    def memory_bytes(self) -> int:
        tensors = [self.keys, self.values] if self.is_initialized else []
        if self.quantized is not None:
            tensors += [t for parts in self.quantized.values() for t in parts]
        return sum(t.numel() * t.element_size() for t in tensors)

    def reset(self) -> None:
        super().reset()
        self.cumulative_length, self.quantized = 0, None

    def _select(self, fn: Any) -> None:
        self.keys, self.values = fn(self.keys), fn(self.values)
        if self.quantized is not None:
            self.quantized = {n: [fn(t) for t in parts] for n, parts in self.quantized.items()}

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("a quantized KV cache cannot be cropped (assisted generation needs a float cache)")


class QuantizedKVCache(Cache):
    """int8 (``bits=8``) or int4 (``bits=4``) keys and values for every layer; ``residual`` newest tokens in float;
    scales per head, token and ``group_size`` channels (None: one per head and token)."""

    def __init__(self, bits: int = 8, group_size: int | None = None, residual: int = 64,
                 num_layers: int | None = None, config: Any = None) -> None:
        num_layers = _layer_count(num_layers, config)
        self.bits, self.group_size, self.residual = bits, group_size, residual
        super().__init__(layers=[QuantizedKVLayer(bits, group_size, residual) for _ in range(num_layers)])

    def memory_bytes(self) -> int:
        """Bytes held: int8/int4 codes, float16 scales and zeros, and the float window."""
        return sum(layer.memory_bytes() for layer in self.layers)


class SinkKVLayer(_BatchedLayer):
    """One layer's keys and values at the positions in ``positions``: ``sinks`` first tokens plus a recent window.
    Eviction happens at the start of the next update, so after an update the stored keys are exactly the ones that
    update returned (a long prompt is seen whole by its own queries, then cut)."""

    def __init__(self, window: int, sinks: int) -> None:
        super().__init__()
        self.window, self.sinks = window, sinks
        self.cumulative_length = 0
        self.positions = torch.zeros(0, dtype=torch.long)

    def kept(self) -> torch.Tensor:
        """Indices (into the stored keys) that survive the next step: the sinks and the last ``window - 1``."""
        pos = self.positions
        return torch.nonzero((pos < self.sinks) | (pos >= self.cumulative_length - (self.window - 1))).flatten()

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        else:
            keep = self.kept()
            if keep.numel() < self.positions.numel():
                index = keep.to(self.keys.device)
                self.keys = self.keys.index_select(-2, index)
                self.values = self.values.index_select(-2, index)
                self.positions = self.positions[keep]
        new = key_states.shape[-2]
        self.positions = torch.cat([self.positions, torch.arange(self.cumulative_length, self.cumulative_length + new)])
        self.cumulative_length += new
        self.keys = torch.cat([self.keys, key_states], dim=-2)
        self.values = torch.cat([self.values, value_states], dim=-2)
        return self.keys, self.values

    def key_positions(self, new_tokens: int) -> torch.Tensor:
        """Positions of the keys the next ``update`` with ``new_tokens`` tokens will return."""
        held = self.positions[self.kept()] if self.is_initialized else self.positions
        return torch.cat([held, torch.arange(self.cumulative_length, self.cumulative_length + new_tokens)])

    def get_seq_length(self) -> int:
        return self.cumulative_length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return int(self.key_positions(query_length).numel()), 0

    def memory_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.keys, self.values)) if self.is_initialized else 0

    def reset(self) -> None:
        super().reset()
        self.cumulative_length, self.positions = 0, torch.zeros(0, dtype=torch.long)

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("a sink cache cannot be cropped (evicted tokens are gone)")


class SinkKVCache(Cache):
    """Sliding-window + attention-sink cache: the first ``sinks`` tokens and the ``window`` most recent ones (the
    current included) per layer; memory bounded by ``sinks + window`` tokens whatever the length generated."""

    def __init__(self, window: int, sinks: int = 4, num_layers: int | None = None, config: Any = None) -> None:
        check_int(window, "window", minimum=1, expected="a positive number of recent tokens")
        check_int(sinks, "sinks", minimum=0, expected="a number of first tokens kept, >= 0")
        num_layers = _layer_count(num_layers, config)
        self.window, self.sinks = window, sinks
        super().__init__(layers=[SinkKVLayer(window, sinks) for _ in range(num_layers)])

    def key_positions(self, layer_idx: int, new_tokens: int) -> torch.Tensor:
        """Positions of the keys layer ``layer_idx`` will attend over once ``new_tokens`` more are added."""
        return self.layers[layer_idx].key_positions(new_tokens)

    def memory_bytes(self) -> int:
        """Bytes of the keys and values held."""
        return sum(layer.memory_bytes() for layer in self.layers)


def _layer_count(num_layers: int | None, config: Any) -> int:
    if num_layers is None and config is not None:
        num_layers = config.get_text_config().num_hidden_layers
    if num_layers is None:
        raise invalid("num_layers", None, "the model's layer count (or config=model.config)")
    return num_layers


def float_cache_bytes(cache: Cache) -> int:
    """Bytes of a float cache's keys and values (transformers' ``DynamicCache``, for comparison)."""
    return sum(t.numel() * t.element_size() for layer in cache.layers if layer.is_initialized
               for t in (layer.keys, layer.values))


__all__ = ["QuantizedKVCache", "QuantizedKVLayer", "SinkKVCache", "SinkKVLayer", "dequantize", "float_cache_bytes",
           "quantize"]
