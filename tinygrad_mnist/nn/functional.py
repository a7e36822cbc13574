"""Stateless neural-network functions (`import tinygrad_mnist.nn.functional as F`),
with PyTorch's names and signatures; each takes Tensors or NumPy arrays.

All are built from the engine's ops, so their gradients come with them. `inplace=True`
is accepted and computes out of place: the result is the same, the input is left as it
was (see docs/pytorch.md).
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Optional, Tuple

import numpy as np

from .. import autograd, ops
from ..mixin.base import data_of, refuse_bool, require_floating
from ..ops.convolution import IntOrPair, as_pair
from ..tensor import ArrayLike, Tensor, as_tensor, stack
from . import init

__all__ = ["linear", "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu", "elu",
           "softplus", "log_softmax", "softmax", "batch_norm", "layer_norm",
           "adaptive_avg_pool2d", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "dropout", "dropout2d",
           "conv2d", "max_pool2d", "avg_pool2d", "one_hot"]

REDUCTIONS = ("mean", "sum", "none")


def _tensor(x: ArrayLike) -> Tensor:
    """`x` as a Tensor, as `tg.fn` takes it (`as_tensor`)."""
    return x if isinstance(x, Tensor) else as_tensor(x)


def check_reduction(name: str, reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', "
                         f"got {reduction!r}")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def linear(input: ArrayLike, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """y = input·weightᵀ + bias, with weight (out_features, in_features) (fused op).
    The input, weight and bias must have one floating-point dtype, as in PyTorch."""
    x = input if isinstance(input, Tensor) else as_tensor(input)
    dtype = x.data.dtype                                   # (checked inline: a hot path)
    if dtype != weight.data.dtype or dtype.kind != "f" or (
            bias is not None and bias.data.dtype != dtype):
        _mixed_dtypes("linear", x, weight, bias)
    if bias is None:
        return ops.Linear.apply(x, weight)
    return ops.Linear.apply(x, weight, bias)


def _mixed_dtypes(op: str, x: Tensor, *params: Optional[Tensor]) -> None:
    """A TypeError unless x and the parameters share one floating-point dtype (NumPy
    would silently compute an int64 input with float32 weights in float64)."""
    dtypes = [t.dtype for t in (x, *params) if t is not None]
    if x.dtype.kind != "f" or len(set(dtypes)) > 1:
        raise TypeError(f"{op}: the input ({x.dtype}) and the parameters "
                        f"({', '.join(str(d) for d in dtypes[1:])}) must share one "
                        f"floating-point dtype, as in PyTorch; convert the input, e.g. "
                        f"x.float()")


def relu(input: ArrayLike, inplace: bool = False) -> Tensor:
    """max(x, 0) (`input.relu()`)."""
    return (input if isinstance(input, Tensor) else as_tensor(input)).relu()


def leaky_relu(input: ArrayLike, negative_slope: float = 0.01, inplace: bool = False
               ) -> Tensor:
    """x if x > 0 else negative_slope·x (`input.leaky_relu(negative_slope)`)."""
    return _tensor(input).leaky_relu(negative_slope)


def tanh(input: ArrayLike) -> Tensor:
    """`input.tanh()`: integers and booleans give float32, as in PyTorch."""
    return _tensor(input).tanh()


def sigmoid(input: ArrayLike) -> Tensor:
    """`input.sigmoid()`: integers and booleans give float32, as in PyTorch."""
    return _tensor(input).sigmoid()


def gelu(input: ArrayLike, approximate: str = "none") -> Tensor:
    """x·Φ(x), Φ the standard normal CDF: ½x·erfc(-x/√2) (= ½x(1 + erf(x/√2)), without its
    cancellation for negative x); with approximate="tanh",
    ½x(1 + tanh(√(2/π)(x + 0.044715x³)))."""
    x = _tensor(input)
    require_floating("gelu", x)
    if approximate == "none":
        return x * 0.5 * (x * (-1.0 / math.sqrt(2.0))).erfc()
    if approximate == "tanh":
        return x * 0.5 * (1.0 + ((x + 0.044715 * x ** 3) * math.sqrt(2.0 / math.pi)).tanh())
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input: ArrayLike, inplace: bool = False) -> Tensor:
    """x·sigmoid(x) (also called swish)."""
    x = _tensor(input)
    require_floating("silu", x)
    return x * x.sigmoid()


def elu(input: ArrayLike, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, else alpha·(exp(x) - 1)."""
    x = _tensor(input)
    require_floating("elu", x)
    negative = alpha * (x.clamp(max=0.0).exp() - 1.0)  # exp of x <= 0 only: no overflow
    return x.where(x.data > 0, negative)


