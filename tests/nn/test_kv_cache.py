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


def _windowed_model(window: int, sinks: int, dtype: torch.dtype = torch.float64):
    from deepseek.nn import DeepSeekConfig, DeepSeekForCausalLM

    torch.manual_seed(0)
    config = DeepSeekConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, bos_token_id=0, eos_token_id=299,
                            sliding_window=window, attention_sinks=sinks, attention_gate="headwise")
    return DeepSeekForCausalLM(config).to(dtype).eval()


def test_sink_cache_generation_equals_the_full_forward_of_a_windowed_model_and_memory_stays_bounded():
    from deepseek.nn import SinkKVCache

    window, sinks = 8, 2
    model = _windowed_model(window, sinks)
    ids = torch.randint(1, 298, (1, 13))  # a prompt longer than the window: its own queries see all of it first
    cache = SinkKVCache(window, sinks, config=model.config)
    with torch.no_grad():
        out = model.generate(ids, past_key_values=cache, max_new_tokens=25, min_new_tokens=25, do_sample=False,
                             output_logits=True, return_dict_in_generate=True)
        # every step's scores equal a fresh forward over the whole sequence so far (the window mask on all keys)
        full = model(out.sequences).logits
    steps = torch.stack(out.logits, 1)[0]  # generate hands logits back in float32: equal to its rounding
    torch.testing.assert_close(steps, full[0, ids.shape[1] - 1:-1].to(steps.dtype), rtol=1e-6, atol=1e-6)
    assert cache.get_seq_length() == 13 + 24  # the last token is never fed back
    for layer in cache.layers:
        assert layer.keys.shape[-2] <= sinks + window
        assert layer.positions[:sinks].tolist() == list(range(sinks))
        assert layer.positions[sinks:].tolist() == list(range(37 - layer.keys.shape[-2] + sinks, 37))
    assert cache.memory_bytes() == sum(2 * t.keys.numel() * 8 for t in cache.layers)


def test_sink_cache_on_a_dynamic_attention_equals_windowed_attention_over_all_keys():
    from deepseek.nn.kv_cache import SinkKVCache

    torch.manual_seed(0)
    att = DynamicAttention(32, 4, num_kv_heads=2, window=5, sinks=1).double().eval()
    x = torch.randn(2, 30, 32, dtype=torch.float64)
    cache = SinkKVCache(5, 1, num_layers=1)
    with torch.no_grad():
        full = att(x)
        steps = torch.cat([att(x[:, :7], cache=cache)] + [att(x[:, i:i + 1], cache=cache) for i in range(7, 30)], 1)
    torch.testing.assert_close(steps, full, rtol=1e-12, atol=1e-12)
    assert cache.layers[0].keys.shape[-2] == 1 + 5


def test_sink_cache_with_left_padding_matches_each_prompt_alone():
    # no sinks: with left padding the first *slots* are padding, so sinks would differ from the prompt alone's
    from deepseek.nn import SinkKVCache

    model = _windowed_model(6, 0)
    a, b = torch.randint(1, 298, (1, 9)), torch.randint(1, 298, (1, 5))
    batch = torch.cat([a, torch.cat([torch.full((1, 4), 299), b], 1)])
    mask = torch.cat([torch.ones(1, 9), torch.cat([torch.zeros(1, 4), torch.ones(1, 5)], 1)]).long()
    kw = {"max_new_tokens": 12, "min_new_tokens": 12, "do_sample": False, "pad_token_id": 299}
    with torch.no_grad():
        together = model.generate(batch, attention_mask=mask, past_key_values=SinkKVCache(6, 0, config=model.config), **kw)
        alone_b = model.generate(b, past_key_values=SinkKVCache(6, 0, config=model.config), **kw)
    assert torch.equal(together[1, 9:], alone_b[0, 5:])


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"window": 4, "sinks": -1}, {"window": 4}])
def test_sink_cache_refuses_bad_arguments(kwargs):
    from deepseek.nn import SinkKVCache

    with pytest.raises(InvalidArgumentError):
        SinkKVCache(**kwargs)
