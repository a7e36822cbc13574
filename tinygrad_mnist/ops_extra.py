"""More primitive ops, for the PyTorch-shaped Tensor methods (`tensor_api.py`): `Cast`
(`.to(dtype)`, `.float()`, `.clone()`), `Expand` (`.expand()`), `Sin`, `Cos`, `Where`
(`tg.where`, `.masked_fill()`), `Extremum` (`tg.maximum`, `tg.minimum`), `Remainder`
(`%`), `Cumsum`, `Prod`, `Erf`, `Log1p` and `Rounding` (`floor`, `ceil`, `round`,
`sign`). Each
states its local gradient beside its forward, as in `ops.py` (which the engine's size
budget keeps to the ops the models need).
"""
from __future__ import annotations

import math
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


class Remainder(Function):
    def forward(self, a, b):
        quotient = broadcasting("remainder", np.floor_divide, a, b)
        self.save_for_backward(quotient)                   # a % b = a - floor(a/b)·b:
        return np.remainder(a, b)                          # d/da = 1, d/db = -floor(a/b)

    def backward(self, g):
        return g, -g * self.saved[0]


class Cumsum(Function):
    def forward(self, x, *, axis: int):
        self.axis = axis
        return np.cumsum(x, axis=axis)                     # out[i] = Σ_{j<=i} x[j]

    def backward(self, g):                                 # d/dx[j] = Σ_{i>=j} g[i]
        return np.flip(np.cumsum(np.flip(g, self.axis), self.axis), self.axis)


class Prod(Function):
    """The product over `axis` (kept as a dimension of size 1). The gradient of x[j] is
    the product of the others, taken as (product before j)·(product after j), so a zero
    among the values gives the exact gradient rather than 0/0."""

    def forward(self, x, *, axis: int):
        self.save_for_backward(x)
        self.axis = axis
        return np.prod(x, axis=axis, keepdims=True)

    def backward(self, g):
        x, axis = self.saved[0], self.axis
        n = x.shape[axis]
        ones = np.ones(x.shape[:axis] + (1,) + x.shape[axis + 1:], x.dtype)

        def exclusive_cumprod(v):                          # [1, v0, v0·v1, ...]
            return np.take(np.cumprod(np.concatenate([ones, v], axis), axis), range(n), axis)
        before = exclusive_cumprod(x)
        after = np.flip(exclusive_cumprod(np.flip(x, axis)), axis)
        return g * before * after


class Erf(Function):
    def forward(self, x):
        self.save_for_backward(x)                          # erf(x) = 2/√π ∫₀ˣ exp(-t²) dt
        return _erf(x).astype(x.dtype, copy=False)        # d/dx = 2/√π · exp(-x²)

    def backward(self, g):
        x = self.saved[0]
        return g * (2 / math.sqrt(math.pi) * np.exp(-x * x)).astype(g.dtype, copy=False)


_erf = np.vectorize(math.erf, otypes=[np.float64])         # NumPy has no erf; math's is exact


class Log1p(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return np.log1p(x)                                 # log(1 + x), exact for tiny x;
                                                           # d/dx = 1 / (1 + x)
    def backward(self, g):
        return g / (1 + self.saved[0])


class Rounding(Function):
    """floor, ceil, round or sign (`fn`): piecewise constant, so the gradient is zero
    (as PyTorch's: the result is still part of the graph)."""

    def forward(self, x, *, fn):
        return fn(x)

    def backward(self, g):
        return np.zeros_like(g)
