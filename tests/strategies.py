"""Hypothesis strategies shared by the gradient-check and property tests."""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence, Tuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


class Case(NamedTuple):
    """A function of Tensors and the float64 arrays to call it with."""
    fn: Callable
    inputs: Tuple[np.ndarray, ...]


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1,
           max_side: int = 4) -> st.SearchStrategy:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def arrays(shape, low: float = -3.0, high: float = 3.0) -> st.SearchStrategy:
    """Finite float64 arrays with elements in [low, high]."""
    return hnp.arrays(np.float64, shape, elements=st.floats(
        low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False))


def away_from(shape, kinks: Sequence[float], margin: float = 0.05,
              low: float = -3.0, high: float = 3.0) -> st.SearchStrategy:
    """Arrays whose elements keep at least `margin` from every kink point, so a
    central difference never straddles a point where the derivative jumps."""
    def far(v: float) -> bool:
        return all(abs(v - k) >= margin for k in kinks)
    return hnp.arrays(np.float64, shape, elements=st.floats(
        low, high, allow_nan=False, allow_infinity=False).filter(far))


def distinct(shape, spacing: float = 0.1) -> st.SearchStrategy:
    """Arrays of distinct values at least `spacing` apart (no ties for max)."""
    size = int(np.prod(shape))
    return st.permutations(range(-size, size)).map(
        lambda p: (np.array(p[:size], dtype=np.float64) * spacing).reshape(shape))


def broadcastable_pair(max_dims: int = 3, max_side: int = 4) -> st.SearchStrategy:
    return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=max_dims,
                                             max_side=max_side).map(lambda s: s.input_shapes)


def axes(ndim: int) -> st.SearchStrategy:
    """None, one axis (possibly negative), or a tuple of distinct axes."""
    if ndim == 0:
        return st.none()
    single = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                       unique=True).map(tuple)
    return st.one_of(st.none(), single, several)
