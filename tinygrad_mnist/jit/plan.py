"""The plan builder: named buffers, the lines of each section of the generated step,
and the assembly of those lines into one plain Python function.

A layer's emitter (`layers.py`) or the optimizer's (`updates.py`) asks the `Builder`
for buffers (allocated once, here, and bound to a name in the namespace the generated
function runs in) and appends lines of source to a section. `Builder.compile` puts
the sections together:

    def train_step(x, y):
        <guard: is everything as this plan was built for? if not, return None>
        <prologue: per-step values read from the model and optimizer>
        <forward>, <loss>, <backward>, <update>
        return StepResult(loss, logits)

and compiles it with `compile`/`exec`; its text is `Builder.source`.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from .. import _kernels as K
from ..nn import init


class StepResult(NamedTuple):
    """What one training step returns: the batch's loss (a Python float) and the
    logits (N, classes). A compiled step's logits are a buffer it reuses: read them
    before the next step."""
    loss: float
    logits: np.ndarray


class Value(NamedTuple):
    """An array of the step: the name it has in the generated source; the array itself
    (a buffer allocated once, or a view of one); whether it requires a gradient;
    whether a later op may write over it (nothing reads it again, its backward
    included); and whether it is `fixed`, the same array every step (not so the
    batch, for which `array` is the batch the plan was built from)."""
    name: str
    array: np.ndarray
    requires_grad: bool
    scratch: bool = False
    fixed: bool = True


class Unsupported(Exception):
    """The step cannot be compiled: the message says why (it then runs eagerly)."""


# Names every generated step may use. NumPy's functions are bound directly, so the
# source reads `matmul(a, b, out=c)` and each call saves an attribute lookup.
BASE_NAMESPACE: Dict[str, Any] = {
    "np": np, "ndarray": np.ndarray, "math": math, "StepResult": StepResult,
    "matmul": np.matmul, "dot": np.dot, "multiply": np.multiply, "add": np.add,
    "subtract": np.subtract, "divide": np.divide, "maximum": np.maximum,
    "greater": np.greater, "greater_equal": np.greater_equal, "equal": np.equal,
    "not_equal": np.not_equal, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "tanh": np.tanh, "absolute": np.absolute, "negative": np.negative, "sign": np.sign,
    "copyto": np.copyto, "take": np.take, "vdot": np.vdot, "npsum": np.sum,
    "npmax": np.max, "isfinite": math.isfinite, "scalar": K.scalar,
    "default_generator": init.default_generator, "float32": np.float32,
    "intp": np.intp, "uintp": np.uintp, "bitwise_and": np.bitwise_and,
}

# `a += b` is the call add(a, b, out=a); the plan writes it so, since an augmented
# assignment to a buffer's (global) name would make that name a local of the function.
IN_PLACE = re.compile(r"^(\s*)([A-Za-z_]\w*) ([-+*/&])= (.+)$")
UFUNCS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "&": "bitwise_and"}


def in_place(line: str) -> str:
    """`a op= b` (a a bare name) as the same NumPy call with out=; other lines as given."""
    match = IN_PLACE.match(line)
    if match is None:
        return line
    indent, name, op, rhs = match.groups()
    return f"{indent}{UFUNCS[op]}({name}, {rhs}, out={name})"


class NonFiniteLoss(FloatingPointError):
    """What a step raises, compiled or eager, when the loss is NaN or infinite: before
    backward, so no gradient, parameter or optimizer state has changed (the forward's
    batch-norm statistics and dropout draws have, as in any forward)."""

    def __init__(self, value: float):
        super().__init__(f"the training loss became {value}")
        self.value = value


BASE_NAMESPACE["NonFiniteLoss"] = NonFiniteLoss


class Builder:
    """Collects the buffers and the source of one plan. Sections: `guard` (conditions
    that must all hold), `prologue`, `forward`, `backward` and `update` (statements)."""

    SECTIONS = ("prologue", "forward", "backward", "update")

    def __init__(self, title: str, shared: Optional[Dict[Any, Any]] = None):
        self.title = title
        # Buffers that every plan of one TrainStep may use (plans never run at once):
        # parameter gradients and the update's scratch, so a second plan (the last,
        # smaller batch) does not double the memory of the parameter-sized buffers.
        self.shared: Dict[Any, Any] = {} if shared is None else shared
        self.namespace: Dict[str, Any] = dict(BASE_NAMESPACE)
        self.guard: List[str] = []
        self.sections: Dict[str, List[str]] = {name: [] for name in self.SECTIONS}
        self.section = "forward"
        self.grads: Dict[Any, Value] = {}   # parameter -> its gradient buffer
        self.param_names: Dict[Any, str] = {}  # parameter -> the name of its data
        self.param_objects: Dict[Any, str] = {}  # parameter -> the name of the Parameter
        self.state_name = ""                     # the name of optimizer.state
        self.result = "StepResult(loss, logits)"
        self._counts: Dict[str, int] = {}

    # ------------------------------------------------------------------ names
    def name(self, hint: str, obj: Any) -> str:
        """Bind `obj` in the namespace under a fresh name made from `hint`."""
        base = re.sub(r"\W", "_", hint)
        n = self._counts.get(base, 0)
        self._counts[base] = n + 1
        name = base if n == 0 and base not in self.namespace else f"{base}_{n}"
        while name in self.namespace:
            n += 1
            name = f"{base}_{n}"
        self.namespace[name] = obj
        return name

    def name_of(self, obj: Any, hint: str) -> str:
        """The name `obj` is bound to already, or a fresh one made from `hint`."""
        for name, value in self.namespace.items():
            if value is obj:
                return name
        return self.name(hint, obj)

    def buffer(self, hint: str, like: np.ndarray, dtype: Any = None,
               requires_grad: bool = False, scratch: bool = False) -> Value:
        """A new buffer shaped and laid out in memory like `like` (zero-filled)."""
        array = np.zeros_like(like, dtype=dtype)
        return Value(self.name(hint, array), array, requires_grad, scratch)

    def new(self, hint: str, shape: Tuple[int, ...], dtype: Any,
            order: Optional[Tuple[int, ...]] = None, requires_grad: bool = False,
            scratch: bool = False) -> Value:
        """A new zero-filled buffer of `shape` whose axes are stored in `order`
        (default: C order)."""
        order = tuple(range(len(shape))) if order is None else order
        array = K.new_array(shape, 0, dtype, order)
        return Value(self.name(hint, array), array, requires_grad, scratch)

    def view(self, hint: str, array: np.ndarray, requires_grad: bool = False,
             scratch: bool = False) -> Value:
        """A view of a buffer, made once and bound to a name."""
        return Value(self.name(hint, array), array, requires_grad, scratch)

    # ----------------------------------------------------------------- source
    def emit(self, *lines: str) -> None:
        self.sections[self.section].extend(in_place(line) for line in lines)

    def comment(self, text: str) -> None:
        self.emit(f"# {text}")

    def check(self, condition: str) -> None:
        """A guard condition: the plan runs only while it holds."""
        self.guard.append(condition)

    @property
    def source(self) -> str:
        lines = ["def train_step(x, y):",
                 f'    """{self.title}"""',
                 "    # guard: anything not as this plan was built for goes back to eager",
                 "    if not (" + ("\n            and ".join(self.guard) or "True") + "):",
                 "        return None"]
        for section in self.SECTIONS:
            body = self.sections[section]
            if body:
                lines.append(f"    # ---- {section}")
                lines += ["    " + line for line in body]
        lines.append(f"    return {self.result}")
        return "\n".join(lines) + "\n"

    def compile(self) -> Callable[[np.ndarray, np.ndarray], Optional[StepResult]]:
        source = self.source
        code = compile(source, "<tinygrad_mnist.jit step>", "exec")
        exec(code, self.namespace)
        return self.namespace["train_step"]
