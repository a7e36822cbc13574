"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""
from __future__ import annotations

import numpy as np

from .._kernels import scalar
from .optimizer import (Hyperparameters, Optimizer, ParamGroup, Params, Piece, State,
                        check_range)


class SGD(Optimizer):
    """PyTorch's SGD. Per step, with g the gradient:

        g ← g + weight_decay·θ                               (if weight_decay ≠ 0)
        if momentum ≠ 0:
            momentum_buffer ← g                              (its first step)
            momentum_buffer ← momentum·momentum_buffer + (1 - dampening)·g   (later)
            g ← g + momentum·momentum_buffer if nesterov, else momentum_buffer
        θ ← θ - lr·g
    """

    state_arrays = {"momentum_buffer": "momentum"}

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

    def _prepare(self, hp: Hyperparameters, state: State, theta: np.ndarray) -> None:
        hp.first_step = state.get("momentum_buffer") is None
        # momentum and lr as arrays of θ's dtype: the same numbers, faster NumPy calls
        hp.scalars = scalar(hp.momentum, theta.dtype), scalar(hp.lr, theta.dtype)

    def update(self, hp: Hyperparameters, piece: Piece, g_buf: np.ndarray,
               tmp: np.ndarray) -> None:
        theta, grad, momentum_buffer = piece
        momentum, lr = hp.scalars
        g = grad
        if hp.weight_decay:
            g = np.multiply(theta, hp.weight_decay, out=g_buf)
            g += grad
        if hp.momentum:
            if hp.first_step:
                np.copyto(momentum_buffer, g)
            else:
                momentum_buffer *= momentum
                momentum_buffer += (np.multiply(g, 1.0 - hp.dampening, out=tmp)
                                    if hp.dampening else g)
            if hp.nesterov:
                g = np.add(np.multiply(momentum_buffer, momentum, out=tmp), g, out=tmp)
            else:
                g = momentum_buffer
        theta -= np.multiply(g, lr, out=g if g is g_buf else tmp)  # tmp is free by now
