"""What every Tensor mixin builds on: `TensorBase` (the attributes a Tensor has) and the
helpers the mixins share for reading arguments (`normalize_axis`, `as_shape`, `data_of`,
...), with PyTorch's `Size` and the `(values, indices)` pair.

The mixins split `Tensor`'s methods by concern, as tinygrad's do: `dtype` (conversions
and PyTorch's type promotion), `elementwise`, `movement`, `reduce`, `linalg`,
`interop` (Python and NumPy), `inplace`. Each imports only this module and the engine
below it (`ops`, `autograd`); a mixin that calls another's methods inherits from it, so
the dependencies are visible in the class line and run one way.
"""
from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ..autograd import Function

if TYPE_CHECKING:  # for the return types only: tensor.py imports this module
    from ..tensor import Tensor

Axis = Union[None, int, Sequence[int]]
ArrayLike = Union["Tensor", np.ndarray, numbers.Number, Sequence]


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
    values: Tensor
    indices: Tensor


def data_of(x: Any) -> Any:
    """A Tensor's array; anything else as it is."""
    return x.data if isinstance(x, TensorBase) else x


def arrays_of(obj: Any) -> Any:
    """Every Tensor inside lists, tuples and dicts replaced by its array."""
    if isinstance(obj, TensorBase):
        return obj.data
    if isinstance(obj, (list, tuple)):
        return type(obj)(arrays_of(v) for v in obj)
    if isinstance(obj, dict):
        return {k: arrays_of(v) for k, v in obj.items()}
    return obj


def bool_condition(condition: Any, name: str) -> np.ndarray:
    """A boolean array from a Tensor, an array or a Python bool (as PyTorch's conditions
    and masks, which must be bool)."""
    data = np.asarray(data_of(condition))
    if data.dtype != np.bool_:
        raise TypeError(f"{name}: the condition must be a bool tensor, got {data.dtype} "
                        f"(compare first, e.g. x > 0)")
    return data


def refuse_bool(op: str, x: Any) -> None:
    """A TypeError naming `op` for a bool tensor, which PyTorch refuses for `op` too."""
    if x.data.dtype.kind == "b":
        raise TypeError(f"{op}: bool tensors are not supported (as in PyTorch); convert "
                        f"first, e.g. x.long() or x.float()")


def require_floating(op: str, x: Any) -> None:
    """A TypeError naming `op` unless the tensor x is floating-point (PyTorch refuses
    integer and bool inputs to `op` too)."""
    if x.data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point tensor, got {x.data.dtype} (as in "
                        f"PyTorch); convert first, e.g. x.float()")


class TensorBase:
    """The attributes every Tensor has; `Tensor` (tensor.py) provides `from_op`."""

    __slots__ = ()
    data: np.ndarray
    requires_grad: bool
    _ctx: Optional[Function]
    _grad: Any

    @staticmethod
    def from_op(data: Any, ctx: Optional[Function]) -> Tensor:
        raise NotImplementedError  # provided by Tensor
