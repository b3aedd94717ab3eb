"""Calibration data by name: the bundled real photos, a folder of images, or a ``.npy`` array — what
``--calib`` accepts in ``deepseek quantize``, ``deepseek-compile`` and ``deepseek optimize``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .._core.checks import check_int
from .._core.errors import invalid

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def _train_split(name: str) -> Any:
    from .. import assets

    if name == "fashion-mnist":
        return assets.fashion_mnist("train")
    return (assets.digits() if name == "digits" else assets.mnist_5k()).split(0.2, seed=0)[0]


# the parts of the bundled labeled sets that deepseek evaluate does not score (it uses their test parts)
TRAIN_SPLITS = {name: functools.partial(_train_split, name) for name in ("digits", "mnist-5k",
                                                                         "fashion-mnist")}


_SHAPES = {"digits": (1, 8, 8), "mnist-5k": (1, 28, 28), "fashion-mnist": (1, 28, 28)}
_EXPECTED = (f"'photos', a bundled labeled set ({', '.join(TRAIN_SPLITS)}), an existing folder of images, or a .npy "
             "file (floats, or integer token ids)")


class CalibrationSource:
    """What ``calib`` names — ``'photos'``, a bundled labeled set's training split, a folder of images, or a .npy
    array — checked when built (a .npy is loaded and checked: numbers, not empty, finite) so that a bad source
    fails before any work; :meth:`check_examples` then checks it fits the model's input, :meth:`load` reads it."""

    def __init__(self, spec: Any, *, argument: str = "calib") -> None:
        import os

        if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
            raise invalid(argument, spec, _EXPECTED)
        self.spec, self.argument = str(spec), argument
        self.array: Any = None
        self.images: list[Path] = []
        path = Path(self.spec)
        if self.spec == "photos" or self.spec in TRAIN_SPLITS:
            self.kind = self.spec
        elif path.suffix.lower() == ".npy" or (path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES):
            from .._core.arrays import load_array

            if path.suffix.lower() != ".npy":
                raise invalid(argument, self.spec, _EXPECTED)
            self.kind = "npy"
            self.array = load_array(path, argument=argument, kinds="fiu", min_ndim=1)
        elif path.is_dir():
            self.kind = "images"
            try:
                self.images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            except OSError as exc:
                raise invalid(argument, self.spec, f"a readable folder of images ({exc.strerror or exc})") from None
            if not self.images:
                raise invalid(argument, self.spec, f"a folder containing images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        else:
            raise invalid(argument, self.spec, _EXPECTED)

    def sample_shape(self, size: int | None = None) -> tuple[int, ...] | None:
        """The shape of one sample (without the batch dimension); images take ``size`` (default 224)."""
        if self.kind == "npy":
            return tuple(self.array.shape[1:])
        if self.kind in _SHAPES:
            return _SHAPES[self.kind]
        return (3, size or 224, size or 224)

    def check_examples(self, examples: tuple[Any, ...]) -> None:
        """Refuse, naming ``calib``, data that cannot feed a model whose example inputs are ``examples``: one input,
        of the same shape per sample and the same kind of numbers (floats, or integer ids)."""
        if not examples:
            return
        first = examples[0]
        shape = tuple(getattr(first, "shape", ()))
        dtype = getattr(first, "dtype", None)
        floating = bool(getattr(dtype, "is_floating_point", False)) or getattr(dtype, "kind", "") == "f"
        if len(examples) != 1:
            raise invalid(self.argument, self.spec, f"a model with one input (this one takes {len(examples)}); "
                                                    "calibrate several inputs in Python")
        size = shape[-1] if len(shape) == 4 and shape[1] == 3 and shape[-1] == shape[-2] else None
        want = self.sample_shape(size)
        if want is not None and len(shape) >= 1 and tuple(shape[1:]) != want:
            what = f"an array of samples shaped {list(want)}" if self.kind == "npy" else f"{list(want)} samples"
            raise invalid(self.argument, self.spec, f"inputs of shape {list(shape[1:])} per sample like the model's "
                                                    f"input (this source gives {what})")
        if self.kind == "npy":
            if (self.array.dtype.kind == "f") != floating:
                raise invalid(self.argument, self.spec, f"{'floats' if floating else 'integers'} like the model's input "
                                                        f"{dtype} (the array holds {self.array.dtype})")
        elif not floating:
            raise invalid(self.argument, self.spec, f"a .npy file of integer inputs for a model whose input is {dtype}")

    def load(self, samples: int, shape: tuple[int, ...] | None) -> Any:
        """At most ``samples`` samples as a batch (float; integer arrays, such as token ids, stay int64)."""
        import numpy as np
        import torch

        from .. import assets

        check_int(samples, "samples", minimum=1)
        if self.kind == "photos":
            return assets.photo_calibration_batch(samples, size=shape[-1] if shape else 224)
        if self.kind in TRAIN_SPLITS:  # a bundled labeled set's training part: evaluation uses its held-out part
            return TRAIN_SPLITS[self.kind]().x[:samples].float()
        if self.kind == "npy":
            array = self.array[:samples]
            if array.dtype.kind in "iu":  # token ids and other integer inputs stay integers
                return torch.from_numpy(np.ascontiguousarray(array.astype(np.int64)))
            return torch.from_numpy(np.ascontiguousarray(array)).float()
        from PIL import Image, UnidentifiedImageError

        transform = assets.imagenet_transform(shape[-1] if shape else 224)
        batch = []
        for f in self.images[:samples]:
            try:
                with Image.open(f) as image:
                    batch.append(transform(np.asarray(image.convert("RGB"))))
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                raise invalid(self.argument, str(f), f"a readable image ({type(exc).__name__})") from None
        return torch.stack(batch)


def load_calibration(spec: str, samples: int, shape: tuple[int, ...] | None) -> Any:
    """'photos', a bundled labeled set's training split, a folder of images (ImageNet preprocessing), or a .npy
    file → a batch of at most ``samples`` (float; a .npy of integers, such as token ids, stays int64). Errors name
    ``calib``; with ``shape`` (the model input's, batch first) a .npy must match it per sample."""
    check_int(samples, "samples", minimum=1)
    source = CalibrationSource(spec)
    if shape is not None and source.kind == "npy" and tuple(source.array.shape[1:]) != tuple(shape[1:]):
        raise invalid("calib", source.spec, f"samples of shape {list(shape[1:])} like the model's input (the array's "
                                            f"are {list(source.array.shape[1:])})")
    return source.load(samples, shape)
