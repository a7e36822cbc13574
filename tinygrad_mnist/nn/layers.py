"""Layers: `Linear`, `Identity`, activations (`ReLU`, `LeakyReLU`, `Tanh`, `Sigmoid`,
`GELU`, `SiLU`, `ELU`, `Softplus`, `Softmax`, `LogSoftmax`), `Flatten`, `Dropout`,
`Dropout2d`, `BatchNorm1d`, `LayerNorm`.

`inplace=True` (PyTorch's option of ReLU, LeakyReLU and the dropouts) is accepted and
computes out of place: the output is the same, the input is left unchanged.
"""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from .. import ops
from ..device import check_device
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter


class Linear(Module):
    """y = x·Wᵀ + b with `weight` (out_features, in_features) and `bias` (out_features,).

    Initialised like PyTorch: `kaiming_uniform_(weight, a=√5)`, i.e. weight and bias
    both ~ U(-1/√in_features, 1/√in_features), drawn (weight first) from `generator`
    or, by default, `nn.init`'s default generator (see `nn.init.manual_seed`).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: Any = None, dtype: Any = np.float32, *,
                 generator: Optional[np.random.Generator] = None):
        super().__init__()
        if device is not None:
            check_device(device, "Linear")
        if in_features < 0 or out_features < 0:
            raise ValueError(f"Linear: feature counts must be >= 0, got in_features="
                             f"{in_features}, out_features={out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Optional[np.random.Generator] = None) -> None:
        """Draw fresh weights (PyTorch's default initialisation)."""
        init.default_(self.weight, self.bias, generator)

    def forward(self, x: Tensor) -> Tensor:
        if self.bias is None:
            return ops.Linear.apply(x, self.weight)
        return ops.Linear.apply(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """Returns its input (arguments to the constructor are ignored, as in PyTorch)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


class ReLU(Module):
    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return ops.ReLU.apply(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x: Tensor) -> Tensor:
        return ops.LeakyReLU.apply(x, negative_slope=self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.Tanh.apply(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.Sigmoid.apply(x)


class GELU(Module):
    """x·Φ(x) (`F.gelu`; approximate="tanh" for its tanh form)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x·sigmoid(x) (`F.silu`)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class ELU(Module):
    """x for x > 0, else alpha·(exp(x) - 1) (`F.elu`)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softplus(Module):
    """log(1 + exp(beta·x)) / beta, linear above `threshold` (`F.softplus`)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    """softmax along `dim` (if None, PyTorch's implicit choice: see `F.softmax`)."""

    def __init__(self, dim: Optional[int] = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax) along `dim`, fused and stable (`F.log_softmax`)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)


class Flatten(Module):
    """Flatten dimensions start_dim..end_dim (default: all but the batch dimension)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Inverted dropout with probability `p`, active only in training mode. The masks
    come from `generator` (a `numpy.random.Generator`, or an int seed for a private
    one), by default from the default generator (`tg.manual_seed`)."""

    def __init__(self, p: float = 0.5, inplace: bool = False, *,
                 generator: Union[None, int, np.random.Generator] = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: probability p must be in [0, 1], "
                             f"got {p}")
        self.p, self.inplace = p, inplace
        self.generator = (np.random.default_rng(generator)
                          if isinstance(generator, (int, np.integer)) else generator)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Channel dropout of (N, C, H, W) inputs: in training, each channel of each sample
    is zeroed with probability `p` and the others are scaled by 1/(1-p)
    (`F.dropout2d`)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout2d(x, self.p, self.training, generator=self.generator)


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
