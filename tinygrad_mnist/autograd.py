"""The reverse-mode engine: `Function` (one differentiable primitive), grad mode and
the iterative backward pass.

A `Function` subclass implements `forward` on raw NumPy arrays and `backward`, which
maps the gradient of its output to one gradient per input (or None). The engine
does the rest: it records the graph, walks it in reverse topological order without
recursion, reduces gradients over broadcast axes in one place (`unbroadcast`),
accumulates them where a tensor feeds several ops, and releases the graph.
"""
from __future__ import annotations

import contextlib
import threading
import operator
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional, Tuple

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .tensor import Tensor


class _GradMode(threading.local):
    """Whether ops record a graph: one flag per thread, like PyTorch's grad mode."""
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True unless inside `no_grad()`."""
    return _grad_mode.enabled


class _SetGradMode(contextlib.ContextDecorator):
    """Context manager and decorator that sets whether ops record a graph."""

    def __init__(self, mode: bool):
        self._mode = mode
        self._saved = threading.local()  # a decorator's instance may run in many threads

    def __enter__(self) -> None:
        self._saved.__dict__.setdefault("stack", []).append(_grad_mode.enabled)
        _grad_mode.enabled = self._mode

    def __exit__(self, *exc: Any) -> None:
        _grad_mode.enabled = self._saved.stack.pop()


def no_grad() -> _SetGradMode:
    """Nothing computed inside records a graph: `with no_grad():` or `@no_grad()`."""
    return _SetGradMode(False)


def enable_grad() -> _SetGradMode:
    """Re-enable graph recording inside a `no_grad()` block."""
    return _SetGradMode(True)


def unbroadcast(grad: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the axes along which an input of `shape` was broadcast."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class Function:
    """A differentiable primitive. Subclasses define `forward(*arrays, **options)`
    returning an array, and `backward(grad)` returning one gradient per tensor input
    (a tuple, or a bare array for a single input; None where no gradient is needed).
    `self.needs_input_grad` says which inputs want one; `self.save_for_backward`
    keeps what backward needs."""

    registry: ClassVar[dict] = {}
    parents: Tuple["Tensor", ...] = ()
    needs_input_grad: Tuple[bool, ...] = ()
    saved: Tuple[Any, ...] = ()

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            Function.registry[cls.__name__] = cls

    def save_for_backward(self, *values: Any) -> None:
        self.saved = values

    def forward(self, *arrays: np.ndarray, **options: Any) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: "Tensor", **options: Any) -> "Tensor":
        """Run forward on the inputs' arrays; record the graph if any input needs it."""
        ctx = cls()
        data = ctx.forward(*map(_data, inputs), **options)
        if _grad_mode.enabled:
            needs = tuple(map(_requires_grad, inputs))
            if True in needs:
                ctx.parents = inputs
                ctx.needs_input_grad = needs
                return _make_tensor(data, True, ctx)
        return _make_tensor(data, False, None)


_data = operator.attrgetter("data")
_requires_grad = operator.attrgetter("requires_grad")


def _make_tensor(data: Any, requires_grad: bool, ctx: Optional[Function]) -> "Tensor":
    """Set by tensor.py to `Tensor._make` (the engine does not import Tensor)."""
    raise RuntimeError("tinygrad_mnist.tensor was not imported")


class _Released(Function):
    """Marks a node whose graph was freed by a previous backward."""


_RELEASED = _Released()


def _topological_order(root: "Tensor") -> list:
    """Non-leaf tensors reachable from `root`, each after everything it depends on."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for parent in node._ctx.parents:
            if parent._ctx is not None and id(parent) not in seen:
                stack.append((parent, False))
    return order


def backward(root: "Tensor", gradient: Optional[np.ndarray], retain_graph: bool) -> None:
    """Accumulate d(root)/d(leaf) into every leaf's `.grad` (see `Tensor.backward`)."""
    if not root.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad and has no graph; "
                           "create the inputs with requires_grad=True")
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward: a gradient can be created implicitly only for a scalar output, "
                f"but the output has shape {root.shape}; pass gradient= of that shape")
        gradient = np.empty_like(root.data)                # d(root)/d(root) = 1
        gradient.fill(1)
    else:
        gradient = np.asarray(getattr(gradient, "data", gradient), dtype=root.dtype)
        if gradient.shape != root.shape:
            raise ValueError(f"backward: gradient shape {gradient.shape} does not match "
                             f"the output shape {root.shape}")
    if root._ctx is None:  # backward on a leaf
        root._accumulate(gradient, owned=False)
        return

    grads = {id(root): gradient}
    for node in reversed(_topological_order(root)):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        ctx = node._ctx
        if ctx is _RELEASED:
            raise RuntimeError("backward: this graph was already freed by an earlier "
                               "backward(); pass retain_graph=True to the first call to "
                               "backpropagate through it twice")
        input_grads = ctx.backward(grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for parent, g in zip(ctx.parents, input_grads):
            if g is None or not parent.requires_grad:
                continue
            if g.shape != parent.data.shape:
                g = unbroadcast(g, parent.data.shape)
            if parent._ctx is None:
                # A leaf may keep g itself only if no other tensor can see the array.
                parent._accumulate(g, owned=g is not grad and g.base is None)
            else:
                previous = grads.get(id(parent))
                grads[id(parent)] = g if previous is None else previous + g
        if not retain_graph:
            node._ctx = _RELEASED
