"""2-D convolution and pooling over (N, C, H, W) images: the Functions `Conv2d`,
`MaxPool2d`, `AvgPool2d` and the functional wrappers `conv2d`, `max_pool2d`,
`avg_pool2d`, shaped like `torch.nn.functional`'s.

Conventions (PyTorch's): images are (N, C, H, W); a conv weight is (out_c, in_c, kh, kw)
and its bias (out_c,); `kernel_size`, `stride` and `padding` are an int or an (h, w)
pair; an output side is `(size + 2·padding - kernel) // stride + 1` (no ceil mode, no
dilation, no groups). The op computes a cross-correlation, as every framework does:

    out[n, o, i, j] = b[o] + Σ_{c,p,q} x_pad[n, c, i·sh + p, j·sw + q] · w[o, c, p, q]

How it is computed, without Python loops over pixels or images:

* Convolution is one BLAS matrix product. im2col copies every kh×kw window of the
  zero-padded input into the columns of a (C·kh·kw, OH·OW·N) matrix (a strided view from
  `sliding_window_view`, then one gathering copy); the (out_c, C·kh·kw) weight times it
  is the output as (out_c, OH, OW, N). That "batch-last" array is returned as an
  (N, C, H, W) *view* (a transpose, no copy). NumPy ops accept any strides and
  elementwise ops keep the layout, so the next pooling, conv or backward reads
  batch-last memory directly and no layer pays for a transposing copy. Batch-last is
  chosen because there the images of a batch sit side by side: every window slice
  (a shifted block of rows and columns) is made of long contiguous runs of N·W
  elements, which is what NumPy's copies and adds are fastest on.
* Its backward recomputes the columns from the saved input (the column buffer, 9× the
  input for a 3×3 kernel, lives only inside forward and inside backward), and returns
  the input gradient by col2im: the gradient columns are added back into a padded
  buffer, one slice-add per kernel offset (kh·kw vectorised adds), so overlapping
  windows accumulate. The input gradient is skipped when the input needs none.
* Pooling works on the kh·kw strided views "element (p, q) of every window" of the
  input, one vectorised op per kernel offset, and keeps the input's memory layout.

`benchmarks/bench_conv_ops.py` times these choices against the alternatives.
"""
from __future__ import annotations

import numbers
from typing import Any, List, Optional, Tuple, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import _kernels as K
from .autograd import Function
from .tensor import Tensor

IntOrPair = Union[int, Tuple[int, int]]


# ------------------------------------------------------------------------- helpers
def as_pair(value: Any, name: str, op: str, minimum: int) -> Tuple[int, int]:
    """An int or an (h, w) pair of ints, each at least `minimum`, as a pair."""
    pair = (value, value) if isinstance(value, numbers.Integral) else value
    try:
        pair = tuple(pair)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                 for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _output_size(op: str, shape: Tuple[int, ...], kernel: Tuple[int, int],
                 stride: Tuple[int, int], padding: Tuple[int, int]) -> Tuple[int, int]:
    """(OH, OW) of a window op over an (N, C, H, W) input; a ValueError if empty."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    hp, wp = shape[2] + 2 * ph, shape[3] + 2 * pw
    if kh > hp or kw > wp:
        raise ValueError(f"{op}: kernel {kh}x{kw} is larger than the padded input "
                         f"{hp}x{wp} (input {shape}, padding {padding})")
    return (hp - kh) // sh + 1, (wp - kw) // sw + 1


def _check_image(op: str, x: np.ndarray) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be (N, C, H, W), got shape {x.shape}")


def offset_views(a: np.ndarray, kernel: Tuple[int, int], stride: Tuple[int, int],
                  out_size: Tuple[int, int]) -> List[np.ndarray]:
    """For each kernel offset (p, q), in row-major order, the strided view of `a` that
    holds element (p, q) of every window: view[..., i, j] = a[..., i·sh + p, j·sw + q].
    Writing into the views writes into `a`."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_size
    return [a[..., p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw]
            for p in range(kh) for q in range(kw)]


BATCH_LAST = (1, 2, 3, 0)  # storage order (C, H, W, N) of an (N, C, H, W) image


def padded_shape(shape: Tuple[int, ...], padding: Tuple[int, int]) -> Tuple[int, ...]:
    n, c, h, w = shape
    return n, c, h + 2 * padding[0], w + 2 * padding[1]


def padded(x: np.ndarray, padding: Tuple[int, int], fill: Any,
            layout: Tuple[int, ...]) -> np.ndarray:
    """x padded with `fill` on its last two axes, stored in `layout`: x itself when
    it needs no padding and is stored that way already, else a new array."""
    if padding == (0, 0) and x.transpose(layout).flags.c_contiguous:
        return x
    out = K.new_array(padded_shape(x.shape, padding), None if padding == (0, 0) else fill,
               x.dtype, layout)
    crop(out, padding)[...] = x
    return out


