"""`Tensor`: a NumPy array that remembers how it was computed, so it can backpropagate."""
from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np

from . import autograd, ops
from .autograd import Function
from .dtypes import as_dtype
from .mixin.base import ArrayLike, TensorBase, as_shape, normalize_axis, refuse_bool
from .mixin.inplace import InPlaceMixin
from .mixin.interop import InteropMixin
from .mixin.linalg import LinalgMixin
from .mixin.reduce import ReduceMixin
from .random import generator_or_default

class Tensor(ReduceMixin, LinalgMixin, InteropMixin, InPlaceMixin):
    """An n-dimensional array with reverse-mode automatic differentiation.

    Data is float32 unless given as a NumPy array of another type (float64 is kept, for
    gradient checks; integers and booleans too). `requires_grad=True` makes a leaf whose
    `.grad` (a Tensor) is filled by `backward()`. PyTorch's other methods and operators
    come from the mixins in `mixin/`, one module per concern (elementwise, movement,
    reduce, linalg, dtype, interop, in place).
    """

    __slots__ = ("data", "_grad", "requires_grad", "_ctx", "_hooks", "__weakref__")

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
        self._hooks: Optional[Dict[int, Any]] = None      # `register_hook`'s, by handle

    @staticmethod
    def _make(data: Any, requires_grad: bool, ctx: Optional[Function]) -> Tensor:
        """Fast internal constructor: no copy, no checks."""
        t = object.__new__(Tensor)
        t.data = data if type(data) is np.ndarray else np.asarray(data)
        t._grad = None
        t.requires_grad = requires_grad
        t._ctx = ctx
        t._hooks = None
        return t

    @staticmethod
    def from_op(data: Any, ctx: Optional[Function]) -> Tensor:
        """The output of a `Function` (`Function.apply` calls this): a plain Tensor on
        `data`, not a copy, that requires grad and remembers `ctx` unless it is None."""
        return Tensor._make(data, ctx is not None, ctx)

    # ------------------------------------------------------------------ factories
    @staticmethod
    def zeros(*shape: int, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
        return Tensor._make(np.zeros(as_shape(shape), dtype), requires_grad, None)

    @staticmethod
    def ones(*shape: int, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
        return Tensor._make(np.ones(as_shape(shape), dtype), requires_grad, None)

    @staticmethod
    def randn(*shape: int, generator: Optional[np.random.Generator] = None,
              dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
        """Standard normal samples drawn from `generator` (a `numpy.random.Generator`;
        by default `tg.manual_seed`'s)."""
        rng = generator_or_default(generator)
        data = rng.standard_normal(as_shape(shape), dtype=as_dtype(dtype).type)
        return Tensor._make(data, requires_grad, None)

    @staticmethod
    def uniform(*shape: int, low: float = 0.0, high: float = 1.0,
                generator: Optional[np.random.Generator] = None, dtype: Any = np.float32,
                requires_grad: bool = False) -> Tensor:
        """Uniform samples in [low, high) drawn from `generator`."""
        rng = generator_or_default(generator)
        data = rng.uniform(low, high, as_shape(shape)).astype(as_dtype(dtype))
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
                 retain_graph: Optional[bool] = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad.

        `gradient` is d(loss)/d(self); it may be omitted only for a one-element
        tensor. With `create_graph=True` the gradients are recorded: each `.grad` is
        a Tensor with its own graph, to differentiate again. The graph is freed
        afterwards unless `retain_graph` (by default `create_graph`) is true."""
        autograd.backward(self, gradient, retain_graph, create_graph)

    def register_hook(self, hook: Any) -> autograd.RemovableHandle:
        """Call `hook(grad)` each time the gradient of this tensor is computed; a hook
        that returns a Tensor replaces the gradient (for a leaf, before it reaches
        `.grad`). Returns a handle whose `remove()` removes the hook."""
        return autograd.register_hook(self, hook)

    def _accumulate(self, grad: np.ndarray, owned: bool) -> None:
        if self._grad is None:
            keep = owned and grad.dtype == self.data.dtype
            self._grad = Tensor._make(grad if keep else np.array(grad, dtype=self.data.dtype),
                                      False, None)
        elif self._grad.requires_grad:   # a recorded gradient: a new sum, not a write
            self._grad = Tensor._make(self._grad.data + grad, False, None)
        else:
            self._grad.data += grad

    # ------------------------------------------------------------------ gradient
    @property
    def grad(self) -> Optional[Tensor]:
        """d(loss)/d(self) as a Tensor after `backward()` (None before): a leaf's
        gradients accumulate into it in place, so `p.grad.zero_()` clears it."""
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if value is not None and not isinstance(value, TensorBase):
            if not isinstance(value, np.ndarray):
                raise TypeError(f"assigned grad expected to be a Tensor, an array or None, "
                                f"got {type(value).__name__}")
            value = self.from_op(value, None)
        self._grad = value

    @property
    def grad_fn(self) -> Optional[Function]:
        """The Function that made this tensor (None for a leaf)."""
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad_: only floating-point tensors can require "
                            f"grad, got {self.data.dtype}")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep this tensor's gradient in `.grad` at each later backward, though it is
        made by an op (a leaf's is kept anyway): to look at the gradient of a hidden
        layer's output, say."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad, so it has "
                               "no gradient to keep")
        autograd.retain_grad(self)

    @property
    def retains_grad(self) -> bool:
        """True for a tensor made by an op whose gradient `retain_grad` keeps."""
        return self._ctx is not None and self._ctx.retains_grad

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return self.from_op(self.data, None)


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
    axis = normalize_axis(axis, tensors[0].ndim, "concatenate")[0]
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
    axis = normalize_axis(axis, tensors[0].ndim + 1, "stack")[0]
    shape = tensors[0].shape
    expanded = shape[:axis] + (1,) + shape[axis:]
    return concatenate([t.reshape(expanded) for t in tensors], axis=axis)


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation, as `torch.einsum("ij,jk->ik", a, b)` (or with the operands in
    a list): each operand's dimensions named by letters, the output's after "->" (without
    it, the letters used once, in alphabetical order); letters missing from the output are
    summed over. Each letter at most once per operand, and no "..."."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    tensors = [as_tensor(o) for o in operands]
    spec = equation.replace(" ", "")
    inputs_part, arrow, output = spec.partition("->")
    inputs = tuple(inputs_part.split(","))
    if not arrow:
        letters = "".join(inputs)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    problem = None
    if "." in spec:
        problem = "'...' is not supported; name every dimension"
    elif len(inputs) != len(tensors):
        problem = f"{len(inputs)} operand(s) in the equation, {len(tensors)} given"
    elif not all(c.isalpha() for c in "".join(inputs) + output) or any(
            len(set(s)) != len(s) for s in inputs + (output,)):
        problem = "name dimensions by letters, each at most once per operand and output"
    elif any(len(s) != t.ndim for s, t in zip(inputs, tensors)):
        problem = ("the letters do not match the operands' dimensions "
                   f"{[t.shape for t in tensors]}")
    elif not set(output) <= set("".join(inputs)):
        problem = "the output names a letter no operand has"
    if problem is None:
        sizes: Dict[str, int] = {}
        for s, t in zip(inputs, tensors):
            for c, n in zip(s, t.shape):
                if sizes.setdefault(c, n) != n:
                    problem = f"{c!r} is {sizes[c]} in one operand and {n} in another"
    if problem:
        raise ValueError(f"einsum {equation!r}: {problem}")
    for t in tensors:
        refuse_bool("einsum", t)
    dtype = np.result_type(*[t.dtype for t in tensors])
    tensors = [t if t.dtype == dtype else t.to(dtype) for t in tensors]
    return ops.Einsum.apply(*tensors, inputs=inputs, output=output)
