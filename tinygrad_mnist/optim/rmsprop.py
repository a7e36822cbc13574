"""RMSprop, optionally centered and with momentum."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, ParamGroup, Params, check_range, with_weight_decay


class RMSprop(Optimizer):
    """PyTorch's RMSprop. Per step, with g the gradient:

        g ← g + weight_decay·θ                        (if weight_decay ≠ 0)
        v ← alpha·v + (1 - alpha)·g²
        ṽ ← v - ḡ², with ḡ ← alpha·ḡ + (1 - alpha)·g  (if centered; else ṽ = v)
        b ← momentum·b + g/(√ṽ + eps);  θ ← θ - lr·b   (if momentum > 0)
        θ ← θ - lr·g/(√ṽ + eps)                        (otherwise)

    v, ḡ and b start at zero.
    """

    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check_group(self, group: ParamGroup) -> None:
        super()._check_group(group)
        for key in ("alpha", "eps", "weight_decay", "momentum"):
            check_range("RMSprop", key, group[key])

    def _initial_state(self, p: Tensor, group: ParamGroup) -> Dict[str, Any]:
        return {"step": 0, "square_avg": np.zeros_like(p.data)}

    def _update_group(self, group: ParamGroup) -> None:
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        weight_decay, momentum = float(group["weight_decay"]), float(group["momentum"])
        centered = group["centered"]
        for p, grad, state in self._with_grads(group):
            state["step"] += 1
            whole_avg = _buffer(state, "grad_avg", p.data) if centered else None
            whole_buf = _buffer(state, "momentum_buffer", p.data) if momentum > 0 else None
            for theta, g, square_avg, grad_avg, buf, b, a in self._blocks(
                    p, grad, state["square_avg"], whole_avg, whole_buf,
                    second=bool(weight_decay)):
                g = with_weight_decay(g, theta, weight_decay, out=a)
                square_avg *= alpha
                square_avg += np.multiply(np.multiply(g, g, out=b), 1.0 - alpha, out=b)
                if centered:
                    grad_avg *= alpha
                    grad_avg += np.multiply(g, 1.0 - alpha, out=b)
                    avg = np.subtract(square_avg, np.multiply(grad_avg, grad_avg, out=b), out=b)
                    np.sqrt(avg, out=avg)
                else:
                    avg = np.sqrt(square_avg, out=b)
                avg += eps
                if momentum > 0:
                    buf *= momentum
                    buf += np.divide(g, avg, out=avg)
                    theta -= np.multiply(buf, lr, out=b)
                else:
                    step = np.divide(g, avg, out=avg)
                    step *= lr
                    theta -= step


def _buffer(state: dict, key: str, like: np.ndarray) -> np.ndarray:
    """state[key], created as zeros the first time it is needed."""
    buf = state.get(key)
    if buf is None:
        buf = state[key] = np.zeros_like(like)
    return buf
