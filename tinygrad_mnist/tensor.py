"""`Tensor`: a NumPy array that remembers how it was computed, so it can backpropagate."""
from __future__ import annotations

import numbers
from typing import Any, Iterable, Optional, Sequence, Tuple, Union

import numpy as np

from . import autograd, ops
from .autograd import Function
from .dtypes import as_dtype
from .random import generator_or_default
from .tensor_api import Axis, TensorAPI, as_shape as _shape, normalize_axis as _normalize_axis

ArrayLike = Union["Tensor", np.ndarray, numbers.Number, Sequence]


def _pick(axis: Axis, dim: Axis, keepdims: bool, keepdim: Optional[bool]):
    """Accept PyTorch's `dim`/`keepdim` spellings beside NumPy's `axis`/`keepdims`."""
    return (dim if axis is None else axis), (keepdims if keepdim is None else keepdim)


def _is_basic_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer))
               and not isinstance(i, bool) for i in items)


class Tensor(TensorAPI):
    """An n-dimensional array with reverse-mode automatic differentiation.

    Data is float32 unless given as a NumPy array of another type (float64 is kept, for
    gradient checks; integers and booleans too). `requires_grad=True` makes a leaf whose
    `.grad` (a Tensor) is filled by `backward()`. PyTorch's other methods and operators
    come from `TensorAPI` (tensor_api.py).
    """

    __slots__ = ("data", "_grad", "requires_grad", "_ctx", "__weakref__")

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: Any = None):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is not None:
            data = np.array(data, dtype=as_dtype(dtype))
        elif isinstance(data, (np.ndarray, np.generic)) and data.dtype.kind in "fiub":
            data = np.array(data)
        else:
            data = np.array(data)
            if data.dtype.kind in "fiub" and data.dtype != np.float32:
                data = data.astype(np.float32)
        if data.dtype.kind not in "fiub":
            raise TypeError(f"Tensor: unsupported data type {data.dtype}; "
                            f"give numbers or a numeric NumPy array")
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating-point tensors can require grad, "
                            f"got {data.dtype}")
        self.data: np.ndarray = data
        self._grad: Optional[Tensor] = None
        self.requires_grad = bool(requires_grad)
        self._ctx: Optional[Function] = None

    @staticmethod
    def _make(data: Any, requires_grad: bool, ctx: Optional[Function]) -> "Tensor":
        """Fast internal constructor: no copy, no checks."""
        t = object.__new__(Tensor)
        t.data = data if type(data) is np.ndarray else np.asarray(data)
        t._grad = None
        t.requires_grad = requires_grad
        t._ctx = ctx
        return t

    @staticmethod
    def from_op(data: Any, ctx: Optional[Function]) -> "Tensor":
        """The output of a `Function` (`Function.apply` calls this): a plain Tensor on
        `data`, not a copy, that requires grad and remembers `ctx` unless it is None."""
        return Tensor._make(data, ctx is not None, ctx)

    # ------------------------------------------------------------------ factories
    @staticmethod
    def zeros(*shape: int, dtype: Any = np.float32, requires_grad: bool = False) -> "Tensor":
        return Tensor._make(np.zeros(_shape(shape), dtype), requires_grad, None)

    @staticmethod
    def ones(*shape: int, dtype: Any = np.float32, requires_grad: bool = False) -> "Tensor":
        return Tensor._make(np.ones(_shape(shape), dtype), requires_grad, None)

    @staticmethod
    def randn(*shape: int, generator: Optional[np.random.Generator] = None,
              dtype: Any = np.float32, requires_grad: bool = False) -> "Tensor":
        """Standard normal samples drawn from `generator` (a `numpy.random.Generator`;
        by default `tg.manual_seed`'s)."""
        rng = generator_or_default(generator)
        data = rng.standard_normal(_shape(shape), dtype=as_dtype(dtype).type)
        return Tensor._make(data, requires_grad, None)

    @staticmethod
    def uniform(*shape: int, low: float = 0.0, high: float = 1.0,
                generator: Optional[np.random.Generator] = None, dtype: Any = np.float32,
                requires_grad: bool = False) -> "Tensor":
        """Uniform samples in [low, high) drawn from `generator`."""
        rng = generator_or_default(generator)
        data = rng.uniform(low, high, _shape(shape)).astype(as_dtype(dtype))
        return Tensor._make(data, requires_grad, None)

    # ---------------------------------------------------------------- properties
    @property
    def shape(self) -> Tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    __hash__ = object.__hash__  # by identity, in C: tensors key the optimizer's state

    # ------------------------------------------------------------------ autograd
    def backward(self, gradient: Optional[ArrayLike] = None,
                 retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad.

        `gradient` is d(loss)/d(self); it may be omitted only for a one-element
        tensor. The graph is freed afterwards unless `retain_graph=True`."""
        autograd.backward(self, gradient, retain_graph)

    def _accumulate(self, grad: np.ndarray, owned: bool) -> None:
        if self._grad is None:
            keep = owned and grad.dtype == self.data.dtype
            self._grad = Tensor._make(grad if keep else np.array(grad, dtype=self.data.dtype),
                                      False, None)
        else:
            self._grad.data += grad

    # --------------------------------------------------------------- arithmetic
    # Operands are paired by `TensorAPI._pair`: numbers and arrays become constants of
    # this tensor's dtype, with PyTorch's promotion where the kinds differ.
    def __add__(self, other: ArrayLike) -> "Tensor":
        return ops.Add.apply(*self._pair(other))

    def __radd__(self, other: ArrayLike) -> "Tensor":
        return ops.Add.apply(*self._pair(other, reverse=True))

    def __sub__(self, other: ArrayLike) -> "Tensor":
        return ops.Sub.apply(*self._pair(other))

    def __rsub__(self, other: ArrayLike) -> "Tensor":
        return ops.Sub.apply(*self._pair(other, reverse=True))

    def __mul__(self, other: ArrayLike) -> "Tensor":
        return ops.Mul.apply(*self._pair(other))

    def __rmul__(self, other: ArrayLike) -> "Tensor":
        return ops.Mul.apply(*self._pair(other, reverse=True))

    def __truediv__(self, other: ArrayLike) -> "Tensor":
        return ops.Div.apply(*self._pair(other, true_divide=True))

    def __rtruediv__(self, other: ArrayLike) -> "Tensor":
        return ops.Div.apply(*self._pair(other, reverse=True, true_divide=True))

    def __neg__(self) -> "Tensor":
        return ops.Neg.apply(self)

    def __pow__(self, exponent: Union[float, "Tensor"]) -> "Tensor":
        """self ** exponent, for a Python number or a tensor that requires no grad
        (broadcast against self)."""
        if isinstance(exponent, Tensor):
            if exponent.requires_grad:
                raise TypeError("pow: an exponent tensor that requires grad is not "
                                "supported; use (x.log() * p).exp() for x > 0")
            base, p = self._pair(exponent)
            return ops.Pow.apply(base, exponent=p.data)
        if isinstance(exponent, bool) or not isinstance(exponent, numbers.Real):
            raise TypeError(f"pow: the exponent must be a number or a tensor, got "
                            f"{type(exponent).__name__}")
        base = self._floating() if isinstance(exponent, float) else self
        return ops.Pow.apply(base, exponent=exponent)

    def __matmul__(self, other: ArrayLike) -> "Tensor":
        return ops.MatMul.apply(*self._pair(other))

    def __rmatmul__(self, other: ArrayLike) -> "Tensor":
        return ops.MatMul.apply(*self._pair(other, reverse=True))

    def matmul(self, other: ArrayLike) -> "Tensor":
        return self @ other

    # -------------------------------------------------------------- elementwise
    # (an integer tensor is made float32 first, as in PyTorch)
    def exp(self) -> "Tensor":
        return ops.Exp.apply(self._floating())

    def log(self) -> "Tensor":
        return ops.Log.apply(self._floating())

    def sqrt(self) -> "Tensor":
        return ops.Sqrt.apply(self._floating())

    def tanh(self) -> "Tensor":
        return ops.Tanh.apply(self._floating())

    def sigmoid(self) -> "Tensor":
        return ops.Sigmoid.apply(self._floating())

    def relu(self) -> "Tensor":
        return ops.ReLU.apply(self)

    def leaky_relu(self, negative_slope: float = 0.01) -> "Tensor":
        return ops.LeakyReLU.apply(self, negative_slope=negative_slope)

    def clip(self, min: Optional[float] = None, max: Optional[float] = None) -> "Tensor":
        if min is None and max is None:
            raise ValueError("clip: give at least one of min and max")
        return ops.Clip.apply(self, low=min, high=max)

    clamp = clip

    # --------------------------------------------------------------- reductions
    def sum(self, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None,
            keepdim: Optional[bool] = None) -> "Tensor":
        axis, keepdims = _pick(axis, dim, keepdims, keepdim)
        return ops.Sum.apply(self, axis=_normalize_axis(axis, self.ndim, "sum"),
                             keepdims=keepdims)

    def mean(self, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None,
             keepdim: Optional[bool] = None) -> "Tensor":
        axis, keepdims = _pick(axis, dim, keepdims, keepdim)
        axes = _normalize_axis(axis, self.ndim, "mean")
        count = self.data.size if axes is None else int(np.prod([self.shape[a] for a in axes]))
        return self.sum(axes, keepdims) * (1.0 / count if count else float("nan"))  # as PyTorch

    # -------------------------------------------------------------------- shape
    def reshape(self, *shape: Any) -> "Tensor":
        return ops.Reshape.apply(self, shape=_shape(shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        if self.ndim == 0:
            return self.reshape(1)
        start, end = (_normalize_axis(d, self.ndim, "flatten")[0]
                      for d in (start_dim, end_dim))
        flat = int(np.prod(self.shape[start:end + 1]))  # not -1: an empty tensor flattens too
        return self.reshape(self.shape[:start] + (flat,) + self.shape[end + 1:])

    def permute(self, *dims: Any) -> "Tensor":
        dims = _shape(dims)
        if sorted(_normalize_axis(d, self.ndim, "permute")[0] for d in dims) != list(
                range(self.ndim)):
            raise ValueError(f"permute: {dims} is not a permutation of the "
                             f"{self.ndim} axes of shape {self.shape}")
        return ops.Permute.apply(self, axes=tuple(d % self.ndim for d in dims))

    def transpose(self, dim0: int = -2, dim1: int = -1) -> "Tensor":
        """Swap two axes (PyTorch's `transpose`); `.T` reverses all of them."""
        axes = list(range(self.ndim))
        a, b = (_normalize_axis(d, self.ndim, "transpose")[0] for d in (dim0, dim1))
        axes[a], axes[b] = axes[b], axes[a]
        return ops.Permute.apply(self, axes=tuple(axes))

    @property
    def T(self) -> "Tensor":
        return ops.Permute.apply(self, axes=tuple(reversed(range(self.ndim))))

    def __getitem__(self, index: Any) -> "Tensor":
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        elif isinstance(index, list):
            index = np.asarray(index)
        try:
            self.data[index]
        except IndexError as e:
            raise IndexError(f"getitem: index {index!r} does not fit shape {self.shape}: "
                             f"{e}") from None
        return ops.GetItem.apply(self, index=index, basic=_is_basic_index(index))

    # ------------------------------------------------------------- fused / nn ops
    def log_softmax(self, axis: int = -1, *, dim: Optional[int] = None) -> "Tensor":
        axis = axis if dim is None else dim
        return ops.LogSoftmax.apply(self, axis=_normalize_axis(axis, self.ndim,
                                                               "log_softmax")[0])

    def softmax(self, axis: int = -1, *, dim: Optional[int] = None) -> "Tensor":
        """exp(log_softmax): composed, and stable for any logits."""
        return self.log_softmax(axis, dim=dim).exp()


def tensor(data: ArrayLike, *, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data`, like `torch.tensor`: the dtype is
    inferred as PyTorch does (Python floats: float32, ints: int64, bools: bool; a NumPy
    array or a Tensor keeps its own) unless `dtype` is given. Only the CPU exists."""
    if device is not None and str(device) != "cpu":
        raise RuntimeError(f"tensor: device {str(device)!r} is not available; "
                           f"tinygrad_mnist runs on the CPU only")
    if dtype is None and not isinstance(data, (Tensor, np.ndarray, np.generic)):
        inferred = np.asarray(data).dtype
        dtype = np.float32 if inferred.kind == "f" else inferred
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data: ArrayLike, dtype: Any = None) -> Tensor:
    """`data` as a Tensor, sharing memory where it can (like `torch.as_tensor`): a
    Tensor, or a numeric array, of `dtype` (or of any dtype, if None) is not copied."""
    if isinstance(data, Tensor):
        return data if dtype is None or data.dtype == dtype else Tensor(data.data, dtype=dtype)
    if (isinstance(data, np.ndarray) and data.dtype.kind in "fiub"
            and (dtype is None or data.dtype == dtype)):
        return Tensor._make(data, False, None)
    return tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing `array`'s memory and dtype (like `torch.from_numpy`): no copy."""
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiub":
        raise TypeError(f"from_numpy: expected a numeric NumPy array, got "
                        f"{type(array).__name__}")
    return Tensor._make(array, False, None)


def uniform(*shape: int, **kwargs: Any) -> Tensor:
    return Tensor.uniform(*shape, **kwargs)


def concatenate(tensors: Iterable[Tensor], dim: int = 0, *, axis: Optional[int] = None
                ) -> Tensor:
    """Join tensors along an existing dimension (`torch.cat`; `axis=` is NumPy's name)."""
    axis = dim if axis is None else axis
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate: need at least one tensor")
    axis = _normalize_axis(axis, tensors[0].ndim, "concatenate")[0]
    return ops.Concatenate.apply(*tensors, axis=axis)


cat = concatenate


def stack(tensors: Iterable[Tensor], dim: int = 0, *, axis: Optional[int] = None) -> Tensor:
    """Join same-shaped tensors along a new dimension: concatenate of reshapes."""
    axis = dim if axis is None else axis
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors need the same shape, got {sorted(shapes)}")
    axis = _normalize_axis(axis, tensors[0].ndim + 1, "stack")[0]
    shape = tensors[0].shape
    expanded = shape[:axis] + (1,) + shape[axis:]
    return concatenate([t.reshape(expanded) for t in tensors], axis=axis)
