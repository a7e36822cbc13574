"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""
from __future__ import annotations

import numpy as np

from .optimizer import (Optimizer, ParamGroup, Params, check_range, scalar,
                        with_weight_decay)


class SGD(Optimizer):
    """PyTorch's SGD. Per step, with g the gradient:

        g ← g + weight_decay·θ                        (if weight_decay ≠ 0)
        b ← g at the first step, else momentum·b + (1 - dampening)·g
        g ← g + momentum·b if nesterov else b         (if momentum ≠ 0)
        θ ← θ - lr·g
    """

    def __init__(self, params: Params, lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_group(self, group: ParamGroup) -> None:
        super()._check_group(group)
        check_range("SGD", "momentum", group["momentum"])
        check_range("SGD", "dampening", group["dampening"])
        check_range("SGD", "weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero "
                             "dampening")

    def _update_group(self, group: ParamGroup) -> None:
        lr, momentum = float(group["lr"]), float(group["momentum"])
        dampening, weight_decay = float(group["dampening"]), float(group["weight_decay"])
        nesterov = group["nesterov"]
        extra = bool(momentum and (dampening or nesterov))
        for p, grad, state in self._with_grads(group):
            m, step_size = scalar(momentum, p.data.dtype), scalar(lr, p.data.dtype)
            whole_buf, first = None, False
            if momentum:
                whole_buf = state.get("momentum_buffer")
                first = whole_buf is None
                if first:
                    whole_buf = state["momentum_buffer"] = np.empty_like(p.data)
            for theta, g, buf, a, b in self._blocks(p, grad, whole_buf, second=extra):
                g = with_weight_decay(g, theta, weight_decay, out=a)
                step = g
                if momentum:
                    if first:                              # b ← g at the first step
                        np.copyto(buf, g)
                    else:
                        buf *= m
                        buf += np.multiply(g, 1.0 - dampening, out=b) if dampening else g
                    if nesterov:
                        step = np.multiply(buf, momentum, out=b)
                        step += g
                    else:
                        step = buf
                if step is a or step is b:
                    step *= step_size
                else:  # the gradient or the momentum buffer: scale into a free scratch array
                    step = np.multiply(step, step_size, out=a)
                theta -= step
