"""Reductions and scans along axes: `Sum`, `Max`, `Prod`, `Cumsum`, and the fused,
stable `LogSoftmax` (x minus the log-sum-exp along an axis). Each states its local
gradient beside its forward.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import _kernels as K
from ..autograd import Function


class Sum(Function):
    def forward(self, x, axis: Optional[Tuple[int, ...]], keepdims: bool):
        self.save_for_backward(x.shape, axis, keepdims)
        return np.sum(x, axis=axis, keepdims=keepdims)     # d/dx = 1, spread back

    def backward(self, g):
        shape, axis, keepdims = self.saved
        if not keepdims and axis is not None:
            g = np.expand_dims(g, axis)
        return np.broadcast_to(g, shape)


class Max(Function):
    def forward(self, x, axis: Optional[Tuple[int, ...]], keepdims: bool):
        out = np.max(x, axis=axis, keepdims=True)          # d/dx = 1/k at the k maxima
        self.save_for_backward(x, out, axis, keepdims)
        return out if keepdims else np.squeeze(out, axis=axis)

    def backward(self, g):
        x, out, axis, keepdims = self.saved
        if not keepdims:
            g = g.reshape(out.shape)
        mask = x == out
        return mask * (g / mask.sum(axis=axis, keepdims=True).astype(g.dtype))


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


# ---------------------------------------------------------------- fused, for stability
class LogSoftmax(Function):
    def forward(self, x, axis: int):
        shifted = x - K.row_max(x, axis)                   # exp never overflows
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        self.save_for_backward(out, axis)
        return out                                         # d/dx = g - softmax·Σg

    def backward(self, g):
        out, axis = self.saved
        return g - np.exp(out) * g.sum(axis=axis, keepdims=True)
