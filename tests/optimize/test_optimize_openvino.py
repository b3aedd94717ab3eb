"""OpenVINO FP32 and NNCF INT8 as candidates of deepseek optimize for a PyTorch model (the ``openvino`` extra)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("openvino")
pytest.importorskip("nncf")


def test_optimize_searches_openvino_candidates_of_a_pytorch_model_and_replays_them(digits_cnn, tmp_path):
    import deepseek

    result = deepseek.optimize(digits_cnn, (torch.zeros(1, 1, 8, 8),), data="digits", trials=3,
                               lowerings=("ort-fp32", "openvino-fp32", "openvino-int8"), max_accuracy_drop=2.0,
                               output=tmp_path / "out", progress=False)
    built = {c.params["lowering"]: c for c in result.candidates}
    assert set(built) == {"ort-fp32", "openvino-fp32", "openvino-int8"}
    assert all(not c.error for c in built.values())
    assert built["openvino-fp32"].scores["drop_pp"] == pytest.approx(0.0, abs=0.3)  # the same float model
    assert built["openvino-int8"].path.suffix == ".xml" and built["openvino-int8"].recipe.backend == "openvino"
    if result.best.params["lowering"].startswith("openvino"):
        assert (tmp_path / "out" / "model.xml").is_file() and (tmp_path / "out" / "model.bin").is_file()
    again = deepseek.optimize.replay(tmp_path / "out" / "recipe.yaml", output=tmp_path / "again", model=digits_cnn,
                                     progress=False)
    assert again["drop_pp"] == pytest.approx(result.best.scores["drop_pp"], abs=1e-9)


def test_a_pruned_openvino_candidate_is_named_with_its_pruning():
    from deepseek.optimize.search import describe

    assert describe({"lowering": "openvino-int8", "prune": 0.5}) == \
        "openvino-int8 (NNCF, performance preset), pruned 50%, not fine-tuned"
    assert describe({"lowering": "openvino-fp32"}) == "openvino-fp32"
