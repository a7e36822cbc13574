"""Recording: one eager step as the Functions it ran, and the replay compiled from two
recordings of it.

While a step is recorded, `Function.apply` and `autograd.recorded` append what they
did to a tape (`autograd.recording`). `Recording` resolves the tape: each op's inputs
become references (the batch x or y, a parameter, an earlier op's output, a recorded
call's array, or a constant), its options likewise. Two recordings of steps of one
kind must agree (the same ops, inputs, options and shapes; constants equal, or the
same array) before `Compiler` writes the replay: straight-line Python that
calls each Function's own `forward` and then, newest first, its own `backward`, as
the engine's walk does (`autograd.backward`), and hands the gradients to the
optimizer's own `step()`.
"""
from __future__ import annotations

import math
import operator
import sys
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ..autograd import is_grad_enabled, unbroadcast
from ..tensor import Tensor


class StepResult(NamedTuple):
    """What one training step returns: the batch's loss (a Python float) and the
    model's output (an array; a tuple of arrays for a tuple of outputs). A compiled
    step's output is the array its replay computed: read it before the next step."""
    loss: float
    logits: Any


class NonFiniteLoss(FloatingPointError):
    """What a step raises, compiled or eager, when the loss is NaN or infinite: before
    backward, so no gradient, parameter or optimizer state has changed (the forward's
    batch-norm statistics and dropout draws have, as in any forward)."""

    def __init__(self, value: float):
        super().__init__(f"the training loss became {value}")
        self.value = value


class Unsupported(Exception):
    """The step cannot be compiled: the message says why (it then runs eagerly)."""


class Ref(NamedTuple):
    """Where an array of the step comes from: kind "x", "y", "op" (output of op
    `index`), "param" (a parameter's data), "call" (a recorded call's value) or
    "const" (a constant)."""
    kind: str
    index: int = 0


# Tensor methods that hand a tensor's value to Python: a forward that calls one may
# choose what to run by the data, which a replay cannot follow.
READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__",
         "__array__", "__array_function__", "__contains__", "__format__", "__repr__")


@contextmanager
def watching_reads(reads: List[str]) -> Iterator[None]:
    """Append to `reads` the name of each such method called inside (this thread)."""
    codes = {getattr(Tensor, name).__code__: name for name in READS
             if hasattr(getattr(Tensor, name, None), "__code__")}

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in codes:
            reads.append(codes[frame.f_code])

    previous = sys.getprofile()               # a profiler running: paused meanwhile
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(None)
        if callable(previous):
            sys.setprofile(previous)
        elif previous is not None:            # cProfile's C profiler
            previous.enable()


