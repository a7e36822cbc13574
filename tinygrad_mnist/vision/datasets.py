"""MNIST as a `Dataset`, as torchvision's `datasets.MNIST`:

    train = datasets.MNIST(root, train=True, transform=transforms.ToTensor())
    image, label = train[0]       # a float32 (1, 28, 28) Tensor and an int

`root` is a folder holding the four MNIST files (`.gz` or raw), or torchvision's layout
`root/MNIST/raw/`; with `download=True` missing files are downloaded there, as
torchvision does; `root=None` means `$TINYGRAD_MNIST_DATA` or the cache. The files are
verified as by `tinygrad_mnist.data.load_mnist`. Without a transform a sample is a
uint8 NumPy array of shape (28, 28) (where torchvision gives a PIL image).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional, Tuple, Union

import numpy as np

from ..data.sources import load_mnist
from ..tensor import Tensor, from_numpy
from ..utils.data import Dataset


def _folder(root: Union[None, str, "os.PathLike[str]"]) -> Optional[Path]:
    """`root` if it holds MNIST files, else torchvision's `root/MNIST/raw`."""
    if root is None:
        return None
    root = Path(root).expanduser()
    if any(root.glob("train-images-idx3-ubyte*")):
        return root
    return root / "MNIST" / "raw"


class MNIST(Dataset):
    """The 60,000 training (`train=True`) or 10,000 test images with their labels.
    `data` (uint8, (N, 28, 28)) and `targets` (int64, (N,)) are Tensors, as in
    torchvision; `transform` is applied to each image, `target_transform` to each
    label."""

    classes = [f"{d} - {name}" for d, name in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])]

    def __init__(self, root: Union[None, str, "os.PathLike[str]"] = None, train: bool = True,
                 transform: Optional[Callable[[Any], Any]] = None,
                 target_transform: Optional[Callable[[int], Any]] = None,
                 download: bool = False):
        mnist = load_mnist(_folder(root), download=download, quiet=True)
        images = mnist.train_images if train else mnist.test_images
        labels = mnist.train_labels if train else mnist.test_labels
        self.root, self.train = mnist.directory, train
        self.transform, self.target_transform = transform, target_transform
        self._images, self._labels = images, labels.astype(np.int64)
        self.data: Tensor = from_numpy(self._images)
        self.targets: Tensor = from_numpy(self._labels)

    def __getitem__(self, index: int) -> Tuple[Any, Any]:
        image, target = self._images[index], int(self._labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __len__(self) -> int:
        return len(self._labels)

    def __repr__(self) -> str:
        split = "Train" if self.train else "Test"
        return (f"Dataset MNIST\n    Number of datapoints: {len(self)}\n    Root location: "
                f"{self.root}\n    Split: {split}")
