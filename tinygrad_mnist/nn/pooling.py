"""Pooling layers over (N, C, H, W) images: `MaxPool2d`, `AvgPool2d` and
`AdaptiveAvgPool2d`, shaped like PyTorch's. They hold the options; the computation is
`F.max_pool2d`'s, `F.avg_pool2d`'s and `F.adaptive_avg_pool2d`'s. An input of the wrong
shape raises a ValueError that names the layer.
"""
from __future__ import annotations

from typing import Any, Optional

from ..ops.convolution import IntOrPair, as_pair
from ..tensor import Tensor
from . import functional as F
from .conv import layer_input_error, run_naming_layer
from .module import Module


class _Pool2d(Module):
    """Options shared by the pooling layers; `stride` defaults to `kernel_size`."""

    op: Any = None  # the functional form in nn.functional

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0):
        super().__init__()
        name = type(self).__name__
        kernel = as_pair(kernel_size, "kernel_size", name, 1)
        pad = as_pair(padding, "padding", name, 0)
        if stride is not None:
            as_pair(stride, "stride", name, 1)
        if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
            raise ValueError(f"{name}: padding {padding!r} must be at most half the "
                             f"kernel size {kernel_size!r}")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise layer_input_error(self, x, "(N, C, H, W)")
        return run_naming_layer(self, type(self).op, x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Maximum over kernel_size windows (see `F.max_pool2d`): ties
    send the gradient to the first maximum; padding never wins. PyTorch's other options
    are taken at their defaults only."""

    op = staticmethod(F.max_pool2d)

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, return_indices: bool = False,
                 ceil_mode: bool = False):
        F.only_defaults("MaxPool2d", dilation=(dilation, 1), ceil_mode=(ceil_mode, False),
                        return_indices=(return_indices, False))
        super().__init__(kernel_size, stride, padding)


class AvgPool2d(_Pool2d):
    """Mean over kernel_size windows (see `F.avg_pool2d`); zero
    padding counts in the mean (PyTorch's count_include_pad=True). PyTorch's other
    options are taken at their defaults only."""

    op = staticmethod(F.avg_pool2d)

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: Optional[int] = None):
        F.only_defaults("AvgPool2d", ceil_mode=(ceil_mode, False),
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
