"""More primitive ops, for the PyTorch-shaped Tensor methods (`tensor_api.py`): `Cast`
(`.to(dtype)`, `.float()`, `.clone()`), `Expand` (`.expand()`), `Sin`, `Cos`, `Where`
(`tg.where`, `.masked_fill()`) and `Extremum` (`tg.maximum`, `tg.minimum`). Each
states its local gradient beside its forward, as in `ops.py` (which the engine's size
budget keeps to the ops the models need).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .autograd import Function
from .ops import broadcasting


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


class Where(Function):
    def forward(self, a, b, *, condition: np.ndarray):
        self.save_for_backward(condition)                  # d/da = condition,
        return broadcasting("where", np.where, condition, a, b)  # d/db = not condition

    def backward(self, g):
        condition = self.saved[0]
        return np.where(condition, g, 0), np.where(condition, 0, g)


class Extremum(Function):
    """The elementwise maximum or minimum (`fn`) of a and b. The gradient goes to the
    input that gave the result, half to each where they tie (as PyTorch's)."""

    def forward(self, a, b, *, fn):
        out = broadcasting(fn.__name__, fn, a, b)
        self.save_for_backward(a == out, b == out)
        return out

    def backward(self, g):
        at_a, at_b = self.saved
        tie = at_a & at_b
        return (g * np.where(tie, 0.5, at_a).astype(g.dtype),
                g * np.where(tie, 0.5, at_b).astype(g.dtype))
