"""Adam (L2 weight decay added to the gradient) and AdamW (decoupled weight decay)."""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from .optimizer import (Hyperparameters, Optimizer, ParamGroup, Params, Piece, State,
                        check_range)


class Adam(Optimizer):
    """PyTorch's Adam. Per step t = 1, 2, ..., with g the gradient and β1, β2 = betas:

        step_size ← lr/(1 - β1^t);  bias_correction2_sqrt ← √(1 - β2^t)
        g ← g + weight_decay·θ                        (Adam, if weight_decay ≠ 0)
        θ ← θ·(1 - lr·weight_decay)                   (AdamW instead)
        exp_avg ← β1·exp_avg + (1 - β1)·g
        exp_avg_sq ← β2·exp_avg_sq + (1 - β2)·g²
        max_exp_avg_sq ← max(max_exp_avg_sq, exp_avg_sq)             (if amsgrad)
        denom ← √exp_avg_sq / bias_correction2_sqrt + eps   (√max_exp_avg_sq if amsgrad)
        θ ← θ - step_size·exp_avg/denom

    The state arrays start at zero; the maximum is taken before bias correction, as
    PyTorch does (and now documents).
    """

    decoupled_weight_decay = False
    state_arrays = {"exp_avg": None, "exp_avg_sq": None, "max_exp_avg_sq": "amsgrad"}

    def __init__(self, params: Params, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def _check_group(self, group: ParamGroup) -> None:
        name = type(self).__name__
        super()._check_group(group)
        betas = group["betas"]
        if not isinstance(betas, tuple) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        check_range(name, "beta1", betas[0], 0.0, 1.0)
        check_range(name, "beta2", betas[1], 0.0, 1.0)
        check_range(name, "eps", group["eps"])
        check_range(name, "weight_decay", group["weight_decay"])

    def _prepare(self, hp: Hyperparameters, state: State, theta: np.ndarray) -> None:
        state["step"] = t = state.get("step", 0) + 1
        beta1, beta2 = hp.betas
        hp.step_size = hp.lr / (1.0 - beta1 ** t)
        hp.bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** t)

    def update(self, hp: Hyperparameters, piece: Piece, g_buf: np.ndarray,
               tmp: np.ndarray) -> None:
        theta, grad, exp_avg, exp_avg_sq, max_exp_avg_sq = piece
        beta1, beta2 = hp.betas
        g = grad
        if hp.weight_decay and self.decoupled_weight_decay:
            theta *= 1.0 - hp.lr * hp.weight_decay
        elif hp.weight_decay:
            g = np.multiply(theta, hp.weight_decay, out=g_buf)
            g += grad
        exp_avg *= beta1
        exp_avg += np.multiply(g, 1.0 - beta1, out=tmp)
        exp_avg_sq *= beta2
        exp_avg_sq += np.multiply(np.multiply(g, g, out=tmp), 1.0 - beta2, out=tmp)
        if hp.amsgrad:
            np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        denom = np.sqrt(max_exp_avg_sq if hp.amsgrad else exp_avg_sq, out=tmp)
        denom /= hp.bias_correction2_sqrt
        denom += hp.eps
        step = np.divide(exp_avg, denom, out=tmp)
        step *= hp.step_size
        theta -= step


class AdamW(Adam):
    """Adam with decoupled weight decay: θ ← θ·(1 - lr·weight_decay) before the Adam
    step, which then sees the plain gradient (see `Adam`)."""

    decoupled_weight_decay = True

    def __init__(self, params: Params, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
