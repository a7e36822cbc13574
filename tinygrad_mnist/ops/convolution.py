"""2-D convolution over (N, C, H, W) images: the Function `Conv2d` and the window
helpers it shares with pooling (`ops/pooling.py`); `nn.functional.conv2d` reads the
options.

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
* Pooling (`ops/pooling.py`) works on the kh·kw strided views "element (p, q) of
  every window" of the input (`offset_views`), one vectorised op per kernel offset.

* The backward is written with `Im2Col` and `Col2Im`, two Functions (each the other's
  gradient), so the same backward runs on arrays and, in a recorded backward, on
  Tensors.

`benchmarks/bench_conv_ops.py` times these choices against the alternatives.
"""
from __future__ import annotations

import numbers
from typing import Any, List, Tuple, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import _kernels as K
from ..autograd import Function, is_tensor
from .movement import Permute

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


def output_size(op: str, shape: Tuple[int, ...], kernel: Tuple[int, int],
                 stride: Tuple[int, int], padding: Tuple[int, int]) -> Tuple[int, int]:
    """(OH, OW) of a window op over an (N, C, H, W) input; a ValueError if empty."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    hp, wp = shape[2] + 2 * ph, shape[3] + 2 * pw
    if kh > hp or kw > wp:
        raise ValueError(f"{op}: kernel {kh}x{kw} is larger than the padded input "
                         f"{hp}x{wp} (input {shape}, padding {padding})")
    return (hp - kh) // sh + 1, (wp - kw) // sw + 1


def check_image(op: str, x: np.ndarray) -> None:
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
        check_image("conv2d", x)
        if w.ndim != 4 or w.shape[1] != x.shape[1]:
            raise ValueError(f"conv2d: weight {w.shape} does not fit input {x.shape}: "
                             f"expected weight (out_channels, {x.shape[1]}, kh, kw)")
        if b is not None and b.shape != (w.shape[0],):
            raise ValueError(f"conv2d: bias {b.shape} does not fit weight {w.shape}: "
                             f"expected bias ({w.shape[0]},)")
        kernel = w.shape[2:]
        out_size = output_size("conv2d", x.shape, kernel, stride, padding)
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
        o, kernel = w.shape[0], tuple(w.shape[2:])
        windows = dict(kernel=kernel, stride=stride, padding=padding, out_size=out_size)
        g = Permute.call(g, axes=BATCH_LAST).reshape(o, -1)   # G: no copy if batch-last
        gx = gw = gb = None
        if need_w:
            cols = Im2Col.call(x, **windows)
            # G·Xᵀ, computed as (X·Gᵀ)ᵀ: the same product, but OpenBLAS splits this shape
            # better across threads, above all when another process holds a core.
            gw = (cols @ g.T).T.reshape(w.shape)
            del cols
        if need_x:
            gcols = w.reshape(o, -1).T @ g                 # Wᵀ·G, then col2im
            gx = Col2Im.call(gcols, shape=x.shape, **windows)
        if not has_bias:
            return gx, gw
        if self.needs_input_grad[2]:                       # Σ over (i, j, n), by BLAS
            gb = g.sum(axis=1) if is_tensor(g) else K.row_sums(g)
        return gx, gw, gb


class Im2Col(Function):
    """The columns (C·kh·kw, OH·OW·N) of x (N, C, H, W) zero-padded: linear in x, so
    its gradient is its adjoint, `Col2Im` of the upstream gradient."""

    def forward(self, x, *, kernel, stride, padding, out_size):
        self.save_for_backward(x.shape, kernel, stride, padding, out_size)
        return im2col(padded(x, padding, 0, BATCH_LAST), kernel, stride, out_size)

    def backward(self, g):
        shape, kernel, stride, padding, out_size = self.saved
        return Col2Im.call(g, shape=shape, kernel=kernel, stride=stride, padding=padding,
                           out_size=out_size)


class Col2Im(Function):
    """Columns added back into an image of `shape` (the adjoint of `Im2Col`, whose
    columns are its gradient)."""

    def forward(self, cols, *, shape, kernel, stride, padding, out_size):
        self.save_for_backward(kernel, stride, padding, out_size)
        return col2im(cols, shape, padding, kernel, stride, out_size)

    def backward(self, g):
        kernel, stride, padding, out_size = self.saved
        return Im2Col.call(g, kernel=kernel, stride=stride, padding=padding,
                           out_size=out_size)
