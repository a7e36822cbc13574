"""Making tensors, as PyTorch's factories: `zeros`, `ones`, `empty`, `full`, `eye`,
`arange`, `linspace`, `rand`, `randn`, `randint`, `randperm`, `zeros_like`, `ones_like`,
`full_like`, `rand_like`, `randn_like` (`tensor` is in tensor.py).

Shapes are given as `f(2, 3)` or `f((2, 3))`. Random ones draw from `generator=` or the
default generator that `tg.manual_seed` reseeds. Integer ranges give int64, float
ones float32, as in PyTorch. `device=` may name the CPU, the only device.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import autograd
from .device import check_device
from .dtypes import as_dtype, float32, int64
from .mixin.base import as_shape
from .random import generator_or_default
from .tensor import Tensor, from_numpy

Generator = Optional[np.random.Generator]


def _make(data: np.ndarray, dtype: Any, requires_grad: bool, device: Any = None,
          op: str = "") -> Tensor:
    if device is not None:
        check_device(device, op)
    return Tensor(data, requires_grad=requires_grad,
                  dtype=None if dtype is None else as_dtype(dtype))


def zeros(*size: Any, dtype: Any = np.float32, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    return _make(np.zeros(as_shape(size), as_dtype(dtype)), None, requires_grad, device,
                 "zeros")


def ones(*size: Any, dtype: Any = np.float32, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    return _make(np.ones(as_shape(size), as_dtype(dtype)), None, requires_grad, device, "ones")


def randn(*size: Any, generator: Generator = None, dtype: Any = np.float32,
          device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples."""
    if device is not None:
        check_device(device, "randn")
    return Tensor.randn(*size, generator=generator, dtype=dtype, requires_grad=requires_grad)


def arange(start: float, end: Optional[float] = None, step: float = 1, *, dtype: Any = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    """start, start + step, ... below end (`arange(5)` is 0..4): int64 when every
    argument is an integer, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    if dtype is None:
        dtype = int64 if integral else float32
    return _make(np.arange(start, end, step).astype(as_dtype(dtype)), None, requires_grad,
                 device, "arange")


def linspace(start: float, end: float, steps: int, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """`steps` evenly spaced values from start to end, both included (float32)."""
    data = np.linspace(start, end, int(steps)).astype(float32 if dtype is None else dtype)
    return _make(data, None, requires_grad, device, "linspace")


def full(size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of shape `size` filled with `fill_value`; the dtype is inferred from it
    as `tg.tensor` does (float32, int64 or bool)."""
    if dtype is None:
        kind = np.asarray(fill_value).dtype
        dtype = float32 if kind.kind == "f" else kind
    return _make(np.full(as_shape((size,)), fill_value, as_dtype(dtype)), None,
                 requires_grad, device, "full")


def empty(*size: Any, dtype: Any = np.float32, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """A tensor of shape `size` (filled with zeros here)."""
    return _make(np.zeros(as_shape(size), as_dtype(dtype)), None, requires_grad, device,
                 "empty")


def eye(n: int, m: Optional[int] = None, *, dtype: Any = np.float32, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    """The n×m identity matrix (m = n by default)."""
    return _make(np.eye(n, m, dtype=as_dtype(dtype)), None, requires_grad, device, "eye")


def rand(*size: Any, generator: Generator = None, dtype: Any = np.float32,
         device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1)."""
    data = generator_or_default(generator).random(as_shape(size))
    return _make(data.astype(as_dtype(dtype)), None, requires_grad, device, "rand")


def randint(low: int, high: Optional[int] = None, size: Any = (), *,
            generator: Generator = None, dtype: Any = np.int64, device: Any = None) -> Tensor:
    """Integers drawn uniformly from [low, high) (`randint(high, size)` starts at 0)."""
    if high is None or (isinstance(high, (tuple, list))):
        low, high, size = 0, low, size if high is None else high
    data = generator_or_default(generator).integers(low, high, as_shape((size,)))
    return _make(data.astype(as_dtype(dtype)), None, False, device, "randint")


def randperm(n: int, *, generator: Generator = None, dtype: Any = np.int64,
             device: Any = None) -> Tensor:
    """A random permutation of 0..n-1."""
    return _make(generator_or_default(generator).permutation(int(n)).astype(as_dtype(dtype)),
                 None, False, device, "randperm")


def zeros_like(input: Tensor, *, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    return full_like(input, 0, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(input: Tensor, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    return full_like(input, 1, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    """A tensor of `input`'s shape (and dtype, unless given) filled with `fill_value`."""
    dtype = np.asarray(getattr(input, "data", input)).dtype if dtype is None else dtype
    return _make(np.full(np.shape(getattr(input, "data", input)), fill_value,
                         as_dtype(dtype)), None, requires_grad, device, "full_like")


def rand_like(input: Tensor, *, generator: Generator = None, dtype: Any = None) -> Tensor:
    return rand(input.shape, generator=generator,
                dtype=input.dtype if dtype is None else dtype)


def randn_like(input: Tensor, *, generator: Generator = None, dtype: Any = None) -> Tensor:
    dtype = input.dtype if dtype is None else as_dtype(dtype)
    return from_numpy(autograd.recorded(_normal, generator_or_default(generator),
                                        input.shape, dtype))


def _normal(rng: np.random.Generator, shape: Any, dtype: np.dtype) -> np.ndarray:
    """Standard normal samples of `dtype`: a draw a replayed step draws again."""
    return rng.standard_normal(shape).astype(dtype)
