"""torchvision's `utils.make_grid` and `utils.save_image`: a batch of images as one
picture, e.g. the digits a generative model draws (`examples/mnist_vae.py`).

`from tinygrad_mnist.vision.utils import save_image` where PyTorch code has
`from torchvision.utils import save_image`.
"""
from __future__ import annotations

import math
import os
from typing import Any, Optional, Tuple, Union

import numpy as np
from PIL import Image

from ..atomic import atomic_write
from ..tensor import Tensor

PathLike = Union[str, os.PathLike]


def make_grid(tensor: Any, nrow: int = 8, padding: int = 2, normalize: bool = False,
              value_range: Optional[Tuple[float, float]] = None, scale_each: bool = False,
              pad_value: float = 0.0) -> Tensor:
    """Images (B, C, H, W) laid out `nrow` to a row with `padding` pixels of `pad_value`
    around each, as one (C, H', W') image; one channel is repeated to three, and one
    image ((C, H, W), (H, W) or a batch of one) comes back as it is, without padding.
    With `normalize`, values are scaled from `value_range` (default: their minimum and
    maximum, per image with `scale_each`) to [0, 1]."""
    images = np.array(tensor.data if isinstance(tensor, Tensor) else tensor, dtype=np.float32)
    shape = images.shape
    if images.ndim == 2:
        images = images[None]
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or 0 in images.shape:
        raise ValueError(f"make_grid: expected images (B, C, H, W), one (C, H, W) or "
                         f"(H, W), got shape {shape}")
    if images.shape[1] == 1:
        images = np.repeat(images, 3, axis=1)
    if normalize:
        axes = (1, 2, 3) if scale_each else (0, 1, 2, 3)
        low, high = value_range if value_range is not None else (
            images.min(axis=axes, keepdims=True), images.max(axis=axes, keepdims=True))
        images = np.clip((images - low) / np.maximum(np.subtract(high, low), 1e-5), 0, 1)
    if images.shape[0] == 1:
        return Tensor(images[0])
    b, c, h, w = images.shape
    columns = min(nrow, b)
    rows = math.ceil(b / columns)
    grid = np.full((c, rows * (h + padding) + padding, columns * (w + padding) + padding),
                   pad_value, dtype=np.float32)
    for i, image in enumerate(images):
        top = (i // columns) * (h + padding) + padding
        left = (i % columns) * (w + padding) + padding
        grid[:, top:top + h, left:left + w] = image
    return Tensor(grid)


def save_image(tensor: Any, fp: PathLike, format: Optional[str] = None, **grid: Any) -> None:
    """Write images (as `make_grid` lays them out, its options in `grid`) to the picture
    file `fp` (PNG unless `format` or the name's extension says otherwise), values in
    [0, 1] becoming 0..255; written atomically."""
    picture = make_grid(tensor, **grid).data
    pixels = np.clip(picture * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    image = Image.fromarray(pixels)
    kind = format or Image.registered_extensions().get(os.path.splitext(str(fp))[1].lower(),
                                                        "PNG")
    atomic_write(fp, lambda f: image.save(f, format=kind))
