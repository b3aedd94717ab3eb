"""A text generator behind `deepseek serve`: SmolLM2-135M (the bundled real causal LM), prompts in, text out.

Version 1 runs the float model (transformers' Llama); version 2 the same weights quantized to int8 weight-only (its
config.yaml says ``weight_bits: 8``); version 3 the same weights as deepseek's own ``DeepSeekForCausalLM``
(``architecture: deepseek``) decoding with an int8 KV cache (``kv_cache_bits: 8``). Prompts travel as v2 BYTES
tensors named ``text``; requests are batched (left-padded).
"""

from __future__ import annotations

import itertools

import numpy as np

from deepseek.serve import Handler


class TextGenerator(Handler):
    def setup(self, version_dir, config):
        import torch

        from deepseek import assets

        self.torch = torch
        self.model, self.tokenizer = assets.smollm2()
        if config.parameters.get("architecture") == "deepseek":
            from deepseek.nn import DeepSeekForCausalLM

            self.model = DeepSeekForCausalLM.from_llama(self.model).eval()
        self.kv_cache_bits = config.parameters.get("kv_cache_bits")
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        bits = config.parameters.get("weight_bits")
        if bits:
            from deepseek.quantization import quantize_weights

            quantize_weights(self.model, bits=int(bits), group_size=int(config.parameters.get("group_size", 32)))
        self.max_new_tokens = int(config.parameters.get("max_new_tokens", 16))

    def decode_request(self, inputs, parameters):
        if set(inputs) != {"text"}:
            raise ValueError(f"expected one BYTES input named 'text', got {sorted(inputs)}")
        return [v.decode() if isinstance(v, bytes) else str(v) for v in inputs["text"].reshape(-1)]

    def batch_size_of(self, prompts):
        return len(prompts)

    def batch(self, items):
        return [p for prompts in items for p in prompts]

    def predict(self, prompts):
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True)
        extra = {}
        if self.kv_cache_bits:
            from deepseek.nn import QuantizedKVCache

            extra["past_key_values"] = QuantizedKVCache(bits=int(self.kv_cache_bits), config=self.model.config)
        with self.torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id, **extra)
        return self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    def unbatch(self, texts, sizes):
        cuts = np.cumsum([0, *sizes])
        return [texts[a:b] for a, b in itertools.pairwise(cuts)]

    def encode_response(self, texts):
        return {"text": np.array([t.encode() for t in texts], dtype=object)}

    def sample_request(self):
        return {"text": np.array([b"Hello"], dtype=object)}

    def metadata(self):
        return {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
                "outputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}]}
