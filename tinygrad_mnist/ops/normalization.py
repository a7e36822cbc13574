"""Batch normalisation as one fused `Function` (one op instead of about fifteen
composed), its local gradient derived once by hand and checked against finite
differences by the gradient suite like every other op.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .. import _kernels as K
from ..autograd import Function


class BatchNorm(Function):
    """Batch normalisation of x (N, C, *spatial) with the batch's statistics per channel
    C, then `* weight + bias` when given (their presence is `affine`, two booleans).
    One op instead of the ~15 it takes composed (see benchmarks/README.md).
    With `running=(mean, var, momentum, counter)` the running statistics are updated
    in place (the variance unbiased), as PyTorch does, and the counter (a 0-d integer
    array, or None) is incremented; momentum None means 1/counter, a cumulative
    average."""

    def forward(self, x, *params, eps: float, affine: Tuple[bool, bool], running=None):
        shape = (1, -1) + (1,) * (x.ndim - 2)              # how a (C,) vector broadcasts
        count = x.size // x.shape[1]                       # values per channel
        mean = K.channel_sums(x) / count
        xhat = x - mean.reshape(shape)
        var = K.channel_sums(xhat * xhat) / count          # biased, as for normalising
        inv_std = (1 / np.sqrt(var + eps)).reshape(shape)
        xhat *= inv_std                                    # x̂ = (x - μ)/σ
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
        self.save_for_backward(xhat, inv_std, weight, affine)
        return out

    def backward(self, g):
        # d/db = Σ g,  d/dw = Σ g·x̂,  d/dx = (ĝ - mean(ĝ) - x̂·mean(ĝ·x̂))/σ with ĝ = g·w,
        # sums and means over every axis but the channels; mean(ĝ) = w·Σg/count and
        # mean(ĝ·x̂) = w·Σg·x̂/count, so two channel sums serve all three.
        xhat, inv_std, weight, affine = self.saved
        shape, count = inv_std.shape, g.size // g.shape[1]
        sum_g, sum_gx = K.channel_sums(g), K.channel_sums(g * xhat)
        grads = []
        if self.needs_input_grad[0]:
            scale = inv_std if weight is None else inv_std * weight   # σ⁻¹·w
            gx = g - (sum_g / count).reshape(shape)
            gx -= xhat * (sum_gx / count).reshape(shape)
            gx *= scale
            grads.append(gx)
        else:
            grads.append(None)
        if affine[0]:
            grads.append(sum_gx)
        if affine[1]:
            grads.append(sum_g)
        return tuple(grads)
