"""The primitive differentiable ops. Each states its local gradient beside its forward.

Every op here is checked against finite differences by the test suite, and a test
fails if an op is added to `Function.registry` without a check. Gradients for
broadcast inputs are reduced by the engine (`autograd.unbroadcast`), not here.
"""
from __future__ import annotations

import functools
from typing import Any, Optional, Tuple

import numpy as np

from .autograd import Function


def _broadcasting(op: str, fn: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        return fn(a, b)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast "
                         f"together") from None


# ----------------------------------------------------------------- elementwise binary
class Add(Function):
    def forward(self, a, b):
        return _broadcasting("add", np.add, a, b)          # d/da = 1, d/db = 1

    def backward(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        return _broadcasting("sub", np.subtract, a, b)     # d/da = 1, d/db = -1

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return _broadcasting("mul", np.multiply, a, b)     # d/da = b, d/db = a

    def backward(self, g):
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        return (g * b if need_a else None), (g * a if need_b else None)


class Div(Function):
    def forward(self, a, b):
        out = _broadcasting("div", np.divide, a, b)        # d/da = 1/b, d/db = -a/b² = -out/b
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
        return g * (p * x ** (p - 1))


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
@functools.lru_cache(maxsize=32)
def _ones(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of n ones, made once per length and dtype."""
    ones = np.ones(n, dtype)
    ones.flags.writeable = False
    return ones


def _column_sums(a: np.ndarray) -> np.ndarray:
    """Σ over the rows of a 2-D array, as a vector-matrix product with ones: BLAS, and
    several times faster than `a.sum(axis=0)`."""
    return _ones(a.shape[0], a.dtype) @ a


def _channel_sums(a: np.ndarray) -> np.ndarray:
    """Σ over every axis but 1 of (N, C, *spatial), as two matrix-vector products with
    ones: 5-20x faster than `a.sum(axis=(0, 2, 3))`."""
    if a.ndim == 2:
        return _column_sums(a)
    n, c = a.shape[:2]
    per_position = _ones(n, a.dtype) @ a.reshape(n, -1)   # (C·spatial,)
    return per_position.reshape(c, -1) @ _ones(per_position.size // c, a.dtype)


def _row_sums(a: np.ndarray) -> np.ndarray:
    """Σ over the columns of a 2-D array (as a matrix-vector product, likewise)."""
    return a @ _ones(a.shape[1], a.dtype)


def _max_along(x: np.ndarray, axis: int) -> np.ndarray:
    """x.max(axis=axis, keepdims=True). NumPy reduces a short row at a time slowly: for
    the rows of a 2-D array shorter than 64, the maximum over the first axis of a
    transposed copy is 4-10x faster ((128, 10): 8.3 -> 1.9 µs)."""
    if x.ndim == 2 and axis in (1, -1) and x.shape[1] < 64 and x.shape[0] > 1:
        return np.ascontiguousarray(x.T).max(axis=0)[:, None]
    return x.max(axis=axis, keepdims=True)


@functools.lru_cache(maxsize=32)
def _row_starts(n: int, c: int) -> np.ndarray:
    """Flat indices of the first element of each row of an (n, c) array (read-only)."""
    starts = np.arange(0, n * c, c)
    starts.flags.writeable = False
    return starts


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for operands of 2 or more dimensions. When the summed dimension has length 1
    the product is an outer product, (n, 1) @ (1, m) (the weight gradient at batch size
    1), which NumPy's matmul computes 6x and a broadcasting multiply 1.4x slower than
    einsum does."""
    if a.shape[-1] == 1:
        return np.einsum("...ik,...kj->...ij", a, b)
    return a @ b


class MatMul(Function):
    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned")
        self.save_for_backward(a, b)
        return _broadcasting("matmul", np.matmul, a, b)    # d/da = g·bᵀ, d/db = aᵀ·g

    def backward(self, g):
        a, b = self.saved
        # Treat 1-D operands as a row (a) or a column (b), as NumPy does.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = np.expand_dims(g, -1) if b.ndim == 1 else g
        g2 = np.expand_dims(g2, -2) if a.ndim == 1 else g2
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = _matmul(g2, np.swapaxes(b2, -1, -2))
            ga = ga[..., 0, :] if a.ndim == 1 else ga
        if self.needs_input_grad[1]:
            gb = _matmul(np.swapaxes(a2, -1, -2), g2)
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
        gw = _matmul(g.T, x) if need[1] else None
        if len(need) == 3:
            gb = _column_sums(g) if need[2] else None
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


# ------------------------------------------------------------------- fused, for speed
class BatchNorm(Function):
    """Batch normalisation of x (N, C, *spatial) with the batch's statistics per channel
    C, then `* weight + bias` when given (their presence is `affine`, two booleans).
    One op instead of the ~15 it takes composed: 2.5x faster in a CNN's training step.
    With `running=(mean, var, momentum)` the running statistics are updated in place
    (the variance unbiased), as PyTorch does."""

    def forward(self, x, *params, eps: float, affine: Tuple[bool, bool], running=None):
        shape = (1, -1) + (1,) * (x.ndim - 2)              # how a (C,) vector broadcasts
        count = x.size // x.shape[1]                       # values per channel
        mean = _channel_sums(x) / count
        xhat = x - mean.reshape(shape)
        var = _channel_sums(xhat * xhat) / count           # biased, as for normalising
        inv_std = (1 / np.sqrt(var + eps)).reshape(shape)
        xhat *= inv_std                                    # x̂ = (x - μ)/σ
        weight = params[0].reshape(shape) if affine[0] else None
        out = xhat * weight if weight is not None else xhat.copy()   # y = x̂·w + b
        if affine[1]:
            out += params[-1].reshape(shape)
        if running is not None:
            running_mean, running_var, momentum = running
            if running_mean is not None:
                running_mean *= 1.0 - momentum
                running_mean += momentum * mean
            if running_var is not None:
                running_var *= 1.0 - momentum
                running_var += momentum * (var * (count / (count - 1)))
        self.save_for_backward(xhat, inv_std, weight, affine)
        return out

    def backward(self, g):
        # d/db = Σ g,  d/dw = Σ g·x̂,  d/dx = (ĝ - mean(ĝ) - x̂·mean(ĝ·x̂))/σ with ĝ = g·w,
        # sums and means over every axis but the channels; mean(ĝ) = w·Σg/count and
        # mean(ĝ·x̂) = w·Σg·x̂/count, so two channel sums serve all three.
        xhat, inv_std, weight, affine = self.saved
        shape, count = inv_std.shape, g.size // g.shape[1]
        sum_g, sum_gx = _channel_sums(g), _channel_sums(g * xhat)
        grads = []
        if self.needs_input_grad[0]:
            scale = inv_std if weight is None else inv_std * weight   # σ⁻¹·w
            gx = g - (sum_g / count).reshape(shape)
            gx -= xhat * (sum_gx / count).reshape(shape)
            gx *= scale
            grads.append(gx)
        else:
            grads.append(None)
        if affine[0]:
            grads.append(sum_gx)
        if affine[1]:
            grads.append(sum_g)
        return tuple(grads)


# ---------------------------------------------------------------- fused, for stability
class LogSoftmax(Function):
    def forward(self, x, axis: int):
        shifted = x - _max_along(x, axis)                  # exp never overflows
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        self.save_for_backward(out, axis)
        return out                                         # d/dx = g - softmax·Σg

    def backward(self, g):
        out, axis = self.saved
        return g - np.exp(out) * g.sum(axis=axis, keepdims=True)


class CrossEntropy(Function):
    """Softmax cross-entropy of logits (N, C) against integer labels (N,) or
    probability targets (N, C), with label smoothing. Fused: the logits' gradient
    is (softmax - target) times the upstream gradient."""

    def forward(self, logits, target=None, *, labels=None, reduction: str = "mean",
                label_smoothing: float = 0.0):
        n, c = logits.shape
        shifted = logits - _max_along(logits, 1)           # exp never overflows
        probs = np.exp(shifted)
        sums = _row_sums(probs)
        probs /= sums[:, None]                             # softmax, kept for backward
        log_sums = np.log(sums)                            # log p = shifted - log_sums
        s = label_smoothing
        logp = None
        if labels is not None:
            at_label = _row_starts(n, c) + labels          # flat indices of the labels
            loss = log_sums - shifted.ravel()[at_label]    # -log p[label]
            if s:                                          # -Σ log p = C·log_sums - Σ shifted
                loss = (1 - s) * loss + (s / c) * (c * log_sums - _row_sums(shifted))
        else:
            at_label = None
            logp = shifted - log_sums[:, None]
            if s:
                target = (1 - s) * target + s / c
            loss = -_row_sums(target * logp)
        self.save_for_backward(probs, logp, target, at_label, reduction, s)
        if reduction == "none":
            return loss
        total = loss.sum()                                 # a scalar of the logits' dtype
        return total / n if reduction == "mean" else total

    def backward(self, g):
        probs, logp, target, at_label, reduction, s = self.saved
        n, c = probs.shape
        if reduction == "none":
            scale = g[:, None]
        else:                                              # a Python number: no array op
            scale = float(g) / n if reduction == "mean" else float(g)
        glogits = gtarget = None
        if self.needs_input_grad[0]:
            if at_label is not None:                       # target = (1-s)·onehot + s/C
                glogits = probs - s / c if s else probs.copy()
                glogits.ravel()[at_label] -= 1 - s
            else:
                glogits = probs * target.sum(axis=1, keepdims=True) - target
            glogits *= scale
        if len(self.needs_input_grad) > 1 and self.needs_input_grad[1]:
            gtarget = -(1 - s) * logp * scale              # d/dt = -(1-s)·log p
        return (glogits, gtarget) if at_label is None else glogits
