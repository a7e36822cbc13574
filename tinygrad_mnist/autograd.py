"""The reverse-mode engine: `Function` (one differentiable primitive), grad mode and
the iterative backward pass.

A `Function` subclass implements `forward` on raw NumPy arrays and `backward`, which
maps the gradient of its output to one gradient per input (or None). The engine
does the rest: it records the graph, walks it newest node first (a reverse
topological order, without recursion), reduces gradients over broadcast axes in one
place (`unbroadcast`), accumulates them where a tensor feeds several ops, and
releases the graph.

Derivatives of derivatives come from the same `backward`s. A backward is written with
operations that work on arrays and on Tensors alike (operators, `.reshape`, `.sum`,
and `SomeFunction.call`, which runs a Function's forward on arrays and applies it to
Tensors). With `create_graph=True` the walk hands each backward Tensors: the gradient,
and in `self.saved` the node's inputs and output as the Tensors they are, so what the
backward computes is itself recorded. Without it (the default, and the training path)
the same code runs on arrays and nothing is recorded. `grad` is
`torch.autograd.grad`; `Tensor.register_hook` adds hooks that the walk runs.
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
    """Whether ops record a graph: one flag per thread, like PyTorch's grad mode; and
    whether a recorded backward (`create_graph=True`) is running."""
    enabled = True
    recording_backward = False


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True unless inside `no_grad()`."""
    return _grad_mode.enabled


def is_recording_backward() -> bool:
    """True while a backward with `create_graph=True` runs the Functions' backwards."""
    return _grad_mode.recording_backward


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


def unbroadcast(grad: Any, shape: Tuple[int, ...]) -> Any:
    """Sum `grad` (an array, or a Tensor in a recorded backward: then the sum is the
    `Sum` Function) over the axes along which an input of `shape` was broadcast."""
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
    keeps what backward needs. `backward` runs on arrays, and on Tensors in a
    recorded backward (see the module docstring): then `self.saved` holds the
    inputs and the output that forward saved as their Tensors."""

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
        if type(data) is not np.ndarray:   # a NumPy scalar: the output holds an array, and
            array = np.asarray(data)       # a saved output must be that very array
            ctx.saved = tuple(array if s is data else s for s in ctx.saved)
            data = array
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


    @classmethod
    def call(cls, *inputs: Any, **options: Any) -> Any:
        """This Function on arrays (its forward: nothing recorded) or, when an input is a
        Tensor, applied (recorded). A backward that needs another primitive calls it
        this way, so the same backward serves both passes; other inputs are constants."""
        tensor = next((x for x in inputs if is_tensor(x)), None)
        if tensor is None:
            return cls().forward(*inputs, **options)
        return cls.apply(*[x if is_tensor(x) else tensor.from_op(np.asarray(x), None)
                           for x in inputs], **options)


def is_tensor(x: Any) -> bool:
    """True for a Tensor (in a recorded backward), False for an array or a number."""
    return type(x) is not np.ndarray and not isinstance(
        x, (np.ndarray, np.generic, int, float, bool)) and hasattr(x, "_ctx")


def value(x: Any) -> Any:
    """The array of a Tensor, or x itself: for what a backward uses as a constant (a
    mask, an index), whose derivative is zero."""
    return x.data if is_tensor(x) else x


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


def backward(root: "Tensor", gradient: Any, retain_graph: Optional[bool] = None,
             create_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into every leaf's `.grad` (see `Tensor.backward`)."""
    if not root.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad and has no graph; "
                           "create the inputs with requires_grad=True")
    seed = _seed_for(root, gradient, create_graph, "backward", "gradient")
    _walk([(root, seed)], create_graph if retain_graph is None else retain_graph,
          create_graph, None)


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None,
         retain_graph: Optional[bool] = None, create_graph: bool = False,
         allow_unused: bool = False) -> Tuple[Any, ...]:
    """The gradients of `outputs` with respect to `inputs` (a Tensor or a sequence of
    them), returned as a tuple instead of accumulated into `.grad`, as
    `torch.autograd.grad`: `grad_outputs` weights each output (needed for an output
    of more than one element); with `create_graph=True` the gradients are Tensors
    that carry their own graph, so they can be differentiated again; the graph is
    kept when `retain_graph` (by default `create_graph`) is true; an input that
    `outputs` do not depend on raises unless `allow_unused=True` (then its gradient
    is None)."""
    outputs = (outputs,) if is_tensor(outputs) else tuple(outputs)
    inputs = (inputs,) if is_tensor(inputs) else tuple(inputs)
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif is_tensor(grad_outputs) or isinstance(grad_outputs, np.ndarray):
        grad_outputs = (grad_outputs,)
    grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("grad: one of the differentiated Tensors does not require "
                               "grad")
    roots = []
    for out, g in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError("grad: an output does not require grad and has no graph; "
                               "create the inputs with requires_grad=True")
        roots.append((out, _seed_for(out, g, create_graph, "grad", "grad_outputs")))
    captured: dict = {id(t): None for t in inputs}
    _walk(roots, create_graph if retain_graph is None else retain_graph, create_graph,
          captured)
    result = tuple(captured[id(t)] for t in inputs)
    if not allow_unused and any(g is None for g in result):
        raise RuntimeError("grad: one of the differentiated Tensors appears to not have "
                           "been used in the graph; pass allow_unused=True if this is "
                           "what you want")
    if create_graph:
        return result
    return tuple(None if g is None else t.from_op(np.array(g, dtype=t.dtype), None)
                 for t, g in zip(inputs, result))     # fresh arrays: no memory shared


