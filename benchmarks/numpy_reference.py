"""A ReLU MLP trained with softmax cross-entropy and SGD with momentum, written out by
hand in NumPy: forward, backward and update, no framework. It is the floor that
`bench_train.py` holds tinygrad_mnist to, so it is made as fast as we know how:

- float32 throughout; every intermediate lives in a buffer allocated once per batch
  size and is written with `out=`, so a step allocates almost nothing;
- the learning rate is folded into the loss gradient (a (B, 10) array), so the
  weight gradients come out already scaled and the update is v ← m·v + lr·g,
  θ ← θ - v: one pass fewer over every weight than θ ← θ - lr·(m·b + g). For a
  constant learning rate this is exactly PyTorch's SGD (v = lr·b);
- the first layer's input gradient is not computed;
- bias gradients are a matrix-vector product with a vector of ones (BLAS), not a
  column sum;
- at batch size 1 the weight gradient is an outer product, written with np.dot:
  NumPy's (n, 1) @ (1, m) matmul is 8x slower, einsum 1.4-1.5x;
- ReLU is `np.maximum` in place against a buffer of zeros (in the training loop this
  measured faster than against the scalar 0), and its gradient is a multiply by a
  float mask;
- a weight of more than 2^17 elements is updated in flat pieces of 2^15, so that each
  pass of the update finds its piece of every array still in the L2 cache (the same
  rule as tinygrad_mnist's optimizers; it makes this update 20-30 % faster for a
  512 x 784 weight);
- the softmax's row sums are a matrix-vector product with ones, like the bias
  gradients (NumPy's sum along a short axis is slow), and its row maxima are taken
  over the first axis of a transposed copy of the logits (NumPy's maximum along a
  short last axis is slow too: 8 µs instead of 2 for 128 x 10).

Weights use PyTorch's layout, (out_features, in_features), and PyTorch's default
initialisation, so the same seed gives the same network as `nn.Linear`.

`fold_lr=False` gives the same code with PyTorch's update instead, b ← m·b + g,
θ ← θ - lr·b, on unscaled gradients: what an optimizer that receives `p.grad` (as
tinygrad_mnist's and PyTorch's do) has to do, one pass more per step. bench_train.py
shows it beside the floor with --with-unfolded, to separate that pass from the
framework's own overhead.
"""
from __future__ import annotations

import math
from typing import Dict, List, Sequence

import numpy as np

# The update's pieces follow the same rule as tinygrad_mnist's optimizers.
from tinygrad_mnist._kernels import BLOCKED_ABOVE, flat_pieces  # noqa: F401