class Recording:
    """A tape resolved into references. `steps` lists, in order, ("op", i) and
    ("call", j); `ops[i]` is (Function class, input refs, options with their arrays
    as refs, the options as given, needs_input_grad or None, whether forward returned
    a non-array); `calls[j]` is (function, args as refs); `constants[m]` an array.
    `signature` is what two recordings of the same step share."""

    def __init__(self, entries: list, x: np.ndarray, y: np.ndarray, params: Sequence[Tensor]):
        self.params = list(params)
        self.ops: List[tuple] = []
        self.calls: List[tuple] = []
        self.constants: List[np.ndarray] = []
        self.shapes: List[tuple] = []                         # each op's output
        self.steps: List[Tuple[str, int]] = []
        self.signature: List[tuple] = []
        self._made: Dict[int, int] = {}                       # id(tensor) -> op
        self._param_of: Dict[int, int] = {id(p): k for k, p in enumerate(self.params)}
        self._arrays: Dict[int, Ref] = {id(y): Ref("y"), id(x): Ref("x")}
        for k, p in enumerate(self.params):
            self._arrays.setdefault(id(p.data), Ref("param", k))
        for entry in entries:
            if entry[0] == "op":
                self._op(*entry[1:])
            else:
                self._call(*entry[1:])
        self._entries = entries                               # keeps the ids valid
        self.watched: List[tuple] = []                        # set by the TrainStep

    def _op(self, ctx: Any, inputs: tuple, options: dict, out: Tensor, data: Any) -> None:
        if ctx.retains_grad:
            raise Unsupported("the forward calls retain_grad(), which only eager steps keep")
        i = len(self.ops)
        refs = tuple(self.tensor(t) for t in inputs)
        normal = {k: self.value(v) for k, v in options.items()}
        needs = ctx.needs_input_grad if out.requires_grad else None
        returned_array = type(data) is np.ndarray
        self.ops.append((type(ctx), refs, normal, options, needs, not returned_array))
        self.shapes.append((out.shape, out.dtype))
        self.steps.append(("op", i))
        self.signature.append((type(ctx), refs, normal, needs, returned_array, out.shape,
                               out.dtype, out.data.strides))
        self._made[id(out)] = i
        self._arrays.setdefault(id(out.data), Ref("op", i))

    def _call(self, fn: Callable[..., Any], args: tuple, value: Any) -> None:
        if not isinstance(value, np.ndarray):
            raise Unsupported(f"a recorded call of {getattr(fn, '__name__', fn)} did not "
                              f"return an array")
        j = len(self.calls)
        normal = tuple(self.value(a) for a in args)
        self.calls.append((fn, normal))
        self.steps.append(("call", j))
        self.signature.append((fn, normal, value.shape, value.dtype))
        self._arrays.setdefault(id(value), Ref("call", j))

    def tensor(self, t: Tensor) -> Ref:
        i = self._made.get(id(t))
        if i is not None:
            return Ref("op", i)
        k = self._param_of.get(id(t))
        if k is not None:
            return Ref("param", k)
        if not t.is_leaf:
            raise Unsupported("the step uses a tensor computed before it (a graph kept "
                              "from an earlier step)")
        if t.requires_grad:
            raise Unsupported(f"the step uses a tensor of shape {t.shape} that requires "
                              f"grad and is not a parameter of the model")
        return self.value(t.data)

    def value(self, v: Any) -> Any:
        if isinstance(v, np.ndarray):
            ref = self._arrays.get(id(v))
            if ref is None:
                ref = self._arrays[id(v)] = Ref("const", len(self.constants))
                self.constants.append(v)
            return ref
        if isinstance(v, Tensor):
            raise Unsupported("an op was given a Tensor as an option")
        if type(v) in (tuple, list):
            return type(v)(self.value(e) for e in v)
        return v


