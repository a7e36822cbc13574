"""Batch normalisation as one fused `Function` (one op instead of about fifteen
composed), its local gradient derived once by hand and checked against finite
differences by the gradient suite like every other op. Its backward runs on arrays,
and on Tensors in a recorded backward, where x̂ and σ⁻¹ are derived again from the
input by the same `normalise`, so that they are differentiable.
"""
from __future__ import annotations

import math
from typing import Tuple

from .. import _kernels as K
from ..autograd import Function, is_tensor
from .elementwise import Sqrt


def channel_sums(a):
    """Σ over every axis but 1 of (N, C, *spatial): the speed kernel on arrays, `Sum`
    on Tensors (in a recorded backward)."""
    if is_tensor(a):
        return a.sum(axis=(0,) + tuple(range(2, a.ndim)))
    return K.channel_sums(a)


def normalise(x, eps: float):
    """(x̂, σ⁻¹, μ, biased variance) of x per channel: on arrays in forward, and on
    Tensors again in a recorded backward, so that x̂ and σ⁻¹ are differentiable."""
    shape = (1, -1) + (1,) * (x.ndim - 2)                  # how a (C,) vector broadcasts
    count = math.prod(x.shape) // x.shape[1]               # values per channel
    mean = channel_sums(x) / count
    centred = x - mean.reshape(shape)
    var = channel_sums(centred * centred) / count          # biased, as for normalising
    inv_std = (1 / Sqrt.call(var + eps)).reshape(shape)
    return centred * inv_std, inv_std, mean, var           # x̂ = (x - μ)/σ


class BatchNorm(Function):
    """Batch normalisation of x (N, C, *spatial) with the batch's statistics per channel
    C, then `* weight + bias` when given (their presence is `affine`, two booleans).
    One op instead of the ~15 it takes composed (see benchmarks/README.md).
    With `running=(mean, var, momentum, counter)` the running statistics are updated
    in place (the variance unbiased), as PyTorch does, and the counter (a 0-d integer
    array, or None) is incremented; momentum None means 1/counter, a cumulative
    average."""

    def forward(self, x, *params, eps: float, affine: Tuple[bool, bool], running=None):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        count = x.size // x.shape[1]
        xhat, inv_std, mean, var = normalise(x, eps)
        weight = params[0].reshape(shape) if affine[0] else None
        out = xhat * weight if weight is not None else xhat.copy()   # y = x̂·w + b
        if affine[1]:
            out += params[-1].reshape(shape)
        if running is not None:
            running_mean, running_var, momentum, counter = running
            if counter is not None:
                counter += 1
            if momentum is None:
                momentum = 1.0 / int(counter)
            if running_mean is not None:
                running_mean *= 1.0 - momentum
                running_mean += momentum * mean
            if running_var is not None:
                running_var *= 1.0 - momentum
                running_var += momentum * (var * (count / (count - 1)))
        self.save_for_backward(x, params[0] if affine[0] else None, (xhat, inv_std), eps,
                               affine)
        return out

    def backward(self, g):
        # d/db = Σ g,  d/dw = Σ g·x̂,  d/dx = (ĝ - mean(ĝ) - x̂·mean(ĝ·x̂))/σ with ĝ = g·w,
        # sums and means over every axis but the channels; mean(ĝ) = w·Σg/count and
        # mean(ĝ·x̂) = w·Σg·x̂/count, so two channel sums serve all three.
        x, weight, (xhat, inv_std), eps, affine = self.saved
        if is_tensor(x) or is_tensor(weight):              # recorded: derived again
            xhat, inv_std = normalise(x, eps)[:2]
        shape, count = inv_std.shape, math.prod(g.shape) // g.shape[1]
        sum_g, sum_gx = channel_sums(g), channel_sums(g * xhat)
        grads = []
        if self.needs_input_grad[0]:
            scale = inv_std if weight is None else inv_std * weight.reshape(shape)  # 1/σ·w
            grads.append((g - (sum_g / count).reshape(shape)
                          - xhat * (sum_gx / count).reshape(shape)) * scale)
        else:
            grads.append(None)
        if affine[0]:
            grads.append(sum_gx)
        if affine[1]:
            grads.append(sum_g)
        return tuple(grads)
