"""Fused losses: one `Function` for what would take many composed ones, with its local
gradient derived once by hand. `CrossEntropy` is fused for speed and stability (softmax
and log never overflow, and the logits' gradient is simply softmax minus target), the
two binary cross-entropies for stability and PyTorch's gradient where composed
logarithms would give 0·∞. All are checked against finite differences by the gradient
suite like every other op.

Each backward runs on arrays, and on Tensors in a recorded backward: there the values
that forward derived from the inputs and kept (softmax, logarithms) are derived again
from the input Tensors by the same Functions, so that they are differentiable.
"""
from __future__ import annotations

import numpy as np

from .. import _kernels as K
from ..autograd import Function, is_tensor
from .elementwise import Exp, Extremum, Log, Log1p, Sigmoid
from .movement import Concatenate
from .reduce import LogSoftmax


class CrossEntropy(Function):
    """Softmax cross-entropy of logits (N, C) against integer labels (N,) or
    probability targets (N, C), with label smoothing. Fused: the logits' gradient
    is (softmax - target) times the upstream gradient."""

    def forward(self, logits, target=None, *, labels=None, reduction: str = "mean",
                label_smoothing: float = 0.0):
        n, c = logits.shape
        logits_in, target_in = logits, target
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
        self.save_for_backward(logits_in, target_in, (probs, logp, target), labels, reduction, s)
        if reduction == "none":
            return loss
        total = loss.sum()                                 # a scalar of the logits' dtype
        if reduction == "mean":                            # an empty batch's mean is NaN
            return total / n if n else total.dtype.type(np.nan)
        return total

    def backward(self, g):
        logits, target, kept, labels, reduction, s = self.saved
        n, c = logits.shape
        if is_tensor(logits) or is_tensor(target):         # recorded: derived again
            logp = LogSoftmax.call(logits, axis=1)
            probs = Exp.call(logp)
            target = target if target is None or not s else (1 - s) * target + s / c
        else:
            probs, logp, target = kept
        if reduction == "none":
            scale = g[:, None]
        else:                                              # on arrays, a Python number
            scale = g if is_tensor(g) else float(g)
            scale = scale / max(n, 1) if reduction == "mean" else scale
        glogits = gtarget = None
        if self.needs_input_grad[0]:
            if labels is not None:                         # target = (1-s)·onehot + s/C
                at_label = np.zeros((n, c), probs.dtype)
                at_label[np.arange(n), labels] = 1 - s
                glogits = ((probs - s / c if s else probs) - at_label) * scale
            else:
                glogits = (probs * target.sum(axis=1, keepdims=True) - target) * scale
        if len(self.needs_input_grad) > 1 and self.needs_input_grad[1]:
            gtarget = -(1 - s) * logp * scale              # d/dt = -(1-s)·log p
        return (glogits, gtarget) if labels is None else glogits


class BinaryCrossEntropy(Function):
    """Elementwise -(t·log x + (1-t)·log(1-x)) of probabilities x against targets t of
    the same shape, each logarithm at least -100 (PyTorch's clamp, so x = 0 or 1 costs
    100, not infinity). Fused for the gradient PyTorch uses, (x - t) / max(x(1-x), 1e-12),
    finite where the composed logarithms' would be 0·∞."""

    def forward(self, x, t):
        with np.errstate(divide="ignore"):                 # log 0 = -inf, then clamped
            log_x = np.maximum(np.log(x), -100)
            log_1mx = np.maximum(np.log1p(-x), -100)
        self.save_for_backward(x, t, (log_x, log_1mx))
        return -(t * log_x + (1 - t) * log_1mx)

    def backward(self, g):
        x, t, (log_x, log_1mx) = self.saved
        floor = np.asarray(1e-12, g.dtype)
        gx = g * (x - t) / Extremum.call(x * (1 - x), floor, fn=np.maximum)
        gt = None
        if self.needs_input_grad[1]:
            if is_tensor(x):                               # recorded: derived again
                lowest = np.asarray(-100, g.dtype)
                with np.errstate(divide="ignore"):
                    log_x = Extremum.call(Log.call(x), lowest, fn=np.maximum)
                    log_1mx = Extremum.call(Log1p.call(-x), lowest, fn=np.maximum)
            gt = g * (log_1mx - log_x)
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
        self.save_for_backward(z, t, p, softplus)
        return (1 - t) * z + w * softplus

    def backward(self, g):
        z, t, p, softplus = self.saved
        w = 1 + (p - 1) * t
        gz = g * ((1 - t) - w * Sigmoid.call(-z))          # σ(-z) = 1 / (1 + e^z)
        gt = None
        if self.needs_input_grad[1]:
            if is_tensor(z):            # recorded: derived again, smooth and stable as
                pair = Concatenate.call(z.reshape(z.shape + (1,)),       # -log σ(z) =
                                        np.zeros(z.shape + (1,), z.dtype), axis=z.ndim)
                softplus = -LogSoftmax.call(pair, axis=z.ndim)[..., 0]   # -log softmax(z, 0)₀
            gt = g * (-z + (p - 1) * softplus)
        return gz, gt
