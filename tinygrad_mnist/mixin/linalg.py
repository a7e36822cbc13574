"""Matrix products (`@`, `matmul`, `mm`, `bmm`, `dot`, `outer`) and the triangles of a
matrix (`tril`, `triu`). The matrix products refuse bool tensors, as PyTorch does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import ops
from .base import ArrayLike, refuse_bool
from .elementwise import ElementwiseMixin
from .movement import MovementMixin

if TYPE_CHECKING:  # for the return types only: tensor.py imports this module
    from ..tensor import Tensor


class LinalgMixin(ElementwiseMixin, MovementMixin):
    """Matrix products (see the module docstring)."""

    __slots__ = ()

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return self._product("matmul", other, False)

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return self._product("matmul", other, True)

    def _product(self, op: str, other: ArrayLike, reverse: bool) -> Tensor:
        a, b = self._pair(other, reverse=reverse)
        refuse_bool(op, a)
        return ops.MatMul.apply(a, b)

    def matmul(self, other: ArrayLike) -> Tensor:
        return self._product("matmul", other, False)

    def mm(self, other: ArrayLike) -> Tensor:
        """The product of two matrices (2-D tensors)."""
        self._check_ndim("mm", other, 2, "(N, M) and (M, P)")
        return self._product("mm", other, False)

    def bmm(self, other: ArrayLike) -> Tensor:
        """Batched matrix products of (B, N, M) and (B, M, P) tensors."""
        self._check_ndim("bmm", other, 3, "(B, N, M) and (B, M, P)")
        if self.data.shape[0] != other.shape[0]:
            raise ValueError(f"bmm: expected (B, N, M) and (B, M, P), got {self.data.shape} "
                             f"and {other.shape}")
        return self._product("bmm", other, False)

    def dot(self, other: ArrayLike) -> Tensor:
        """Σ self[i]·other[i] of two 1-D tensors."""
        self._check_ndim("dot", other, 1, "two 1-D tensors")
        return self._product("dot", other, False)

    def outer(self, other: ArrayLike) -> Tensor:
        """out[i, j] = self[i]·other[j] of two 1-D tensors."""
        self._check_ndim("outer", other, 1, "two 1-D tensors")
        return self.reshape(-1, 1) * other.reshape(1, -1)

    def _check_ndim(self, op: str, other: Any, ndim: int, expected: str) -> None:
        shape = getattr(other, "shape", None)
        if self.data.ndim != ndim or shape is None or len(shape) != ndim:
            raise ValueError(f"{op}: expected {expected}, got {self.data.shape} and "
                             f"{shape if shape is not None else type(other).__name__}")

    def tril(self, diagonal: int = 0) -> Tensor:
        """The lower triangle (j <= i + diagonal) of the last two dimensions, zeros above."""
        return self.masked_fill(~np.tril(np.ones(self.data.shape[-2:], bool), diagonal), 0)

    def triu(self, diagonal: int = 0) -> Tensor:
        """The upper triangle (j >= i + diagonal) of the last two dimensions, zeros below."""
        return self.masked_fill(~np.triu(np.ones(self.data.shape[-2:], bool), diagonal), 0)
