"""Quantized KV caches: the rounding error stays within its bound, the float window is exact, memory shrinks, and
generate() runs with it."""

from __future__ import annotations

import pytest
import torch

from deepseek import InvalidArgumentError
from deepseek.nn import DynamicAttention, KVCache
from deepseek.nn.kv_cache import QuantizedKVCache, QuantizedKVLayer, dequantize, quantize

EPS16 = 2.0 ** -11  # float16's relative rounding (scales and zeros are stored in it)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("group", [64, 16])
def test_round_trip_error_is_within_half_a_step(bits, group):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 50, 64) * torch.linspace(0.1, 5, 64)  # channels of very different ranges
    codes, scale, zero = quantize(x, bits, group)
    assert codes.dtype == torch.uint8 and codes.shape[-1] == (64 if bits == 8 else 32)
    back = dequantize(codes, scale, zero, bits, group, torch.float32)
    s = scale.float().repeat_interleave(group, -1)
    z = zero.float().repeat_interleave(group, -1)
    bound = 0.5 * s * (1 + 2 * EPS16) + EPS16 * (z.abs() + (2 ** bits - 1) * s) + 1e-6
    assert ((back - x).abs() <= bound).all()


def test_the_float_window_is_exact_and_older_tokens_are_quantized_once():
    torch.manual_seed(0)
    att = DynamicAttention(64, 4, num_kv_heads=2).eval()
    x = torch.randn(1, 40, 64)
    ref, q = KVCache(), QuantizedKVCache(bits=8, residual=64, num_layers=1)
    with torch.no_grad():
        a = torch.cat([att(x[:, :10], cache=ref)] + [att(x[:, i:i + 1], cache=ref) for i in range(10, 40)], 1)
        b = torch.cat([att(x[:, :10], cache=q)] + [att(x[:, i:i + 1], cache=q) for i in range(10, 40)], 1)
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # 40 tokens: all still in the float window
    layer = q.layers[0]
    assert layer.quantized is None and q.get_seq_length() == 40
    small = QuantizedKVCache(bits=8, residual=8, num_layers=1)
    with torch.no_grad():
        att(x[:, :30], cache=small)
        stored = small.layers[0].quantized["keys"][0].clone()
        for i in range(30, 40):
            att(x[:, i:i + 1], cache=small)
    codes = small.layers[0].quantized["keys"][0]
    assert torch.equal(codes[..., :22, :], stored) and small.layers[0].keys.shape[-2] < 16  # appended, never redone


def test_int8_and_int4_caches_hold_a_fraction_of_the_float_bytes_and_stay_close():
    torch.manual_seed(0)
    att = DynamicAttention(256, 4).eval()  # head_dim 64
    x = torch.randn(1, 512, 256)
    outs, sizes = {}, {}
    for name, cache in (("float", KVCache()), ("int8", QuantizedKVCache(bits=8, residual=16, num_layers=1)),
                        ("int4", QuantizedKVCache(bits=4, group_size=32, residual=16, num_layers=1))):
        with torch.no_grad():
            att(x[:, :-1], cache=cache)
            outs[name] = att(x[:, -1:], cache=cache)
        sizes[name] = cache.memory_bytes()
    assert sizes["int8"] < 0.35 * sizes["float"] and sizes["int4"] < 0.25 * sizes["float"]
    for name, tolerance in (("int8", 0.02), ("int4", 0.2)):
        rel = float((outs[name] - outs["float"]).norm() / outs["float"].norm())
        assert rel < tolerance, (name, rel)


def test_generate_takes_it_as_past_key_values():
    from deepseek.nn import DeepSeekConfig, DeepSeekForCausalLM

    torch.manual_seed(0)
    model = DeepSeekForCausalLM(DeepSeekConfig(vocab_size=300, hidden_size=64, intermediate_size=128,
                                               num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                               bos_token_id=0, eos_token_id=299)).eval()
    ids = torch.randint(1, 298, (1, 12))
    expected = model.generate(ids, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    # a float window longer than the whole run: the same tokens as the float cache
    wide = QuantizedKVCache(bits=4, residual=64, config=model.config)
    assert torch.equal(model.generate(ids, past_key_values=wide, max_new_tokens=6, min_new_tokens=6, do_sample=False),
                       expected)
    narrow = QuantizedKVCache(bits=8, residual=4, config=model.config)
    out = model.generate(ids, past_key_values=narrow, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    assert out.shape == expected.shape and narrow.layers[0].quantized is not None


def test_bad_settings_name_the_field():
    with pytest.raises(InvalidArgumentError, match=r"^bits:"):
        QuantizedKVLayer(bits=3)
    with pytest.raises(InvalidArgumentError, match=r"^group_size:"):
        QuantizedKVLayer(group_size=3)
    with pytest.raises(InvalidArgumentError, match=r"^num_layers:"):
        QuantizedKVCache()