def softplus(input: ArrayLike, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta·x)) / beta, smooth ReLU; x itself where beta·x > threshold."""
    x = _tensor(input)
    require_floating("softplus", x)
    bx = x * beta
    linear = bx.data > threshold
    return x.where(linear, bx.clamp(max=threshold).exp().log1p() * (1.0 / beta))


def _implicit_dim(name: str, ndim: int) -> int:
    """PyTorch's (deprecated) choice of dimension when none is given: 0 for 0-, 1- and
    3-D input, else 1; with a warning, as PyTorch gives."""
    dim = 0 if ndim in (0, 1, 3) else 1
    warnings.warn(f"{name}: no dim given, so dim={dim} is taken for {ndim}-D input, as "
                  f"PyTorch does; pass dim explicitly", UserWarning, stacklevel=3)
    return dim


def log_softmax(input: ArrayLike, dim: Optional[int] = None) -> Tensor:
    """log(softmax) along `dim` (PyTorch's implicit choice if None), fused and stable."""
    input = _tensor(input)
    return input.log_softmax(_implicit_dim("log_softmax", input.ndim) if dim is None else dim)


def softmax(input: ArrayLike, dim: Optional[int] = None) -> Tensor:
    """softmax along `dim` (PyTorch's implicit choice if None)."""
    input = _tensor(input)
    return input.softmax(_implicit_dim("softmax", input.ndim) if dim is None else dim)


def one_hot(tensor: ArrayLike, num_classes: int = -1) -> Tensor:
    """Integer labels (any shape) as one-hot int64 vectors along a new last dimension
    of `num_classes` (max label + 1 if -1)."""
    labels = np.asarray(_array(tensor))
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer class labels, got {labels.dtype}")
    n = int(labels.max()) + 1 if num_classes == -1 and labels.size else num_classes
    if labels.size and (labels.min() < 0 or labels.max() >= n):
        raise ValueError(f"one_hot: class values must be in [0, {n}), got "
                         f"{labels.min()}..{labels.max()}")
    return Tensor(np.eye(max(n, 0), dtype=np.int64)[labels])


def batch_norm(input: ArrayLike, running_mean: Optional[np.ndarray],
               running_var: Optional[np.ndarray], weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, training: bool = False,
               momentum: Optional[float] = 0.1, eps: float = 1e-5, *,
               num_batches_tracked: Optional[np.ndarray] = None) -> Tensor:
    """Batch normalisation of (N, C, *spatial), e.g. (N, C), (N, C, L) or (N, C, H, W),
    per channel C, with statistics over every axis but C.

    training: (x - mean)/√(var + eps) with the batch mean and biased variance, and
    (if given) running = (1 - momentum)·running + momentum·batch statistic, in place,
    with the unbiased variance (one fused op, `ops.BatchNorm`). Otherwise: the running
    statistics normalise (composed from engine ops). Then `* weight + bias` if given.
    Differentiable in x, weight and bias. `num_batches_tracked` (a module's counter, a
    0-d integer array), when training with running statistics, is incremented in place;
    momentum=None then makes them the cumulative average (momentum 1/count)."""
    input = _tensor(input)
    require_floating("batch_norm", input)
    running_mean, running_var = data_of(running_mean), data_of(running_var)
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected input (N, C, *spatial), got {input.shape}")
    channels = input.shape[1]
    shape = (-1,) + (1,) * (input.ndim - 2)  # how a (C,) vector broadcasts
    if training:
        if input.data.size // max(channels, 1) <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                             f"training, got input {input.shape}")
        params = [t for t in (weight, bias) if t is not None]
        running = None
        if running_mean is not None or running_var is not None:
            if momentum is None and num_batches_tracked is None:
                raise ValueError("batch_norm: momentum=None (a cumulative average) needs "
                                 "num_batches_tracked, the count of batches so far")
            running = (running_mean, running_var, momentum, num_batches_tracked)
        return ops.BatchNorm.apply(input, *params, eps=eps, running=running,
                                     affine=(weight is not None, bias is not None))
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are needed "
                         "when not training")
    inv_std = 1.0 / np.sqrt(running_var + eps)
    out = (input - running_mean.reshape(shape)) * inv_std.reshape(shape)
    if weight is not None:
        out = out * (weight if input.ndim == 2 else weight.reshape(shape))
    if bias is not None:
        out = out + (bias if input.ndim == 2 else bias.reshape(shape))
    return out


