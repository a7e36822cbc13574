"""Convolutional layers over (N, C, H, W) images: `Conv2d`, `MaxPool2d`, `AvgPool2d`,
`AdaptiveAvgPool2d` and `BatchNorm2d`, shaped like PyTorch's.

They hold the options and parameters; the computation is `tinygrad_mnist.conv`'s
(`conv2d`, `max_pool2d`, `avg_pool2d`) and `F`'s (`adaptive_avg_pool2d`, `batch_norm`). `kernel_size`, `stride`
and `padding` are an int or an (h, w) pair, as in PyTorch; an input of the wrong shape
raises a ValueError that names the layer.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import conv as C
from ..device import check_device
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import BatchNorm1d
from .module import Module, Parameter

IntOrPair = C.IntOrPair


def _shape_error(layer: Module, x: Tensor, expected: str) -> ValueError:
    return ValueError(f"{type(layer).__name__}: expected input {expected}, got {x.shape}")


def _run(layer: Module, op: Any, *args: Any) -> Tensor:
    """op(*args), with a ValueError about the input (e.g. smaller than the kernel)
    naming the layer and its options."""
    try:
        return op(*args)
    except ValueError as e:
        raise ValueError(f"{type(layer).__name__}({layer.extra_repr()}): {e}") from None


class Conv2d(Module):
    """2-D convolution (cross-correlation) of (N, in_channels, H, W) images, giving
    (N, out_channels, OH, OW) with OH = (H + 2·padding - kernel) // stride + 1.

    `weight` is (out_channels, in_channels, kh, kw) and `bias` (out_channels,). Both
    are initialised like PyTorch's: `kaiming_uniform_(weight, a=√5)`, i.e.
    U(-1/√fan_in, 1/√fan_in) with fan_in = in_channels·kh·kw, and the bias from the
    same range, drawn (weight first) from `generator` or `nn.init`'s default one.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: Any = 0, dilation: IntOrPair = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device: Any = None, dtype: Any = np.float32, *,
                 generator: Optional[np.random.Generator] = None):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"Conv2d: channel counts must be >= 1, got in_channels="
                             f"{in_channels}, out_channels={out_channels}")
        C.only_defaults("Conv2d", dilation=(dilation, 1), groups=(groups, 1),
                        padding_mode=(padding_mode, "zeros"))
        if device is not None:
            check_device(device, "Conv2d")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = C.as_pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride = C.as_pair(stride, "stride", "Conv2d", 1)
        self.padding = C.conv_padding(padding, self.kernel_size, self.stride, "Conv2d")
        self.weight = Parameter(np.empty((out_channels, in_channels, *self.kernel_size),
                                         dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Optional[np.random.Generator] = None) -> None:
        """Draw fresh weights (PyTorch's default initialisation)."""
        init.default_(self.weight, self.bias, generator)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise _shape_error(self, x, f"(N, {self.in_channels}, H, W)")
        return _run(self, C.conv2d, x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        return text + ("" if self.bias is not None else ", bias=False")


class _Pool2d(Module):
    """Options shared by the pooling layers; `stride` defaults to `kernel_size`."""

    op: Any = None  # the functional form in tinygrad_mnist.conv

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0):
        super().__init__()
        name = type(self).__name__
        kernel = C.as_pair(kernel_size, "kernel_size", name, 1)
        pad = C.as_pair(padding, "padding", name, 0)
        if stride is not None:
            C.as_pair(stride, "stride", name, 1)
        if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
            raise ValueError(f"{name}: padding {padding!r} must be at most half the "
                             f"kernel size {kernel_size!r}")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise _shape_error(self, x, "(N, C, H, W)")
        return _run(self, type(self).op, x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Maximum over kernel_size windows (see `tinygrad_mnist.conv.max_pool2d`): ties
    send the gradient to the first maximum; padding never wins. PyTorch's other options
    are taken at their defaults only."""

    op = staticmethod(C.max_pool2d)

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, return_indices: bool = False,
                 ceil_mode: bool = False):
        C.only_defaults("MaxPool2d", dilation=(dilation, 1), ceil_mode=(ceil_mode, False),
                        return_indices=(return_indices, False))
        super().__init__(kernel_size, stride, padding)


class AvgPool2d(_Pool2d):
    """Mean over kernel_size windows (see `tinygrad_mnist.conv.avg_pool2d`); zero
    padding counts in the mean (PyTorch's count_include_pad=True). PyTorch's other
    options are taken at their defaults only."""

    op = staticmethod(C.avg_pool2d)

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: Optional[int] = None):
        C.only_defaults("AvgPool2d", ceil_mode=(ceil_mode, False),
                        count_include_pad=(count_include_pad, True),
                        divisor_override=(divisor_override, None))
        super().__init__(kernel_size, stride, padding)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed `output_size` whatever the input's (`F.adaptive_avg_pool2d`):
    `AdaptiveAvgPool2d(1)` is global average pooling."""

    def __init__(self, output_size: Any):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class BatchNorm2d(BatchNorm1d):
    """Batch normalisation of (N, C, H, W) images per channel C, with statistics over
    N, H and W: `BatchNorm1d`'s rules (running statistics, momentum, train/eval,
    affine) applied to the (N, C, H·W) view of the input."""

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise _shape_error(self, x, f"(N, {self.num_features}, H, W)")
        n, c, h, w = x.shape
        return super().forward(x.reshape(n, c, h * w)).reshape(n, c, h, w)
