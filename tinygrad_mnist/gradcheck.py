"""Finite-difference gradient checking, in float64: first derivatives (`gradcheck`) and
second derivatives (`gradgradcheck`)."""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .autograd import grad
from .tensor import Tensor, cat


class GradcheckError(AssertionError):
    """An analytical gradient disagrees with its finite-difference estimate."""


def gradcheck(fn: Callable[..., Tensor], *inputs: Any, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3,
              generator: Optional[np.random.Generator] = None) -> bool:
    """Check every input gradient of `fn` against central finite differences.

    Each input (Tensor or array) is copied to float64 with `requires_grad=True`.
    A random upstream gradient `u` of the output's shape is drawn, and for every
    element x_i, d(sum(u * fn))/dx_i is estimated as
    (f(x_i + eps) - f(x_i - eps)) / (2 eps) and compared with backprop through `fn`
    under `|analytic - numeric| <= atol + rtol * |numeric|`.
    Returns True, or raises `GradcheckError` naming the input, the worst element
    and both values. Inputs are not modified.
    """
    rng = generator if generator is not None else np.random.default_rng(0)
    xs = [Tensor(np.array(getattr(x, "data", x), dtype=np.float64, order="C"),
                 requires_grad=True) for x in inputs]       # C order: reshape(-1) is a view
    out = fn(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    if out.dtype != np.float64:
        raise GradcheckError(f"gradcheck: fn turned float64 inputs into {out.dtype}; "
                             f"finite differences need float64 throughout")
    upstream = rng.standard_normal(out.shape)
    if out.requires_grad:
        out.backward(upstream)

    def objective() -> float:
        return float(np.sum(fn(*xs).data * upstream))

    for k, x in enumerate(xs):
        analytic = x.grad.data if x.grad is not None else np.zeros_like(x.data)
        numeric = np.zeros_like(x.data)
        flat = x.data.reshape(-1)  # a view: perturbations write into x.data
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            f_plus = objective()
            flat[i] = original - eps
            f_minus = objective()
            flat[i] = original
            numeric.reshape(-1)[i] = (f_plus - f_minus) / (2 * eps)
        error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if error.size and (np.max(error) > 0 or not np.all(np.isfinite(analytic))):
            worst = np.unravel_index(int(np.argmax(np.where(np.isfinite(error), error,
                                                            np.inf))), x.shape)
            raise GradcheckError(
                f"gradcheck: gradient of input {k} (shape {x.shape}) is wrong at "
                f"element {tuple(int(i) for i in worst)}: analytic {analytic[worst]!r}, "
                f"numeric {numeric[worst]!r}")
    return True


def gradgradcheck(fn: Callable[..., Tensor], *inputs: Any,
                  grad_outputs: Optional[Any] = None, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3,
                  generator: Optional[np.random.Generator] = None) -> bool:
    """Check the second derivatives of `fn` against finite differences of its first
    derivatives, as `torch.autograd.gradgradcheck`: the vector-Jacobian product
    (x, u) -> uᵀ·∂fn/∂x, computed by a recorded backward (`grad(...,
    create_graph=True)`), is itself checked by `gradcheck` with respect to both the
    inputs x and the upstream gradient u (drawn from `generator` unless given as
    `grad_outputs`). Returns True, or raises `GradcheckError`."""
    rng = generator if generator is not None else np.random.default_rng(0)
    xs = [np.array(getattr(x, "data", x), dtype=np.float64) for x in inputs]
    out = fn(*[Tensor(x) for x in xs])
    upstream = (rng.standard_normal(out.shape) if grad_outputs is None else
                np.array(getattr(grad_outputs, "data", grad_outputs), dtype=np.float64))

    def first_derivatives(*args: Tensor) -> Tensor:
        variables, u = args[:-1], args[-1]
        grads = grad(fn(*variables), variables, grad_outputs=u, create_graph=True,
                     allow_unused=True)
        return cat([(g if g is not None else Tensor(np.zeros(x.shape))).reshape(-1)
                    for g, x in zip(grads, variables)])

    return gradcheck(first_derivatives, *xs, upstream, eps=eps, atol=atol, rtol=rtol,
                     generator=rng)