def layer_norm(input: ArrayLike, normalized_shape: Any, weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
    """(x - mean)/√(var + eps) over the last dimensions, of `normalized_shape`, of each
    sample (the biased variance), then `* weight + bias` (of that shape) if given."""
    x = _tensor(input)
    require_floating("layer_norm", x)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
        tuple(normalized_shape)
    if not shape or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"layer_norm: normalized_shape {list(shape)} must be the last "
                         f"dimensions of the input, got input {x.shape}")
    dims = tuple(range(x.ndim - len(shape), x.ndim))
    mean = x.mean(dims, keepdim=True)
    centred = x - mean
    variance = (centred * centred).mean(dims, keepdim=True)
    out = centred / (variance + eps).sqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def adaptive_output_size(output_size: Any, height: int, width: int) -> Tuple[int, int]:
    """An adaptive pooling's (height, width) for an input of `height` x `width`:
    `output_size` is an int, or a pair where None keeps that side."""
    pair = (output_size, output_size) if not isinstance(output_size, (tuple, list)) \
        else tuple(output_size)
    if len(pair) != 2 or not all(v is None or (isinstance(v, int) and v >= 1) for v in pair):
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int >= 1 or a pair "
                         f"of them (None keeps a side), got {output_size!r}")
    return pair[0] or height, pair[1] or width


def adaptive_avg_pool2d(input: ArrayLike, output_size: Any) -> Tensor:
    """Average pooling of (N, C, H, W) or (C, H, W) to `output_size` (an int, or an
    (h, w) pair where None keeps that side): output cell i of a side of length L out of
    n averages the input rows floor(i·L/n) to ceil((i+1)·L/n) - 1, as PyTorch's."""
    x = _tensor(input)
    require_floating("adaptive_avg_pool2d", x)
    if x.ndim not in (3, 4) or 0 in x.shape[-2:]:
        raise ValueError(f"adaptive_avg_pool2d: expected input (N, C, H, W) or (C, H, W) "
                         f"with H, W >= 1, got {x.shape}")
    h, w = x.shape[-2:]
    oh, ow = adaptive_output_size(output_size, h, w)

    def window(i: int, n: int, length: int) -> slice:
        return slice(i * length // n, -(-(i + 1) * length // n))

    rows = [stack([x[..., window(i, oh, h), window(j, ow, w)].mean((-2, -1))
                   for j in range(ow)], -1) for i in range(oh)]
    return stack(rows, -2)


# ---------------------------------------------------------- convolution and pooling
def only_defaults(op: str, **given: Tuple[Any, Any]) -> None:
    """ValueError naming the first of PyTorch's options given (value, default) whose
    value is not the default, the only value supported."""
    for name, (value, default) in given.items():
        plain = value == default if not isinstance(value, (tuple, list)) else \
            all(v == default for v in value)
        if not plain:
            raise ValueError(f"{op}: {name}={value!r} is not supported, only "
                             f"{name}={default!r}")


def conv_padding(padding: Any, kernel: Tuple[int, int], stride: Tuple[int, int],
                 op: str) -> Tuple[int, int]:
    """`padding` as an (h, w) pair: an int or pair, or PyTorch's "valid" (none) and
    "same" (the output as large as the input: stride 1, and an odd kernel, whose
    padding is the same on both sides)."""
    if not isinstance(padding, str):
        return as_pair(padding, "padding", op, 0)
    if padding == "valid":
        return (0, 0)
    if padding != "same":
        raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got "
                         f"{padding!r}")
    if stride != (1, 1):
        raise ValueError(f"{op}: padding='same' needs stride 1, got stride={stride}")
    if kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
        raise ValueError(f"{op}: padding='same' with the even kernel {kernel} would pad one "
                         f"side more than the other, which is not supported; use an odd "
                         f"kernel or give the padding")
    return kernel[0] // 2, kernel[1] // 2


