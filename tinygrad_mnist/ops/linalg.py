"""Products that sum over an axis: `MatMul`, `Linear` (x·Wᵀ + b, fused) and `Einsum`
(NumPy's einsum forward, its gradient another einsum).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .. import _kernels as K
from ..autograd import Function
from .elementwise import broadcasting


class MatMul(Function):
    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned")
        self.save_for_backward(a, b)
        return broadcasting("matmul", np.matmul, a, b)    # d/da = g·bᵀ, d/db = aᵀ·g

    def backward(self, g):
        a, b = self.saved
        # Treat 1-D operands as a row (a) or a column (b), as NumPy does.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = np.expand_dims(g, -1) if b.ndim == 1 else g
        g2 = np.expand_dims(g2, -2) if a.ndim == 1 else g2
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = K.matmul(g2, np.swapaxes(b2, -1, -2))
            ga = ga[..., 0, :] if a.ndim == 1 else ga
        if self.needs_input_grad[1]:
            gb = K.matmul(np.swapaxes(a2, -1, -2), g2)
            gb = gb[..., 0] if b.ndim == 1 else gb
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
        gw = K.matmul(g.T, x) if need[1] else None
        if len(need) == 3:
            gb = K.column_sums(g) if need[2] else None
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
            spec = ",".join([output] + [inputs[j] for j in others]) + "->" + kept
            grad = np.einsum(spec, g, *(operands[j] for j in others))
            lonely = [i for i, c in enumerate(subscripts) if c not in seen]
            grads.append(np.broadcast_to(np.expand_dims(grad, lonely), x.shape).copy()
                         if lonely else grad)
        return tuple(grads)
