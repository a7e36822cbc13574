"""2-D max and average pooling over (N, C, H, W) images: the Functions `MaxPool2d` and
`AvgPool2d`. Both work on the kh·kw strided views "element (p, q) of every window" of
the input (`convolution.offset_views`), one vectorised op per kernel offset, and keep
the input's memory layout. Their gradients are Functions too (`MaxPoolScatter` and its
adjoint `MaxPoolGather`; `AvgPoolSpread`, whose adjoint is `AvgPool2d`), so that a
recorded backward differentiates them.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .. import _kernels as K
from ..autograd import Function
from .convolution import check_image, crop, offset_views, output_size, padded, padded_shape


# --------------------------------------------------------------------------- pooling
def _check_pool(op: str, x: np.ndarray, kernel: Tuple[int, int],
                padding: Tuple[int, int]) -> None:
    check_image(op, x)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel "
                         f"size {kernel}")


def _tiles(stride: Tuple[int, int], kernel: Tuple[int, int],
           padding: Tuple[int, int]) -> bool:
    """True when the windows tile the input: no overlap and no padding (fast path)."""
    return tuple(stride) == tuple(kernel) and padding == (0, 0)


class MaxPool2d(Function):
    """Maximum over each kh×kw window of x (N, C, H, W).

    Local gradient: d out[n,c,i,j] / d x = 1 at the window's argmax, 0 elsewhere. With
    ties the gradient goes to the *first* maximum in the window in row-major order (as
    in PyTorch), so it is deterministic; where windows overlap (stride < kernel), an
    element that is the argmax of several windows gets the sum of their gradients.
    """

    def forward(self, x, *, kernel_size: Tuple[int, int], stride: Tuple[int, int],
                padding: Tuple[int, int] = (0, 0)):
        _check_pool("max_pool2d", x, kernel_size, padding)
        out_size = output_size("max_pool2d", x.shape, kernel_size, stride, padding)
        lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        views = offset_views(padded(x, padding, lowest, K.layout(x)), kernel_size, stride,
                              out_size)
        out = views[0].copy(order="K")                     # the input's memory layout
        for view in views[1:]:
            np.maximum(out, view, out=out)
        # Window-offset index of the first maximum (row-major order): the number of
        # leading offsets that do not attain the maximum.
        argmax = np.zeros_like(out, dtype=np.min_scalar_type(len(views)))
        searching = np.ones_like(out, dtype=bool)
        for view in views[:-1]:
            searching &= view != out
            argmax += searching
        self.save_for_backward(x.shape, K.layout(x), argmax, kernel_size, stride, padding,
                               out_size)
        return out

    def backward(self, g):
        return scatter_at_argmax(g, *self.saved)


def scatter_at_argmax(g, shape, layout, argmax, kernel, stride, padding, out_size):
    """`MaxPoolScatter` of g, from what MaxPool2d and MaxPoolGather save."""
    return MaxPoolScatter.call(g, shape=shape, layout=layout, argmax=argmax, kernel=kernel,
                               stride=stride, padding=padding, out_size=out_size)


class MaxPoolScatter(Function):
    """Max pooling's gradient: each window's upstream gradient placed at the window's
    argmax (`argmax`: the offset index), in an input-shaped array stored in `layout`.
    Linear in g: its gradient gathers at the same places (`MaxPoolGather`)."""

    def forward(self, g, *, shape, layout, argmax, kernel, stride, padding, out_size):
        self.save_for_backward(layout, argmax, kernel, stride, padding, out_size)
        g = K.stored(g, layout)
        if _tiles(stride, kernel, padding):
            # Fast path: every input element is in at most one window, so each offset's
            # view is written exactly once: no padded buffer, no accumulation, and no
            # zero-filling unless the windows leave a last row or column out.
            covered = shape[2] % kernel[0] == 0 and shape[3] % kernel[1] == 0
            gx = K.new_array(shape, None if covered else 0, g.dtype, layout)
            for k, view in enumerate(offset_views(gx, kernel, stride, out_size)):
                np.multiply(argmax == k, g, out=view)
            return gx
        gx = K.new_array(padded_shape(shape, padding), 0, g.dtype, layout)
        part = np.empty_like(g)
        for k, view in enumerate(offset_views(gx, kernel, stride, out_size)):
            view += np.multiply(argmax == k, g, out=part)  # overlapping windows add up
        return crop(gx, padding)

    def backward(self, gg):
        layout, argmax, kernel, stride, padding, out_size = self.saved
        return MaxPoolGather.call(gg, argmax=argmax, kernel=kernel, stride=stride,
                                  padding=padding, out_size=out_size)


class MaxPoolGather(Function):
    """x's element at each window's argmax (the adjoint of `MaxPoolScatter`)."""

    def forward(self, x, *, argmax, kernel, stride, padding, out_size):
        self.save_for_backward(x.shape, K.layout(x), argmax, kernel, stride, padding,
                               out_size)
        views = offset_views(padded(x, padding, 0, K.layout(x)), kernel, stride, out_size)
        out = np.zeros(argmax.shape, x.dtype)
        for k, view in enumerate(views):
            out += np.where(argmax == k, view, 0)
        return out

    def backward(self, g):
        return scatter_at_argmax(g, *self.saved)


class AvgPool2d(Function):
    """Mean over each kh×kw window of x (N, C, H, W). Padding counts as zeros in the
    mean (PyTorch's default `count_include_pad=True`): every window divides by kh·kw.

    Local gradient: d out[n,c,i,j] / d x = 1/(kh·kw) on each element of the window;
    overlapping windows add up.
    """

    def forward(self, x, *, kernel_size: Tuple[int, int], stride: Tuple[int, int],
                padding: Tuple[int, int] = (0, 0)):
        _check_pool("avg_pool2d", x, kernel_size, padding)
        if x.dtype.kind != "f":
            x = x.astype(np.float32)
        out_size = output_size("avg_pool2d", x.shape, kernel_size, stride, padding)
        views = offset_views(padded(x, padding, 0, K.layout(x)), kernel_size, stride,
                              out_size)
        out = views[0].copy(order="K")
        for view in views[1:]:
            out += view
        out *= np.asarray(1.0 / len(views), dtype=out.dtype)
        self.save_for_backward(x.shape, K.layout(x), kernel_size, stride, padding, out_size)
        return out

    def backward(self, g):
        shape, layout, kernel, stride, padding, out_size = self.saved
        return AvgPoolSpread.call(g, shape=shape, layout=layout, kernel=kernel,
                                  stride=stride, padding=padding, out_size=out_size)


class AvgPoolSpread(Function):
    """Average pooling's gradient: each window's upstream gradient shared equally over
    the window. Linear in g, and the adjoint of the pooling: its gradient is
    `AvgPool2d` of the upstream gradient."""

    def forward(self, g, *, shape, layout, kernel, stride, padding, out_size):
        self.save_for_backward(kernel, stride, padding)
        share = K.stored(g, layout) * np.asarray(1.0 / (kernel[0] * kernel[1]), dtype=g.dtype)
        gx = K.new_array(padded_shape(shape, padding), 0, g.dtype, layout)
        for view in offset_views(gx, kernel, stride, out_size):
            view += share
        return crop(gx, padding)

    def backward(self, gg):
        kernel, stride, padding = self.saved
        return AvgPool2d.call(gg, kernel_size=kernel, stride=stride, padding=padding)
