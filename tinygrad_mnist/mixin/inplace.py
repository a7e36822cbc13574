"""In-place updates (`add_`, `copy_`, `fill_`, `x[i] = v`, `+=`, ...): allowed on tensors
outside a graph only, as PyTorch allows them on leaves only inside `no_grad`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ..autograd import is_grad_enabled
from ..random import generator_or_default
from .base import TensorBase, arrays_of, data_of

if TYPE_CHECKING:  # for the return types only: tensor.py imports this module
    from ..tensor import Tensor


class InPlaceMixin(TensorBase):
    """In-place updates (see the module docstring)."""

    __slots__ = ()

    def _writable(self, op: str, *others: Any) -> np.ndarray:
        """The array an in-place op may write into; PyTorch's error for a leaf that
        requires grad (outside `no_grad`), and an error for any tensor in a graph."""
        if is_grad_enabled() and (self.requires_grad or any(
                isinstance(o, TensorBase) and o.requires_grad for o in others)):
            if self.requires_grad and self._ctx is None:
                raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used "
                                   f"in an in-place operation; do it inside `with "
                                   f"tg.no_grad():`")
            raise RuntimeError(f"{op}: in-place operations on tensors in a graph are not "
                               f"supported; write it out of place (x = x + y)")
        return self.data

    def _update(self, op: str, ufunc: Any, value: Any) -> Tensor:
        data = self._writable(op, value)
        value = data_of(value)
        try:
            ufunc(data, value, out=data, casting="same_kind")
        except TypeError:
            raise RuntimeError(f"{op}: result type {np.result_type(data, value)} can't be "
                               f"cast to the desired output type {data.dtype}") from None
        except ValueError as e:
            raise ValueError(f"{op}: cannot write shape {np.shape(value)} into a tensor of "
                             f"shape {data.shape}: {e}") from None
        return self

    def add_(self, other: Any, *, alpha: float = 1) -> Tensor:
        return self._update("add_", np.add, other if alpha == 1 else data_of(other) * alpha)

    def sub_(self, other: Any, *, alpha: float = 1) -> Tensor:
        return self._update("sub_", np.subtract,
                            other if alpha == 1 else data_of(other) * alpha)

    def mul_(self, other: Any) -> Tensor:
        return self._update("mul_", np.multiply, other)

    def div_(self, other: Any) -> Tensor:
        return self._update("div_", np.true_divide, other)

    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_

    def copy_(self, src: Any) -> Tensor:
        """Copy `src` (broadcast, converted to this dtype) into this tensor."""
        np.copyto(self._writable("copy_", src), data_of(src), casting="unsafe")
        return self

    def fill_(self, value: Any) -> Tensor:
        self._writable("fill_").fill(data_of(value))
        return self

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def clamp_(self, min: Optional[float] = None, max: Optional[float] = None) -> Tensor:
        data = self._writable("clamp_")
        np.clip(data, min, max, out=data)
        return self

    def uniform_(self, low: float = 0.0, high: float = 1.0, *,
                 generator: Optional[np.random.Generator] = None) -> Tensor:
        rng = generator_or_default(generator)
        return self.copy_(rng.uniform(low, high, self.data.shape))

    def normal_(self, mean: float = 0.0, std: float = 1.0, *,
                generator: Optional[np.random.Generator] = None) -> Tensor:
        rng = generator_or_default(generator)
        return self.copy_(rng.normal(mean, std, self.data.shape))

    def __setitem__(self, index: Any, value: Any) -> None:
        data = self._writable("setitem", value)
        data[arrays_of(index)] = data_of(value)
