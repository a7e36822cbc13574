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
from PIL import Image

from .photos import IMAGE_SIZE, WORK_SIDE, box_blur, components, otsu_threshold

_MIN_CONTRAST = 0.1    # the object must stand this far (0..1) from the background
_LANCZOS = getattr(Image, "Resampling", Image).LANCZOS
_BOX_FILTER = getattr(Image, "Resampling", Image).BOX


def _grey(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3 or 4)``, uint8 or float in [0, 1] -> float64 (H, W) in
    [0, 1] (ITU-R 601 luma for colour, as Pillow's "L"), at most ``WORK_SIDE`` pixels on
    its longer side."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114])
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"expected a non-empty greyscale (H, W) or colour (H, W, 3) image, "
                         f"got shape {np.asarray(image).shape}")
    a = a.astype(np.float64)
    a = a / 255.0 if np.asarray(image).dtype.kind in "iub" or a.max() > 1 else a
    h, w = a.shape
    if max(h, w) > WORK_SIDE:                             # a phone photo: area-average it
        f = WORK_SIDE / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        a = np.asarray(Image.fromarray(a.astype(np.float32)).resize(size, _BOX_FILTER),
                       dtype=np.float64)
    return a


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
    crop = obj[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = crop.shape
    factor = IMAGE_SIZE / max(h, w)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))   # Pillow wants (w, h)
    small = np.asarray(Image.fromarray(crop.astype(np.float32)).resize(size, _LANCZOS))
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    top, left = (IMAGE_SIZE - small.shape[0]) // 2, (IMAGE_SIZE - small.shape[1]) // 2
    out[top:top + small.shape[0], left:left + small.shape[1]] = small
    return np.clip(out, 0.0, 1.0)
