"""A text-detection data folder for ``deepseek optimize``: lines of *Hamlet* (the text bundled with deepseek's
assets) drawn on the real photos of scikit-image, scikit-learn and matplotlib, with the box of every line kept as
its label. The photos and the words are real; their composition is synthetic, because no labeled text-detection
set ships inside a pip or Debian package. Font: DejaVu Sans, as shipped inside matplotlib.

    python examples/text_detection/make_data.py OUT [--count 96] [--calibration 64] [--size 320] [--seed 0]

writes ``OUT/inputs.npy`` (N, 3, size, size) float32, normalized as PP-OCR's detector expects ((x/255 - 0.5) / 0.5),
``OUT/labels.npy`` (N, MAX_BOXES, 4) float32 boxes (x0, y0, x1, y1) in pixels, rows of -1 where an image has
fewer, and ``OUT/calibration.npy`` (other images, other lines, no labels).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

MAX_BOXES = 6


def _font_path() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def _lines() -> list[str]:
    from deepseek import assets

    words = [line.strip() for line in assets.hamlet().splitlines()]
    return [w for w in words if 4 <= len(w) <= 40 and w.isascii()]


def render(count: int, *, size: int = 320, seed: int = 0, boxes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``count`` photos of ``size`` x ``size`` with 1-MAX_BOXES lines of text each: (normalized inputs, boxes)."""
    from PIL import Image, ImageDraw, ImageFont

    from deepseek import assets

    rng = np.random.default_rng(seed)
    photos = assets.real_photos()
    lines = _lines()
    font_path = str(_font_path())
    inputs = np.empty((count, 3, size, size), np.float32)
    labels = np.full((count, MAX_BOXES, 4), -1.0, np.float32)
    for i in range(count):
        photo = photos[int(rng.integers(len(photos)))].image
        h, w = photo.shape[:2]
        side = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        image = Image.fromarray(np.ascontiguousarray(photo[y:y + side, x:x + side])).resize((size, size))
        draw = ImageDraw.Draw(image)
        gray = np.asarray(image.convert("L"), np.float32)
        placed: list[tuple[int, int, int, int]] = []
        for _ in range(int(rng.integers(1, MAX_BOXES + 1))):
            for _attempt in range(20):
                font = ImageFont.truetype(font_path, int(rng.integers(14, 33)))
                text = lines[int(rng.integers(len(lines)))]
                x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
                tw, th = x1 - x0, y1 - y0
                if tw >= size - 8:
                    continue
                px, py = int(rng.integers(4, size - tw - 4)), int(rng.integers(4, size - th - 4))
                box = (px, py, px + tw, py + th)
                if any(not (box[2] + 6 < b[0] or b[2] + 6 < box[0] or box[3] + 6 < b[1] or b[3] + 6 < box[1])
                       for b in placed):
                    continue
                under = gray[box[1]:box[3], box[0]:box[2]].mean()
                fill = (0, 0, 0) if under > 110 else (255, 255, 255)
                draw.text((px - x0, py - y0), text, font=font, fill=fill)
                placed.append(box)
                break
        inputs[i] = (np.asarray(image, np.float32).transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
        for k, box in enumerate(placed):
            labels[i, k] = box
    return inputs, labels


def write_folder(out: str | Path, *, count: int = 96, calibration: int = 64, size: int = 320, seed: int = 0) -> Path:
    """Write inputs.npy, labels.npy and calibration.npy to the new folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=False)
    x, y = render(count, size=size, seed=seed)
    calib, _ = render(calibration, size=size, seed=seed + 10_000)
    np.save(out / "inputs.npy", x)
    np.save(out / "labels.npy", y)
    np.save(out / "calibration.npy", calib)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=96)
    parser.add_argument("--calibration", type=int, default=64)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(write_folder(args.out, count=args.count, calibration=args.calibration, size=args.size, seed=args.seed))


if __name__ == "__main__":
    main()
