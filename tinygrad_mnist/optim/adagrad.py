"""Adagrad, with learning-rate decay."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, ParamGroup, Params, check_range, with_weight_decay


class Adagrad(Optimizer):
    """PyTorch's Adagrad. Per step t = 1, 2, ..., with g the gradient:

        lr_t ← lr / (1 + (t - 1)·lr_decay)
        g ← g + weight_decay·θ                        (if weight_decay ≠ 0)
        s ← s + g²                                    (s starts at initial_accumulator_value)
        θ ← θ - lr_t·g/(√s + eps)
    """

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

    def _initial_state(self, p: Tensor, group: ParamGroup) -> Dict[str, Any]:
        return {"step": 0, "sum": np.full_like(p.data, group["initial_accumulator_value"])}

    def _update_group(self, group: ParamGroup) -> None:
        lr, lr_decay, eps = float(group["lr"]), float(group["lr_decay"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        for p, grad, state in self._with_grads(group):
            state["step"] += 1
            clr = lr / (1.0 + (state["step"] - 1) * lr_decay)
            for theta, g, total, b, a in self._blocks(p, grad, state["sum"],
                                                      second=bool(weight_decay)):
                g = with_weight_decay(g, theta, weight_decay, out=a)
                total += np.multiply(g, g, out=b)
                std = np.sqrt(total, out=b)
                std += eps
                step = np.divide(g, std, out=b)
                step *= clr
                theta -= step
