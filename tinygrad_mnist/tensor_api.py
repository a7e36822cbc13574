"""The PyTorch-shaped surface of `Tensor`: `TensorAPI`, a mixin that `Tensor` inherits.

`tensor.py` holds the engine's Tensor (data, gradient, the differentiable arithmetic);
this module adds what code written for PyTorch expects of a tensor, with PyTorch's
names and semantics: comparisons giving bool tensors, `max(dim)` giving
`(values, indices)`, `size()`, `view_as`, `unsqueeze`, dtype conversions, `.grad` as a
Tensor, in-place operators, and so on. It builds on the engine's Functions (`ops`,
`ops_extra`) and makes plain tensors with `self.from_op(array, None)`, so it needs no
import of `tensor.py`. The deliberate differences from PyTorch are listed in
docs/pytorch.md.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterator, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import autograd, ops, ops_extra
from .autograd import Function, is_grad_enabled
from .device import CPU, check_device, device as Device
from .dtypes import as_dtype, float32, int64
from .random import generator_or_default

Axis = Union[None, int, Sequence[int]]
_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}  # PyTorch's type categories: bool < int < float


def normalize_axis(axis: Axis, ndim: int, op: str) -> Optional[Tuple[int, ...]]:
    """`axis` (None, an int or a sequence, negatives allowed) as sorted non-negative
    axes of an `ndim`-dimensional tensor, or a ValueError naming `op`."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} "
                             f"dimension(s)")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axes}")
    return tuple(sorted(out))


def as_shape(shape: Sequence[Any]) -> Tuple[int, ...]:
    """Accept f(2, 3) and f((2, 3)) alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


class Size(tuple):
    """A shape, as `torch.Size`: a tuple of ints, with `numel()`."""

    def numel(self) -> int:
        return int(np.prod(self, dtype=np.int64))

    def __repr__(self) -> str:
        return f"Size({list(self)})"


class ValuesIndices(NamedTuple):
    """What `max(dim)`, `min(dim)`, `sort` and `topk` return, as PyTorch's named tuple."""
    values: Any
    indices: Any


# ufunc -> (the Tensor operator it is, the one for a Tensor on its right)
_OPERATORS = {np.add: ("__add__", "__radd__"), np.subtract: ("__sub__", "__rsub__"),
              np.multiply: ("__mul__", "__rmul__"), np.divide: ("__truediv__", "__rtruediv__"),
              np.matmul: ("__matmul__", "__rmatmul__"),
              np.remainder: ("__mod__", "__rmod__"), np.equal: ("__eq__", "__eq__"),
              np.not_equal: ("__ne__", "__ne__"), np.less: ("__lt__", "__gt__"),
              np.less_equal: ("__le__", "__ge__"), np.greater: ("__gt__", "__lt__"),
              np.greater_equal: ("__ge__", "__le__"), np.bitwise_and: ("__and__", "__and__"),
              np.bitwise_or: ("__or__", "__or__"), np.bitwise_xor: ("__xor__", "__xor__")}


def _array(x: Any) -> Any:
    return x.data if isinstance(x, TensorAPI) else x


