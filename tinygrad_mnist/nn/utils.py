"""Regularisation helpers: gradient clipping and an L1 penalty."""
from __future__ import annotations

import math
from typing import Iterable, List, Union

import numpy as np

from .. import autograd, ops
from ..tensor import Tensor, as_tensor

Parameters = Union[Tensor, Iterable[Tensor]]


def _params(parameters: Parameters) -> List[Tensor]:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def clip_grad_norm_(parameters: Parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale the gradients in place so that their joint `norm_type`-norm (all
    gradients seen as one vector) is at most `max_norm`; return the norm before
    clipping. Like PyTorch, the scale is max_norm / (norm + 1e-6) when below 1."""
    grads = [p.grad.data for p in _params(parameters) if p.grad is not None]
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    elif norm_type == 2.0:
        total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    elif norm_type > 0:
        total = sum(float(np.sum(np.abs(g) ** norm_type)) for g in grads) ** (1 / norm_type)
    else:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total gradient norm is {total}; "
                           f"pass error_if_nonfinite=False to clip anyway")
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:  # (a NaN norm makes NaN gradients, as in PyTorch)
        for g in grads:
            g *= coef
    return total


def clip_grad_value_(parameters: Parameters, clip_value: float) -> None:
    """Clip every gradient element to [-clip_value, clip_value] in place."""
    for p in _params(parameters):
        if p.grad is not None:
            np.clip(p.grad.data, -clip_value, clip_value, out=p.grad.data)


def l1_penalty(parameters: Parameters) -> Tensor:
    """Σ|p| over all parameters, as a Tensor to add to the loss
    (`loss = ce + 1e-4 * l1_penalty(model.parameters())`). Its gradient is sign(p)
    (0 at 0)."""
    total = None
    for p in _params(parameters):
        term = ops.Mul.apply(p, as_tensor(autograd.recorded(np.sign, p.data))).sum()
        total = term if total is None else total + term
    return total if total is not None else Tensor(0.0)
