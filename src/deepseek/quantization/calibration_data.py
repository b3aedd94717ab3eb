"""Calibration data by name: the bundled real photos, a folder of images, or a ``.npy`` array — what
``--calib`` accepts in ``deepseek quantize``, ``deepseek-compile`` and ``deepseek optimize``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._errors import invalid

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def _digits_train() -> Any:
    from .. import assets

    return assets.digits().split(0.2, seed=0)[0]


def _mnist_train() -> Any:
    from .. import assets

    return assets.mnist_5k().split(0.2, seed=0)[0]


def _fashion_train() -> Any:
    from .. import assets

    return assets.fashion_mnist("train")


# the parts of the bundled labeled sets that deepseek evaluate does not score (it uses their test parts)
TRAIN_SPLITS = {"digits": _digits_train, "mnist-5k": _mnist_train, "fashion-mnist": _fashion_train}


def load_calibration(spec: str, samples: int, shape: tuple[int, ...] | None) -> Any:
    """'photos', a bundled labeled set's training split, a folder of images (ImageNet preprocessing), or a .npy
    file → a batch of at most ``samples`` (float; a .npy of integers, such as token ids, stays int64)."""
    import numpy as np
    import torch

    from .. import assets

    if samples < 1:
        raise invalid("--samples", samples, "a positive integer")
    if spec == "photos":
        return assets.photo_calibration_batch(samples, size=shape[-1] if shape else 224)
    if spec in TRAIN_SPLITS:  # a bundled labeled set's training part: evaluation uses its held-out part
        return TRAIN_SPLITS[spec]().x[:samples].float()
    path = Path(spec)
    if path.suffix == ".npy" and path.is_file():
        array = np.load(path, allow_pickle=False)[:samples]
        if array.dtype.kind in "iu":  # token ids and other integer inputs stay integers
            return torch.from_numpy(array.astype(np.int64))
        return torch.from_numpy(array).float()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:samples]
        if not files:
            raise invalid("--calib", spec, f"a folder containing images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        from PIL import Image

        transform = assets.imagenet_transform(shape[-1] if shape else 224)
        return torch.stack([transform(np.asarray(Image.open(f).convert("RGB"))) for f in files])
    raise invalid("--calib", spec, f"'photos', a bundled labeled set ({', '.join(TRAIN_SPLITS)}), an existing "
                                   "folder of images, or a .npy file")