def same(a: Any, b: Any) -> bool:
    """Whether two normalised values (refs, tuples, Python values) are the same."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if type(a) in (tuple, list, Ref):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001  (an object without a plain ==: not the same)
        return False


def describe(a: tuple, b: tuple) -> str:
    """How two steps of two recordings differ, in words."""
    name, other = (getattr(s[0], "__name__", repr(s[0])) for s in (a, b))
    return f"{name} with other inputs or options" if name == other else f"{name}, then {other}"


def compare(first: Recording, second: Recording) -> None:
    """Raise Unsupported unless the two recordings ran the same step: the same ops and
    calls, with the same inputs, options and shapes, and equal constants."""
    for n, (a, b) in enumerate(zip(first.signature, second.signature)):
        if not same(a, b):
            raise Unsupported(f"two steps ran different ops (at op {n}: {describe(a, b)}): "
                              f"the forward's Python depends on the data")
    if len(first.signature) != len(second.signature):
        raise Unsupported(f"two steps ran {len(first.signature)} and "
                          f"{len(second.signature)} ops: the forward's Python depends on "
                          f"the data")
    for a, b in zip(first.constants, second.constants):
        if a is not b and not (a.shape == b.shape and a.dtype == b.dtype
                               and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")):
            raise Unsupported(f"a constant of shape {a.shape} differs between two steps "
                              f"(an array computed from the data outside the ops)")


# ----------------------------------------------------------------------- replay
def accumulate(held: Optional[np.ndarray], g: np.ndarray, upstream: np.ndarray,
               grads: tuple, dtype: np.dtype) -> np.ndarray:
    """A parameter's gradient after adding `g`, as `Tensor._accumulate` keeps it: the
    first one is `g` itself only if nothing else can see that array."""
    if held is None:
        owned = g is not upstream and g.base is None and g.dtype == dtype
        if owned and len(grads) > 1:           # one array handed to two inputs: copied
            owned = [x is g for x in grads].count(True) <= 1
        return g if owned else np.array(g, dtype=dtype)
    held += g
    return held


def unchanged(watched: Sequence[tuple]) -> bool:
    """Whether each (container, values, ...) still holds exactly those objects."""
    for container, values, *_ in watched:
        if len(container) != len(values) or not all(
                map(operator.is_, container.values() if isinstance(container, dict)
                    else container, values)):
            return False
    return True


def refs_in(v: Any) -> Iterator[Ref]:
    if type(v) is Ref:
        yield v
    elif type(v) in (tuple, list):
        for e in v:
            yield from refs_in(e)


class Compiler:
    """Writes the replay of a recording as one Python function `train_step(x, y)`."""

    def __init__(self, rec: Recording, title: str):
        self.rec, self.title = rec, title
        self.namespace: Dict[str, Any] = {
            "ndarray": np.ndarray, "asarray": np.asarray, "unbroadcast": unbroadcast,
            "accumulate": accumulate, "isfinite": math.isfinite,
            "grad_enabled": is_grad_enabled, "NonFiniteLoss": NonFiniteLoss,
            "StepResult": StepResult}
        self.lines: List[str] = []

    def bind(self, name: str, obj: Any) -> str:
        self.namespace[name] = obj
        return name

    def expr(self, v: Any) -> str:
        """Python source for a normalised value at replay time."""
        if type(v) is Ref:
            return {"x": "x", "y": "y", "op": f"v{v.index}", "param": f"P{v.index}.data",
                    "call": f"s{v.index}", "const": f"C{v.index}"}[v.kind]
        if type(v) in (tuple, list):
            items = "".join(self.expr(e) + ", " for e in v)
            return f"({items})" if type(v) is tuple else f"[{items}]"
        if type(v) in (int, bool, str) or v is None or (type(v) is float and math.isfinite(v)):
            return repr(v)
        return self.bind(f"K{len(self.namespace)}", v)

    @staticmethod
    def dynamic(v: Any) -> bool:
        """Whether a normalised value holds an array that changes from step to step."""
        if type(v) is Ref:
            return v.kind != "const"
        return type(v) in (tuple, list) and any(map(Compiler.dynamic, v))

    def compile(self, guard: List[str], loss: Ref, output: Any, tail: List[str]) -> Callable:
        rec, emit = self.rec, self.lines.append
        for k, p in enumerate(rec.params):
            self.bind(f"P{k}", p)
        for m, c in enumerate(rec.constants):
            self.bind(f"C{m}", c)
        for kind, i in rec.steps:
            if kind == "call":
                fn, args = rec.calls[i]
                self.bind(f"S{i}", fn)
                emit(f"s{i} = S{i}({''.join(self.expr(a) + ', ' for a in args)})")
                continue
            cls, refs, normal, options, needs, as_array = rec.ops[i]
            args = [self.expr(r) for r in refs]
            static = {k: v for k, v in options.items() if not self.dynamic(normal[k])}
            args += [f"{k}={self.expr(normal[k])}" for k in options if k not in static]
            if static:
                args.append(f"**{self.bind(f'O{i}', static)}")
            emit(f"f{i} = {self.bind(f'F{i}', cls)}(); v{i} = f{i}.forward({', '.join(args)})")
            if as_array:
                emit(f"v{i} = asarray(v{i})")
        if loss.kind != "op" or rec.ops[loss.index][4] is None:
            raise Unsupported("nothing to train: the loss does not depend on a parameter")
        emit(f"loss_value = float(v{loss.index})")
        emit("if not isfinite(loss_value):")
        emit("    zero_grad()")                       # as the eager step did first
        emit("    raise NonFiniteLoss(loss_value)")
        kept = set(refs_in(output))                # the rest only the Functions keep
        dropped = [f"v{i}" for i in range(len(rec.ops)) if Ref("op", i) not in kept]
        if dropped:
            emit(" = ".join(dropped + ["None"]))
        self.backward(loss.index)
        self.lines += tail
        emit(f"return StepResult(loss_value, {self.expr(output)})")
        self.source = (f"def train_step(x, y):\n    \"\"\"{self.title}\"\"\"\n"
                       f"    try:\n        if not ({' and '.join(guard)}):\n"
                       f"            return None\n    except Exception:\n        return None\n"
                       + "".join(f"    {line}\n" for line in self.lines))
        exec(compile(self.source, "<tinygrad_mnist.jit replay>", "exec"), self.namespace)
        return self.namespace["train_step"]

    def backward(self, root: int) -> None:
        """The engine's walk, unrolled: newest op first, each gradient summed where a
        tensor feeds several ops, each parameter's gradient kept as `_accumulate` keeps
        it, then set as `p.grad`."""
        rec, emit = self.rec, self.lines.append
        nodes = [i for i in range(root + 1) if rec.ops[i][4] is not None]
        emit(" = ".join([f"g{i}" for i in nodes if i != root]
                        + [f"H{k}" for k in range(len(rec.params))] + ["None"]))
        shape, dtype = rec.shapes[root]
        seed = np.ones(shape, dtype)            # d(loss)/d(loss), read-only as the engine's
        seed.flags.writeable = False
        emit(f"g{root} = {self.bind('SEED', seed)}")
        uses = [0] * len(rec.params)               # how many gradients each parameter gets
        for i in nodes:
            for ref, need in zip(rec.ops[i][1], rec.ops[i][4]):
                if need and ref.kind == "param":
                    uses[ref.index] += 1
        for i in reversed(nodes):
            cls, refs, normal, options, needs, as_array = rec.ops[i]
            pad = "" if i == root else "    "
            if i != root:
                emit(f"if g{i} is not None:")
            emit(f"{pad}f{i}.needs_input_grad = {self.bind(f'N{i}', needs)}")
            emit(f"{pad}r = f{i}.backward(g{i})")
            emit(f"{pad}if r.__class__ is not tuple: r = (r,)")
            released = f"f{i} = g{i} = r = a = None"     # as the engine frees the graph
            for j, (ref, need) in enumerate(zip(refs, needs)):
                if not need:
                    continue
                emit(f"{pad}a = r[{j}]")
                emit(f"{pad}if a is not None:")
                shape = (rec.params[ref.index].shape if ref.kind == "param"
                         else rec.shapes[ref.index][0])
                emit(f"{pad}    if a.shape != {shape!r}: a = unbroadcast(a, {shape!r})")
                if ref.kind == "param" and uses[ref.index] == 1:
                    k = ref.index                  # accumulate's test, written out
                    dtype = self.bind(f"D{k}", rec.params[k].dtype)
                    alone = "".join(f" and a is not r[{n}]" for n in range(len(refs)) if n != j)
                    emit(f"{pad}    H{k} = a if a.base is None and a is not g{i} and a.dtype "
                         f"is {dtype}{alone} else accumulate(None, a, g{i}, r, {dtype})")
                elif ref.kind == "param":
                    k = ref.index
                    emit(f"{pad}    H{k} = accumulate(H{k}, a, g{i}, r, P{k}.data.dtype)")
                else:
                    p = ref.index
                    emit(f"{pad}    g{p} = a if g{p} is None else g{p} + a")
            emit(pad + released)
        for k, p in enumerate(rec.params):        # None where the eager zero_grad left None
            if p.requires_grad:
                emit(f"P{k}.grad = H{k}")
