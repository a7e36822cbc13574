"""Adagrad, with learning-rate decay."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import (Hyperparameters, Optimizer, ParamGroup, Params, Piece, State,
                        check_range)


class Adagrad(Optimizer):
    """PyTorch's Adagrad. Per step t = 1, 2, ..., with g the gradient:

        clr ← lr / (1 + (t - 1)·lr_decay)
        g ← g + weight_decay·θ                        (if weight_decay ≠ 0)
        state_sum ← state_sum + g²                    (state "sum")
        std ← √state_sum + eps
        θ ← θ - clr·g/std

    state_sum starts at initial_accumulator_value.
    """

    state_arrays = {"sum": None}

    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps))

    def _check_group(self, group: ParamGroup) -> None:
        super()._check_group(group)
        for key in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_range("Adagrad", key, group[key])

    def _new_state_array(self, name: str, p: Tensor, group: ParamGroup) -> np.ndarray:
        return np.full_like(p.data, group["initial_accumulator_value"])

    def _prepare(self, hp: Hyperparameters, state: State, theta: np.ndarray) -> None:
        state["step"] = state.get("step", 0) + 1
        hp.clr = hp.lr / (1.0 + (state["step"] - 1) * hp.lr_decay)

    def update(self, hp: Hyperparameters, piece: Piece, g_buf: np.ndarray,
               tmp: np.ndarray) -> None:
        theta, grad, state_sum = piece
        g = grad
        if hp.weight_decay:
            g = np.multiply(theta, hp.weight_decay, out=g_buf)
            g += grad
        state_sum += np.multiply(g, g, out=tmp)
        std = np.sqrt(state_sum, out=tmp)
        std += hp.eps
        step = np.divide(g, std, out=tmp)
        step *= hp.clr
        theta -= step
