"""deepseek optimize on token ids: a small attention-pooling classifier trained here on real Rotten Tomatoes
snippets (MiniLM's WordPiece tokenizer), judged from a ``--data`` folder of .npy files — integer inputs kept,
a transformer-style ``finfo.min`` padding mask through static INT8, dynamic INT8 searched, the recipe replayed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

import deepseek
from deepseek import assets
from deepseek._core.errors import InvalidArgumentError
from deepseek.optimize import replay
from deepseek.optimize.data import make_judge
from deepseek.quantization import quantize_static_onnx

LENGTH = 32


class AttentionPool(torch.nn.Module):
    """Embeddings, attention pooling over the unpadded tokens (the padding masked with float32's minimum, as
    Hugging Face encoders do), a linear head."""

    def __init__(self, vocab: int, dim: int = 32):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.score = torch.nn.Linear(dim, 1)
        self.head = torch.nn.Linear(dim, 2)

    def forward(self, ids):
        h = self.embed(ids)
        pad = (ids == 0).to(h.dtype)
        weights = torch.softmax(self.score(h).squeeze(-1) + pad * torch.finfo(h.dtype).min, dim=-1)
        return self.head((weights.unsqueeze(-1) * h).sum(1))


@pytest.fixture(scope="module")
def text_case(tmp_path_factory):
    _, tokenizer = assets.minilm()
    data = assets.rotten_tomatoes()
    order = np.random.default_rng(0).permutation(len(data.texts))[:1600]
    ids = tokenizer([data.texts[i] for i in order], padding="max_length", truncation=True, max_length=LENGTH,
                    return_tensors="np")["input_ids"].astype(np.int64)
    labels = np.asarray(data.labels)[order]
    torch.manual_seed(0)
    model = AttentionPool(tokenizer.vocab_size)
    opt = torch.optim.Adam(model.parameters(), 5e-3)
    x, y = torch.from_numpy(ids[:1200]), torch.from_numpy(labels[:1200])
    for _ in range(6):
        for i in range(0, 1200, 100):
            loss = torch.nn.functional.cross_entropy(model(x[i:i + 100]), y[i:i + 100])
            opt.zero_grad()
            loss.backward()
            opt.step()
    folder = tmp_path_factory.mktemp("rt")
    np.save(folder / "inputs.npy", ids[1200:])  # 400 held-out rows: the first 80 calibrate, 320 are judged
    np.save(folder / "labels.npy", labels[1200:])
    return model.eval(), torch.from_numpy(ids[:1]), folder


def test_a_data_folder_of_token_ids_is_searched_with_dynamic_and_static_int8(text_case, tmp_path):
    model, example, folder = text_case
    judge = make_judge(model, (example,), str(folder), calib_samples=128)
    assert judge.x.dtype == np.int64 and len(judge.x) == 320 and judge.calib_samples == 80
    with torch.no_grad():
        fp32 = float((model(torch.from_numpy(judge.x)).argmax(1).numpy() == judge.labels).mean())
    assert judge.reference_accuracy == pytest.approx(fp32) and fp32 > 0.55  # learned something real
    result = deepseek.optimize(model, (example,), data=str(folder), max_accuracy_drop=2.0, trials=3,
                               lowerings=("ort-fp32", "ort-int8", "ort-int8-dynamic"), output=tmp_path / "out",
                               progress=False)
    assert [c.error for c in result.candidates] == [None] * 3, [c.error for c in result.candidates]
    static = next(c for c in result.candidates if c.params["lowering"] == "ort-int8")
    assert static.recipe.samples == 80 and static.recipe.calib == str(folder / "inputs.npy")
    recipe = yaml.safe_load((tmp_path / "out" / "recipe.yaml").read_text())
    assert recipe["input_dtypes"] == ["int64"] and recipe["data"] == str(folder)
    again = replay(tmp_path / "out" / "recipe.yaml", output=tmp_path / "again", model=model, progress=False)
    assert again["drop_pp"] == result.best.scores["drop_pp"]


def test_static_int8_keeps_a_finfo_min_mask_in_float(text_case, tmp_path):
    model, _, folder = text_case
    calibration = torch.from_numpy(np.load(folder / "inputs.npy")[:64])
    for method in ("percentile", "entropy", "minmax"):  # ORT's histogram calibrators failed on the sentinel
        result = quantize_static_onnx(model, [calibration], tmp_path / f"{method}.onnx", method=method)
        assert {"Add", "Softmax"} <= set(result.float_op_types) and "Gather" not in result.float_op_types
        assert result.calibration_agreement > 0.9


def test_bad_data_folders_are_refused_naming_the_file(text_case, tmp_path):
    model, example, folder = text_case
    x = (example,)
    with pytest.raises(InvalidArgumentError, match=r"inputs\.npy"):
        make_judge(model, x, str(tmp_path))  # an empty folder
    np.save(tmp_path / "inputs.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(InvalidArgumentError, match="never unpickled"):
        make_judge(model, x, str(tmp_path))  # never unpickled
    ids = np.load(folder / "inputs.npy")
    np.save(tmp_path / "inputs.npy", ids.astype(np.float32))
    with pytest.raises(InvalidArgumentError, match="integer inputs"):
        make_judge(model, x, str(tmp_path))
    np.save(tmp_path / "inputs.npy", ids)
    np.save(tmp_path / "labels.npy", np.zeros(3, dtype=np.int64))
    with pytest.raises(InvalidArgumentError, match=r"labels\.npy"):
        make_judge(model, x, str(tmp_path))
    (tmp_path / "labels.npy").unlink()
    np.save(tmp_path / "inputs.npy", ids[:8])
    with pytest.raises(InvalidArgumentError, match="at least 9 rows"):
        make_judge(model, x, str(tmp_path))
