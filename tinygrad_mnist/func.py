"""Function transforms in the spirit of `torch.func`: `grad`, `grad_and_value`, `vjp`,
`jvp`, `jacobian` (reverse mode, as `torch.func.jacrev`), `hessian` and `hvp`.

Each takes a function of Tensors and works through the engine's `autograd.grad`, so
they compose: `grad(grad(f))(x)` is the second derivative of a scalar function. An
input that does not require grad is differentiated as a new leaf on the same data; one
that does (because an outer transform, or the caller, is differentiating through it)
is used as it is and the result keeps its graph (`create_graph=True`), which is what
makes nesting work.

Forward mode (`jvp`) is the double-vector-Jacobian-product trick, not dual numbers:
with a dummy cotangent u that requires grad, the recorded backward gives
v(u) = uᵀ·J, linear in u, and the gradient of v(u)·t with respect to u is J·t. It
needs nothing but the one backward each `Function` already has (dual numbers would
need a second, forward-mode rule per primitive: a second definition of every op's
derivative), at the cost of about two backward passes instead of one forward.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence, Tuple, Union

import numpy as np

from . import autograd
from .tensor import Tensor, stack

ArgNums = Union[int, Tuple[int, ...]]


def _differentiable(x: Any) -> Tuple[Tensor, bool]:
    """x as a Tensor that requires grad, and whether it already did (then results
    must keep their graph, for whoever differentiates through x)."""
    if isinstance(x, Tensor) and x.requires_grad:
        return x, True
    x = x if isinstance(x, (Tensor, np.ndarray)) else Tensor(x)   # numbers: float32
    data = x.data if isinstance(x, Tensor) else x
    return Tensor(data if data.dtype.kind == "f" else data.astype(np.float32),
                  requires_grad=True), False


def _prepare(args: Sequence[Any], argnums: ArgNums) -> Tuple[list, Tuple[int, ...], bool]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    args = list(args)
    nested = False
    for k in nums:
        args[k], was = _differentiable(args[k])
        nested = nested or was
    return args, nums, nested


def _split_aux(result: Any, has_aux: bool) -> Tuple[Any, Any]:
    if not has_aux:
        return result, None
    if not isinstance(result, tuple) or len(result) != 2:
        raise ValueError("has_aux=True: the function must return a pair (output, aux)")
    return result


def _zeros_for(g: Any, x: Tensor) -> Tensor:
    return g if g is not None else Tensor(np.zeros(x.shape, x.dtype))


def grad_and_value(func: Callable[..., Any], argnums: ArgNums = 0,
                   has_aux: bool = False) -> Callable[..., Any]:
    """A function returning (gradient, value) of `func`, which must return a
    one-element Tensor (or (it, aux) with `has_aux`, then ((gradient), (value, aux)));
    the gradient is with respect to the argument(s) `argnums` (a tuple of gradients
    for a tuple of argnums)."""
    def wrapper(*args: Any) -> Any:
        args, nums, nested = _prepare(args, argnums)
        out, aux = _split_aux(func(*args), has_aux)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("grad: the function must return a one-element Tensor, got "
                               f"{getattr(out, 'shape', type(out).__name__)}")
        grads = autograd.grad(out, [args[k] for k in nums], create_graph=nested,
                              allow_unused=True)
        grads = tuple(_zeros_for(g, args[k]) for g, k in zip(grads, nums))
        g = grads[0] if isinstance(argnums, int) else grads
        value = out if nested else out.detach()
        return (g, (value, aux)) if has_aux else (g, value)
    return wrapper


def grad(func: Callable[..., Any], argnums: ArgNums = 0,
         has_aux: bool = False) -> Callable[..., Any]:
    """A function returning the gradient of `func` (a one-element Tensor) with respect
    to argument(s) `argnums`; with `has_aux`, (gradient, aux)."""
    both = grad_and_value(func, argnums, has_aux)

    def wrapper(*args: Any) -> Any:
        g, value = both(*args)
        return (g, value[1]) if has_aux else g
    return wrapper


def vjp(func: Callable[..., Any], *primals: Any, has_aux: bool = False) -> Any:
    """(output, vjp_fn) — and aux with `has_aux` — where `vjp_fn(cotangent)` returns the
    tuple of uᵀ·∂output/∂primal, one per primal (as `torch.func.vjp`)."""
    args, nums, nested = _prepare(primals, tuple(range(len(primals))))
    out, aux = _split_aux(func(*args), has_aux)

    def vjp_fn(cotangent: Any) -> Tuple[Tensor, ...]:
        keep = nested or isinstance(cotangent, Tensor) and cotangent.requires_grad
        grads = autograd.grad(out, args, grad_outputs=cotangent, retain_graph=True,
                              create_graph=keep, allow_unused=True)
        return tuple(_zeros_for(g, x) for g, x in zip(grads, args))
    value = out if nested else out.detach()
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def jvp(func: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False) -> Any:
    """(output, J·tangents) — and aux with `has_aux` — by the double-VJP trick (see the
    module docstring), as `torch.func.jvp`."""
    args, nums, nested = _prepare(primals, tuple(range(len(primals))))
    out, aux = _split_aux(func(*args), has_aux)
    u = Tensor(np.zeros(out.shape, out.dtype), requires_grad=True)     # any value: linear
    pulled = autograd.grad(out, args, grad_outputs=u, create_graph=True, allow_unused=True)
    total = None
    for g, t in zip(pulled, tangents):
        if g is not None and g.requires_grad:
            term = (g * (t if isinstance(t, Tensor) else Tensor(np.asarray(t, g.dtype)))).sum()
            total = term if total is None else total + term
    if total is None:                                      # output independent of primals
        tangent_out = Tensor(np.zeros(out.shape, out.dtype))
    else:
        (tangent_out,) = autograd.grad(total, u, create_graph=nested, allow_unused=True)
        tangent_out = _zeros_for(tangent_out, u)
    value = out if nested else out.detach()
    return (value, tangent_out, aux) if has_aux else (value, tangent_out)


def jacobian(func: Callable[..., Any], argnums: ArgNums = 0,
             has_aux: bool = False) -> Callable[..., Any]:
    """A function returning the Jacobian of `func` with respect to argument(s)
    `argnums`, of shape output.shape + input.shape, one vector-Jacobian product per
    output element (reverse mode, as `torch.func.jacrev`)."""
    def wrapper(*args: Any) -> Any:
        args, nums, nested = _prepare(args, argnums)
        out, aux = _split_aux(func(*args), has_aux)
        inputs = [args[k] for k in nums]
        rows = [[] for _ in inputs]
        for i in range(max(out.numel(), 1) if out.shape else 1):
            e = np.zeros(out.numel(), out.dtype)
            e[i] = 1
            grads = autograd.grad(out, inputs, grad_outputs=e.reshape(out.shape),
                                  retain_graph=True, create_graph=nested, allow_unused=True)
            for k, (g, x) in enumerate(zip(grads, inputs)):
                rows[k].append(_zeros_for(g, x))
        jacs = tuple(stack(r).reshape(out.shape + x.shape) if r else
                     Tensor(np.zeros(out.shape + x.shape, x.dtype))
                     for r, x in zip(rows, inputs))
        j = jacs[0] if isinstance(argnums, int) else jacs
        return (j, aux) if has_aux else j
    return wrapper


def hessian(func: Callable[..., Any], argnums: ArgNums = 0) -> Callable[..., Any]:
    """A function returning the Hessian of the scalar `func` with respect to argument(s)
    `argnums`: the Jacobian of its gradient (reverse over reverse)."""
    return jacobian(grad(func, argnums), argnums)


def hvp(func: Callable[..., Any], primals: Sequence[Any],
        tangents: Sequence[Any]) -> Tuple[Tensor, Tuple[Tensor, ...]]:
    """(output, H·tangents) of the scalar `func` at `primals`, without forming H: the
    gradient of (∇func)·tangents, reverse over reverse (as
    `torch.autograd.functional.hvp`, with tuples)."""
    args, nums, nested = _prepare(primals, tuple(range(len(primals))))
    out = func(*args)
    grads = autograd.grad(out, args, create_graph=True, allow_unused=True)
    total = None
    for g, t in zip(grads, tangents):
        if g is not None and g.requires_grad:
            term = (g * (t if isinstance(t, Tensor) else Tensor(np.asarray(t, g.dtype)))).sum()
            total = term if total is None else total + term
    if total is None:
        products = tuple(Tensor(np.zeros(x.shape, x.dtype)) for x in args)
    else:
        products = tuple(_zeros_for(h, x) for h, x in zip(
            autograd.grad(total, args, create_graph=nested, allow_unused=True), args))
    return (out if nested else out.detach()), products
