"""Utilities under PyTorch's names: `tinygrad_mnist.utils.data` (Dataset, DataLoader)."""
from . import data

__all__ = ["data"]
