"""Tensor methods as functions, as PyTorch spells them: `tg.exp(t)` is `t.exp()`,
`tg.sum(t, dim=1)` is `t.sum(dim=1)`, `tg.max(t, 1)` is `t.max(1)`.

Each function in `METHODS` is made from the Tensor method of the same name (its
signature, with `input` for `self`, and its docstring), so the method is the one
definition: the function only turns its first argument (a Tensor, a NumPy array, a
number or a list) into a Tensor and calls the method. A few functions have no method
to come from: `where` (the condition comes first), `einsum`, `cat` and `stack`
(tensor.py), `is_tensor`, and the grad-mode helpers `set_grad_enabled` and
`inference_mode`.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from .autograd import enable_grad, no_grad
from .mixin.base import bool_condition
from .tensor import ArrayLike, Tensor, as_tensor, einsum  # noqa: F401  (tg.einsum)

# The Tensor methods PyTorch also offers as `torch.<name>(input, ...)`, by concern.
METHODS = (
    # elementwise
    "abs", "neg", "exp", "exp2", "log", "log1p", "sqrt", "rsqrt", "square", "reciprocal",
    "sin", "cos", "erf", "erfc", "tanh", "sigmoid", "relu", "floor", "ceil", "round", "sign",
    "clamp", "clip", "pow", "add", "sub", "mul", "div", "remainder", "maximum", "minimum",
    "masked_fill", "eq", "ne", "lt", "le", "gt", "ge", "equal", "allclose", "isclose",
    "logical_not",
    # reductions
    "sum", "mean", "std", "var", "max", "min", "amax", "amin", "argmax", "argmin", "all",
    "any", "norm", "cumsum", "prod", "logsumexp", "softmax", "log_softmax", "sort", "topk",
    # movement
    "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute", "t", "gather",
    "index_select", "narrow", "split", "chunk", "numel",
    # products and triangles
    "matmul", "mm", "bmm", "dot", "outer", "tril", "triu",
)


def function_of(name: str) -> Callable[..., Any]:
    """`tg.<name>`: `input` as a Tensor, then the Tensor method `name` on it."""
    method = getattr(Tensor, name)

    def function(input: ArrayLike, *args: Any, **kwargs: Any) -> Any:
        return method(as_tensor(input), *args, **kwargs)

    signature = inspect.signature(method)
    self, *rest = signature.parameters.values()
    function.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self.replace(name="input", annotation="ArrayLike")] + rest)
    function.__name__ = function.__qualname__ = name
    function.__module__ = __name__
    function.__doc__ = f"`{name}(input, ...)` is `input.{name}(...)`." + (
        f"\n\n{inspect.getdoc(method)}" if method.__doc__ else "")
    return function


globals().update({name: function_of(name) for name in METHODS})


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """`input` where `condition` holds, else `other` (either may be a number); the
    operands are promoted as for `input.where(condition, other)`."""
    if not isinstance(input, Tensor) and isinstance(other, Tensor):
        chosen = bool_condition(condition, "where")   # the same choice, in other's order:
        return other.where(~chosen, input)
    return as_tensor(input).where(condition, other)


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


# ------------------------------------------------------------------------ grad mode
class set_grad_enabled:
    """Record graphs (True) or not (False): from now on when called, or for a block
    when used as `with set_grad_enabled(mode):` (the previous mode comes back after)."""

    def __init__(self, mode: bool):
        self._mode = enable_grad() if mode else no_grad()
        self._mode.__enter__()  # takes effect at once, as in PyTorch

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        self._mode.__exit__(*exc)


def inference_mode(mode: bool = True) -> Any:
    """`no_grad()` (this engine has no separate inference mode)."""
    return no_grad() if mode else enable_grad()


__all__ = list(METHODS) + ["where", "einsum", "is_tensor", "set_grad_enabled",
                           "inference_mode"]
