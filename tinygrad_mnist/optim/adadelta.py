"""Adadelta."""
from __future__ import annotations

import numpy as np

from .optimizer import (Hyperparameters, Optimizer, ParamGroup, Params, Piece, State,
                        check_range)


class Adadelta(Optimizer):
    """PyTorch's Adadelta. Per step, with g the gradient:

        g ← g + weight_decay·θ                         (if weight_decay ≠ 0)
        square_avg ← ρ·square_avg + (1 - ρ)·g²
        delta ← √(acc_delta + eps) / √(square_avg + eps) · g
        acc_delta ← ρ·acc_delta + (1 - ρ)·delta²
        θ ← θ - lr·delta

    Both state arrays start at zero.
    """

    state_arrays = {"square_avg": None, "acc_delta": None}

    def __init__(self, params: Params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    def _check_group(self, group: ParamGroup) -> None:
        super()._check_group(group)
        check_range("Adadelta", "rho", group["rho"], 0.0, 1.0 + 1e-12)
        check_range("Adadelta", "eps", group["eps"])
        check_range("Adadelta", "weight_decay", group["weight_decay"])

    def _prepare(self, hp: Hyperparameters, state: State, theta: np.ndarray) -> None:
        state["step"] = state.get("step", 0) + 1

    def update(self, hp: Hyperparameters, piece: Piece, g_buf: np.ndarray,
               tmp: np.ndarray) -> None:
        theta, grad, square_avg, acc_delta = piece
        rho = hp.rho
        g = grad
        if hp.weight_decay:
            g = np.multiply(theta, hp.weight_decay, out=g_buf)
            g += grad
        square_avg *= rho
        square_avg += np.multiply(np.multiply(g, g, out=tmp), 1.0 - rho, out=tmp)
        std = np.sqrt(np.add(square_avg, hp.eps, out=tmp), out=tmp)
        delta = np.divide(g, std, out=g_buf)                # g is no longer needed
        delta *= np.sqrt(np.add(acc_delta, hp.eps, out=tmp), out=tmp)
        acc_delta *= rho
        acc_delta += np.multiply(np.multiply(delta, delta, out=tmp), 1.0 - rho, out=tmp)
        delta *= hp.lr
        theta -= delta
