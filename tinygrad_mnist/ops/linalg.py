"""Products that sum over an axis: `MatMul`, `Linear` (x·Wᵀ + b, fused) and `Einsum`
(NumPy's einsum forward, its gradient another einsum).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .. import _kernels as K
from ..autograd import Function, is_tensor
from .elementwise import broadcasting
from .movement import Expand, Permute


def product(a, b):
    """a @ b of operands of 2 or more dimensions: the speed kernel on arrays, the
    `MatMul` Function on Tensors (in a recorded backward)."""
    return a @ b if is_tensor(a) or is_tensor(b) else K.matmul(a, b)


def column_sums(a):
    """a.sum(axis=0) of a 2-D array or Tensor (the speed kernel on arrays)."""
    return a.sum(axis=0) if is_tensor(a) else K.column_sums(a)


def swap_last(a):
    """a with its last two axes swapped (a view on arrays)."""
    axes = tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2)
    return Permute.call(a, axes=axes)


class MatMul(Function):
    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned")
        self.save_for_backward(a, b)
        return broadcasting("matmul", np.matmul, a, b)    # d/da = g·bᵀ, d/db = aᵀ·g

    def backward(self, g):
        a, b = self.saved
        # Treat 1-D operands as a row (a) or a column (b), as NumPy does.
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        g2 = g.reshape(g.shape + (1,)) if b.ndim == 1 else g
        g2 = g2.reshape(g2.shape[:-1] + (1,) + g2.shape[-1:]) if a.ndim == 1 else g2
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = product(g2, swap_last(b2))
            ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:]) if a.ndim == 1 else ga
        if self.needs_input_grad[1]:
            gb = product(swap_last(a2), g2)
            gb = gb.reshape(gb.shape[:-1]) if b.ndim == 1 else gb
        return ga, gb


class Linear(Function):
    """y = x·Wᵀ + b, fused (PyTorch layout: W is (out_features, in_features))."""

    def forward(self, x, w, b=None):
        if x.ndim == 0 or w.ndim != 2 or x.shape[-1] != w.shape[1] or (
                b is not None and b.shape != (w.shape[0],)):
            bias = "" if b is None else f" and bias {b.shape}"
            raise ValueError(f"linear: input {x.shape} does not fit weight {w.shape}{bias} "
                             f"(expected input (..., {w.shape[1] if w.ndim == 2 else '?'}))")
        self.save_for_backward(x, w)
        out = x @ w.T                                      # d/dx = g·W, d/dW = gᵀ·x
        if b is not None:                                  # d/db = Σ_rows g
            out += b
        return out

    def backward(self, g):
        x, w = self.saved
        need = self.needs_input_grad
        gx = g @ w if need[0] else None                    # skipped for a data input
        if g.ndim != 2:                                    # (rows, features) for the sums
            g, x = g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1])
        gw = product(g.T, x) if need[1] else None
        if len(need) == 3:
            gb = column_sums(g) if need[2] else None
            return gx, gw, gb
        return gx, gw


class Einsum(Function):
    """np.einsum of operands with the subscripts `inputs` (one string of distinct letters
    per operand) to `output`. The gradient of an operand is the einsum of the upstream
    gradient with the other operands, back to that operand's subscripts; along a letter
    only that operand has (summed in forward) it is the same everywhere."""

    def forward(self, *operands, inputs: Tuple[str, ...], output: str):
        self.save_for_backward(operands, inputs, output)
        return np.einsum(",".join(inputs) + "->" + output, *operands)

    def backward(self, g):
        operands, inputs, output = self.saved
        grads = []
        for k, (x, subscripts) in enumerate(zip(operands, inputs)):
            if not self.needs_input_grad[k]:
                grads.append(None)
                continue
            others = [j for j in range(len(operands)) if j != k]
            seen = set(output).union(*(inputs[j] for j in others))
            kept = "".join(c for c in subscripts if c in seen)
            grad = Einsum.call(g, *(operands[j] for j in others),
                               inputs=(output,) + tuple(inputs[j] for j in others), output=kept)
            if any(c not in seen for c in subscripts):
                ones = tuple(n if c in seen else 1 for c, n in zip(subscripts, x.shape))
                grad = Expand.call(grad.reshape(ones), shape=x.shape)
            grads.append(grad)
        return tuple(grads)
