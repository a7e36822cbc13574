"""Preprocessing: scaling, standardisation, layouts, one-hot labels, the train/validation
split, class-count summaries, and turning a user's own handwriting into an MNIST-style image."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping, NamedTuple, Optional, Tuple, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

IMAGE_SIZE = 28
NUM_CLASSES = 10
LAYOUTS = ("flat", "image")


class Stats(NamedTuple):
    """Standardisation statistics (plain floats, JSON-able), fitted on the training split."""
    mean: float
    std: float


def scale(images: np.ndarray) -> np.ndarray:
    """``uint8`` pixels 0..255 -> ``float32`` in [0, 1]."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"scale expects uint8 pixels, got {images.dtype}")
    return images.astype(np.float32) * np.float32(1 / 255)


def fit_standardization(x: np.ndarray) -> Stats:
    """Mean and standard deviation over all pixels of ``x`` (use the training split only)."""
    x = np.asarray(x)  # accumulate in float64 without a float64 copy of the images
    std = float(x.std(dtype=np.float64))
    if not std > 0:
        raise ValueError("cannot standardise: all pixel values are equal (std is 0)")
    return Stats(float(x.mean(dtype=np.float64)), std)


def apply_standardization(x: np.ndarray, stats: Stats) -> np.ndarray:
    """``(x - mean) / std`` as ``float32``."""
    mean, std = Stats(*stats)
    return ((np.asarray(x, dtype=np.float32) - np.float32(mean)) / np.float32(std)).astype(
        np.float32, copy=False)


def to_layout(x: np.ndarray, layout: str = "flat") -> np.ndarray:
    """Reshape images to ``"flat"`` ``(N, 784)`` or ``"image"`` ``(N, 1, 28, 28)``."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    x = np.asarray(x)
    if x.ndim < 2 or x[0].size != IMAGE_SIZE * IMAGE_SIZE:
        raise ValueError(f"expected N images of 28x28 pixels, got shape {x.shape}")
    return x.reshape(len(x), -1) if layout == "flat" else x.reshape(len(x), 1, IMAGE_SIZE, IMAGE_SIZE)


def prepare(images: np.ndarray, *, layout: str = "flat",
            standardize: Union[bool, Stats] = False) -> Tuple[np.ndarray, Optional[Stats]]:
    """Scale ``uint8`` images to float32 [0, 1], optionally standardise, and reshape.

    ``standardize=True`` fits the statistics on ``images`` (pass the training split) and
    returns them; pass those :class:`Stats` back to apply the same normalisation to
    validation, test or prediction data. Returns ``(x, stats or None)``."""
    x = scale(images)
    stats: Optional[Stats] = None
    if standardize is True:
        stats = fit_standardization(x)
    elif standardize is not False:
        stats = Stats(*standardize)
    if stats is not None:
        x = apply_standardization(x, stats)
    return to_layout(x, layout), stats


def one_hot(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Integer labels ``(N,)`` -> float32 one-hot ``(N, num_classes)``."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}, "
                         f"got values from {labels.min()} to {labels.max()}")
    out = np.zeros((len(labels), num_classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


class Split(NamedTuple):
    """A train/validation split; each part keeps the original order."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def train_val_split(x: np.ndarray, y: np.ndarray, val_size: int = 5000, *, seed: int = 0,
                    stratify: bool = False) -> Split:
    """Seeded split of ``val_size`` validation samples (default 55,000/5,000 on MNIST).
    With ``stratify`` every class gets its proportional share (largest remainder)."""
    x, y = np.asarray(x), np.asarray(y)
    n = len(y)
    if len(x) != n:
        raise ValueError(f"x has {len(x)} samples but y has {n}")
    if not 0 <= val_size <= n:
        raise ValueError(f"val_size must be in 0..{n}, got {val_size}")
    rng = np.random.default_rng(seed)
    if stratify:
        classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        exact = counts * (val_size / n)
        quota = np.floor(exact).astype(np.int64)
        extra = val_size - quota.sum()
        quota[np.argsort(-(exact - quota), kind="stable")[:extra]] += 1
        val = np.concatenate([rng.permutation(np.flatnonzero(inverse == k))[:quota[k]]
                              for k in range(len(classes))])
    else:
        val = rng.permutation(n)[:val_size]
    is_val = np.zeros(n, dtype=bool)
    is_val[val] = True
    return Split(x[~is_val], y[~is_val], x[is_val], y[is_val])


