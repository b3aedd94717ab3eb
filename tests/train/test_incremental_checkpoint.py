"""Incremental checkpoints: only changed chunks written, exact resume, corruption named, garbage collected."""

from __future__ import annotations

import pytest
import torch

from deepseek import ArtifactError, InvalidArgumentError
from deepseek.train.incremental_checkpoint import IncrementalCheckpointer


def _digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
                               torch.nn.Linear(256, 10))


def _train(model, optimizer, x, y, steps: int, start: int) -> None:
    for step in range(start, start + steps):
        rows = torch.arange(step * 64, step * 64 + 64) % len(x)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
        optimizer.step()


def test_resume_from_an_incremental_checkpoint_is_exact(tmp_path):
    x, y = _digits()
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    store = IncrementalCheckpointer(tmp_path / "ckpt", chunk_mb=0.05)
    _train(model, optimizer, x, y, 5, 0)
    store.save(5, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 5})
    _train(model, optimizer, x, y, 5, 5)
    stats = store.save(10, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 10})
    assert stats.bytes_written > 0.9 * stats.state_bytes  # full training: nearly every chunk changed
    _train(model, optimizer, x, y, 5, 10)
    expected = [p.detach().clone() for p in model.parameters()]

    resumed = _model(seed=1)
    resumed_optimizer = torch.optim.AdamW(resumed.parameters(), lr=1e-3)
    state = IncrementalCheckpointer(tmp_path / "ckpt").load(10)
    assert state["step"] == 10
    resumed.load_state_dict(state["model"])
    resumed_optimizer.load_state_dict(state["optimizer"])
    _train(resumed, resumed_optimizer, x, y, 5, 10)
    for a, b in zip(expected, resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_only_changed_chunks_are_written_when_most_weights_are_frozen(tmp_path):
    x, y = _digits()
    model = _model()
    for p in model[:3].parameters():  # a fine-tune of the head only: 69k of 85k weights frozen
        p.requires_grad_(False)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    store = IncrementalCheckpointer(tmp_path / "ckpt", chunk_mb=0.01, full_every=100)
    first = store.save(0, {"model": model.state_dict()})
    assert first.bytes_written == first.state_bytes  # nothing in the store yet
    _train(model, optimizer, x, y, 3, 0)
    second = store.save(1, {"model": model.state_dict()})
    head = sum(p.numel() * 4 for p in model[4].parameters())
    assert head <= second.bytes_written < head + 2 * store.chunk_bytes
    assert second.bytes_written < 0.1 * second.state_bytes
    loaded = store.load(1)["model"]
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    assert store.load(0)["model"]["4.weight"].ne(loaded["4.weight"]).any()  # step 0 is still step 0


def test_a_corrupt_or_missing_chunk_names_the_tensor(tmp_path):
    model = _model()
    store = IncrementalCheckpointer(tmp_path / "ckpt", chunk_mb=0.01)
    store.save(0, {"model": model.state_dict()})
    manifest = store._read_manifest(0)
    digest = manifest["tensors"]["/model/2.weight"]["chunks"][3]
    path = tmp_path / "ckpt" / "chunks" / digest[:2] / digest
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"'/model/2\.weight' has a corrupt chunk"):
        store.load(0)
    store.save(1, {"model": model.state_dict()}, full=True)  # a full save repairs what it references
    assert torch.equal(store.load(1)["model"]["2.weight"], model[2].weight)
    path.unlink()
    with pytest.raises(ArtifactError, match=r"'/model/2\.weight' is missing chunk"):
        store.load(1)


def test_old_steps_are_pruned_and_their_chunks_collected(tmp_path):
    x, y = _digits()
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    store = IncrementalCheckpointer(tmp_path / "ckpt", keep=2, chunk_mb=0.05)
    for step in range(5):
        _train(model, optimizer, x, y, 1, step)
        store.save(step, {"model": model.state_dict()})
    assert store.steps() == [3, 4]
    with pytest.raises(ArtifactError, match="step 2 is not in"):
        store.load(2)
    referenced = {h for s in store.steps() for e in store._read_manifest(s)["tensors"].values() for h in e["chunks"]}
    on_disk = {p.name for p in (tmp_path / "ckpt" / "chunks").glob("*/*")}
    assert on_disk == referenced
    # an interrupted save: chunks written, no manifest — not a step, and collected
    (tmp_path / "ckpt" / "chunks" / "ff").mkdir(exist_ok=True)
    (tmp_path / "ckpt" / "chunks" / "ff" / ("ff" * 16)).write_bytes(b"x" * 10)
    assert store.steps() == [3, 4] and store.collect_garbage() == 10


def test_bad_settings_and_state_are_named(tmp_path):
    for kwargs, name in (({"chunk_mb": 0}, "chunk_mb"), ({"keep": 0}, "keep"), ({"full_every": 0}, "full_every")):
        with pytest.raises(InvalidArgumentError, match=name):
            IncrementalCheckpointer(tmp_path / "c", **kwargs)
    store = IncrementalCheckpointer(tmp_path / "c")
    with pytest.raises(InvalidArgumentError, match="state"):
        store.save(0, {"model": object()})
    with pytest.raises(InvalidArgumentError, match="step"):
        store.save(-1, {})
    with pytest.raises(ArtifactError, match="no complete step"):
        store.load()
    assert not list((tmp_path / "c").glob("manifests/*.json"))
