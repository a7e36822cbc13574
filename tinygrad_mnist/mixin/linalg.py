"""Matrix products: `@`, `matmul`, `mm`, `dot`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import ops
from .base import ArrayLike
from .elementwise import ElementwiseMixin
from .movement import MovementMixin

if TYPE_CHECKING:  # for the return types only: tensor.py imports this module
    from ..tensor import Tensor


class LinalgMixin(ElementwiseMixin, MovementMixin):
    """Matrix products (see the module docstring)."""

    __slots__ = ()

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return ops.MatMul.apply(*self._pair(other))

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return ops.MatMul.apply(*self._pair(other, reverse=True))

    def matmul(self, other: ArrayLike) -> Tensor:
        return self @ other

    def mm(self, other: Any) -> Tensor:
        return self @ other

    def dot(self, other: Any) -> Tensor:
        return self @ other
