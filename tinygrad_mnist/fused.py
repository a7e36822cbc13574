"""Fused ops: one `Function` for what would take many composed ones, with its local
gradient derived once by hand. `BatchNorm` is fused for speed (one op instead of about
fifteen), `CrossEntropy` for speed and stability (softmax and log never overflow, and
the logits' gradient is simply softmax minus target), the two binary cross-entropies
for stability and PyTorch's gradient where composed logarithms would give 0·∞. All are
checked against finite differences by the gradient suite like every other op.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from . import _kernels as K
from .autograd import Function


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


class CrossEntropy(Function):
    """Softmax cross-entropy of logits (N, C) against integer labels (N,) or
    probability targets (N, C), with label smoothing. Fused: the logits' gradient
    is (softmax - target) times the upstream gradient."""

    def forward(self, logits, target=None, *, labels=None, reduction: str = "mean",
                label_smoothing: float = 0.0):
        n, c = logits.shape
        logits = np.ascontiguousarray(logits)              # rows in order: ravel() is a view
        shifted = logits - K.row_max(logits, 1)            # exp never overflows
        probs = np.exp(shifted)
        sums = K.row_sums(probs)
        probs /= sums[:, None]                             # softmax, kept for backward
        log_sums = np.log(sums)                            # log p = shifted - log_sums
        s = label_smoothing
        logp = None
        if labels is not None:
            at_label = K.label_positions(n, c, labels)     # flat indices of the labels
            loss = log_sums - shifted.ravel()[at_label]    # -log p[label]
            if s:                                          # -Σ log p = C·log_sums - Σ shifted
                loss = (1 - s) * loss + (s / c) * (c * log_sums - K.row_sums(shifted))
        else:
            at_label = None
            logp = shifted - log_sums[:, None]
            if s:
                target = (1 - s) * target + s / c
            loss = -K.row_sums(target * logp)
        self.save_for_backward(probs, logp, target, at_label, reduction, s)
        if reduction == "none":
            return loss
        total = loss.sum()                                 # a scalar of the logits' dtype
        if reduction == "mean":                            # an empty batch's mean is NaN
            return total / n if n else total.dtype.type(np.nan)
        return total

    def backward(self, g):
        probs, logp, target, at_label, reduction, s = self.saved
        n, c = probs.shape
        if reduction == "none":
            scale = g[:, None]
        else:                                              # a Python number: no array op
            scale = float(g) / max(n, 1) if reduction == "mean" else float(g)
        glogits = gtarget = None
        if self.needs_input_grad[0]:
            if at_label is not None:                       # target = (1-s)·onehot + s/C
                glogits = probs - s / c if s else probs.copy()
                glogits.ravel()[at_label] -= 1 - s
            else:
                glogits = probs * target.sum(axis=1, keepdims=True) - target
            glogits *= scale
        if len(self.needs_input_grad) > 1 and self.needs_input_grad[1]:
            gtarget = -(1 - s) * logp * scale              # d/dt = -(1-s)·log p
        return (glogits, gtarget) if at_label is None else glogits


class BinaryCrossEntropy(Function):
    """Elementwise -(t·log x + (1-t)·log(1-x)) of probabilities x against targets t of
    the same shape, each logarithm at least -100 (PyTorch's clamp, so x = 0 or 1 costs
    100, not infinity). Fused for the gradient PyTorch uses, (x - t) / max(x(1-x), 1e-12),
    finite where the composed logarithms' would be 0·∞."""

    def forward(self, x, t):
        with np.errstate(divide="ignore"):                 # log 0 = -inf, then clamped
            log_x = np.maximum(np.log(x), -100)
            log_1mx = np.maximum(np.log1p(-x), -100)
        self.save_for_backward(x, t, log_x, log_1mx)
        return -(t * log_x + (1 - t) * log_1mx)

    def backward(self, g):
        x, t, log_x, log_1mx = self.saved
        gx = g * (x - t) / np.maximum(x * (1 - x), 1e-12)
        gt = g * (log_1mx - log_x) if self.needs_input_grad[1] else None
        return gx, gt


class BinaryCrossEntropyWithLogits(Function):
    """Elementwise binary cross-entropy of logits z against targets t, stable for any z:
    (1-t)·z + w·softplus(-z) with w = 1 + (p - 1)·t, p the `pos_weight` that PyTorch
    puts on the positive term (1 if not given), and softplus(-z) = log(1 + e^-z) =
    max(-z, 0) + log(1 + e^-|z|). Local gradients: d/dz = (1-t) - w·sigmoid(-z), which
    is sigmoid(z) - t for p = 1; d/dt = -z + (p - 1)·softplus(-z)."""

    def forward(self, z, t, *, pos_weight=None):
        p = 1 if pos_weight is None else pos_weight
        softplus = np.maximum(-z, 0) + np.log1p(np.exp(-np.abs(z)))
        w = 1 + (p - 1) * t
        self.save_for_backward(z, t, p, w, softplus)
        return (1 - t) * z + w * softplus

    def backward(self, g):
        z, t, p, w, softplus = self.saved
        sigmoid_neg = np.exp(-np.logaddexp(0, z))          # 1 / (1 + e^z), never overflows
        gz = g * ((1 - t) - w * sigmoid_neg)
        gt = g * (-z + (p - 1) * softplus) if self.needs_input_grad[1] else None
        return gz, gt
