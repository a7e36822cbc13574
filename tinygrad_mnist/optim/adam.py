"""Adam (L2 weight decay added to the gradient) and AdamW (decoupled weight decay)."""
from __future__ import annotations

import math
from typing import Any, Dict, Tuple

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, ParamGroup, Params, check_range, with_weight_decay


class Adam(Optimizer):
    """PyTorch's Adam. Per step t = 1, 2, ..., with g the gradient:

        g ← g + weight_decay·θ                        (Adam, if weight_decay ≠ 0)
        θ ← θ·(1 - lr·weight_decay)                   (AdamW instead)
        m ← β1·m + (1 - β1)·g;   v ← β2·v + (1 - β2)·g²
        v_max ← max(v_max, v), used in place of v     (if amsgrad)
        θ ← θ - lr/(1 - β1^t) · m / (√v/√(1 - β2^t) + eps)

    m, v and v_max start at zero; the maximum is taken before bias correction, as
    PyTorch does (and now documents).
    """

    decoupled_weight_decay = False

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

    def _initial_state(self, p: Tensor, group: ParamGroup) -> Dict[str, Any]:
        return {"step": 0, "exp_avg": np.zeros_like(p.data),
                "exp_avg_sq": np.zeros_like(p.data)}

    def _update_group(self, group: ParamGroup) -> None:
        lr, eps = float(group["lr"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        amsgrad, decoupled = group["amsgrad"], self.decoupled_weight_decay
        for p, grad, state in self._with_grads(group):
            state["step"] += 1
            t = state["step"]
            whole_max = None
            if amsgrad:
                whole_max = state.get("max_exp_avg_sq")
                if whole_max is None:
                    whole_max = state["max_exp_avg_sq"] = np.zeros_like(p.data)
            for theta, g, exp_avg, exp_avg_sq, max_exp_avg_sq, b, a in self._blocks(
                    p, grad, state["exp_avg"], state["exp_avg_sq"], whole_max,
                    second=bool(weight_decay) and not decoupled):
                if decoupled:
                    if weight_decay:
                        theta *= 1.0 - lr * weight_decay
                else:
                    g = with_weight_decay(g, theta, weight_decay, out=a)
                exp_avg *= beta1
                exp_avg += np.multiply(g, 1.0 - beta1, out=b)
                exp_avg_sq *= beta2
                exp_avg_sq += np.multiply(np.multiply(g, g, out=b), 1.0 - beta2, out=b)
                second = exp_avg_sq
                if amsgrad:
                    second = np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
                denom = np.sqrt(second, out=b)
                denom /= math.sqrt(1.0 - beta2 ** t)
                denom += eps
                step = np.divide(exp_avg, denom, out=b)
                step *= lr / (1.0 - beta1 ** t)
                theta -= step


class AdamW(Adam):
    """Adam with decoupled weight decay: θ ← θ·(1 - lr·weight_decay) before the Adam
    step, which then sees the plain gradient (see `Adam`)."""

    decoupled_weight_decay = True

    def __init__(self, params: Params, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
