"""``DataLoader``: vectorised, seeded, resumable mini-batches of NumPy arrays."""
from __future__ import annotations

import math
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple, Union

import numpy as np

from .augment import Distortion, distort
from .preprocess import image_shape_of

Batch = Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]


def shift_images(x: np.ndarray, dy: np.ndarray, dx: np.ndarray,
                 shape: Optional[Sequence[int]] = None) -> np.ndarray:
    """Translate image ``i`` of ``x`` by ``dy[i]`` rows and ``dx[i]`` columns, filling with
    zeros. ``x`` may be flat ``(B, C*H*W)`` or ``(B, [C,] H, W)`` (``shape`` gives ``(C, H,
    W)`` for flat samples other than 28x28); its shape is kept."""
    b = len(x)
    c, h, w = image_shape_of(x, shape)
    dy, dx = np.asarray(dy), np.asarray(dx)
    pad = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    padded = np.pad(x.reshape(b, c, h, w), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    rows = np.arange(h)[None, :] + pad - dy[:, None]   # (B, H): source row of each output row
    cols = np.arange(w)[None, :] + pad - dx[:, None]
    i = np.arange(b)[:, None, None, None]
    ch = np.arange(c)[None, :, None, None]
    return padded[i, ch, rows[:, None, :, None], cols[:, None, None, :]].reshape(x.shape)


def flip_images(x: np.ndarray, which: np.ndarray,
                shape: Optional[Sequence[int]] = None) -> np.ndarray:
    """A copy of ``x`` with the images chosen by the boolean ``which`` mirrored left to
    right (torchvision's ``RandomHorizontalFlip`` with the coins given). ``x`` is flat or
    not, as for ``shift_images``; its shape is kept."""
    b = len(x)
    c, h, w = image_shape_of(x, shape)
    images = x.reshape(b, c, h, w).copy()
    images[which] = images[which][..., ::-1]
    return images.reshape(x.shape)


class DataLoader:
    """Iterate over ``(x_batch, y_batch)`` NumPy arrays (or ``x_batch`` when ``y`` is None).

    Each epoch draws a fresh permutation from a generator seeded with ``seed``, so the same
    seed gives the same order. A batch is one gather (``np.take``) with a slice of the
    permutation (no per-sample loop). ``augment_shift=k`` shifts every image by a random
    ``-k..k`` pixels along each axis; ``flip=True`` mirrors each image left to right with
    probability 1/2 (for pictures of things, not for digits); ``distortion`` (see
    :mod:`.augment`) applies a random
    affine map and elastic field to every image of a batch, reading blank pixels as
    ``fill``. Images may be flat ``(N, C*H*W)`` (``image_shape`` then gives ``(C, H, W)``
    unless they are 28x28) or ``(N, [C,] H, W)``. A batch's distortions come from a
    generator seeded with a number drawn at the start of the epoch and the batch index.

    ``state_dict()`` holds the generator state at the start of the current epoch and the
    number of batches already yielded, as plain JSON-able values; after ``load_state_dict()``
    iteration continues bitwise where it stopped. Iterating again after an interrupted epoch
    also continues that epoch; after a finished epoch it starts the next one.
    """

    def __init__(self, x: np.ndarray, y: Optional[np.ndarray] = None, batch_size: int = 64,
                 shuffle: bool = True, drop_last: bool = False, seed: int = 0,
                 augment_shift: int = 0, distortion: Optional[Distortion] = None,
                 image_shape: Optional[Sequence[int]] = None, fill: float = 0.0,
                 flip: bool = False) -> None:
        if y is not None and len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if augment_shift < 0:
            raise ValueError(f"augment_shift must be >= 0, got {augment_shift}")
        self.image_shape = (image_shape_of(x, image_shape)
                            if augment_shift or flip or distortion is not None else None)
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed, self.augment_shift = seed, augment_shift
        self.distortion, self.fill, self.flip = distortion, fill, bool(flip)
        self._rng = np.random.default_rng(seed)
        self._epoch_start = self._rng.bit_generator.state
        self._epoch_end: Optional[dict] = None  # the generator state after this epoch's draw
        self.epoch, self._batches_done = 0, 0

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        if self._batches_done >= len(self) > 0:  # the epoch is finished: start the next one
            if self._epoch_end is None:           # not drawn in this process (resumed)
                self._draw_epoch()
            self._epoch_start = self._epoch_end   # the next epoch starts where it ended
            self.epoch, self._batches_done = self.epoch + 1, 0
        return self._batches(*self._draw_epoch())

    def _draw_epoch(self) -> Tuple[np.ndarray, Optional[np.ndarray], int,
                                   Optional[np.ndarray]]:
        """This epoch's order, shifts, distortion key and flips, drawn afresh from the
        epoch-start generator state."""
        self._rng.bit_generator.state = self._epoch_start
        n, k = len(self.x), self.augment_shift
        order = self._rng.permutation(n) if self.shuffle else np.arange(n)
        shifts = self._rng.integers(-k, k + 1, size=(2, n)) if k else None
        key = int(self._rng.integers(2 ** 63)) if self.distortion is not None else 0
        flips = self._rng.random(n) < 0.5 if self.flip else None
        self._epoch_end = self._rng.bit_generator.state
        return order, shifts, key, flips

    def _batches(self, order: np.ndarray, shifts: Optional[np.ndarray], key: int,
                 flips: Optional[np.ndarray]) -> Iterator[Batch]:
        for b in range(self._batches_done, len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            xb = np.take(self.x, idx, axis=0)   # a gather: faster than x[idx]
            if shifts is not None:
                xb = shift_images(xb, shifts[0, idx], shifts[1, idx], self.image_shape)
            if flips is not None:
                xb = flip_images(xb, flips[idx], self.image_shape)
            if self.distortion is not None:
                xb = distort(xb, self.distortion, np.random.default_rng([key, b]),
                             self.image_shape, self.fill)
            self._batches_done = b + 1
            yield xb if self.y is None else (xb, np.take(self.y, idx, axis=0))

    def state_dict(self) -> Dict[str, Any]:
        """Plain JSON-able state: epoch, batches done and the epoch-start generator state."""
        return {"seed": self.seed, "epoch": self.epoch, "batches_done": self._batches_done,
                "num_samples": len(self.x), "batch_size": self.batch_size,
                "rng_state": self._epoch_start}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (for example one read back from JSON)."""
        for key, mine in (("num_samples", len(self.x)), ("batch_size", self.batch_size)):
            if state[key] != mine:
                raise ValueError(f"state_dict is for {key}={state[key]}, this loader has {mine}")
        self._rng.bit_generator.state = state["rng_state"]  # validates the generator state
        self._epoch_start, self._epoch_end = self._rng.bit_generator.state, None
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])
        self._batches_done = int(state["batches_done"])