def _seed_for(root: "Tensor", gradient: Any, create_graph: bool, op: str,
              name: str) -> Any:
    """d(root)/d(root): ones for a one-element root, else `gradient` checked; a
    Tensor when `create_graph` (that of `gradient` itself if it is one, so the result
    can be differentiated with respect to it), else an array."""
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"{op}: a gradient can be created implicitly only for a scalar output, "
                f"but the output has shape {root.shape}; pass {name}= of that shape")
        seed = _seed(root.data.shape, root.data.dtype)
    elif create_graph and is_tensor(gradient):
        seed = gradient
    else:
        seed = np.asarray(value(gradient), dtype=root.dtype)
    if seed.shape != root.shape:
        raise ValueError(f"{op}: {name} shape {seed.shape} does not match the output "
                         f"shape {root.shape}")
    return root.from_op(seed, None) if create_graph and not is_tensor(seed) else seed


def _walk(roots: list, retain_graph: bool, create_graph: bool,
          captured: Optional[dict]) -> None:
    """The backward pass from `roots` ((tensor, seed) pairs). With `captured` (input
    id -> None) the gradients of those tensors are stored there and no `.grad` is
    touched (`grad`); else leaves accumulate into `.grad` (`backward`)."""
    if not create_graph:
        return _walk_nodes(roots, retain_graph, False, captured)
    outer = _grad_mode.recording_backward
    _grad_mode.recording_backward = True
    try:
        with enable_grad():
            return _walk_nodes(roots, retain_graph, True, captured)
    finally:
        _grad_mode.recording_backward = outer


def _walk_nodes(roots: list, retain_graph: bool, create_graph: bool,
                captured: Optional[dict]) -> None:
    grads: dict = {}                                       # node's seq -> d(root)/d(node)
    heap: list = []
    leaves: dict = {}            # id -> [leaf, gradient] for leaves whose sum is needed
    for root, seed in roots:
        if root._ctx is None:                              # backward on a leaf
            _to_leaf(root, seed, False, create_graph, captured, leaves)
            continue
        if isinstance(root._ctx, _Released):
            _raise_released()
        seq = root._ctx.seq
        if seq in grads:
            grads[seq] = grads[seq] + seed
        else:
            grads[seq] = seed
            heappush(heap, (-seq, root))
    # Newest node first: a tensor is always created after its inputs, so by the time a
    # node comes off the heap every op that consumed it has passed its gradient back.
    while heap:
        key, node = heappop(heap)
        grad = grads.pop(-key)
        ctx = node._ctx
        if node._hooks:
            grad = _run_hooks(node, grad, create_graph)
        if captured is not None:
            if id(node) in captured:                       # (a copy: grad may be seen
                captured[id(node)] = grad.clone() if create_graph else grad  # elsewhere)
        elif ctx.retains_grad:                             # d(root)/d(node), complete now
            _keep(node, grad, create_graph)
        if create_graph:
            input_grads = _recorded_backward(ctx, node, grad)
        else:
            input_grads = ctx.backward(grad)
        if type(input_grads) is not tuple:
            input_grads = (input_grads,)
        # An array handed to two inputs must not be kept by either (see _accumulate).
        # (Two Nones also count as a repeat: harmless, the check below is exact.)
        repeated = len(input_grads) > 1 and len(set(map(id, input_grads))) < len(input_grads)
        for parent, g in zip(ctx.parents, input_grads):
            if g is None or not parent.requires_grad:
                continue
            if create_graph and not is_tensor(g):         # a constant (a zero gradient)
                g = node.from_op(np.asarray(g), None)
            if g.shape != parent.data.shape:
                g = unbroadcast(g, parent.data.shape)
            parent_ctx = parent._ctx
            if parent_ctx is None:
                # A leaf may keep g itself only if no other tensor can see the array:
                # not the upstream gradient, not a view, not handed to another input.
                array = g.data if create_graph else g
                owned = g is not grad and array.base is None and not (
                    repeated and sum(x is g for x in input_grads) > 1)
                if create_graph or captured is not None or parent._hooks:
                    _to_leaf(parent, g, owned, create_graph, captured, leaves)
                else:
                    parent._accumulate(g, owned)
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
    for leaf, g in leaves.values():                        # hooked leaves and grad()'s
        if leaf._hooks:
            g = _run_hooks(leaf, g, create_graph)
        if captured is not None:
            captured[id(leaf)] = g
        else:
            _keep(leaf, g, create_graph)


