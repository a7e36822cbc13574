"""Sample transforms, as torchvision's: `Compose`, `ToTensor`, `Normalize`, `Lambda`.

    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.1307,), (0.3081,))])

`ToTensor` takes what `datasets.MNIST` gives (a uint8 array of shape (H, W)), an
(H, W, C) array or a PIL image, and returns a float32 (C, H, W) Tensor, scaled to
[0, 1] when the input holds uint8 pixels.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..tensor import Tensor


class Compose:
    """Apply `transforms` in order."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]):
        self.transforms = list(transforms)

    def __call__(self, x: Any) -> Any:
        for transform in self.transforms:
            x = transform(x)
        return x

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({inner}\n)"


class ToTensor:
    """An image (H, W) or (H, W, C) as a float32 (C, H, W) Tensor; uint8 pixels are
    divided by 255."""

    def __call__(self, pic: Any) -> Tensor:
        image = np.asarray(pic)
        if image.ndim not in (2, 3):
            raise ValueError(f"ToTensor: expected an image of shape (H, W) or (H, W, C), "
                             f"got {image.shape}")
        if image.ndim == 2:
            image = image[:, :, None]
        chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
        if image.dtype == np.uint8:
            chw /= 255
        return Tensor(chw)

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """(x - mean) / std per channel of a (..., C, H, W) Tensor."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
        self.mean, self.std = tuple(mean), tuple(std)
        if any(s == 0 for s in self.std):
            raise ValueError(f"Normalize: std {self.std} contains a zero")
        self._mean = np.asarray(self.mean, np.float32).reshape(-1, 1, 1)
        self._std = np.asarray(self.std, np.float32).reshape(-1, 1, 1)

    def __call__(self, tensor: Tensor) -> Tensor:
        if tensor.ndim < 3 or len(self.mean) not in (1, tensor.shape[-3]):
            raise ValueError(f"Normalize: {len(self.mean)} channel mean(s) do not fit a "
                             f"tensor of shape {tensor.shape} (expected (..., C, H, W))")
        return (tensor - self._mean) / self._std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Lambda:
    """Apply a function."""

    def __init__(self, lambd: Callable[[Any], Any]):
        self.lambd = lambd

    def __call__(self, x: Any) -> Any:
        return self.lambd(x)

    def __repr__(self) -> str:
        return "Lambda()"
