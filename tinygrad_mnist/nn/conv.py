"""The convolutional layer `Conv2d` over (N, C, H, W) images, shaped like PyTorch's
(pooling is in `pooling.py`, batch norms in `normalization.py`).

It holds the options and parameters; the computation is `F.conv2d`'s. `kernel_size`,
`stride` and `padding` are an int or an (h, w) pair, as in PyTorch; an input of the
wrong shape raises a ValueError that names the layer.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..device import check_device
from ..ops.convolution import IntOrPair, as_pair
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter


def layer_input_error(layer: Module, x: Tensor, expected: str) -> ValueError:
    return ValueError(f"{type(layer).__name__}: expected input {expected}, got {x.shape}")


def run_naming_layer(layer: Module, op: Any, *args: Any) -> Tensor:
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
        F.only_defaults("Conv2d", dilation=(dilation, 1), groups=(groups, 1),
                        padding_mode=(padding_mode, "zeros"))
        if device is not None:
            check_device(device, "Conv2d")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = as_pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride = as_pair(stride, "stride", "Conv2d", 1)
        self.padding = F.conv_padding(padding, self.kernel_size, self.stride, "Conv2d")
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
            raise layer_input_error(self, x, f"(N, {self.in_channels}, H, W)")
        return run_naming_layer(self, F.conv2d, x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        return text + ("" if self.bias is not None else ", bias=False")