def im2col(xp: np.ndarray, kernel: Tuple[int, int], stride: Tuple[int, int],
            out_size: Tuple[int, int]) -> np.ndarray:
    """Columns of the padded input xp (N, C, Hp, Wp): a fresh (C·kh·kw, OH·OW·N) array
    whose row (c, p, q) and column (i, j, n) holds xp[n, c, i·sh + p, j·sw + q].
    Fastest when xp is stored batch-last."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_size
    windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, :sh * oh:sh, :sw * ow:sw]
    return windows.transpose(1, 4, 5, 2, 3, 0).reshape(xp.shape[1] * kh * kw, -1)


def col2im(cols: np.ndarray, shape: Tuple[int, ...], padding: Tuple[int, int],
            kernel: Tuple[int, int], stride: Tuple[int, int],
            out_size: Tuple[int, int]) -> np.ndarray:
    """The adjoint of `im2col`: add every column entry back where it was read from,
    into a zero padded buffer stored batch-last; overlapping windows accumulate.
    Returns the (N, C, H, W) interior (a view)."""
    (n, c), (oh, ow) = shape[:2], out_size
    out = K.new_array(padded_shape(shape, padding), 0, cols.dtype, BATCH_LAST)
    parts = cols.reshape(c, kernel[0] * kernel[1], oh, ow, n).transpose(4, 0, 1, 2, 3)
    for k, view in enumerate(offset_views(out, kernel, stride, out_size)):
        view += parts[:, :, k]
    return crop(out, padding)


def crop(a: np.ndarray, padding: Tuple[int, int]) -> np.ndarray:
    """The interior of an array padded by `padding` on its last two axes (a view)."""
    (ph, pw), (h, w) = padding, a.shape[-2:]
    return a[..., ph:h - ph, pw:w - pw]


# ----------------------------------------------------------------------- convolution
class Conv2d(Function):
    """2-D cross-correlation of x (N, C, H, W) with w (O, C, kh, kw), plus b (O,).

    Local gradients, with X the im2col columns (C·kh·kw, OH·OW·N), W = w as
    (O, C·kh·kw) and G the output gradient as (O, OH·OW·N), since out = W·X + b:
        d/dw = G·Xᵀ,   d/db = Σ_{i,j,n} G,   d/dx = col2im(Wᵀ·G)
    """

    def forward(self, x, w, b=None, *, stride: Tuple[int, int] = (1, 1),
                padding: Tuple[int, int] = (0, 0)):
        _check_image("conv2d", x)
        if w.ndim != 4 or w.shape[1] != x.shape[1]:
            raise ValueError(f"conv2d: weight {w.shape} does not fit input {x.shape}: "
                             f"expected weight (out_channels, {x.shape[1]}, kh, kw)")
        if b is not None and b.shape != (w.shape[0],):
            raise ValueError(f"conv2d: bias {b.shape} does not fit weight {w.shape}: "
                             f"expected bias ({w.shape[0]},)")
        kernel = w.shape[2:]
        out_size = _output_size("conv2d", x.shape, kernel, stride, padding)
        self.save_for_backward(x, w, b is not None, stride, padding, out_size)
        cols = im2col(padded(x, padding, 0, BATCH_LAST), kernel, stride, out_size)
        out = w.reshape(w.shape[0], -1) @ cols             # (O, OH·OW·N)
        del cols
        if b is not None:
            out += b[:, None]
        return out.reshape(w.shape[0], *out_size, x.shape[0]).transpose(3, 0, 1, 2)

    def backward(self, g):
        x, w, has_bias, stride, padding, out_size = self.saved
        need_x, need_w = self.needs_input_grad[:2]
        o, kernel = w.shape[0], w.shape[2:]
        g = g.transpose(BATCH_LAST).reshape(o, -1)         # G: no copy if batch-last
        gx = gw = gb = None
        if need_w:
            cols = im2col(padded(x, padding, 0, BATCH_LAST), kernel, stride, out_size)
            # G·Xᵀ, computed as (X·Gᵀ)ᵀ: the same product, but OpenBLAS splits this shape
            # better across threads, above all when another process holds a core.
            gw = (cols @ g.T).T.reshape(w.shape)
            del cols
        if need_x:
            gcols = w.reshape(o, -1).T @ g                 # Wᵀ·G, then col2im
            gx = col2im(gcols, x.shape, padding, kernel, stride, out_size)
        if not has_bias:
            return gx, gw
        if self.needs_input_grad[2]:
            gb = K.row_sums(g)                             # Σ over (i, j, n), by BLAS
        return gx, gw, gb


# --------------------------------------------------------------------------- pooling
def _check_pool(op: str, x: np.ndarray, kernel: Tuple[int, int],
                padding: Tuple[int, int]) -> None:
    _check_image(op, x)
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
        out_size = _output_size("max_pool2d", x.shape, kernel_size, stride, padding)
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
        shape, layout, argmax, kernel, stride, padding, out_size = self.saved
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
        out_size = _output_size("avg_pool2d", x.shape, kernel_size, stride, padding)
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
        share = K.stored(g, layout) * np.asarray(1.0 / (kernel[0] * kernel[1]), dtype=g.dtype)
        gx = K.new_array(padded_shape(shape, padding), 0, g.dtype, layout)
        for view in offset_views(gx, kernel, stride, out_size):
            view += share
        return crop(gx, padding)


# ------------------------------------------------------------------ functional API
def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


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
    x, w = _as_tensor(input), _as_tensor(weight)
    stride_pair = as_pair(stride, "stride", "conv2d", 1)
    options = dict(stride=stride_pair,
                   padding=conv_padding(padding, tuple(w.shape[2:]), stride_pair, "conv2d"))
    if bias is None:
        return Conv2d.apply(x, w, **options)
    return Conv2d.apply(x, w, _as_tensor(bias), **options)


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
    return MaxPool2d.apply(_as_tensor(input), **_pool_options("max_pool2d", kernel_size,
                                                              stride, padding))


def avg_pool2d(input: Tensor, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """Average pooling like `torch.nn.functional.avg_pool2d` over input (N, C, H, W);
    `stride` defaults to `kernel_size`; zero padding counts in the mean.
    ceil_mode, count_include_pad and divisor_override only at their defaults."""
    only_defaults("avg_pool2d", ceil_mode=(ceil_mode, False),
                  count_include_pad=(count_include_pad, True),
                  divisor_override=(divisor_override, None))
    return AvgPool2d.apply(_as_tensor(input), **_pool_options("avg_pool2d", kernel_size,
                                                              stride, padding))
