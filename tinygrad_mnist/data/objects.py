"""Turning a photo of one object on a plain background into what Fashion-MNIST looks like.

Fashion-MNIST's images were made from product photos by trimming the background,
resizing the longer side to 28 pixels, centring in 28x28 and negating (a light object on
black). :func:`fashion_style` does the same to a user's photo:

1. **Greyscale and polarity.** The border's median is the background; if it is light,
   the picture is negated, so the object is the light part.
2. **Background out.** The object's intensity is how far each pixel stands above the
   background, relative to what is left above it (so a black shirt on white paper comes
   out as bright as in Fashion-MNIST and the paper as 0).
3. **Trim.** Otsu's threshold on a lightly blurred copy separates object from
   background; the largest connected piece (8-neighbours) is the object, and the crop is
   its bounding box.
4. **Fit.** The crop's longer side is resized to 28 (antialiased) and the crop is pasted
   in the middle of 28x28.

Handwriting (digits, letters, characters) goes through :func:`.photos.mnist_style`
instead: it keeps strokes, not areas, and fits them into MNIST's 20x20 box.
"""
from __future__ import annotations

import numpy as np

from .photos import (IMAGE_SIZE, box_blur, components, fit_longer_side, float_planes,
                     otsu_threshold)

_MIN_CONTRAST = 0.1    # the object must stand this far (0..1) from the background
_LUMA = np.array([0.299, 0.587, 0.114])   # ITU-R 601 weights of R, G, B (Pillow's "L")


def _grey(image: np.ndarray) -> np.ndarray:
    """The picture as float64 (H, W) in [0, 1], at most ``WORK_SIDE`` pixels on its
    longer side (`photos.float_planes`), colour as its luma."""
    planes = float_planes(image)
    return planes[0] if len(planes) == 1 else np.tensordot(_LUMA, planes, axes=1)


def fashion_style(image: np.ndarray) -> np.ndarray:
    """A photo of one object on a plain background as Fashion-MNIST shows one (module
    docstring): ``float32 (28, 28)`` in [0, 1], the object light on black, its longer
    side 28 pixels, centred. Raises ValueError when nothing stands out from the
    background."""
    a = _grey(image)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    background = float(np.median(border))
    if background > 0.5:                                  # a dark object on light paper
        a, background = 1.0 - a, 1.0 - background
    obj = np.clip(a - background, 0.0, None) / max(1.0 - background, 1e-6)
    if obj.max() < _MIN_CONTRAST:
        raise ValueError("no object found: the image is empty (uniform background)")
    smooth = box_blur(obj, 3) if min(obj.shape) >= 9 else obj
    pieces = components(smooth > max(otsu_threshold(smooth), _MIN_CONTRAST / 2))
    sizes = np.bincount(pieces.ravel())
    sizes[0] = 0                                          # label 0: the background
    ys, xs = np.nonzero(pieces == np.argmax(sizes))
    small = fit_longer_side(obj[ys.min():ys.max() + 1, xs.min():xs.max() + 1], IMAGE_SIZE)
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    top, left = (IMAGE_SIZE - small.shape[0]) // 2, (IMAGE_SIZE - small.shape[1]) // 2
    out[top:top + small.shape[0], left:left + small.shape[1]] = small
    return np.clip(out, 0.0, 1.0)
