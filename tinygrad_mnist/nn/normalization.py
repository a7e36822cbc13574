"""Normalisation layers: `BatchNorm1d`, `BatchNorm2d` (batch statistics per channel,
running statistics for eval) and `LayerNorm` (each sample over its last dimensions).
The computation is `F.batch_norm`'s and `F.layer_norm`'s.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..device import check_device
from ..tensor import Tensor
from . import functional as F
from .module import Module, Parameter


class BatchNorm1d(Module):
    """Batch normalisation over (N, C) or (N, C, L) inputs, per channel C.

    Training: normalise with the batch mean and (biased) variance, and update the
    running statistics as running = (1 - momentum)·running + momentum·batch, with the
    unbiased batch variance (momentum=None: cumulative average). Eval: use the
    running statistics. `affine` adds a learned scale `weight` and shift `bias`.
    See `F.batch_norm`.
    """

    def __init__(self, num_features: int, eps: float = 1e-5,
                 momentum: Optional[float] = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None,
                 dtype: Any = np.float32):
        super().__init__()
        if device is not None:
            check_device(device, type(self).__name__)
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm1d: momentum must be in [0, 1] or None, "
                             f"got {momentum}")
        if not eps > 0:
            raise ValueError(f"BatchNorm1d: eps must be > 0, got {eps}")
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.fill(0)
            self.running_var.fill(1)
            self.num_batches_tracked.fill(0)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d: expected input (N, {self.num_features}) or "
                             f"(N, {self.num_features}, L), got {x.shape}")
        counting = self.training and self.track_running_stats  # (momentum None: average)
        track = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if track else None,
                            self.running_var if track else None, self.weight, self.bias,
                            self.training or not self.track_running_stats, self.momentum,
                            self.eps, num_batches_tracked=(self.num_batches_tracked
                                                           if counting else None))

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm2d(BatchNorm1d):
    """Batch normalisation of (N, C, H, W) images per channel C, with statistics over
    N, H and W: `BatchNorm1d`'s rules (running statistics, momentum, train/eval,
    affine) applied to the (N, C, H·W) view of the input."""

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d: expected input (N, {self.num_features}, H, W), got "
                             f"{x.shape}")
        n, c, h, w = x.shape
        return super().forward(x.reshape(n, c, h * w)).reshape(n, c, h, w)


class LayerNorm(Module):
    """Normalises each sample over its last dimensions, of `normalized_shape`, to mean 0
    and variance 1 (`F.layer_norm`), then scales by `weight` (ones) and shifts by
    `bias` (zeros) of that shape if `elementwise_affine`."""

    def __init__(self, normalized_shape: Any, eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, device: Any = None,
                 dtype: Any = np.float32):
        super().__init__()
        if device is not None:
            check_device(device, "LayerNorm")
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
            tuple(normalized_shape)
        if not shape or not all(isinstance(n, int) and n >= 1 for n in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive ints, got "
                             f"{normalized_shape!r}")
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        self.register_parameter("weight", Parameter(np.ones(shape, dtype))
                                if elementwise_affine else None)
        self.register_parameter("bias", Parameter(np.zeros(shape, dtype))
                                if elementwise_affine and bias else None)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
