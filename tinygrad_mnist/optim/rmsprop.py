"""RMSprop, optionally centered and with momentum."""
from __future__ import annotations

import numpy as np

from .optimizer import (Hyperparameters, Optimizer, ParamGroup, Params, Piece, State,
                        check_range)


class RMSprop(Optimizer):
    """PyTorch's RMSprop. Per step, with g the gradient:

        g ← g + weight_decay·θ                                (if weight_decay ≠ 0)
        square_avg ← alpha·square_avg + (1 - alpha)·g²
        if centered:
            grad_avg ← alpha·grad_avg + (1 - alpha)·g
            avg ← √(square_avg - grad_avg²) + eps
        else:
            avg ← √square_avg + eps
        if momentum > 0:
            momentum_buffer ← momentum·momentum_buffer + g/avg
            θ ← θ - lr·momentum_buffer
        else:
            θ ← θ - lr·g/avg

    The state arrays start at zero.
    """

    state_arrays = {"square_avg": None, "grad_avg": "centered",
                    "momentum_buffer": "momentum"}

    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check_group(self, group: ParamGroup) -> None:
        super()._check_group(group)
        for key in ("alpha", "eps", "weight_decay", "momentum"):
            check_range("RMSprop", key, group[key])

    def _prepare(self, hp: Hyperparameters, state: State, theta: np.ndarray) -> None:
        state["step"] = state.get("step", 0) + 1

    def update(self, hp: Hyperparameters, piece: Piece, g_buf: np.ndarray,
               tmp: np.ndarray) -> None:
        theta, grad, square_avg, grad_avg, momentum_buffer = piece
        alpha = hp.alpha
        g = grad
        if hp.weight_decay:
            g = np.multiply(theta, hp.weight_decay, out=g_buf)
            g += grad
        square_avg *= alpha
        square_avg += np.multiply(np.multiply(g, g, out=tmp), 1.0 - alpha, out=tmp)
        if hp.centered:
            grad_avg *= alpha
            grad_avg += np.multiply(g, 1.0 - alpha, out=tmp)
            avg = np.subtract(square_avg, np.multiply(grad_avg, grad_avg, out=tmp), out=tmp)
            np.sqrt(avg, out=avg)
        else:
            avg = np.sqrt(square_avg, out=tmp)
        avg += hp.eps
        if hp.momentum > 0:
            momentum_buffer *= hp.momentum
            momentum_buffer += np.divide(g, avg, out=avg)
            theta -= np.multiply(momentum_buffer, hp.lr, out=tmp)
        else:
            theta -= np.multiply(np.divide(g, avg, out=avg), hp.lr, out=avg)
