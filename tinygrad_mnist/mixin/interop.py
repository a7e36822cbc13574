"""A Tensor as Python and NumPy see it: its size and dimensions, `item`, `tolist`,
`numpy`, `len`, iteration, `repr`, and NumPy's protocols (`np.mean(t)` works on the
array, `array + tensor` gives a Tensor).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Optional, Union

import numpy as np

from ..autograd import is_recording_backward
from ..device import CPU, device as Device
from ..dtypes import float32, int64
from .base import Size, TensorBase, arrays_of, data_of, normalize_axis
from .movement import MovementMixin

if TYPE_CHECKING:  # for the return types only: tensor.py imports this module
    from ..tensor import Tensor


# ufunc -> (the Tensor operator it is, the one for a Tensor on its right)
_OPERATORS = {np.add: ("__add__", "__radd__"), np.subtract: ("__sub__", "__rsub__"),
              np.multiply: ("__mul__", "__rmul__"), np.divide: ("__truediv__", "__rtruediv__"),
              np.matmul: ("__matmul__", "__rmatmul__"),
              np.remainder: ("__mod__", "__rmod__"), np.equal: ("__eq__", "__eq__"),
              np.not_equal: ("__ne__", "__ne__"), np.less: ("__lt__", "__gt__"),
              np.less_equal: ("__le__", "__ge__"), np.greater: ("__gt__", "__lt__"),
              np.greater_equal: ("__ge__", "__le__"), np.bitwise_and: ("__and__", "__and__"),
              np.bitwise_or: ("__or__", "__or__"), np.bitwise_xor: ("__xor__", "__xor__")}


def _not_recorded(func: Any, args: Any, kwargs: Any) -> None:
    """Inside a recorded backward (`create_graph=True`) a NumPy function on a Tensor
    that requires grad would compute on its array and silently drop the graph: an
    error instead (a backward must use operators and `Function.call`)."""
    if is_recording_backward() and any(
            isinstance(a, TensorBase) and a.requires_grad
            for a in list(args) + list(kwargs.values())):
        raise TypeError(f"{getattr(func, '__name__', func)} on a Tensor that requires "
                        f"grad inside a recorded backward would drop the graph; write the "
                        f"backward with operators and Function.call")


class InteropMixin(MovementMixin):
    """Python and NumPy interop (see the module docstring)."""

    __slots__ = ()

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
        return bool(np.any(self.data == data_of(element)))

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
        """NumPy functions see a Tensor as its array: `np.mean(t)` is `np.mean(t.numpy())`
        (outside a recorded backward: see `_not_recorded`)."""
        _not_recorded(func, args, kwargs)
        return func(*arrays_of(args), **arrays_of(kwargs))

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """`array + tensor` (and - * / @ and comparisons) gives what the tensor's operator
        gives: a Tensor, in the graph. Every other ufunc call, and every one with `out=`
        (so `array -= tensor` updates the array in place), computes on the arrays."""
        names = _OPERATORS.get(ufunc)
        if names is not None and method == "__call__" and not kwargs and len(inputs) == 2:
            a, b = inputs
            if isinstance(a, TensorBase):
                return getattr(a, names[0])(b)
            return getattr(b, names[1])(a)
        _not_recorded(ufunc, inputs, kwargs)
        return getattr(ufunc, method)(*arrays_of(inputs), **arrays_of(kwargs))

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
