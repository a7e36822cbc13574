"""Movement primitives: the same elements, rearranged (`Reshape`, `Permute`, `Expand`),
picked (`GetItem`) or joined (`Concatenate`). The local gradient moves the upstream
gradient back to where each element came from (for `GetItem`, `IndexAdd`: a Function
too, so that a recorded backward differentiates it).
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from ..autograd import Function


class Reshape(Function):
    def forward(self, x, shape: Tuple[int, ...]):
        self.save_for_backward(x.shape)
        try:
            return x.reshape(shape)                        # d/dx = g reshaped back
        except ValueError:
            raise ValueError(f"reshape: cannot reshape shape {x.shape} "
                             f"({x.size} elements) into {tuple(shape)}") from None

    def backward(self, g):
        return g.reshape(self.saved[0])


class Permute(Function):
    def forward(self, x, axes: Tuple[int, ...]):
        self.save_for_backward(np.argsort(axes))
        return np.transpose(x, axes)                       # d/dx = g with axes undone

    def backward(self, g):
        return Permute.call(g, axes=tuple(self.saved[0]))


class GetItem(Function):
    def forward(self, x, index: Any, basic: bool):
        self.save_for_backward(x.shape, x.dtype, index, basic)
        return x[index]                                    # d/dx = g scattered back

    def backward(self, g):
        shape, dtype, index, basic = self.saved
        return IndexAdd.call(g, shape=shape, index=index, basic=basic)


class IndexAdd(Function):
    """GetItem's gradient: zeros of `shape` with g added at `index` (the adjoint of
    picking, so its own gradient picks again)."""

    def forward(self, g, *, shape: Tuple[int, ...], index: Any, basic: bool):
        self.save_for_backward(index, basic)
        out = np.zeros(shape, dtype=g.dtype)
        if basic:
            out[index] = g
        else:
            np.add.at(out, index, g)                       # repeated indices accumulate
        return out                                         # d/dg = gg picked at index

    def backward(self, gg):
        index, basic = self.saved
        return GetItem.call(gg, index=index, basic=basic)


class Concatenate(Function):
    def forward(self, *arrays, axis: int):
        try:
            out = np.concatenate(arrays, axis=axis)        # d/dxᵢ = gᵢ's slice of g
        except ValueError as e:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"concatenate: shapes {shapes} do not fit along axis "
                             f"{axis}: {e}") from None
        self.save_for_backward(np.cumsum([a.shape[axis] for a in arrays])[:-1], axis)
        return out

    def backward(self, g):
        splits, axis = self.saved
        bounds = zip([0, *splits], [*splits, None])
        return tuple(g[(slice(None),) * axis + (slice(start, stop),)] for start, stop in bounds)


class Expand(Function):
    def forward(self, x, shape: Tuple[int, ...]):
        return np.broadcast_to(x, shape)                   # a read-only view; d/dx = 1,
                                                           # summed over the new axes
    def backward(self, g):
        return g                                           # (the engine's unbroadcast)
