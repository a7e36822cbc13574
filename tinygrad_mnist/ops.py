"""The primitive differentiable ops. Each states its local gradient beside its forward.

Every op here is checked against finite differences by the test suite, and a test
fails if an op is added to `Function.registry` without a check. Gradients for
broadcast inputs are reduced by the engine (`autograd.unbroadcast`), not here.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from . import _kernels as K
from .autograd import Function


def broadcasting(op: str, fn: Any, *arrays: np.ndarray) -> np.ndarray:
    """`fn(*arrays)`, or a ValueError naming `op` and the shapes that do not broadcast."""
    try:
        return fn(*arrays)
    except ValueError:
        shapes = " and ".join(str(a.shape) for a in arrays)
        raise ValueError(f"{op}: shapes {shapes} cannot be broadcast together") from None


# ----------------------------------------------------------------- elementwise binary
class Add(Function):
    def forward(self, a, b):
        return broadcasting("add", np.add, a, b)          # d/da = 1, d/db = 1

    def backward(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        return broadcasting("sub", np.subtract, a, b)     # d/da = 1, d/db = -1

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return broadcasting("mul", np.multiply, a, b)     # d/da = b, d/db = a

    def backward(self, g):
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        return (g * b if need_a else None), (g * a if need_b else None)


class Div(Function):
    def forward(self, a, b):
        out = broadcasting("div", np.divide, a, b)        # d/da = 1/b, d/db = -a/b² = -out/b
        self.save_for_backward(b, out)
        return out

    def backward(self, g):
        b, out = self.saved
        need_a, need_b = self.needs_input_grad
        ga = g / b if need_a else None
        return ga, (-(ga if ga is not None else g / b) * out if need_b else None)


# ------------------------------------------------------------------ elementwise unary
class Neg(Function):
    def forward(self, x):
        return -x                                          # d/dx = -1

    def backward(self, g):
        return -g


class Pow(Function):
    def forward(self, x, exponent: float):
        self.save_for_backward(x, exponent)
        return x ** exponent                               # d/dx = p·x^(p-1)

    def backward(self, g):
        x, p = self.saved
        with np.errstate(divide="ignore", invalid="ignore"):  # 0·∞ where p = 0: replaced
            local = p * x ** (p - 1)
        return g * np.where(p == 0, 0, local)              # x^0 = 1: 0, not 0·∞ at x = 0


class Exp(Function):
    def forward(self, x):
        out = np.exp(x)                                    # d/dx = exp(x) = out
        self.save_for_backward(out)
        return out

    def backward(self, g):
        return g * self.saved[0]


class Log(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return np.log(x)                                   # d/dx = 1/x

    def backward(self, g):
        return g / self.saved[0]


class Sqrt(Function):
    def forward(self, x):
        out = np.sqrt(x)                                   # d/dx = 1/(2·sqrt(x))
        self.save_for_backward(out)
        return out

    def backward(self, g):
        return g / (2 * self.saved[0])


class Tanh(Function):
    def forward(self, x):
        out = np.tanh(x)                                   # d/dx = 1 - tanh²
        self.save_for_backward(out)
        return out

    def backward(self, g):
        out = self.saved[0]
        return g * (1 - out * out)


class Sigmoid(Function):
    def forward(self, x):
        # exp of a non-positive number never overflows: σ(x) = e^min(x,0) / (1 + e^-|x|)
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1, e) / (1 + e)             # d/dx = σ(1-σ)
        self.save_for_backward(out)
        return out.astype(x.dtype, copy=False)

    def backward(self, g):
        out = self.saved[0]
        return g * out * (1 - out)


class ReLU(Function):
    def forward(self, x):
        out = np.maximum(x, 0)                             # d/dx = [x > 0]
        self.save_for_backward(out)
        return out

    def backward(self, g):
        mask = (self.saved[0] > 0).astype(g.dtype)         # a float mask multiplies faster
        mask *= g                                          # than a boolean one
        return mask


class LeakyReLU(Function):
    def forward(self, x, negative_slope: float):
        self.save_for_backward(x, negative_slope)
        return np.where(x > 0, x, x * negative_slope)      # d/dx = 1 if x > 0 else slope

    def backward(self, g):
        x, slope = self.saved
        return np.where(x > 0, g, g * slope)


class Clip(Function):
    def forward(self, x, low: Optional[float], high: Optional[float]):
        self.save_for_backward(x, low, high)
        return np.clip(x, low, high)                       # d/dx = [low <= x <= high]

    def backward(self, g):
        x, low, high = self.saved
        inside = np.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        return g * inside


# ------------------------------------------------------------------------ reductions
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


# ---------------------------------------------------------------------------- linear
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


# ----------------------------------------------------------------------------- shape
class Reshape(Function):
    def forward(self, x, shape: Tuple[int, ...]):
        self.save_for_backward(x.shape)
        try:
            return x.reshape(shape)                        # d/dx = g reshaped back
        except ValueError:
            raise ValueError(f"reshape: cannot reshape shape {x.shape} "
                             f"({x.size} elements) into {tuple(shape)}") from None

    def backward(self, g):
        return g.reshape(self.saved[0])


class Permute(Function):
    def forward(self, x, axes: Tuple[int, ...]):
        self.save_for_backward(np.argsort(axes))
        return np.transpose(x, axes)                       # d/dx = g with axes undone

    def backward(self, g):
        return np.transpose(g, self.saved[0])


class GetItem(Function):
    def forward(self, x, index: Any, basic: bool):
        self.save_for_backward(x.shape, x.dtype, index, basic)
        return x[index]                                    # d/dx = g scattered back

    def backward(self, g):
        shape, dtype, index, basic = self.saved
        out = np.zeros(shape, dtype=dtype)
        if basic:
            out[index] = g
        else:
            np.add.at(out, index, g)                       # repeated indices accumulate
        return out


class Concatenate(Function):
    def forward(self, *arrays, axis: int):
        try:
            out = np.concatenate(arrays, axis=axis)        # d/dxᵢ = gᵢ's slice of g
        except ValueError as e:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"concatenate: shapes {shapes} do not fit along axis "
                             f"{axis}: {e}") from None
        self.save_for_backward(np.cumsum([a.shape[axis] for a in arrays])[:-1], axis)
        return out

    def backward(self, g):
        splits, axis = self.saved
        return tuple(np.split(g, splits, axis=axis))


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
