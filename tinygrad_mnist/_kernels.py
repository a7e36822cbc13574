"""Speed helpers: NumPy code that exists only because it is faster than the plain
expression it replaces. Each helper returns what that expression returns (the tests in
`tests/test_kernels.py` compare them), so the code that calls one still reads as the
math; the plain expression is in the table.

| helper | replaces | measured by |
|---|---|---|
| `column_sums(a)` | `a.sum(axis=0)` of a 2-D array | `bench_kernels.py column_sums` |
| `column_sums(a)` of one row | `a.sum(axis=0)` of a (1, n) array | `bench_kernels.py column_sums_1` |
| `row_sums(a)` | `a.sum(axis=1)` of a 2-D array | `bench_kernels.py row_sums` |
| `channel_sums(x)` | `x.sum(axis=(0, 2, 3))` of (N, C, H, W) | `bench_kernels.py channel_sums` |
| `row_max(x)` | `x.max(axis=1, keepdims=True)` of short rows | `bench_kernels.py row_max` |
| `label_positions(n, c, labels)` | `a[np.arange(n), labels]` | `bench_kernels.py label_positions` |
| `matmul(a, b)` | `a @ b` when the summed axis has length 1 | `bench_kernels.py outer` |
| `scalar(v, dtype)` | a Python float `v` in `array * v` | `bench_kernels.py scalar` |
| `flat_pieces(*arrays)` | whole arrays in an update [1] | `bench_kernels.py pieces` |
| `new_array`, `stored`, `layout` | `np.empty`/`np.full`; mixed layouts | `bench_conv_ops.py` |

Each command is `python benchmarks/<script> [NAME]` with one BLAS thread
(`OPENBLAS_NUM_THREADS=1`); the measured gains, on which machine, and their history are
in `benchmarks/README.md` ("Speed helpers"). A helper that stops paying goes.

[1] No longer used by the package (it showed no gain on the current machine); kept for
`benchmarks/numpy_reference.py`, the hand-written floor the benchmarks compare against.
"""
from __future__ import annotations

import functools
from typing import Any, List, Optional, Tuple

import numpy as np


# ------------------------------------------------------------------- sums by BLAS
@functools.lru_cache(maxsize=32)
def ones(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of n ones, made once per length and dtype."""
    out = np.ones(n, dtype)
    out.flags.writeable = False
    return out


def column_sums(a: np.ndarray) -> np.ndarray:
    """a.sum(axis=0) of a 2-D array, as a vector-matrix product with ones (BLAS); of
    one row, a copy of that row (the same numbers)."""
    if a.shape[0] == 1:
        return a[0].copy()
    return ones(a.shape[0], a.dtype) @ a


def row_sums(a: np.ndarray) -> np.ndarray:
    """a.sum(axis=1) of a 2-D array, as a matrix-vector product with ones (BLAS)."""
    return a @ ones(a.shape[1], a.dtype)


def channel_sums(a: np.ndarray) -> np.ndarray:
    """Σ over every axis but 1 of (N, C, *spatial), as two matrix-vector products."""
    if a.ndim == 2:
        return column_sums(a)
    n, c = a.shape[:2]
    per_position = ones(n, a.dtype) @ a.reshape(n, -1)    # (C·spatial,)
    return per_position.reshape(c, -1) @ ones(per_position.size // c, a.dtype)


# ----------------------------------------------------------------- short rows
def row_max(x: np.ndarray, axis: int) -> np.ndarray:
    """x.max(axis=axis, keepdims=True). NumPy reduces a short row at a time slowly, so
    for the rows of a 2-D array shorter than 64 the maximum is taken over the first
    axis of a transposed copy."""
    if x.ndim == 2 and axis in (1, -1) and x.shape[1] < 64 and x.shape[0] > 1:
        return np.ascontiguousarray(x.T).max(axis=0)[:, None]
    return x.max(axis=axis, keepdims=True)


@functools.lru_cache(maxsize=32)
def _row_starts(n: int, c: int) -> np.ndarray:
    starts = np.arange(0, n * c, c)
    starts.flags.writeable = False
    return starts


def label_positions(n: int, c: int, labels: np.ndarray) -> np.ndarray:
    """Flat indices of a[i, labels[i]] in an (n, c) array: `a.ravel()[positions]` is
    `a[np.arange(n), labels]` and `a.ravel()[positions] -= v` writes back in place."""
    return _row_starts(n, c) + labels


# ------------------------------------------------------------------------- matmul
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for operands of 2 or more dimensions. When the summed axis has length 1
    the product is an outer product (the weight gradient at batch size 1), which
    np.dot (2-D) or einsum (stacks) computes faster than matmul; each element is one
    rounded product either way."""
    if a.shape[-1] == 1:
        if a.ndim == 2 and b.ndim == 2:
            return np.dot(a, b)
        return np.einsum("...ik,...kj->...ij", a, b)
    return a @ b


# ----------------------------------------------------------------- optimizer updates
@functools.lru_cache(maxsize=256)
def scalar(value: float, dtype: np.dtype) -> np.ndarray:
    """`value` as a read-only 0-d array of `dtype`. NumPy combines an array with one
    faster than with a Python float and rounds the same way (the float is cast to
    `dtype` either way)."""
    out = np.array(value, dtype=dtype)
    out.flags.writeable = False
    return out


BLOCK, BLOCKED_ABOVE = 1 << 15, 1 << 17
"""An update of a parameter of more than BLOCKED_ABOVE elements (512 KiB of float32)
is done in pieces of BLOCK elements (128 KiB), so that every pass of the update finds
its piece of each array still in the CPU's L2 cache; a smaller one, whole."""


def flat_pieces(*arrays: Optional[np.ndarray]) -> List[Tuple[Any, ...]]:
    """Matching flat pieces of BLOCK elements of same-sized arrays (a None stays None);
    the whole arrays as the one piece if they have at most BLOCKED_ABOVE elements or
    are not all contiguous (a piece must be a view). An elementwise update applied to
    every piece in turn gives bitwise what it gives applied to the whole arrays."""
    size = arrays[0].size
    if size <= BLOCKED_ABOVE or not all(a is None or a.flags.c_contiguous for a in arrays):
        return [arrays]
    flat = [a if a is None else a.reshape(-1) for a in arrays]
    return [tuple(f if f is None else f[i:i + BLOCK] for f in flat)
            for i in range(0, size, BLOCK)]


# ----------------------------------------------------------- memory layout (conv)
def layout(x: np.ndarray) -> Tuple[int, ...]:
    """The order in which x's axes are stored, outermost first."""
    return tuple(sorted(range(x.ndim), key=lambda axis: -x.strides[axis]))


def new_array(shape: Tuple[int, ...], fill: Any, dtype: Any,
              order: Tuple[int, ...]) -> np.ndarray:
    """A new array of `shape` whose axes are stored in the order `order`, filled with
    `fill` (uninitialised if None): what `np.empty_like` does, for another shape.
    Elementwise ops between arrays stored alike run NumPy's fast contiguous loops."""
    stored_shape = tuple(shape[axis] for axis in order)
    out = np.empty(stored_shape, dtype) if fill is None else np.full(stored_shape, fill, dtype)
    return out.transpose(np.argsort(order))


def stored(a: np.ndarray, order: Tuple[int, ...]) -> np.ndarray:
    """a itself if its axes are stored in the order `order`, else a copy that is: one
    transposing copy is far cheaper than elementwise ops between arrays whose layouts
    differ, which NumPy runs with short strided inner loops."""
    if a.transpose(order).flags.c_contiguous:
        return a
    return np.ascontiguousarray(a.transpose(order)).transpose(np.argsort(order))
