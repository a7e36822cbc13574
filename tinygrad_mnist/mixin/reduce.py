"""Reductions and scans along dimensions: `sum`, `mean`, `max` (values and indices),
`argmax`, `prod`, `cumsum`, `var`, `norm`, `logsumexp`, `softmax`, `sort`, `topk`, ...
"""
from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Optional, Tuple, Union

import numpy as np

from .. import ops
from ..dtypes import int64
from .base import (Axis, TensorBase, ValuesIndices, normalize_axis, refuse_bool,
                   require_floating)
from .elementwise import ElementwiseMixin
from .movement import MovementMixin

if TYPE_CHECKING:  # for the return types only: tensor.py imports this module
    from ..tensor import Tensor


def _pick(axis: Axis, dim: Axis, keepdims: bool, keepdim: Optional[bool]):
    """Accept PyTorch's `dim`/`keepdim` spellings beside NumPy's `axis`/`keepdims`."""
    return (dim if axis is None else axis), (keepdims if keepdim is None else keepdim)


class ReduceMixin(ElementwiseMixin, MovementMixin):
    """Reductions (see the module docstring)."""

    __slots__ = ()

    def sum(self, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None,
            keepdim: Optional[bool] = None) -> Tensor:
        axis, keepdims = _pick(axis, dim, keepdims, keepdim)
        return ops.Sum.apply(self, axis=normalize_axis(axis, self.ndim, "sum"),
                             keepdims=keepdims)

    def mean(self, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None,
             keepdim: Optional[bool] = None) -> Tensor:
        axis, keepdims = _pick(axis, dim, keepdims, keepdim)
        require_floating("mean", self)
        axes = normalize_axis(axis, self.ndim, "mean")
        count = self.data.size if axes is None else int(np.prod([self.shape[a] for a in axes]))
        return self.sum(axes, keepdims) * (1.0 / count if count else float("nan"))  # as PyTorch

    def all(self, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
        return self.from_op(np.asarray(np.all(self.data, axis=dim, keepdims=keepdim)), None)

    def any(self, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
        return self.from_op(np.asarray(np.any(self.data, axis=dim, keepdims=keepdim)), None)

    def amax(self, dim: Axis = (), keepdim: bool = False) -> Tensor:
        """Maximum values over `dim` (all dimensions by default); the gradient is
        shared equally by ties."""
        return self._largest("amax", dim, keepdim)

    def amin(self, dim: Axis = (), keepdim: bool = False) -> Tensor:
        return self._smallest("amin", dim, keepdim)

    def _smallest(self, op: str, dim: Axis, keepdim: bool) -> Tensor:
        """As `_largest`, for the minimum: -max(-x) for floats (exact, and differentiable
        by `Max`); integers and booleans, which have no gradient (and whose negation
        wraps around), take NumPy's minimum."""
        if self.data.dtype.kind == "f":
            return -((-self)._largest(op, dim, keepdim))
        axes = None if dim in ((), None) else normalize_axis(dim, self.data.ndim, op)
        self._check_reducible(op, axes)
        return self.from_op(np.asarray(np.min(self.data, axis=axes, keepdims=keepdim)), None)

    def _largest(self, op: str, dim: Axis, keepdim: bool) -> Tensor:
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

    def max(self, dim: Any = None, keepdim: bool = False, *, axis: Axis = None,
            keepdims: Optional[bool] = None) -> Union[Tensor, ValuesIndices]:
        """`max()`: the largest value. `max(dim)`: `(values, indices)` along `dim`, the
        gradient going to the first maximum (PyTorch's). `max(other)`: the elementwise
        maximum. `axis=` (an int or a tuple, NumPy's spelling): the values only."""
        if isinstance(dim, TensorBase):
            return self.maximum(dim)
        if axis is not None or isinstance(dim, (tuple, list)):
            return self.amax(dim if axis is None else axis,
                             keepdim if keepdims is None else keepdims)
        if dim is None:
            return self._largest("max", (), False)
        return self._extremum("max", np.argmax, dim, keepdim)

    def min(self, dim: Any = None, keepdim: bool = False, *, axis: Axis = None,
            keepdims: Optional[bool] = None) -> Union[Tensor, ValuesIndices]:
        """As `max`, for the smallest values."""
        if isinstance(dim, TensorBase):
            return self.minimum(dim)
        if axis is not None or isinstance(dim, (tuple, list)):
            return self.amin(dim if axis is None else axis,
                             keepdim if keepdims is None else keepdims)
        if dim is None:
            return self._smallest("min", (), False)
        return self._extremum("min", np.argmin, dim, keepdim)

    def _extremum(self, op: str, arg: Any, dim: int, keepdim: bool) -> ValuesIndices:
        d = normalize_axis(dim, self.data.ndim, op)[0]
        self._check_reducible(op, (d,))
        index = np.expand_dims(arg(self.data, axis=d), d)
        values = self.gather(d, index)
        if not keepdim:
            values, index = values.squeeze(d), np.squeeze(index, d)
        return ValuesIndices(values, self.from_op(index.astype(np.int64), None))

    def argmax(self, dim: Optional[int] = None, keepdim: bool = False, *,
               axis: Optional[int] = None) -> Tensor:
        """Index of the maximum along `dim`, or in the flattened tensor (int64, no gradient)."""
        return self._arg(np.argmax, "argmax", axis if dim is None else dim, keepdim)

    def argmin(self, dim: Optional[int] = None, keepdim: bool = False, *,
               axis: Optional[int] = None) -> Tensor:
        return self._arg(np.argmin, "argmin", axis if dim is None else dim, keepdim)

    def _arg(self, fn: Any, op: str, dim: Optional[int], keepdim: bool) -> Tensor:
        refuse_bool(op, self)
        d = None if dim is None else normalize_axis(dim, self.data.ndim, op)[0]
        self._check_reducible(op, None if d is None else (d,))
        if d is None:
            out = np.asarray(fn(self.data))
            out = out.reshape((1,) * self.data.ndim) if keepdim else out
        else:
            out = fn(self.data, axis=d, keepdims=keepdim)
        return self.from_op(out.astype(np.int64), None)

    def cumsum(self, dim: int) -> Tensor:
        """Running sums along `dim` (integers and booleans are summed as int64)."""
        (axis,) = normalize_axis(dim, self.data.ndim, "cumsum")
        source = self if self.data.dtype.kind == "f" else self.to(int64)
        if self.data.ndim == 0:
            return ops.Cumsum.apply(source.reshape(1), axis=0).reshape(())
        return ops.Cumsum.apply(source, axis=axis)

    def prod(self, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
        """The product over `dim`, or of all elements (integers and booleans as int64);
        the gradient is exact where some of the values are zero."""
        source = self if self.data.dtype.kind == "f" else self.to(int64)
        (axis,) = (0,) if dim is None else normalize_axis(dim, self.data.ndim, "prod")
        if dim is None or self.data.ndim == 0:
            out = ops.Prod.apply(source.reshape(-1), axis=0)
            return out.reshape(self.shape if keepdim else ())
        out = ops.Prod.apply(source, axis=axis)
        return out if keepdim else out.squeeze(axis)

    def var(self, dim: Axis = None, unbiased: Optional[bool] = None, keepdim: bool = False,
            *, correction: Optional[float] = None) -> Tensor:
        """Σ(x - mean)² / (N - correction) over `dim`; correction 1 (Bessel's) by
        default, 0 with `unbiased=False`."""
        require_floating("var", self)
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        axes = normalize_axis(dim, self.data.ndim, "var")
        count = self.data.size if axes is None else int(np.prod([self.data.shape[a]
                                                                 for a in axes]))
        diff = self - self.mean(axes, keepdims=True)
        return (diff * diff).sum(axes, keepdim) / max(count - correction, 0)

    def std(self, dim: Axis = None, unbiased: Optional[bool] = None, keepdim: bool = False,
            *, correction: Optional[float] = None) -> Tensor:
        """√var (see `var`)."""
        require_floating("std", self)
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def norm(self, p: Any = "fro", dim: Axis = None, keepdim: bool = False) -> Tensor:
        """The p-norm over `dim` (all elements by default): (Σ |x|^p)^(1/p) for a number
        p > 0 (2 or "fro" the default), or the largest |x| for p = inf."""
        require_floating("norm", self)
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

    def _power_or_zero(self, exponent: float) -> Tensor:
        """self ** exponent, but 0 with a zero gradient where self is 0: a power below 1
        has an infinite slope at 0, and PyTorch's norms answer 0 there, not 0·∞ = NaN."""
        nonzero = np.asarray(self.data != 0)                      # NaN stays NaN
        base = self.where(nonzero, 1.0)
        return (base.sqrt() if exponent == 0.5 else base ** exponent).where(nonzero, 0.0)

    def logsumexp(self, dim: Any, keepdim: bool = False) -> Tensor:
        """log Σ exp(x) over `dim`, stable: the maximum m is taken out first,
        log Σ exp(x - m) + m (a constant m: the gradient, softmax, does not depend on it)."""
        if self.data.dtype.kind != "f":                    # integers: in float32
            return self._floating().logsumexp(dim, keepdim)
        axes = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
        m = np.max(self.data, axis=axes, keepdims=True) if self.data.size else \
            np.zeros([1 if a in axes else n for a, n in enumerate(self.shape)], self.dtype)
        m = np.where(np.isfinite(m), m, 0).astype(self.dtype)   # all -inf (or inf): no shift
        with np.errstate(divide="ignore"):                 # an all -inf row: -inf, quietly
            out = (self - m).exp().sum(axes, keepdims=True).log() + m
        return out if keepdim else out.squeeze(axes)

    def log_softmax(self, axis: int = -1, *, dim: Optional[int] = None) -> Tensor:
        axis = axis if dim is None else dim
        require_floating("log_softmax", self)
        return ops.LogSoftmax.apply(self, axis=normalize_axis(axis, self.ndim,
                                                               "log_softmax")[0])

    def softmax(self, axis: int = -1, *, dim: Optional[int] = None) -> Tensor:
        """exp(log_softmax): composed, and stable for any logits."""
        return self.log_softmax(axis, dim=dim).exp()

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False
             ) -> ValuesIndices:
        """`(values, indices)` sorted along `dim`; ties keep their order (as PyTorch's
        stable=True). The values are gathered, so their gradient flows back."""
        d = normalize_axis(dim, self.data.ndim, "sort")[0] if self.data.ndim else 0
        if self.data.ndim == 0:
            return ValuesIndices(self.clone(), self.from_op(np.zeros((), np.int64), None))
        if descending:
            # The ascending order of the values reversed, reversed: ties keep their order,
            # NaN comes first (as in PyTorch), and no value is negated (the smallest int
            # has no -x).
            reversed_order = np.argsort(np.flip(self.data, d), axis=d, kind="stable")
            order = self.data.shape[d] - 1 - np.flip(reversed_order, d)
        else:
            order = np.argsort(self.data, axis=d, kind="stable")
        return ValuesIndices(self.gather(d, order), self.from_op(order.astype(np.int64), None))

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True
             ) -> ValuesIndices:
        """The `k` largest (smallest with largest=False) values along `dim` and their
        indices, largest first; ties keep their order."""
        refuse_bool("topk", self)
        d = normalize_axis(dim, max(self.data.ndim, 1), "topk")[0]
        n = self.data.shape[d] if self.data.ndim else 1
        if not 0 <= k <= n:
            raise ValueError(f"topk: k must be in 0..{n} (the size of dim {dim}), got {k}")
        values, order = self.sort(d, descending=largest)
        keep = tuple(slice(0, k) if i == d else slice(None) for i in range(self.data.ndim))
        return ValuesIndices(values[keep], order[keep])
