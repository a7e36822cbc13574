"""Reductions and scans along axes: `Sum`, `Max`, `Prod` (with `ExclusiveProducts`, its
local gradient), `Cumsum`, and the fused,
stable `LogSoftmax` (x minus the log-sum-exp along an axis). Each states its local
gradient beside its forward.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import _kernels as K
from ..autograd import Function, value
from .elementwise import Exp, Where
from .movement import Expand, Permute


class Sum(Function):
    def forward(self, x, axis: Optional[Tuple[int, ...]], keepdims: bool):
        self.save_for_backward(x.shape, axis, keepdims)
        return np.sum(x, axis=axis, keepdims=keepdims)     # d/dx = 1, spread back

    def backward(self, g):
        shape, axis, keepdims = self.saved
        kept = tuple(1 if axis is None or i in axis else n for i, n in enumerate(shape))
        return Expand.call(g.reshape(kept), shape=shape)


class Max(Function):
    def forward(self, x, axis: Optional[Tuple[int, ...]], keepdims: bool):
        out = np.max(x, axis=axis, keepdims=True)          # d/dx = 1/k at the k maxima
        self.save_for_backward(x, out, axis, keepdims)
        return out if keepdims else np.squeeze(out, axis=axis)

    def backward(self, g):
        x, out, axis, keepdims = self.saved
        if not keepdims:
            g = g.reshape(out.shape)
        mask = value(x) == value(out)                      # constant: the maxima's places
        return mask * (g / mask.sum(axis=axis, keepdims=True).astype(g.dtype))


class Cumsum(Function):
    def forward(self, x, *, axis: int):
        self.axis = axis
        return np.cumsum(x, axis=axis)                     # out[i] = Σ_{j<=i} x[j]

    def backward(self, g):                                 # d/dx[j] = Σ_{i>=j} g[i]
        reverse = (slice(None),) * self.axis + (slice(None, None, -1),)
        return Cumsum.call(g[reverse], axis=self.axis)[reverse]


class Prod(Function):
    """The product over `axis` (kept as a dimension of size 1). The gradient of x[j] is
    the product of the others (`ExclusiveProducts`)."""

    def forward(self, x, *, axis: int):
        self.save_for_backward(x)
        self.axis = axis
        return np.prod(x, axis=axis, keepdims=True)

    def backward(self, g):
        return g * ExclusiveProducts.call(self.saved[0], axis=self.axis)


class ExclusiveProducts(Function):
    """For each j along `axis`, the product of the other elements, taken as (product
    before j)·(product after j), so a zero among the values gives the exact result
    rather than 0/0: Prod's local gradient, a Function so that it is differentiated
    in a recorded backward."""

    def forward(self, x, *, axis: int):
        self.save_for_backward(x)
        self.axis = axis
        n = x.shape[axis]
        ones = np.ones(x.shape[:axis] + (1,) + x.shape[axis + 1:], x.dtype)

        def exclusive_cumprod(v):                          # [1, v0, v0·v1, ...]
            return np.take(np.cumprod(np.concatenate([ones, v], axis), axis), range(n), axis)
        before = exclusive_cumprod(x)
        after = np.flip(exclusive_cumprod(np.flip(x, axis)), axis)
        return before * after

    def backward(self, g):
        # d out[j]/d x[k] = Π_{i≠j,k} x[i] for k ≠ j, 0 for k = j: the exclusive products
        # of the rows of R (n×n along axis), R[j, i] = x[i] but R[j, j] = 1, off the
        # diagonal. (n² values: only a recorded backward of Prod comes here.)
        x, axis = self.saved[0], self.axis
        n, last = x.shape[axis], x.ndim - 1
        order = tuple(i for i in range(x.ndim) if i != axis) + (axis,)
        moved = Permute.call(x, axes=order)                # axis last
        eye = np.eye(n, dtype=bool)
        rows = Where.call(np.ones((), x.dtype), moved.reshape(moved.shape[:-1] + (1, n)),
                          condition=eye)
        partial = ExclusiveProducts.call(rows, axis=last + 1) * ~eye
        g_rows = Permute.call(g, axes=order)
        gx = (g_rows.reshape(g_rows.shape + (1,)) * partial).sum(axis=(last,))
        return Permute.call(gx, axes=tuple(np.argsort(order)))


# ---------------------------------------------------------------- fused, for stability
class LogSoftmax(Function):
    def forward(self, x, axis: int):
        shifted = x - K.row_max(x, axis)                   # exp never overflows
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        self.save_for_backward(out, axis)
        return out                                         # d/dx = g - softmax·Σg

    def backward(self, g):
        out, axis = self.saved
        return g - Exp.call(out) * g.sum(axis=axis, keepdims=True)
