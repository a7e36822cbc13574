"""torchvision's `datasets`, `transforms` and `utils` (`make_grid`, `save_image`) for
this framework's Tensors: `from tinygrad_mnist.vision import datasets, transforms` where
PyTorch code has `from torchvision import datasets, transforms`.

They build on `tinygrad_mnist.data` (files, verification, downloads), which knows
nothing of Tensors, and on `tinygrad_mnist.utils.data` (`Dataset`).
"""
from . import datasets, transforms, utils

__all__ = ["datasets", "transforms", "utils"]