class NumpyMLP:
    """`sizes` = (784, hidden..., 10). `train_step(x, y)` does one SGD step on a batch
    (float32 images (B, 784), integer labels (B,)) and returns the batch's mean loss."""

    def __init__(self, sizes: Sequence[int], lr: float = 0.01, momentum: float = 0.9,
                 seed: int = 0, fold_lr: bool = True):
        rng = np.random.default_rng(seed)
        self.sizes, self.lr, self.momentum = tuple(sizes), np.float32(lr), np.float32(momentum)
        self.fold_lr = fold_lr
        self.weights: List[np.ndarray] = []
        self.biases: List[np.ndarray] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=√5), as nn.Linear
            self.weights.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
            self.biases.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
        # v = lr·(momentum buffer) (the buffer itself if not fold_lr); zero, so the
        # first step sets it to lr·g (g) exactly.
        self.v_weights = [np.zeros_like(w) for w in self.weights]
        self.v_biases = [np.zeros_like(b) for b in self.biases]
        self.g_weights = [np.empty_like(w) for w in self.weights]
        self.g_biases = [np.empty_like(b) for b in self.biases]
        params = self.weights + self.biases
        scratch = [None if fold_lr else np.empty_like(p) for p in params]
        # (θ, v, g, scratch) of every parameter in update pieces; the arrays are only
        # ever written in place, so the pieces are made once.
        self.pieces = [piece for quad in zip(params, self.v_weights + self.v_biases,
                                             self.g_weights + self.g_biases, scratch)
                       for piece in flat_pieces(*quad)]
        self._buffers: Dict[int, dict] = {}

    def _buffers_for(self, batch: int) -> dict:
        bufs = self._buffers.get(batch)
        if bufs is None:
            widths = self.sizes[1:]
            bufs = self._buffers[batch] = {
                "act": [np.empty((batch, n), np.float32) for n in widths],
                "grad": [np.empty((batch, n), np.float32) for n in widths],
                "mask": [np.empty((batch, n), np.float32) for n in widths],
                "zeros": [np.zeros((batch, n), np.float32) for n in widths],
                "ones": np.ones(batch, np.float32),
                "ones_out": np.ones(self.sizes[-1], np.float32),
                "total": np.empty(batch, np.float32),
                "rows": np.arange(batch),
                "logits_t": np.empty((self.sizes[-1], batch), np.float32),
                "rowmax": np.empty(batch, np.float32),
            }
        return bufs

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits for `x` (B, 784), hidden activations kept in the step buffers."""
        bufs = self._buffers_for(len(x))
        a = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = bufs["act"][i]
            np.matmul(a, w.T, out=z)
            z += b
            if i < last:
                np.maximum(z, bufs["zeros"][i], out=z)   # ReLU, in place
            a = z
        return a

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        batch = len(x)
        bufs = self._buffers_for(batch)
        acts, grads, rows = bufs["act"], bufs["grad"], bufs["rows"]
        logits = self.forward(x)

        # Softmax cross-entropy, in place on the logits; d(loss)/d(logits) =
        # (softmax - onehot) / B, here times lr (see the module docstring).
        np.copyto(bufs["logits_t"], logits.T)
        np.max(bufs["logits_t"], axis=0, out=bufs["rowmax"])
        logits -= bufs["rowmax"][:, None]
        picked = logits[rows, y]
        np.exp(logits, out=logits)
        total = np.matmul(logits, bufs["ones_out"], out=bufs["total"])
        loss = float((np.log(total) - picked).sum()) / batch
        g = grads[-1]
        np.divide(logits, total[:, None], out=g)
        g[rows, y] -= 1
        g *= (self.lr if self.fold_lr else 1) / batch

        for i in range(len(self.weights) - 1, -1, -1):
            w, gw = self.weights[i], self.g_weights[i]
            a_in = x if i == 0 else acts[i - 1]
            if batch == 1:  # an outer product: np.dot beats (n,1)@(1,m) and einsum
                np.dot(g.T, a_in, out=gw)
            else:
                np.matmul(g.T, a_in, out=gw)
            np.matmul(bufs["ones"], g, out=self.g_biases[i])
            if i > 0:  # the input gradient, through the ReLU mask
                g_in = grads[i - 1]
                np.matmul(g, w, out=g_in)
                mask = bufs["mask"][i - 1]
                np.greater(acts[i - 1], 0, out=mask)
                g_in *= mask
                g = g_in

        m, lr, fold_lr = self.momentum, self.lr, self.fold_lr
        for p, v, gp, scratch in self.pieces:
            v *= m
            v += gp
            if fold_lr:
                p -= v
            else:
                p -= np.multiply(v, lr, out=scratch)
        return loss

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray):
        """(loss, [dW...], [db...]) unscaled, without updating: for cross-checks."""
        lr, self.lr = self.lr, np.float32(1)
        saved = [p.copy() for p in self.weights + self.biases]
        velocities = [v.copy() for v in self.v_weights + self.v_biases]
        try:
            for v in self.v_weights + self.v_biases:
                v.fill(0)
            loss = self.train_step(x, y)
            return loss, [g.copy() for g in self.g_weights], [g.copy() for g in self.g_biases]
        finally:
            self.lr = lr
            for p, s in zip(self.weights + self.biases, saved):
                p[...] = s
            for v, s in zip(self.v_weights + self.v_biases, velocities):
                v[...] = s


def train_epoch(model: NumpyMLP, x: np.ndarray, y: np.ndarray, batch_size: int,
                rng: np.random.Generator, steps: int = 0) -> float:
    """One shuffled pass (or its first `steps` batches) over (x, y); the summed loss.
    Batches are one gather (np.take) per batch, as in tinygrad_mnist's DataLoader."""
    order = rng.permutation(len(x))
    batches = math.ceil(len(x) / batch_size)
    total = 0.0
    for b in range(min(batches, steps) if steps else batches):
        idx = order[b * batch_size:(b + 1) * batch_size]
        total += model.train_step(np.take(x, idx, axis=0), np.take(y, idx))
    return total