def _arrays(obj: Any) -> Any:
    """Every Tensor inside lists, tuples and dicts replaced by its array."""
    if isinstance(obj, TensorAPI):
        return obj.data
    if isinstance(obj, (list, tuple)):
        return type(obj)(_arrays(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _arrays(v) for k, v in obj.items()}
    return obj


def _condition(condition: Any, name: str) -> np.ndarray:
    """A boolean array from a Tensor, an array or a Python bool (as PyTorch's conditions
    and masks, which must be bool)."""
    data = np.asarray(_array(condition))
    if data.dtype != np.bool_:
        raise TypeError(f"{name}: the condition must be a bool tensor, got {data.dtype} "
                        f"(compare first, e.g. x > 0)")
    return data


class TensorAPI:
    """PyTorch's Tensor methods and operators, for `Tensor` (see the module docstring)."""

    __slots__ = ()
    data: np.ndarray
    requires_grad: bool
    _ctx: Optional[Function]
    _grad: Any

    @staticmethod
    def from_op(data: Any, ctx: Optional[Function]) -> Any:
        raise NotImplementedError  # provided by Tensor

    # ------------------------------------------------------------------ gradient
    @property
    def grad(self) -> Any:
        """d(loss)/d(self) as a Tensor after `backward()` (None before): a leaf's
        gradients accumulate into it in place, so `p.grad.zero_()` clears it."""
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if value is not None and not isinstance(value, TensorAPI):
            if not isinstance(value, np.ndarray):
                raise TypeError(f"assigned grad expected to be a Tensor, an array or None, "
                                f"got {type(value).__name__}")
            value = self.from_op(value, None)
        self._grad = value

    @property
    def grad_fn(self) -> Optional[Function]:
        """The Function that made this tensor (None for a leaf)."""
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def requires_grad_(self, requires_grad: bool = True) -> Any:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad_: only floating-point tensors can require "
                            f"grad, got {self.data.dtype}")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep this tensor's gradient in `.grad` at each later backward, though it is
        made by an op (a leaf's is kept anyway): to look at the gradient of a hidden
        layer's output, say."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad, so it has "
                               "no gradient to keep")
        autograd.retain_grad(self)

    @property
    def retains_grad(self) -> bool:
        """True for a tensor made by an op whose gradient `retain_grad` keeps."""
        return self._ctx is not None and self._ctx.retains_grad

    def detach(self) -> Any:
        """The same data, cut from the graph."""
        return self.from_op(self.data, None)

    def clone(self) -> Any:
        """A copy of the data; gradients flow back to this tensor."""
        if self.requires_grad:
            return ops_extra.Cast.apply(self, dtype=self.data.dtype)
        return self.from_op(self.data.copy(), None)

    # -------------------------------------------------------------- information
    def size(self, dim: Optional[int] = None) -> Union[Size, int]:
        """The shape as a `Size`, or the length of dimension `dim`."""
        if dim is None:
            return Size(self.data.shape)
        return self.data.shape[normalize_axis(dim, self.data.ndim, "size")[0]]

    def dim(self) -> int:
        return self.data.ndim

    ndimension = dim

    def numel(self) -> int:
        return self.data.size

    nelement = numel

    def element_size(self) -> int:
        return self.data.itemsize

    @property
    def itemsize(self) -> int:
        return self.data.itemsize

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    @property
    def device(self) -> Device:
        return CPU

    is_cuda = False

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Iterator[Any]:
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __contains__(self, element: Any) -> bool:
        return bool(np.any(self.data == _array(element)))

    # -------------------------------------------------------- to Python / NumPy
    def item(self) -> Any:
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python "
                             f"number, this one has shape {self.data.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied), like `torch.Tensor.numpy()`."""
        return self.data

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        """NumPy functions see a Tensor as its array: `np.mean(t)` is `np.mean(t.numpy())`."""
        return func(*_arrays(args), **_arrays(kwargs))

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """`array + tensor` (and - * / @ and comparisons) gives what the tensor's operator
        gives: a Tensor, in the graph. Every other ufunc call, and every one with `out=`
        (so `array -= tensor` updates the array in place), computes on the arrays."""
        names = _OPERATORS.get(ufunc)
        if names is not None and method == "__call__" and not kwargs and len(inputs) == 2:
            a, b = inputs
            if isinstance(a, TensorAPI):
                return getattr(a, names[0])(b)
            return getattr(b, names[1])(a)
        return getattr(ufunc, method)(*_arrays(inputs), **_arrays(kwargs))

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is "
                               f"ambiguous (shape {self.data.shape})")
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError(f"only a one-element integer tensor can be used as an index, "
                            f"got {self.data.dtype} of shape {self.data.shape}")
        return int(self.data.item())

    def __format__(self, spec: str) -> str:
        return format(self.item(), spec) if self.data.ndim == 0 else repr(self)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        dtype = self.data.dtype
        shown = "" if dtype in (float32, int64) or dtype.kind == "b" else f", dtype={dtype}"
        if self._ctx is not None:  # (<Released> once backward has freed the graph)
            shown += f", grad_fn=<{type(self._ctx).__name__.lstrip('_')}>"
        elif self.requires_grad:
            shown += ", requires_grad=True"
        return f"tensor({body}{shown})"

    # ------------------------------------------------------------ type promotion
    def _constant(self, other: Any) -> Any:
        """A Python number or array as an operand beside this tensor: of this tensor's
        dtype, unless it is of a higher kind (a float beside an integer tensor, an int
        beside a bool one), which gives PyTorch's default of that kind (float32, int64)."""
        dtype = self.data.dtype
        try:
            if other is None:
                raise TypeError
            if dtype.kind != "f":
                kind = np.asarray(other).dtype.kind
                if _RANK.get(kind, -1) > _RANK[dtype.kind]:
                    dtype = float32 if kind == "f" else int64
            data = np.asarray(other, dtype=dtype)
        except (TypeError, ValueError):
            raise TypeError(f"unsupported operand type {type(other).__name__!r} for a "
                            f"Tensor operation") from None
        return self.from_op(data, None)

    def _pair(self, other: Any, reverse: bool = False, true_divide: bool = False
              ) -> Tuple[Any, Any]:
        """(self, other) as operands of one op, (other, self) if `reverse`: an integer
        tensor beside a float one takes the float's dtype, and true division of
        integers is done in float32 (PyTorch's promotion; NumPy would give float64)."""
        a = self
        b = other if isinstance(other, TensorAPI) else self._constant(other)
        kind_a, kind_b = a.data.dtype.kind, b.data.dtype.kind
        if kind_a != kind_b and "f" in (kind_a, kind_b):
            a, b = (a.to(b.data.dtype), b) if kind_b == "f" else (a, b.to(a.data.dtype))
        elif true_divide and kind_a != "f":
            a, b = a.to(float32), b.to(float32)
        return (b, a) if reverse else (a, b)

    # ---------------------------------------------------------------- comparison
    def _compare(self, op: str, fn: Any, other: Any) -> Any:
        if not isinstance(other, (TensorAPI, np.ndarray, np.generic, numbers.Number,
                                  list, tuple)):
            return NotImplemented
        a, b = self.data, _array(other)
        try:
            return self.from_op(fn(a, b), None)
        except ValueError:
            raise ValueError(f"{op}: shapes {np.shape(a)} and {np.shape(b)} cannot be "
                             f"broadcast together") from None

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return self._compare("eq", np.equal, other)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return self._compare("ne", np.not_equal, other)

    def __lt__(self, other: Any) -> Any:
        return self._compare("lt", np.less, other)

    def __le__(self, other: Any) -> Any:
        return self._compare("le", np.less_equal, other)

    def __gt__(self, other: Any) -> Any:
        return self._compare("gt", np.greater, other)

    def __ge__(self, other: Any) -> Any:
        return self._compare("ge", np.greater_equal, other)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__
    greater, less, not_equal = __gt__, __lt__, __ne__

    def equal(self, other: Any) -> bool:
        """True if `other` has this shape and the same values."""
        other = _array(other)
        return np.shape(other) == self.data.shape and bool(np.all(self.data == other))

    def allclose(self, other: Any, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
        return bool(np.allclose(self.data, _array(other), rtol=rtol, atol=atol))

    def isclose(self, other: Any, rtol: float = 1e-5, atol: float = 1e-8) -> Any:
        return self.from_op(np.isclose(self.data, _array(other), rtol=rtol, atol=atol), None)

    def __and__(self, other: Any) -> Any:
        return self._compare("and", np.bitwise_and, other)

    def __or__(self, other: Any) -> Any:
        return self._compare("or", np.bitwise_or, other)

    def __xor__(self, other: Any) -> Any:
        return self._compare("xor", np.bitwise_xor, other)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self) -> Any:
        return self.from_op(np.invert(self.data), None)

    def logical_not(self) -> Any:
        return self.from_op(np.logical_not(self.data), None)

    def _not_differentiable(self, op: str, *others: Any) -> None:
        if is_grad_enabled() and (self.requires_grad or any(
                isinstance(o, TensorAPI) and o.requires_grad for o in others)):
            raise RuntimeError(f"{op} is not differentiable; apply it to x.detach()")

    def __floordiv__(self, other: Any) -> Any:
        self._not_differentiable("floor_divide", other)
        return self._compare("floor_divide", np.floor_divide, other)

    def __mod__(self, other: Any) -> Any:
        """The remainder with the divisor's sign, x - floor(x / y)·y (Python's %,
        `torch.remainder`); its gradient is 1 for x and -floor(x / y) for y."""
        if not isinstance(other, (TensorAPI, np.ndarray, np.generic, numbers.Number,
                                  list, tuple)):
            return NotImplemented
        return ops_extra.Remainder.apply(*self._pair(other))

    def __rmod__(self, other: Any) -> Any:
        return ops_extra.Remainder.apply(*self._pair(other, reverse=True))

    remainder = __mod__

    # ----------------------------------------------------------------- reductions
    def all(self, dim: Optional[int] = None, keepdim: bool = False) -> Any:
        return self.from_op(np.asarray(np.all(self.data, axis=dim, keepdims=keepdim)), None)

    def any(self, dim: Optional[int] = None, keepdim: bool = False) -> Any:
        return self.from_op(np.asarray(np.any(self.data, axis=dim, keepdims=keepdim)), None)

    def amax(self, dim: Axis = (), keepdim: bool = False) -> Any:
        """Maximum values over `dim` (all dimensions by default); the gradient is
        shared equally by ties."""
        return self._largest("amax", dim, keepdim)

    def _largest(self, op: str, dim: Axis, keepdim: bool) -> Any:
        """The maximum over `dim` (all dimensions for () or None), for `op` (amax, amin,
        max or min), which names itself in the errors."""
        axes = None if dim in ((), None) else normalize_axis(dim, self.data.ndim, op)
        self._check_reducible(op, axes)
        return ops.Max.apply(self, axis=axes, keepdims=keepdim)

    def _check_reducible(self, op: str, axes: Optional[Tuple[int, ...]]) -> None:
        """A maximum or minimum needs a value to pick: no reduced dimension may be empty
        (an empty batch reduced along another dimension is fine)."""
        if self.data.size if axes is None else all(self.shape[a] for a in axes):
            return
        empty = ("the tensor is empty" if axes is None else
                 f"dimension {next(a for a in axes if not self.shape[a])} is empty")
        raise ValueError(f"{op}: {empty} (shape {tuple(self.shape)}), so there is no value "
                         f"to pick")

    def amin(self, dim: Axis = (), keepdim: bool = False) -> Any:
        return -((-self)._largest("amin", dim, keepdim))

    def cumsum(self, dim: int) -> Any:
        """Running sums along `dim` (integers and booleans are summed as int64)."""
        (axis,) = normalize_axis(dim, self.data.ndim, "cumsum")
        source = self if self.data.dtype.kind == "f" else self.to(int64)
        if self.data.ndim == 0:
            return ops_extra.Cumsum.apply(source.reshape(1), axis=0).reshape(())
        return ops_extra.Cumsum.apply(source, axis=axis)

    def prod(self, dim: Optional[int] = None, keepdim: bool = False) -> Any:
        """The product over `dim`, or of all elements (integers and booleans as int64);
        the gradient is exact where some of the values are zero."""
        source = self if self.data.dtype.kind == "f" else self.to(int64)
        (axis,) = (0,) if dim is None else normalize_axis(dim, self.data.ndim, "prod")
        if dim is None or self.data.ndim == 0:
            out = ops_extra.Prod.apply(source.reshape(-1), axis=0)
            return out.reshape(self.shape if keepdim else ())
        out = ops_extra.Prod.apply(source, axis=axis)
        return out if keepdim else out.squeeze(axis)

    def max(self, dim: Any = None, keepdim: bool = False, *, axis: Axis = None,
            keepdims: Optional[bool] = None) -> Any:
        """`max()`: the largest value. `max(dim)`: `(values, indices)` along `dim`, the
        gradient going to the first maximum (PyTorch's). `max(other)`: the elementwise
        maximum. `axis=` (an int or a tuple, NumPy's spelling): the values only."""
        if isinstance(dim, TensorAPI):
            return self.maximum(dim)
        if axis is not None or isinstance(dim, (tuple, list)):
            return self.amax(dim if axis is None else axis,
                             keepdim if keepdims is None else keepdims)
        if dim is None:
            return self._largest("max", (), False)
        return self._extremum("max", np.argmax, dim, keepdim)

    def min(self, dim: Any = None, keepdim: bool = False, *, axis: Axis = None,
            keepdims: Optional[bool] = None) -> Any:
        """As `max`, for the smallest values."""
        if isinstance(dim, TensorAPI):
            return self.minimum(dim)
        if axis is not None or isinstance(dim, (tuple, list)):
            return self.amin(dim if axis is None else axis,
                             keepdim if keepdims is None else keepdims)
        if dim is None:
            return -((-self)._largest("min", (), False))
        return self._extremum("min", np.argmin, dim, keepdim)

    def _extremum(self, op: str, arg: Any, dim: int, keepdim: bool) -> ValuesIndices:
        d = normalize_axis(dim, self.data.ndim, op)[0]
        self._check_reducible(op, (d,))
        index = np.expand_dims(arg(self.data, axis=d), d)
        values = self.gather(d, index)
        if not keepdim:
            values, index = values.squeeze(d), np.squeeze(index, d)
        return ValuesIndices(values, self.from_op(index.astype(np.int64), None))

    def maximum(self, other: Any) -> Any:
        """The elementwise maximum (NaN if either is NaN); at a tie each input gets half
        the gradient."""
        return ops_extra.Extremum.apply(*self._pair(other), fn=np.maximum)

    def minimum(self, other: Any) -> Any:
        return ops_extra.Extremum.apply(*self._pair(other), fn=np.minimum)

    def where(self, condition: Any, other: Any) -> Any:
        """`self` where `condition` holds, else `other` (`torch.where(condition, self,
        other)`); the gradient flows to the side that was taken."""
        a, b = self._pair(other)
        return ops_extra.Where.apply(a, b, condition=_condition(condition, "where"))

    def masked_fill(self, mask: Any, value: Any) -> Any:
        """`value` where `mask` holds, else `self`."""
        a, b = self._pair(value)
        return ops_extra.Where.apply(b, a, condition=_condition(mask, "masked_fill"))

    def argmax(self, dim: Optional[int] = None, keepdim: bool = False, *,
               axis: Optional[int] = None) -> Any:
        """Index of the maximum along `dim`, or in the flattened tensor (int64, no gradient)."""
        return self._arg(np.argmax, "argmax", axis if dim is None else dim, keepdim)

    def argmin(self, dim: Optional[int] = None, keepdim: bool = False, *,
               axis: Optional[int] = None) -> Any:
        return self._arg(np.argmin, "argmin", axis if dim is None else dim, keepdim)

    def _arg(self, fn: Any, op: str, dim: Optional[int], keepdim: bool) -> Any:
        d = None if dim is None else normalize_axis(dim, self.data.ndim, op)[0]
        self._check_reducible(op, None if d is None else (d,))
        if d is None:
            out = np.asarray(fn(self.data))
            out = out.reshape((1,) * self.data.ndim) if keepdim else out
        else:
            out = fn(self.data, axis=d, keepdims=keepdim)
        return self.from_op(out.astype(np.int64), None)

    def var(self, dim: Axis = None, unbiased: Optional[bool] = None, keepdim: bool = False,
            *, correction: Optional[float] = None) -> Any:
        """Σ(x - mean)² / (N - correction) over `dim`; correction 1 (Bessel's) by
        default, 0 with `unbiased=False`."""
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        axes = normalize_axis(dim, self.data.ndim, "var")
        count = self.data.size if axes is None else int(np.prod([self.data.shape[a]
                                                                 for a in axes]))
        diff = self - self.mean(axes, keepdims=True)
        return (diff * diff).sum(axes, keepdim) / max(count - correction, 0)

    def std(self, dim: Axis = None, unbiased: Optional[bool] = None, keepdim: bool = False,
            *, correction: Optional[float] = None) -> Any:
        """√var (see `var`)."""
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def norm(self, p: Any = "fro", dim: Axis = None, keepdim: bool = False) -> Any:
        """The p-norm over `dim` (all elements by default): (Σ |x|^p)^(1/p) for a number
        p > 0 (2 or "fro" the default), or the largest |x| for p = inf."""
        if p == 1:
            return self.abs().sum(dim, keepdim)
        if p == math.inf:
            return self.abs().amax(() if dim is None else dim, keepdim)
        if p in ("fro", 2):
            powered, p = self * self, 2
        elif isinstance(p, numbers.Real) and not isinstance(p, bool) and 0 < p < math.inf:
            powered = self.abs()._power_or_zero(p)
        else:
            raise ValueError(f"norm: p must be a number > 0, 'fro' or inf, got {p!r}")
        return powered.sum(dim, keepdim)._power_or_zero(1.0 / p)

    def _power_or_zero(self, exponent: float) -> Any:
        """self ** exponent, but 0 with a zero gradient where self is 0: a power below 1
        has an infinite slope at 0, and PyTorch's norms answer 0 there, not 0·∞ = NaN."""
        nonzero = np.asarray(self.data != 0)                      # NaN stays NaN
        base = self.where(nonzero, 1.0)
        return (base.sqrt() if exponent == 0.5 else base ** exponent).where(nonzero, 0.0)

    def logsumexp(self, dim: Any, keepdim: bool = False) -> Any:
        """log Σ exp(x) over `dim`, stable: the maximum m is taken out first,
        log Σ exp(x - m) + m (a constant m: the gradient, softmax, does not depend on it)."""
        axes = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
        m = np.max(self.data, axis=axes, keepdims=True) if self.data.size else \
            np.zeros([1 if a in axes else n for a, n in enumerate(self.shape)], self.dtype)
        m = np.where(np.isfinite(m), m, 0).astype(self.dtype)   # all -inf (or inf): no shift
        with np.errstate(divide="ignore"):                 # an all -inf row: -inf, quietly
            out = (self - m).exp().sum(axes, keepdims=True).log() + m
        return out if keepdim else out.squeeze(axes)

    # --------------------------------------------------------------------- math
    def abs(self) -> Any:
        """|x|, with gradient sign(x) (0 at 0)."""
        return ops.Mul.apply(self, self.from_op(np.sign(self.data), None))

    __abs__ = abs

    def _floating(self) -> Any:
        """This tensor, made float32 if it holds integers or booleans."""
        return self if self.data.dtype.kind == "f" else self.to(float32)

    def sin(self) -> Any:
        return ops_extra.Sin.apply(self._floating())

    def cos(self) -> Any:
        return ops_extra.Cos.apply(self._floating())

    def rsqrt(self) -> Any:
        return self.sqrt().reciprocal()

    def exp2(self) -> Any:
        return 2.0 ** self._floating()

    def erf(self) -> Any:
        return ops_extra.Erf.apply(self._floating())

    def log1p(self) -> Any:
        """log(1 + x), exact for small x."""
        return ops_extra.Log1p.apply(self._floating())

    def square(self) -> Any:
        return self * self

    def neg(self) -> Any:
        return -self

    def pow(self, exponent: Any) -> Any:
        return self ** exponent

    def __rpow__(self, base: Any) -> Any:
        """base ** self = exp(self·ln base), for a positive number `base`."""
        if not isinstance(base, numbers.Real) or base <= 0:
            raise TypeError(f"pow: a number raised to a tensor needs a positive base, "
                            f"got {base!r}")
        return (self * math.log(base)).exp()

    def reciprocal(self) -> Any:
        return 1 / self

    def add(self, other: Any, *, alpha: float = 1) -> Any:
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other: Any, *, alpha: float = 1) -> Any:
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other: Any) -> Any:
        return self * other

    def div(self, other: Any, *, rounding_mode: Optional[str] = None) -> Any:
        if rounding_mode is None:
            return self / other
        if rounding_mode != "floor":
            raise ValueError(f"div: rounding_mode must be None or 'floor', got "
                             f"{rounding_mode!r}")
        return self // other

    multiply, divide, subtract, true_divide = mul, div, sub, div

    def mm(self, other: Any) -> Any:
        return self @ other

    def dot(self, other: Any) -> Any:
        return self @ other

    def _rounded(self, fn: Any) -> Any:
        """fn(x), piecewise constant: its gradient is zero."""
        return ops_extra.Rounding.apply(self, fn=fn)

    def floor(self) -> Any:
        return self._rounded(np.floor)

    def ceil(self) -> Any:
        return self._rounded(np.ceil)

    def round(self) -> Any:
        return self._rounded(np.round)

    def sign(self) -> Any:
        return self._rounded(np.sign)

    # -------------------------------------------------------------------- shape
    def view_as(self, other: Any) -> Any:
        return self.reshape(other.shape)

    reshape_as = view_as

    def unsqueeze(self, dim: int) -> Any:
        """A new dimension of size 1 at `dim` (in [-ndim - 1, ndim])."""
        d = normalize_axis(dim, self.data.ndim + 1, "unsqueeze")[0]
        shape = self.data.shape
        return self.reshape(shape[:d] + (1,) + shape[d:])

    def squeeze(self, dim: Axis = None) -> Any:
        """Drop dimensions of size 1: all of them, or those in `dim` that have size 1."""
        shape = self.data.shape
        axes = range(len(shape)) if dim is None else normalize_axis(dim, len(shape),
                                                                     "squeeze")
        return self.reshape(tuple(n for i, n in enumerate(shape) if n != 1 or i not in axes))

    def expand(self, *sizes: Any) -> Any:
        """A view repeating dimensions of size 1 (and new leading ones) to `sizes`;
        -1 keeps a dimension's size."""
        sizes = as_shape(sizes)
        shape, lead = self.data.shape, len(sizes) - self.data.ndim
        if lead < 0:
            raise ValueError(f"expand: {len(sizes)} sizes given for a tensor with "
                             f"{self.data.ndim} dimensions")
        target = tuple(shape[i - lead] if n == -1 and i >= lead else n
                       for i, n in enumerate(sizes))
        for i, n in enumerate(shape):
            if n != 1 and n != target[i + lead]:
                raise ValueError(f"expand: the expanded size {target[i + lead]} must match "
                                 f"the existing size {n} at non-singleton dimension {i}")
        if min(target, default=0) < 0:
            raise ValueError(f"expand: -1 is only allowed for existing dimensions, got "
                             f"{sizes}")
        return ops_extra.Expand.apply(self, shape=target)

    def expand_as(self, other: Any) -> Any:
        return self.expand(other.shape)

    def repeat(self, *sizes: Any) -> Any:
        """The tensor tiled `sizes[i]` times along dimension i (extra sizes add leading
        dimensions): each dimension n becomes a (size, n) pair, expanded, then merged."""
        sizes = as_shape(sizes)
        lead = len(sizes) - self.data.ndim
        if lead < 0 or min(sizes, default=0) < 0:
            raise ValueError(f"repeat: needs at least {self.data.ndim} non-negative sizes, "
                             f"one per dimension, got {list(sizes)}")
        shape = (1,) * lead + self.data.shape
        pairs = tuple(v for n in shape for v in (1, n))
        tiled = tuple(v for r, n in zip(sizes, shape) for v in (r, n))
        return self.reshape(pairs).expand(tiled).reshape(
            tuple(r * n for r, n in zip(sizes, shape)))

    def narrow(self, dim: int, start: int, length: int) -> Any:
        """Elements start .. start + length - 1 along `dim`."""
        d = normalize_axis(dim, self.data.ndim, "narrow")[0]
        n = self.data.shape[d]
        start = start + n if start < 0 else start
        if not (0 <= start <= n and 0 <= length <= n - start):
            raise ValueError(f"narrow: start {start} and length {length} do not fit "
                             f"dimension {dim} of size {n}")
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def split(self, split_size_or_sections: Any, dim: int = 0) -> Tuple[Any, ...]:
        """Pieces along `dim`: of `split_size` each (the last may be smaller), or of the
        listed sizes (which must add up to the dimension's size)."""
        d = normalize_axis(dim, self.data.ndim, "split")[0]
        n = self.data.shape[d]
        if isinstance(split_size_or_sections, numbers.Integral):
            size = int(split_size_or_sections)
            if size <= 0:
                raise ValueError(f"split: split_size must be positive, got {size}")
            sections = [min(size, n - start) for start in range(0, n, size)] or [0]
        else:
            sections = [int(k) for k in split_size_or_sections]
            if sum(sections) != n or min(sections, default=0) < 0:
                raise ValueError(f"split: sections {sections} must add up to the size {n} "
                                 f"of dimension {dim}")
        starts = np.cumsum([0] + sections[:-1])
        return tuple(self.narrow(d, int(a), k) for a, k in zip(starts, sections))

    def chunk(self, chunks: int, dim: int = 0) -> Tuple[Any, ...]:
        """At most `chunks` pieces of ceil(n / chunks) along `dim` (PyTorch's rule)."""
        if chunks <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        n = self.data.shape[normalize_axis(dim, self.data.ndim, "chunk")[0]]
        return self.split(max(-(-n // chunks), 1), dim)

    def index_select(self, dim: int, index: Any) -> Any:
        """The entries at the integer positions `index` (1-D) along `dim`."""
        index = np.asarray(_array(index))
        if index.ndim > 1 or index.dtype.kind not in "iu":
            raise ValueError(f"index_select: index must be a 1-D integer tensor, got "
                             f"{index.dtype} of shape {index.shape}")
        d = normalize_axis(dim, self.data.ndim, "index_select")[0]
        return self[(slice(None),) * d + (index.reshape(-1),)]

    def ravel(self) -> Any:
        return self.reshape(-1)

    def contiguous(self) -> Any:
        return self

    def t(self) -> Any:
        """The transpose of a matrix (a 0-d or 1-d tensor is returned as it is)."""
        if self.data.ndim > 2:
            raise ValueError(f"t: expects a tensor with at most 2 dimensions, got "
                             f"{self.data.ndim}; use transpose(dim0, dim1)")
        return self.transpose(0, 1) if self.data.ndim == 2 else self

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
        """`(values, indices)` sorted along `dim`; ties keep their order (as PyTorch's
        stable=True). The values are gathered, so their gradient flows back."""
        d = normalize_axis(dim, self.data.ndim, "sort")[0] if self.data.ndim else 0
        if self.data.ndim == 0:
            return ValuesIndices(self * 1, self.from_op(np.zeros((), np.int64), None))
        if descending:
            # The ascending order of the values reversed, reversed: ties keep their order,
            # NaN comes first (as in PyTorch), and no value is negated (the smallest int
            # has no -x).
            reversed_order = np.argsort(np.flip(self.data, d), axis=d, kind="stable")
            order = self.data.shape[d] - 1 - np.flip(reversed_order, d)
        else:
            order = np.argsort(self.data, axis=d, kind="stable")
        return ValuesIndices(self.gather(d, order), self.from_op(order.astype(np.int64), None))

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
        """The `k` largest (smallest with largest=False) values along `dim` and their
        indices, largest first; ties keep their order."""
        d = normalize_axis(dim, max(self.data.ndim, 1), "topk")[0]
        n = self.data.shape[d] if self.data.ndim else 1
        if not 0 <= k <= n:
            raise ValueError(f"topk: k must be in 0..{n} (the size of dim {dim}), got {k}")
        values, order = self.sort(d, descending=largest)
        keep = tuple(slice(0, k) if i == d else slice(None) for i in range(self.data.ndim))
        return ValuesIndices(values[keep], order[keep])

    def gather(self, dim: int, index: Any) -> Any:
        """out[i][j] = self[index[i][j]][j] for dim 0 (and so on): values picked along
        `dim` by an integer `index` of this tensor's number of dimensions."""
        index = np.asarray(_array(index))
        ndim = self.data.ndim
        d = normalize_axis(dim, ndim, "gather")[0]
        if index.ndim != ndim or index.dtype.kind not in "iu":
            raise ValueError(f"gather: index must be an integer tensor with {ndim} "
                             f"dimensions, got {index.dtype} of shape {index.shape}")
        grid = [index if i == d else
                np.arange(n).reshape([n if j == i else 1 for j in range(ndim)])
                for i, n in enumerate(index.shape)]
        return self[tuple(grid)]

    # ------------------------------------------------------------------ in place
    def _writable(self, op: str, *others: Any) -> np.ndarray:
        """The array an in-place op may write into; PyTorch's error for a leaf that
        requires grad (outside `no_grad`), and an error for any tensor in a graph."""
        if is_grad_enabled() and (self.requires_grad or any(
                isinstance(o, TensorAPI) and o.requires_grad for o in others)):
            if self.requires_grad and self._ctx is None:
                raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used "
                                   f"in an in-place operation; do it inside `with "
                                   f"tg.no_grad():`")
            raise RuntimeError(f"{op}: in-place operations on tensors in a graph are not "
                               f"supported; write it out of place (x = x + y)")
        return self.data

    def _update(self, op: str, ufunc: Any, value: Any) -> Any:
        data = self._writable(op, value)
        value = _array(value)
        try:
            ufunc(data, value, out=data, casting="same_kind")
        except TypeError:
            raise RuntimeError(f"{op}: result type {np.result_type(data, value)} can't be "
                               f"cast to the desired output type {data.dtype}") from None
        except ValueError as e:
            raise ValueError(f"{op}: cannot write shape {np.shape(value)} into a tensor of "
                             f"shape {data.shape}: {e}") from None
        return self

    def add_(self, other: Any, *, alpha: float = 1) -> Any:
        return self._update("add_", np.add, other if alpha == 1 else _array(other) * alpha)

    def sub_(self, other: Any, *, alpha: float = 1) -> Any:
        return self._update("sub_", np.subtract,
                            other if alpha == 1 else _array(other) * alpha)

    def mul_(self, other: Any) -> Any:
        return self._update("mul_", np.multiply, other)

    def div_(self, other: Any) -> Any:
        return self._update("div_", np.true_divide, other)

    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_

    def copy_(self, src: Any) -> Any:
        """Copy `src` (broadcast, converted to this dtype) into this tensor."""
        np.copyto(self._writable("copy_", src), _array(src), casting="unsafe")
        return self

    def fill_(self, value: Any) -> Any:
        self._writable("fill_").fill(_array(value))
        return self

    def zero_(self) -> Any:
        return self.fill_(0)

    def clamp_(self, min: Optional[float] = None, max: Optional[float] = None) -> Any:
        data = self._writable("clamp_")
        np.clip(data, min, max, out=data)
        return self

    def uniform_(self, low: float = 0.0, high: float = 1.0, *,
                 generator: Optional[np.random.Generator] = None) -> Any:
        rng = generator_or_default(generator)
        return self.copy_(rng.uniform(low, high, self.data.shape))

    def normal_(self, mean: float = 0.0, std: float = 1.0, *,
                generator: Optional[np.random.Generator] = None) -> Any:
        rng = generator_or_default(generator)
        return self.copy_(rng.normal(mean, std, self.data.shape))

    def __setitem__(self, index: Any, value: Any) -> None:
        data = self._writable("setitem", value)
        data[_arrays(index)] = _array(value)

    # ----------------------------------------------------------- new tensors
    def new_full(self, size: Sequence[int], fill_value: Any, *, dtype: Any = None) -> Any:
        dtype = self.data.dtype if dtype is None else as_dtype(dtype)
        return self.from_op(np.full(as_shape((size,)), fill_value, dtype), None)

    def new_zeros(self, *size: Any, dtype: Any = None) -> Any:
        return self.new_full(as_shape(size), 0, dtype=dtype)

    def new_ones(self, *size: Any, dtype: Any = None) -> Any:
        return self.new_full(as_shape(size), 1, dtype=dtype)

    # ----------------------------------------------------- dtypes and devices
    def to(self, *args: Any, dtype: Any = None, device: Any = None,
           non_blocking: bool = False, copy: bool = False, memory_format: Any = None) -> Any:
        """This tensor as `dtype` and on `device`, given in any order (`to("cpu")`,
        `to(tg.float64)`, `to(other_tensor)`). The same tensor when nothing changes
        (unless `copy`); a cast is differentiable. Only the CPU exists."""
        for arg in args:
            if isinstance(arg, TensorAPI):
                dtype = arg.data.dtype
            elif isinstance(arg, (str, Device)):
                device = arg
            else:
                dtype = arg
        if device is not None:
            check_device(device, "to")
        out = self
        if dtype is not None and as_dtype(dtype) != self.data.dtype:
            dtype = as_dtype(dtype)
            if self.requires_grad and dtype.kind == "f":
                out = ops_extra.Cast.apply(self, dtype=dtype)
            else:
                out = self.from_op(self.data.astype(dtype), None)
        return out.clone() if copy and out is self else out

    def cpu(self) -> Any:
        return self

    def cuda(self, device: Any = None, non_blocking: bool = False) -> Any:
        check_device(device if isinstance(device, (str, Device)) else "cuda", "cuda")

    def type_as(self, other: Any) -> Any:
        return self.to(other.data.dtype)

    def type(self, dtype: Any = None) -> Any:
        """The dtype's name without an argument; else `to(dtype)`."""
        return self.data.dtype.name if dtype is None else self.to(dtype)

    # Defined last: these names shadow the builtins in the rest of the class body.
    def float(self) -> Any:
        return self.to(np.float32)

    def double(self) -> Any:
        return self.to(np.float64)

    def half(self) -> Any:
        return self.to(np.float16)

    def long(self) -> Any:
        return self.to(np.int64)

    def int(self) -> Any:
        return self.to(np.int32)

    def short(self) -> Any:
        return self.to(np.int16)

    def byte(self) -> Any:
        return self.to(np.uint8)

    def bool(self) -> Any:
        return self.to(np.bool_)

