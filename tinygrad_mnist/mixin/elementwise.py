"""Elementwise Tensor methods and operators: arithmetic, math and activation functions,
comparisons, logical and bitwise operators, `where`, `maximum`, rounding. Operands
are paired by `DTypeMixin._pair` (PyTorch's promotion); an integer tensor is made
float32 first where the result is a real number (`exp`, `sigmoid`, ...), as in PyTorch.
"""
from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Optional, Tuple, Union

import numpy as np

from .. import ops
from ..autograd import is_grad_enabled
from ..dtypes import int64
from .base import ArrayLike, TensorBase, bool_condition, data_of, refuse_bool, require_floating
from .dtype import DTypeMixin

if TYPE_CHECKING:  # for the return types only: tensor.py imports this module
    from ..tensor import Tensor


class ElementwiseMixin(DTypeMixin):
    """Elementwise methods and operators (see the module docstring)."""

    __slots__ = ()

    def __add__(self, other: ArrayLike) -> Tensor:
        return ops.Add.apply(*self._pair(other))

    def __radd__(self, other: ArrayLike) -> Tensor:
        return ops.Add.apply(*self._pair(other, reverse=True))

    def __sub__(self, other: ArrayLike) -> Tensor:
        return ops.Sub.apply(*self._pair(other))

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return ops.Sub.apply(*self._pair(other, reverse=True))

    def __mul__(self, other: ArrayLike) -> Tensor:
        return ops.Mul.apply(*self._pair(other))

    def __rmul__(self, other: ArrayLike) -> Tensor:
        return ops.Mul.apply(*self._pair(other, reverse=True))

    def __truediv__(self, other: ArrayLike) -> Tensor:
        return ops.Div.apply(*self._pair(other, true_divide=True))

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return ops.Div.apply(*self._pair(other, reverse=True, true_divide=True))

    def __neg__(self) -> Tensor:
        refuse_bool("neg", self)
        return ops.Neg.apply(self)

    def __pow__(self, exponent: Union[float, Tensor]) -> Tensor:
        """self ** exponent, for a Python number or a tensor that requires no grad
        (broadcast against self)."""
        if isinstance(exponent, TensorBase):
            if exponent.requires_grad:
                raise TypeError("pow: an exponent tensor that requires grad is not "
                                "supported; use (x.log() * p).exp() for x > 0")
            base, p = self._pair(exponent)
            return ops.Pow.apply(base, exponent=p.data)
        if isinstance(exponent, bool) or not isinstance(exponent, numbers.Real):
            raise TypeError(f"pow: the exponent must be a number or a tensor, got "
                            f"{type(exponent).__name__}")
        if isinstance(exponent, float):
            base = self._floating()
        else:                                      # bool ** int counts in int64, as PyTorch
            base = self.to(int64) if self.data.dtype.kind == "b" else self
        return ops.Pow.apply(base, exponent=exponent)

    def __rpow__(self, base: Any) -> Tensor:
        """base ** self = exp(self·ln base), for a positive number `base`."""
        if not isinstance(base, numbers.Real) or base <= 0:
            raise TypeError(f"pow: a number raised to a tensor needs a positive base, "
                            f"got {base!r}")
        return (self * math.log(base)).exp()

    def neg(self) -> Tensor:
        return -self

    def pow(self, exponent: Any) -> Tensor:
        return self ** exponent

    def square(self) -> Tensor:
        return self ** 2

    def reciprocal(self) -> Tensor:
        return 1 / self

    def add(self, other: Any, *, alpha: float = 1) -> Tensor:
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other: Any, *, alpha: float = 1) -> Tensor:
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other: Any) -> Tensor:
        return self * other

    def div(self, other: Any, *, rounding_mode: Optional[str] = None) -> Tensor:
        if rounding_mode is None:
            return self / other
        if rounding_mode != "floor":
            raise ValueError(f"div: rounding_mode must be None or 'floor', got "
                             f"{rounding_mode!r}")
        return self // other

    multiply, divide, subtract, true_divide = mul, div, sub, div

    def exp(self) -> Tensor:
        return ops.Exp.apply(self._floating())

    def log(self) -> Tensor:
        return ops.Log.apply(self._floating())

    def sqrt(self) -> Tensor:
        return ops.Sqrt.apply(self._floating())

    def rsqrt(self) -> Tensor:
        return self.sqrt().reciprocal()

    def exp2(self) -> Tensor:
        return 2.0 ** self._floating()

    def log1p(self) -> Tensor:
        """log(1 + x), exact for small x."""
        return ops.Log1p.apply(self._floating())

    def sin(self) -> Tensor:
        return ops.Sin.apply(self._floating())

    def cos(self) -> Tensor:
        return ops.Cos.apply(self._floating())

    def erf(self) -> Tensor:
        return ops.Erf.apply(self._floating())

    def erfc(self) -> Tensor:
        """1 - erf(x), without the cancellation where erf(x) is near 1."""
        return ops.Erfc.apply(self._floating())

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(self._floating())

    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(self._floating())

    def relu(self) -> Tensor:
        if self.data.dtype.kind == "b":                    # (checked here: a hot path)
            refuse_bool("relu", self)
        return ops.ReLU.apply(self)

    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor:
        require_floating("leaky_relu", self)
        return ops.LeakyReLU.apply(self, negative_slope=negative_slope)

    def abs(self) -> Tensor:
        """|x|, with gradient sign(x) (0 at 0)."""
        refuse_bool("abs", self)
        return ops.Mul.apply(self, self.sign())             # x·sign(x), sign in the graph

    __abs__ = abs

    def clip(self, min: Optional[float] = None, max: Optional[float] = None) -> Tensor:
        if min is None and max is None:
            raise ValueError("clip: give at least one of min and max")
        return ops.Clip.apply(self, low=min, high=max)

    clamp = clip

    def _rounded(self, op: str, fn: Any) -> Tensor:
        """fn(x), piecewise constant: its gradient is zero."""
        refuse_bool(op, self)
        return ops.Rounding.apply(self, fn=fn)

    def floor(self) -> Tensor:
        return self._rounded("floor", np.floor)

    def ceil(self) -> Tensor:
        return self._rounded("ceil", np.ceil)

    def round(self) -> Tensor:
        return self._rounded("round", np.round)

    def sign(self) -> Tensor:
        """-1, 0 or 1 (a bool tensor is its own sign, as in PyTorch)."""
        return self.clone() if self.data.dtype.kind == "b" else self._rounded("sign", np.sign)

    def maximum(self, other: Any) -> Tensor:
        """The elementwise maximum (NaN if either is NaN); at a tie each input gets half
        the gradient."""
        return ops.Extremum.apply(*self._pair(other), fn=np.maximum)

    def minimum(self, other: Any) -> Tensor:
        return ops.Extremum.apply(*self._pair(other), fn=np.minimum)

    def where(self, condition: Any, other: Any) -> Tensor:
        """`self` where `condition` holds, else `other` (`torch.where(condition, self,
        other)`); the gradient flows to the side that was taken."""
        a, b = self._pair(other)
        return ops.Where.apply(a, b, condition=bool_condition(condition, "where"))

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        """`value` where `mask` holds, else `self`; the result has self's dtype (`value`
        is converted to it, as PyTorch does)."""
        dtype = self.data.dtype
        value = value.to(dtype) if isinstance(value, TensorBase) else \
            self.from_op(np.asarray(value, dtype=dtype), None)
        return ops.Where.apply(value, self, condition=bool_condition(mask, "masked_fill"))

    def __floordiv__(self, other: Any) -> Tensor:
        self._not_differentiable("floor_divide", other)
        a, b = self._divisible("floor_divide", other, False)
        return a._compare("floor_divide", np.floor_divide, b)

    def _divisible(self, op: str, other: Any, reverse: bool) -> Tuple[Any, Any]:
        """The operands of `op` (floor division, remainder), paired; two bool operands and
        an integer division by zero are refused, as PyTorch refuses them (NumPy would give
        int8 for booleans and 0 for x // 0)."""
        a, b = self._pair(other, reverse=reverse)
        if a.data.dtype.kind == b.data.dtype.kind == "b":
            refuse_bool(op, a)
        if b.data.dtype.kind in "iu" and not b.data.all():
            raise ZeroDivisionError(f"{op}: integer division by zero")
        return a, b

    def __mod__(self, other: Any) -> Tensor:
        """The remainder with the divisor's sign, x - floor(x / y)·y (Python's %,
        `torch.remainder`); its gradient is 1 for x and -floor(x / y) for y."""
        if not isinstance(other, (TensorBase, np.ndarray, np.generic, numbers.Number,
                                  list, tuple)):
            return NotImplemented
        return ops.Remainder.apply(*self._divisible("remainder", other, False))

    def __rmod__(self, other: Any) -> Tensor:
        return ops.Remainder.apply(*self._divisible("remainder", other, True))

    remainder = __mod__

    def _compare(self, op: str, fn: Any, other: Any) -> Tensor:
        if not isinstance(other, (TensorBase, np.ndarray, np.generic, numbers.Number,
                                  list, tuple)):
            return NotImplemented
        a, b = self.data, data_of(other)
        try:
            return self.from_op(fn(a, b), None)
        except ValueError:
            raise ValueError(f"{op}: shapes {np.shape(a)} and {np.shape(b)} cannot be "
                             f"broadcast together") from None

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare("eq", np.equal, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare("ne", np.not_equal, other)

    def __lt__(self, other: Any) -> Tensor:
        return self._compare("lt", np.less, other)

    def __le__(self, other: Any) -> Tensor:
        return self._compare("le", np.less_equal, other)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare("gt", np.greater, other)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare("ge", np.greater_equal, other)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    greater, less, not_equal = __gt__, __lt__, __ne__

    def equal(self, other: Any) -> bool:
        """True if `other` has this shape and the same values."""
        other = data_of(other)
        return np.shape(other) == self.data.shape and bool(np.all(self.data == other))

    def allclose(self, other: Any, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
        return bool(np.allclose(self.data, data_of(other), rtol=rtol, atol=atol))

    def isclose(self, other: Any, rtol: float = 1e-5, atol: float = 1e-8) -> Tensor:
        return self.from_op(np.isclose(self.data, data_of(other), rtol=rtol, atol=atol), None)

    def __and__(self, other: Any) -> Tensor:
        return self._compare("and", np.bitwise_and, other)

    def __or__(self, other: Any) -> Tensor:
        return self._compare("or", np.bitwise_or, other)

    def __xor__(self, other: Any) -> Tensor:
        return self._compare("xor", np.bitwise_xor, other)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self) -> Tensor:
        return self.from_op(np.invert(self.data), None)

    def logical_not(self) -> Tensor:
        return self.from_op(np.logical_not(self.data), None)

    def _not_differentiable(self, op: str, *others: Any) -> None:
        if is_grad_enabled() and (self.requires_grad or any(
                isinstance(o, TensorBase) and o.requires_grad for o in others)):
            raise RuntimeError(f"{op} is not differentiable; apply it to x.detach()")
