"""Movement Tensor methods: the same elements reshaped (`reshape`, `flatten`, `squeeze`,
...), reordered (`permute`, `transpose`), repeated (`expand`, `repeat`), picked
(`[]`, `narrow`, `gather`, `index_select`) or cut (`split`, `chunk`).
"""
from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, Tuple

import numpy as np

from .. import ops
from .base import Axis, TensorBase, as_shape, data_of, normalize_axis

if TYPE_CHECKING:  # for the return types only: tensor.py imports this module
    from ..tensor import Tensor


def _is_basic_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer))
               and not isinstance(i, bool) for i in items)


class MovementMixin(TensorBase):
    """Movement methods (see the module docstring)."""

    __slots__ = ()

    def reshape(self, *shape: Any) -> Tensor:
        return ops.Reshape.apply(self, shape=as_shape(shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        start, end = (normalize_axis(d, self.ndim, "flatten")[0]
                      for d in (start_dim, end_dim))
        flat = int(np.prod(self.shape[start:end + 1]))  # not -1: an empty tensor flattens too
        return self.reshape(self.shape[:start] + (flat,) + self.shape[end + 1:])

    def permute(self, *dims: Any) -> Tensor:
        dims = as_shape(dims)
        if sorted(normalize_axis(d, self.ndim, "permute")[0] for d in dims) != list(
                range(self.ndim)):
            raise ValueError(f"permute: {dims} is not a permutation of the "
                             f"{self.ndim} axes of shape {self.shape}")
        return ops.Permute.apply(self, axes=tuple(d % self.ndim for d in dims))

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two axes (PyTorch's `transpose`); `.T` reverses all of them."""
        axes = list(range(self.ndim))
        a, b = (normalize_axis(d, self.ndim, "transpose")[0] for d in (dim0, dim1))
        axes[a], axes[b] = axes[b], axes[a]
        return ops.Permute.apply(self, axes=tuple(axes))

    @property
    def T(self) -> Tensor:
        return ops.Permute.apply(self, axes=tuple(reversed(range(self.ndim))))

    def __getitem__(self, index: Any) -> Tensor:
        if isinstance(index, TensorBase):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, TensorBase) else i for i in index)
        elif isinstance(index, list):
            index = np.asarray(index)
        try:
            self.data[index]
        except IndexError as e:
            raise IndexError(f"getitem: index {index!r} does not fit shape {self.shape}: "
                             f"{e}") from None
        return ops.GetItem.apply(self, index=index, basic=_is_basic_index(index))

    def view_as(self, other: Any) -> Tensor:
        return self.reshape(other.shape)

    reshape_as = view_as

    def unsqueeze(self, dim: int) -> Tensor:
        """A new dimension of size 1 at `dim` (in [-ndim - 1, ndim])."""
        d = normalize_axis(dim, self.data.ndim + 1, "unsqueeze")[0]
        shape = self.data.shape
        return self.reshape(shape[:d] + (1,) + shape[d:])

    def squeeze(self, dim: Axis = None) -> Tensor:
        """Drop dimensions of size 1: all of them, or those in `dim` that have size 1."""
        shape = self.data.shape
        axes = range(len(shape)) if dim is None else normalize_axis(dim, len(shape),
                                                                     "squeeze")
        return self.reshape(tuple(n for i, n in enumerate(shape) if n != 1 or i not in axes))

    def expand(self, *sizes: Any) -> Tensor:
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
        return ops.Expand.apply(self, shape=target)

    def expand_as(self, other: Any) -> Tensor:
        return self.expand(other.shape)

    def repeat(self, *sizes: Any) -> Tensor:
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

    def narrow(self, dim: int, start: int, length: int) -> Tensor:
        """Elements start .. start + length - 1 along `dim`."""
        d = normalize_axis(dim, self.data.ndim, "narrow")[0]
        n = self.data.shape[d]
        start = start + n if start < 0 else start
        if not (0 <= start <= n and 0 <= length <= n - start):
            raise ValueError(f"narrow: start {start} and length {length} do not fit "
                             f"dimension {dim} of size {n}")
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def split(self, split_size_or_sections: Any, dim: int = 0) -> Tuple[Tensor, ...]:
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

    def chunk(self, chunks: int, dim: int = 0) -> Tuple[Tensor, ...]:
        """At most `chunks` pieces of ceil(n / chunks) along `dim` (PyTorch's rule)."""
        if chunks <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        n = self.data.shape[normalize_axis(dim, self.data.ndim, "chunk")[0]]
        return self.split(max(-(-n // chunks), 1), dim)

    def index_select(self, dim: int, index: Any) -> Tensor:
        """The entries at the integer positions `index` (1-D) along `dim`."""
        index = np.asarray(data_of(index))
        if index.ndim > 1 or index.dtype.kind not in "iu":
            raise ValueError(f"index_select: index must be a 1-D integer tensor, got "
                             f"{index.dtype} of shape {index.shape}")
        d = normalize_axis(dim, self.data.ndim, "index_select")[0]
        return self[(slice(None),) * d + (index.reshape(-1),)]

    def gather(self, dim: int, index: Any) -> Tensor:
        """out[i][j] = self[index[i][j]][j] for dim 0 (and so on): values picked along
        `dim` by an integer `index` of this tensor's number of dimensions."""
        index = np.asarray(data_of(index))
        ndim = self.data.ndim
        d = normalize_axis(dim, ndim, "gather")[0]
        if index.ndim != ndim or index.dtype.kind not in "iu":
            raise ValueError(f"gather: index must be an integer tensor with {ndim} "
                             f"dimensions, got {index.dtype} of shape {index.shape}")
        grid = [index if i == d else
                np.arange(n).reshape([n if j == i else 1 for j in range(ndim)])
                for i, n in enumerate(index.shape)]
        return self[tuple(grid)]

    def ravel(self) -> Tensor:
        return self.reshape(-1)

    def contiguous(self) -> Tensor:
        return self

    def t(self) -> Tensor:
        """The transpose of a matrix (a 0-d or 1-d tensor is returned as it is)."""
        if self.data.ndim > 2:
            raise ValueError(f"t: expects a tensor with at most 2 dimensions, got "
                             f"{self.data.ndim}; use transpose(dim0, dim1)")
        return self.transpose(0, 1) if self.data.ndim == 2 else self
