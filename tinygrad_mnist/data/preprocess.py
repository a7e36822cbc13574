"""Preprocessing: scaling, standardisation, layouts, one-hot labels, the train/validation
split and class-count summaries (photos of handwriting: see photos.py)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

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


def to_layout(x: np.ndarray, layout: str = "flat",
              shape: Optional[Sequence[int]] = None) -> np.ndarray:
    """Reshape images to ``"flat"`` ``(N, C*H*W)`` or ``"image"`` ``(N, C, H, W)``. ``x``
    may be ``(N, H, W)`` (one channel), ``(N, C, H, W)`` or flat; flat images other than
    28x28 need ``shape`` ``(C, H, W)`` to become images."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"expected N images, got shape {x.shape}")
    if layout == "flat":
        return x.reshape(len(x), -1)
    return x.reshape(len(x), *image_shape_of(x, shape))


def image_shape_of(x: np.ndarray, shape: Optional[Sequence[int]] = None) -> Tuple[int, int, int]:
    """The ``(C, H, W)`` of the samples of ``x``: ``shape`` if given (checked against the
    sample size), else from ``x``'s own dimensions: ``(N, H, W)`` is one channel, ``(N, C,
    H, W)`` as it is, flat ``(N, 784)`` is 1x28x28; other flat sizes need ``shape``."""
    sample = np.shape(x)[1:]
    size = int(np.prod(sample, dtype=np.int64))
    if shape is not None:
        c, h, w = (tuple(int(d) for d in shape) if len(shape) == 3
                   else (1, *(int(d) for d in shape)))
    elif len(sample) == 3:
        c, h, w = sample
    elif len(sample) == 2:
        c, h, w = 1, *sample
    elif size == 784:
        c, h, w = 1, 28, 28
    else:
        raise ValueError(f"cannot tell the image shape of samples of shape {sample}; "
                         f"give image_shape=(C, H, W)")
    if c * h * w != size:
        raise ValueError(f"image shape {(c, h, w)} does not fit samples of shape {sample}")
    return c, h, w


def prepare(images: np.ndarray, *, layout: str = "flat",
            standardize: Union[bool, Stats] = False) -> Tuple[np.ndarray, Optional[Stats]]:
    """Scale ``uint8`` images ``(N, H, W)`` or ``(N, C, H, W)`` to float32 [0, 1],
    optionally standardise (one mean and deviation over all pixels and channels), and
    reshape to ``layout`` (``flat``: ``(N, C*H*W)``; ``image``: ``(N, C, H, W)``).

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
    return to_layout(x, layout, image_shape_of(x) if x.ndim > 2 else None), stats


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


# mnist_style and load_image live in photos.py; imported here too, where they used to be
from .photos import load_image, mnist_style  # noqa: E402,F401