def class_counts(splits: Mapping[str, np.ndarray],
                 num_classes: int = NUM_CLASSES) -> "pd.DataFrame":
    """Class counts per split: one row per class plus ``total``, one column per split."""
    import pandas as pd  # here, not at the top: importing pandas takes ~0.3 s

    table = pd.DataFrame({name: np.bincount(np.asarray(labels, dtype=np.int64),
                                            minlength=num_classes)
                          for name, labels in splits.items()},
                         index=pd.RangeIndex(num_classes, name="class"))
    table.loc["total"] = table.sum()
    return table


# ---------------------------------------------------------------- the user's own handwriting
_MIN_CONTRAST = 0.1   # ink must be this much darker/brighter than the background (0..1)
_INK_THRESHOLD = 0.2  # fraction of the strongest ink that counts for the bounding box
_BOX = 20             # MNIST fits each digit into 20x20, then centres it in 28x28
_LANCZOS = getattr(Image, "Resampling", Image).LANCZOS


def mnist_style(image: np.ndarray) -> np.ndarray:
    """Make a greyscale 2-D image of a handwritten digit (any size; uint8 0..255, or float
    in [0, 1]) look like MNIST: light ink on black, cropped to the ink, fitted into 20x20
    keeping the aspect ratio (antialiased), pasted into 28x28 with its centre of mass at the
    centre. Returns ``float32 (28, 28)`` in [0, 1]; raises ValueError if there is no ink."""
    raw = np.asarray(image)
    if raw.ndim != 2 or raw.size == 0:
        raise ValueError(f"expected a non-empty 2-D greyscale image, got shape {raw.shape}")
    a = raw.astype(np.float64)
    if raw.dtype.kind in "iub" or a.max() > 1:
        a = a / 255.0
    background = float(np.median(np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])))
    if background > 0.5:  # dark ink on light paper -> light ink on black
        a, background = 1.0 - a, 1.0 - background
    ink = np.clip(a - background, 0.0, None)
    if ink.max() < _MIN_CONTRAST:
        raise ValueError("no ink found: the image is empty (uniform background)")
    ink /= ink.max()
    rows = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    factor = _BOX / max(h, w)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))  # Pillow wants (w, h)
    small = np.asarray(Image.fromarray(crop.astype(np.float32)).resize(size, _LANCZOS))
    small = np.clip(small, 0.0, None)
    small /= small.max()
    total = small.sum()
    cy = (small.sum(axis=1) @ np.arange(small.shape[0])) / total
    cx = (small.sum(axis=0) @ np.arange(small.shape[1])) / total
    centre = IMAGE_SIZE / 2  # MNIST's centres of mass average (14.0, 14.0) in index coordinates
    top = int(np.clip(round(centre - cy), 0, IMAGE_SIZE - small.shape[0]))
    left = int(np.clip(round(centre - cx), 0, IMAGE_SIZE - small.shape[1]))
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    out[top:top + small.shape[0], left:left + small.shape[1]] = small
    return np.clip(out, 0.0, 1.0)


def load_image(path: Union[str, os.PathLike]) -> np.ndarray:
    """Read a PNG/JPEG (or any Pillow format) as a ``uint8`` greyscale 2-D array; transparent
    areas are flattened onto white. Raises FileNotFoundError/ValueError naming the file."""
    try:
        with Image.open(path) as im:
            im.load()
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ValueError(f"cannot read image {path}: {e}") from e
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.asarray(im.convert("L"), dtype=np.uint8)