def _to_leaf(leaf: "Tensor", g: Any, owned: bool, create_graph: bool,
             captured: Optional[dict], leaves: dict) -> None:
    """A gradient reaching a leaf: summed first where the whole is needed (a hooked
    leaf, an input of `grad`), else accumulated into `.grad` at once."""
    if captured is None and not leaf._hooks:
        if create_graph:
            _keep(leaf, g if owned else g.clone(), True)
        else:
            leaf._accumulate(g, owned)
        return
    if captured is not None and id(leaf) not in captured:
        return                                             # grad() touches no other leaf
    entry = leaves.get(id(leaf))
    if entry is None:
        leaves[id(leaf)] = [leaf, g if owned else g.clone() if create_graph else np.array(g)]
    else:
        entry[1] = entry[1] + g


def _keep(t: "Tensor", g: Any, create_graph: bool) -> None:
    """Accumulate g into `t.grad`: in place for an array, out of place for a recorded
    gradient (so `t.grad` carries the graph of the sum)."""
    if not create_graph:
        t._accumulate(g, owned=False)
    elif t._grad is None:
        t._grad = g
    else:
        t._grad = t._grad + g


def _recorded_backward(ctx: Function, out: "Tensor", grad: "Tensor") -> Any:
    """ctx.backward on Tensors: the gradient, and in `ctx.saved` the node's inputs and
    output as their Tensors (one level of tuples looked into), so that the backward's
    own operations are recorded."""
    tensors = {id(out.data): out}
    for p in ctx.parents:
        if tensors.setdefault(id(p.data), p) is not p:   # which one a saved array means
            raise RuntimeError(                           # would be a guess: refuse
                f"backward(create_graph=True): two inputs of {type(ctx).__name__} are "
                f"different tensors on one array (a detach()-ed or requires_grad_() copy?); "
                f"pass one of them as .clone()")
    saved = ctx.saved

    def swap(s: Any) -> Any:
        if type(s) is tuple:
            return tuple(tensors.get(id(x), x) for x in s)
        return tensors.get(id(s), s)
    ctx.saved = tuple(swap(s) for s in saved)
    try:
        return ctx.backward(grad)
    finally:
        ctx.saved = saved


# ---------------------------------------------------------------------------- hooks
class RemovableHandle:
    """What `Tensor.register_hook` and a module's `register_forward_hook` and
    `register_forward_pre_hook` return: `remove()` takes the hook off (also on leaving
    a `with` block)."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def register_hook(t: "Tensor", hook: Any) -> RemovableHandle:
    """Run `hook(grad)` whenever the gradient of `t` is computed (see
    `Tensor.register_hook`)."""
    if not t.requires_grad:
        raise RuntimeError("register_hook: cannot register a hook on a tensor that does "
                           "not require gradient")
    if t._hooks is None:
        t._hooks = {}
    handle = RemovableHandle(t._hooks)
    t._hooks[handle.id] = hook
    return handle


def _run_hooks(t: "Tensor", g: Any, create_graph: bool) -> Any:
    """Each hook of t in turn, on a Tensor; one that returns a Tensor replaces g."""
    g = g if create_graph else t.from_op(g, None)
    for hook in list(t._hooks.values()):
        new = hook(g)
        if new is not None:
            if tuple(new.shape) != tuple(g.shape):
                raise RuntimeError(f"hook: a hook returned a gradient of shape "
                                   f"{tuple(new.shape)} for a tensor of shape {g.shape}")
            g = new if is_tensor(new) else t.from_op(np.asarray(new), None)
    return g if create_graph else g.data


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
