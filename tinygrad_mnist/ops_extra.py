"""More primitive ops, for the PyTorch-shaped Tensor methods (`tensor_api.py`): `Cast`
(`.to(dtype)`, `.float()`, `.clone()`), `Expand` (`.expand()`), `Sin` and `Cos`. Each
states its local gradient beside its forward, as in `ops.py` (which the engine's size
budget keeps to the ops the models need).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .autograd import Function


class Cast(Function):
    def forward(self, x, dtype: np.dtype):
        self.save_for_backward(x.dtype)
        return x.astype(dtype)                             # a copy; d/dx = 1 (in x's dtype)

    def backward(self, g):
        return g.astype(self.saved[0])


class Expand(Function):
    def forward(self, x, shape: Tuple[int, ...]):
        return np.broadcast_to(x, shape)                   # a read-only view; d/dx = 1,
                                                           # summed over the new axes
    def backward(self, g):
        return g                                           # (the engine's unbroadcast)


class Sin(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return np.sin(x)                                   # d/dx = cos(x)

    def backward(self, g):
        return g * np.cos(self.saved[0])


class Cos(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return np.cos(x)                                   # d/dx = -sin(x)

    def backward(self, g):
        return g * -np.sin(self.saved[0])
