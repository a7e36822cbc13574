"""Elementwise primitives: each output element depends on the elements at the same
position of the inputs (broadcast as NumPy broadcasts). Each states its local gradient
beside its forward.

Every op in `ops/` is checked against finite differences by the gradient suite, and a
test fails if an op is added to `Function.registry` without a check. Gradients for
broadcast inputs are reduced by the engine (`autograd.unbroadcast`), not here.

Each backward runs on arrays, and on Tensors in a recorded backward
(`create_graph=True`; see `autograd`): it uses operators and `Function.call`, never a
NumPy function on a saved input or output, and `value(...)` for what is a constant.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ..autograd import Function, is_tensor, value


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
            local = p * Pow.call(x, exponent=p - 1)
        return g * Where.call(np.zeros((), g.dtype), local,   # x^0 = 1: 0, not 0·∞ at 0
                              condition=np.asarray(p) == 0)


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
        out = (np.where(x >= 0, 1, e) / (1 + e)).astype(x.dtype, copy=False)  # d/dx = σ(1-σ)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        out = self.saved[0]
        return g * out * (1 - out)


class ReLU(Function):
    def forward(self, x):
        out = np.maximum(x, 0)                             # d/dx = [x > 0]
        self.save_for_backward(out)
        return out

    def backward(self, g):
        mask = np.array(value(self.saved[0]) > 0, g.dtype)  # a float mask multiplies faster
        if is_tensor(g):                                   # than a boolean one; on arrays,
            return mask * g                                # in place: stored as out is
        return np.multiply(mask, g, out=mask)


class LeakyReLU(Function):
    def forward(self, x, negative_slope: float):
        self.save_for_backward(x, negative_slope)
        return np.where(x > 0, x, x * negative_slope)      # d/dx = 1 if x > 0 else slope

    def backward(self, g):
        x, slope = self.saved
        return Where.call(g, g * slope, condition=value(x) > 0)


class Clip(Function):
    def forward(self, x, low: Optional[float], high: Optional[float]):
        self.save_for_backward(x, low, high)
        return np.clip(x, low, high)                       # d/dx = [low <= x <= high]

    def backward(self, g):
        x, low, high = self.saved
        x = value(x)
        inside = np.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        return g * inside


# ------------------------------------------------------------ more unary and binary
class Cast(Function):
    def forward(self, x, dtype: np.dtype):
        self.save_for_backward(x.dtype)
        return x.astype(dtype)                             # a copy; d/dx = 1 (in x's dtype)

    def backward(self, g):
        return Cast.call(g, dtype=self.saved[0])


class Sin(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return np.sin(x)                                   # d/dx = cos(x)

    def backward(self, g):
        return g * Cos.call(self.saved[0])


class Cos(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return np.cos(x)                                   # d/dx = -sin(x)

    def backward(self, g):
        return -(g * Sin.call(self.saved[0]))


class Where(Function):
    def forward(self, a, b, *, condition: np.ndarray):
        self.save_for_backward(condition)                  # d/da = condition,
        return broadcasting("where", np.where, condition, a, b)  # d/db = not condition

    def backward(self, g):
        condition, zero = self.saved[0], np.zeros((), g.dtype)
        return Where.call(g, zero, condition=condition), Where.call(zero, g, condition=condition)


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


class Erf(Function):
    def forward(self, x):
        self.save_for_backward(x)                          # erf(x) = 2/√π ∫₀ˣ exp(-t²) dt
        return _erf(x).astype(x.dtype, copy=False)        # d/dx = 2/√π · exp(-x²)

    def backward(self, g):
        x = self.saved[0]
        return g * (2 / math.sqrt(math.pi) * Exp.call(-(x * x)))


_erf = np.vectorize(math.erf, otypes=[np.float64])         # NumPy has no erf; math's is exact


class Erfc(Function):
    def forward(self, x):
        self.save_for_backward(x)                          # erfc(x) = 1 - erf(x), exact also
        return _erfc(x).astype(x.dtype, copy=False)       # where erf(x) is near ±1;
                                                           # d/dx = -2/√π · exp(-x²)
    def backward(self, g):
        x = self.saved[0]
        return g * (-2 / math.sqrt(math.pi) * Exp.call(-(x * x)))


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


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
        return np.zeros(g.shape, g.dtype)                  # a constant, in either pass
