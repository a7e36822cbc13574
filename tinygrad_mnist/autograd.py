"""The reverse-mode engine: `Function` (one differentiable primitive), grad mode and
the iterative backward pass.

A `Function` subclass implements `forward` on raw NumPy arrays and `backward`, which
maps the gradient of its output to one gradient per input (or None). The engine
does the rest: it records the graph, walks it newest node first (a reverse
topological order, without recursion), reduces gradients over broadcast axes in one
place (`unbroadcast`), accumulates them where a tensor feeds several ops, and
releases the graph.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import threading
from heapq import heappop, heappush
from typing import Any, Callable, ClassVar, Iterator, Optional, Tuple

import numpy as np


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


def no_grad(func: Any = None) -> Any:
    """Nothing computed inside records a graph: `with no_grad():`, `@no_grad()` or
    `@no_grad`."""
    return _SetGradMode(False) if func is None else _SetGradMode(False)(func)


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
    seq: int = 0  # when it was recorded: every node's inputs have smaller numbers
    retains_grad: bool = False  # set by `retain_grad`: backward keeps the output's gradient

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
        try:  # the output is made by the inputs' Tensor type: no import of tensor.py
            make = inputs[0].from_op
        except IndexError:
            raise TypeError(f"{cls.__name__}.apply needs at least one Tensor input") from None
        ctx = cls()
        data = ctx.forward(*[t.data for t in inputs], **options)
        if _grad_mode.enabled:
            needs = tuple([t.requires_grad for t in inputs])
            if True in needs:
                ctx.parents, ctx.needs_input_grad = inputs, needs
                ctx.seq = next(_sequence)                 # creation order, for backward
                out = make(data, ctx)
                if _recorders:                            # see `recording`
                    _note(("op", ctx, inputs, options, out, data))
                return out
        out = make(data, None)
        if _recorders:
            _note(("op", ctx, inputs, options, out, data))
        return out


_sequence = itertools.count(1)


# ------------------------------------------------------------------- recording
# `tinygrad_mnist.jit` records one eager training step as the Functions it ran, then
# replays them with their own forward and backward. Off the recording path `apply`
# pays one check of a module global.
class _Tape(threading.local):
    entries: Optional[list] = None


_tape = _Tape()
_recorders = 0                       # threads recording now
_recorders_lock = threading.Lock()


def _note(entry: tuple) -> None:
    entries = _tape.entries
    if entries is not None:          # (another thread may be the one recording)
        entries.append(entry)


@contextlib.contextmanager
def recording(entries: list) -> Iterator[list]:
    """Append to `entries`, while inside, what this thread computes: for each op
    ("op", ctx, input tensors, options, output tensor, what forward returned), and
    for each `recorded` call ("call", fn, args, value)."""
    global _recorders
    if _tape.entries is not None:
        raise RuntimeError("recording: this thread is recording already")
    with _recorders_lock:
        _recorders += 1
    _tape.entries = entries
    try:
        yield entries
    finally:
        _tape.entries = None
        with _recorders_lock:
            _recorders -= 1


def recorded(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)`: an array computed outside the graph that a replayed step must
    compute again, at the same point (a random draw such as dropout's mask, which the
    replay draws from the same generator in the same order; a constant computed from
    a parameter). `fn` must be the same function at every step (not a lambda made
    per call)."""
    value = fn(*args)
    if _recorders:
        _note(("call", fn, args, value))
    return value


class _Released(Function):
    """Marks a node whose graph was freed by a previous backward."""


_RELEASED = _Released()
_RELEASED_RETAINING = _Released()        # ... of a tensor whose gradient `retain_grad` keeps
_RELEASED_RETAINING.retains_grad = True


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
        gradient = _seed(root.data.shape, root.data.dtype)  # d(root)/d(root) = 1
    else:
        gradient = np.asarray(getattr(gradient, "data", gradient), dtype=root.dtype)
        if gradient.shape != root.shape:
            raise ValueError(f"backward: gradient shape {gradient.shape} does not match "
                             f"the output shape {root.shape}")
    if root._ctx is None:  # backward on a leaf
        root._accumulate(gradient, owned=False)
        return

    if isinstance(root._ctx, _Released):
        _raise_released()
    # Newest node first: a tensor is always created after its inputs, so by the time a
    # node comes off the heap every op that consumed it has passed its gradient back.
    grads = {root._ctx.seq: gradient}                      # node's seq -> d(root)/d(node)
    heap = [(-root._ctx.seq, root)]
    while heap:
        key, node = heappop(heap)
        grad = grads.pop(-key)
        ctx = node._ctx
        if ctx.retains_grad:                               # d(root)/d(node), complete now
            node._accumulate(grad, owned=False)
        input_grads = ctx.backward(grad)
        if type(input_grads) is not tuple:
            input_grads = (input_grads,)
        # An array handed to two inputs must not be kept by either (see _accumulate).
        # (Two Nones also count as a repeat: harmless, the check below is exact.)
        repeated = len(input_grads) > 1 and len(set(map(id, input_grads))) < len(input_grads)
        for parent, g in zip(ctx.parents, input_grads):
            if g is None or not parent.requires_grad:
                continue
            if g.shape != parent.data.shape:
                g = unbroadcast(g, parent.data.shape)
            parent_ctx = parent._ctx
            if parent_ctx is None:
                # A leaf may keep g itself only if no other tensor can see the array:
                # not the upstream gradient, not a view, not handed to another input.
                parent._accumulate(g, g is not grad and g.base is None and not (
                    repeated and sum(x is g for x in input_grads) > 1))
            elif isinstance(parent_ctx, _Released):
                _raise_released()
            else:
                seq = parent_ctx.seq
                previous = grads.get(seq)
                if previous is None:
                    grads[seq] = g
                    heappush(heap, (-seq, parent))
                else:
                    grads[seq] = previous + g
        if not retain_graph:
            node._ctx = _RELEASED_RETAINING if ctx.retains_grad else _RELEASED


def retain_grad(t: "Tensor") -> None:
    """Have every later backward through `t` (a tensor made by an op) also accumulate
    d(root)/d(t) into `t.grad`, as it does for a leaf (none can once its graph is freed)."""
    if t._ctx is not None and not isinstance(t._ctx, _Released):
        t._ctx.retains_grad = True


@functools.lru_cache(maxsize=16)
def _seed(shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A read-only array of ones of a one-element root's shape, made once: the engine
    never writes into a gradient it is handed, and neither may a Function."""
    one = np.ones(shape, dtype)
    one.flags.writeable = False
    return one


def _raise_released() -> None:
    raise RuntimeError("backward: this graph was already freed by an earlier backward(); "
                       "pass retain_graph=True to the first call to backpropagate through "
                       "it twice")
