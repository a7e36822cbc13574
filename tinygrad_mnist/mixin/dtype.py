"""Conversions between dtypes (`to`, `float`, `long`, ...) and PyTorch's type promotion
of the operands of one op (`_pair`): every op that takes two operands, or makes an
integer tensor float, gets its dtype rule here and only here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn, Sequence, Tuple, Union

import numpy as np

from .. import ops
from ..device import check_device, device as Device
from ..dtypes import as_dtype, float32, int64
from .base import TensorBase, as_shape

if TYPE_CHECKING:  # for the return types only: tensor.py imports this module
    from ..tensor import Tensor


_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}  # PyTorch's type categories: bool < int < float


class DTypeMixin(TensorBase):
    """dtype conversions and type promotion (see the module docstring)."""

    __slots__ = ()

    def _constant(self, other: Any) -> Tensor:
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
        b = other if isinstance(other, TensorBase) else self._constant(other)
        kind_a, kind_b = a.data.dtype.kind, b.data.dtype.kind
        if kind_a != kind_b and "f" in (kind_a, kind_b):
            a, b = (a.to(b.data.dtype), b) if kind_b == "f" else (a, b.to(a.data.dtype))
        elif true_divide and kind_a != "f":
            a, b = a.to(float32), b.to(float32)
        return (b, a) if reverse else (a, b)

    def _floating(self) -> Tensor:
        """This tensor, made float32 if it holds integers or booleans."""
        return self if self.data.dtype.kind == "f" else self.to(float32)

    def clone(self) -> Tensor:
        """A copy of the data; gradients flow back to this tensor."""
        if self.requires_grad:
            return ops.Cast.apply(self, dtype=self.data.dtype)
        return self.from_op(self.data.copy(), None)

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def new_full(self, size: Sequence[int], fill_value: Any, *, dtype: Any = None) -> Tensor:
        dtype = self.data.dtype if dtype is None else as_dtype(dtype)
        return self.from_op(np.full(as_shape((size,)), fill_value, dtype), None)

    def new_zeros(self, *size: Any, dtype: Any = None) -> Tensor:
        return self.new_full(as_shape(size), 0, dtype=dtype)

    def new_ones(self, *size: Any, dtype: Any = None) -> Tensor:
        return self.new_full(as_shape(size), 1, dtype=dtype)

    def to(self, *args: Any, dtype: Any = None, device: Any = None,
           non_blocking: bool = False, copy: bool = False, memory_format: Any = None) -> Tensor:
        """This tensor as `dtype` and on `device`, given in any order (`to("cpu")`,
        `to(tg.float64)`, `to(other_tensor)`). The same tensor when nothing changes
        (unless `copy`); a cast is differentiable. Only the CPU exists."""
        for arg in args:
            if isinstance(arg, TensorBase):
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
                out = ops.Cast.apply(self, dtype=dtype)
            else:
                out = self.from_op(self.data.astype(dtype), None)
        return out.clone() if copy and out is self else out

    def cpu(self) -> Tensor:
        return self

    def cuda(self, device: Any = None, non_blocking: bool = False) -> NoReturn:
        check_device(device if isinstance(device, (str, Device)) else "cuda", "cuda")

    def type_as(self, other: Any) -> Tensor:
        return self.to(other.data.dtype)

    def type(self, dtype: Any = None) -> Union[str, Tensor]:
        """The dtype's name without an argument; else `to(dtype)`."""
        return self.data.dtype.name if dtype is None else self.to(dtype)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def half(self) -> Tensor:
        return self.to(np.float16)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def short(self) -> Tensor:
        return self.to(np.int16)

    def byte(self) -> Tensor:
        return self.to(np.uint8)

    def bool(self) -> Tensor:
        return self.to(np.bool_)
