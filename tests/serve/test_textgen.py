"""SPEC.md §8's text-generation router: two versions of a real causal LM (SmolLM2) behind custom handlers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepseek import assets

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not assets.available().get("smollm2"), reason="SmolLM2 asset not installed")]


def test_two_generator_versions_route_by_use_v2_and_batch_prompts():
    from deepseek.serve import ModelRouter

    router = ModelRouter(ROOT / "examples" / "serving" / "textgen")
    try:
        assert router.models() == {"generator": ["1", "2", "3"]}
        router.route_by("generator", "use_v2", "2")
        prompts = np.array([b"To be, or not to be,", b"The capital of France is"], dtype=object)
        v1 = router.infer("generator", {"text": prompts})
        v2 = router.infer("generator", {"text": prompts}, metadata={"use_v2": "true"})
        assert router.resolve("generator", metadata={"use_v2": "true"}).version == "2"
        for out in (v1, v2):
            texts = [t.decode() for t in out["text"]]
            assert len(texts) == 2 and all(len(t.strip()) > 0 for t in texts)
        from deepseek.quantization import WeightOnlyLinear

        assert any(isinstance(m, WeightOnlyLinear) for m in router.resolve("generator", "2").handler.model.modules())
        assert not any(isinstance(m, WeightOnlyLinear) for m in router.resolve("generator", "1").handler.model.modules())
        # version 3: deepseek's own causal LM on the same weights, int8 KV cache (prompts shorter than its float
        # window of 64 tokens, so the cache holds them exactly): the same greedy text as transformers' Llama
        from deepseek.nn import DeepSeekForCausalLM

        v3 = router.infer("generator", {"text": prompts}, version="3")
        assert isinstance(router.resolve("generator", "3").handler.model, DeepSeekForCausalLM)
        assert list(v3["text"]) == list(v1["text"])
    finally:
        router.close()