def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
           stride: IntOrPair = 1, padding: Any = 0, dilation: IntOrPair = 1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) like `torch.nn.functional.conv2d`:
    input (N, C_in, H, W), weight (C_out, C_in, kh, kw), optional bias (C_out,), giving
    (N, C_out, OH, OW). `stride` is an int or an (h, w) pair, `padding` (zeros) too, or
    "valid" or "same" (`conv_padding`); `dilation` and `groups` only 1."""
    only_defaults("conv2d", dilation=(dilation, 1), groups=(groups, 1))
    x, w = _tensor(input), _tensor(weight)
    _mixed_dtypes("conv2d", x, w, None if bias is None else _tensor(bias))
    stride_pair = as_pair(stride, "stride", "conv2d", 1)
    options = dict(stride=stride_pair,
                   padding=conv_padding(padding, tuple(w.shape[2:]), stride_pair, "conv2d"))
    if bias is None:
        return ops.Conv2d.apply(x, w, **options)
    return ops.Conv2d.apply(x, w, _tensor(bias), **options)


def _pool_options(op: str, kernel_size: IntOrPair, stride: Optional[IntOrPair],
                  padding: IntOrPair) -> dict:
    kernel = as_pair(kernel_size, "kernel_size", op, 1)
    return dict(kernel_size=kernel,
                stride=kernel if stride is None else as_pair(stride, "stride", op, 1),
                padding=as_pair(padding, "padding", op, 0))


def max_pool2d(input: Tensor, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    """Max pooling like `torch.nn.functional.max_pool2d` over input (N, C, H, W);
    `stride` defaults to `kernel_size`; padding (at most half the kernel) never wins the
    max. Ties send the gradient to the first maximum of the window in row-major order.
    dilation, ceil_mode and return_indices only at their defaults."""
    only_defaults("max_pool2d", dilation=(dilation, 1), ceil_mode=(ceil_mode, False),
                  return_indices=(return_indices, False))
    return ops.MaxPool2d.apply(_tensor(input), **_pool_options("max_pool2d", kernel_size,
                                                              stride, padding))


def avg_pool2d(input: Tensor, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """Average pooling like `torch.nn.functional.avg_pool2d` over input (N, C, H, W);
    `stride` defaults to `kernel_size`; zero padding counts in the mean.
    ceil_mode, count_include_pad and divisor_override only at their defaults. The
    average of integers is float32 (PyTorch truncates it to int64)."""
    only_defaults("avg_pool2d", ceil_mode=(ceil_mode, False),
                  count_include_pad=(count_include_pad, True),
                  divisor_override=(divisor_override, None))
    x = _tensor(input)
    refuse_bool("avg_pool2d", x)
    return ops.AvgPool2d.apply(x, **_pool_options("avg_pool2d", kernel_size, stride, padding))


# ---------------------------------------------------------------------------- losses
def _array(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def check_labels(name: str, labels: np.ndarray, n: int, c: int) -> np.ndarray:
    """`labels` as (n,) integer class indices in [0, c), or a one-line error."""
    if labels.dtype.kind not in "iub":
        raise TypeError(f"{name}: target must hold integer class labels, got {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"{name}: labels must have shape ({n},) for {n} samples, "
                         f"got {labels.shape}")
    labels = labels.astype(np.intp, copy=False)
    if n and labels.view(np.uintp).max() >= c:  # viewed unsigned, a label < 0 is huge
        bad = labels[(labels < 0) | (labels >= c)][0]
        raise ValueError(f"{name}: class label {bad} is outside [0, {c})")
    return labels


def _one_sample(loss_fn: Any, input: Tensor, target: Any, reduction: str,
                **options: Any) -> Tensor:
    """A loss of one sample (C,) as the loss of a batch of one."""
    target = target if isinstance(target, Tensor) else np.asarray(target)
    target = target.reshape(1, -1) if target.ndim == 1 else target.reshape(1)
    loss = loss_fn(input.reshape(1, -1), target, reduction=reduction, **options)
    return loss.reshape(()) if reduction == "none" else loss


def _per_position(name: str, loss_fn: Any, input: Tensor, target: Any, reduction: str,
                  **options: Any) -> Tensor:
    """A loss of (N, C, d1, ..., dk) scores as the loss of a batch of its N·d1⋯dk
    positions, each one sample (C,); "none" gives the (N, d1, ..., dk) losses."""
    n, c, *spatial = input.shape
    axes = (0, *range(2, input.ndim), 1)                   # the class axis last
    target = target if isinstance(target, Tensor) else np.asarray(target)
    if target.shape == input.shape:                        # class probabilities
        target = target.permute(*axes) if isinstance(target, Tensor) else \
            np.transpose(target, axes)
        target = target.reshape(-1, c)
    elif target.shape == (n, *spatial):
        target = target.reshape(-1)
    else:
        raise ValueError(f"{name}: for input {input.shape} the target must be labels of "
                         f"shape {(n, *spatial)} or probabilities of the input's shape, "
                         f"got {tuple(target.shape)}")
    loss = loss_fn(input.permute(*axes).reshape(-1, c), target, reduction=reduction,
                   **options)
    return loss.reshape(n, *spatial) if reduction == "none" else loss


def check_legacy(name: str, size_average: Any, reduce: Any) -> None:
    """PyTorch's deprecated size_average and reduce keep their places in the signature
    (so PyTorch's positional calls line up) but only `reduction` is taken."""
    if size_average is not None or reduce is not None:
        raise ValueError(f"{name}: size_average and reduce are deprecated in PyTorch and "
                         f"not supported; use reduction='mean', 'sum' or 'none'")


def _class_weights(name: str, weight: Any, c: int) -> Optional[np.ndarray]:
    """`weight` as a constant float (C,) array of per-class weights (None: all 1)."""
    if weight is None:
        return None
    if isinstance(weight, str):
        raise TypeError(f"{name}: weight must hold {c} class weights, got the string "
                        f"{weight!r} (give reduction={weight!r} by name)")
    w = _array(weight)
    if w.shape != (c,) or w.dtype.kind not in "iuf" or not np.isfinite(w).all():
        raise ValueError(f"{name}: weight must be {c} finite numbers, one per class, got "
                         f"{w.dtype} {w.shape}")
    return w


def _weighted_nll(name: str, log_p: Tensor, target: np.ndarray, weight: Optional[np.ndarray],
                  ignore_index: int, reduction: str, label_smoothing: float = 0.0) -> Tensor:
    """PyTorch's weighted, label-smoothed NLL of log-probabilities (N, C) at integer
    labels, as the math reads: sample i costs -w[y_i]·log p[i, y_i] (with smoothing ε,
    (1-ε) of that plus ε/C of -Σ_c w[c]·log p[i, c]); labels equal to `ignore_index` cost
    0; "mean" divides by the summed weights of the labels kept."""
    n, c = log_p.shape
    keep = target != ignore_index
    labels = check_labels(name, np.where(keep, target, 0), n, c)
    w = np.ones(c, log_p.dtype) if weight is None else weight.astype(log_p.dtype)
    w_y = np.where(keep, w[labels], 0).astype(log_p.dtype)    # each sample's weight
    loss = -log_p[np.arange(n), labels] * w_y
    if label_smoothing:
        smooth = -(log_p * w).sum(axis=1) * keep.astype(log_p.dtype)
        loss = loss * (1.0 - label_smoothing) + smooth * (label_smoothing / c)
    if reduction != "mean":
        return _reduce(loss, reduction)
    if not keep.any():  # every label ignored: NaN, and no gradient at all, as in PyTorch
        return loss.sum() * 0.0 + float("nan")
    total = float(w_y.sum())
    return loss.sum() * (1.0 / total if total else float("nan"))  # zero weights: NaN


def cross_entropy(input: ArrayLike, target: ArrayLike, weight: Optional[ArrayLike] = None,
                  size_average: None = None, ignore_index: int = -100, reduce: None = None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy, stable (`torch.nn.functional.cross_entropy`, same signature).

    `input` holds logits (N, C) or (C,), or (N, C, d1, ..., dk) for a score per class
    at each position (the loss of each position, as a sample); `target` integer class
    labels (N,) or () (or (N, d1, ..., dk)), or class probabilities of the logits' shape
    (e.g. one-hot). `weight` (C,) scales each
    class's loss; labels equal to `ignore_index` add nothing. `reduction` is "mean" (over
    the N samples; with `weight` and labels, ÷ the summed weights of the labels kept),
    "sum" or "none". Without `weight` or ignored labels it is one fused op."""
    check_legacy("cross_entropy", size_average, reduce)
    check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], "
                         f"got {label_smoothing}")
    input = _tensor(input)
    require_floating("cross_entropy", input)
    if input.ndim == 1:
        return _one_sample(cross_entropy, input, target, reduction, weight=weight,
                           ignore_index=ignore_index, label_smoothing=label_smoothing)
    if input.ndim > 2:
        return _per_position("cross_entropy", cross_entropy, input, target, reduction,
                             weight=weight, ignore_index=ignore_index,
                             label_smoothing=label_smoothing)
    n, c = input.shape
    w = _class_weights("cross_entropy", weight, c)
    target_data = _array(target)
    if target_data.dtype.kind in "iub":
        if w is not None or (target_data == ignore_index).any():
            return _weighted_nll("cross_entropy", input.log_softmax(axis=1), target_data, w,
                                 ignore_index, reduction, label_smoothing)
        labels = check_labels("cross_entropy", target_data, n, c)
        return ops.CrossEntropy.apply(input, labels=labels, reduction=reduction,
                                        label_smoothing=label_smoothing)
    if target_data.shape != input.shape:
        raise ValueError(f"cross_entropy: probability targets must have the logits' "
                         f"shape {input.shape}, got {target_data.shape}")
    if w is not None:  # -Σ_c w[c]·q[i, c]·log p[i, c], q the smoothed target; mean ÷ N
        q = as_tensor(target, input.dtype) * (1.0 - label_smoothing) + label_smoothing / c
        return _reduce(-(input.log_softmax(axis=1) * q * w.astype(input.dtype)).sum(axis=1),
                       reduction)
    return ops.CrossEntropy.apply(input, as_tensor(target, input.dtype),
                                    reduction=reduction, label_smoothing=label_smoothing)


def nll_loss(input: ArrayLike, target: ArrayLike, weight: Optional[ArrayLike] = None,
             size_average: None = None, ignore_index: int = -100, reduce: None = None,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities `input` (N, C) or (C,) (or
    (N, C, d1, ..., dk)) at the integer labels `target` (N,) or () (or (N, d1, ..., dk))
    (`torch.nn.functional.nll_loss`, same signature); `weight` and `ignore_index` as in
    `cross_entropy`."""
    check_legacy("nll_loss", size_average, reduce)
    check_reduction("nll_loss", reduction)
    input = _tensor(input)
    require_floating("nll_loss", input)
    if input.ndim == 1:
        if _array(target).shape != ():
            raise ValueError(f"nll_loss: a single sample (C,) needs a scalar label, "
                             f"got shape {_array(target).shape}")
        return _one_sample(nll_loss, input, target, reduction, weight=weight,
                           ignore_index=ignore_index)
    if input.ndim > 2:  # labels only: a per-position batch of probabilities fails below
        return _per_position("nll_loss", nll_loss, input, target, reduction, weight=weight,
                             ignore_index=ignore_index)
    n, c = input.shape
    target_data = _array(target)
    if target_data.dtype.kind not in "iub":
        check_labels("nll_loss", target_data, n, c)   # the error for non-integer labels
    w = _class_weights("nll_loss", weight, c)
    if w is not None or (target_data == ignore_index).any():
        return _weighted_nll("nll_loss", input, target_data, w, ignore_index, reduction)
    labels = check_labels("nll_loss", target_data, n, c)
    return _reduce(-input[np.arange(n), labels], reduction)


def _same_shape_target(name: str, input: Tensor, target: ArrayLike) -> Tensor:
    target = as_tensor(target, input.dtype)
    if target.shape != input.shape:
        raise ValueError(f"{name}: target shape {target.shape} differs from input shape "
                         f"{input.shape}")
    return target


def _broadcast_constant(name: str, what: str, value: ArrayLike, like: Tensor) -> np.ndarray:
    """`value` as a constant array of `like`'s dtype that broadcasts to its shape."""
    array = _array(value).astype(like.dtype)
    try:
        np.broadcast_to(array, like.shape)
    except ValueError:
        raise ValueError(f"{name}: {what} of shape {array.shape} does not broadcast to the "
                         f"input's {like.shape}") from None
    return array


def _weighted(name: str, loss: Tensor, weight: Optional[ArrayLike]) -> Tensor:
    """`loss` times `weight` (a constant broadcast to the loss's shape), if given."""
    return loss if weight is None else loss * _broadcast_constant(name, "weight", weight, loss)


def binary_cross_entropy(input: ArrayLike, target: ArrayLike,
                         weight: Optional[ArrayLike] = None, size_average: None = None,
                         reduce: None = None, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities `input` in [0, 1] against `target` of the
    same shape (`torch.nn.functional.binary_cross_entropy`): -(t·log x + (1-t)·log(1-x))
    per element, each logarithm at least -100 as in PyTorch, times `weight` if given."""
    check_legacy("binary_cross_entropy", size_average, reduce)
    check_reduction("binary_cross_entropy", reduction)
    input = _tensor(input)
    require_floating("binary_cross_entropy", input)
    target = _same_shape_target("binary_cross_entropy", input, target)
    x = input.data
    if x.size and not (x.min() >= 0 and x.max() <= 1):   # NaN fails too
        raise ValueError(f"binary_cross_entropy: input must be probabilities in [0, 1], "
                         f"got values in [{x.min()}, {x.max()}] (for logits use "
                         f"binary_cross_entropy_with_logits)")
    loss = ops.BinaryCrossEntropy.apply(input, target)
    return _reduce(_weighted("binary_cross_entropy", loss, weight), reduction)


def binary_cross_entropy_with_logits(input: ArrayLike, target: ArrayLike,
                                     weight: Optional[ArrayLike] = None,
                                     size_average: None = None, reduce: None = None,
                                     reduction: str = "mean",
                                     pos_weight: Optional[ArrayLike] = None) -> Tensor:
    """Binary cross-entropy of logits `input` (sigmoid applied inside, stably) against
    `target` of the same shape (`torch.nn.functional.binary_cross_entropy_with_logits`);
    `pos_weight` scales the positive term (broadcast along the last axis: one per
    class), `weight` each element's loss."""
    name = "binary_cross_entropy_with_logits"
    check_legacy(name, size_average, reduce)
    check_reduction(name, reduction)
    input = _tensor(input)
    require_floating("binary_cross_entropy_with_logits", input)
    target = _same_shape_target(name, input, target)
    if pos_weight is not None:
        pos_weight = _broadcast_constant(name, "pos_weight", pos_weight, input)
    loss = ops.BinaryCrossEntropyWithLogits.apply(input, target, pos_weight=pos_weight)
    return _reduce(_weighted(name, loss, weight), reduction)


def l1_loss(input: ArrayLike, target: ArrayLike, reduction: str = "mean") -> Tensor:
    """Mean (or summed, or elementwise) absolute error; shapes must match."""
    check_reduction("l1_loss", reduction)
    input = _tensor(input)
    require_floating("l1_loss", input)
    return _reduce((input - _same_shape_target("l1_loss", input, target)).abs(), reduction)


def mse_loss(input: ArrayLike, target: ArrayLike, reduction: str = "mean") -> Tensor:
    """Mean (or summed, or elementwise) squared error; shapes must match."""
    check_reduction("mse_loss", reduction)
    input = _tensor(input)
    require_floating("mse_loss", input)
    diff = input - _same_shape_target("mse_loss", input, target)
    return _reduce(diff * diff, reduction)


def dropout(input: ArrayLike, p: float = 0.5, training: bool = True, inplace: bool = False,
            *, generator: Optional[np.random.Generator] = None) -> Tensor:
    """Inverted dropout: in training, zero each element with probability `p` and scale
    the rest by 1/(1-p), so eval needs no rescaling. The mask comes from `generator`
    (default: the default generator, `tg.manual_seed`)."""
    return _dropout("dropout", input, p, training, generator, lambda shape: shape)


def dropout2d(input: ArrayLike, p: float = 0.5, training: bool = True,
              inplace: bool = False, *,
              generator: Optional[np.random.Generator] = None) -> Tensor:
    """Channel dropout of (N, C, H, W) (or (C, H, W)) input: in training, zero whole
    channels with probability `p` and scale the others by 1/(1-p)."""
    if _tensor(input).ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected input (N, C, H, W) or (C, H, W), got "
                         f"{_tensor(input).shape}")
    return _dropout("dropout2d", input, p, training, generator,
                    lambda shape: shape[:-2] + (1, 1))


def _dropout(name: str, input: ArrayLike, p: float, training: bool,
             generator: Optional[np.random.Generator], mask_shape: Any) -> Tensor:
    """input times a mask of shape `mask_shape(input.shape)` (broadcast over the rest)
    holding 0 with probability p and 1/(1-p) otherwise."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: probability p must be in [0, 1], got {p}")
    input = _tensor(input)
    if not training or p == 0.0:
        return input
    shape = mask_shape(input.shape)
    if p == 1.0:                                           # input·0, of any dtype
        scale = np.zeros(shape, dtype=input.dtype)
    else:                                                  # 1/(1-p) needs a float input
        require_floating(name, input)
        rng = init.default_generator() if generator is None else generator
        scale = autograd.recorded(dropout_mask, rng, shape, p, input.dtype)
    return ops.Mul.apply(input, as_tensor(scale))


def dropout_mask(rng: np.random.Generator, shape: Tuple[int, ...], p: float,
                 dtype: np.dtype) -> np.ndarray:
    """Inverted dropout's mask, drawn from `rng`: 0 with probability p, else 1/(1-p)."""
    keep = rng.random(shape, dtype=np.float32) >= p
    scale = keep.astype(dtype)
    scale *= 1.0 / (1.0 - p)
    return scale
