"""Time forward+backward of conv2d and max_pool2d at MNIST-CNN shapes, for the shipped
implementation (tinygrad_mnist.ops.convolution) and the variants it was chosen over, and for
PyTorch CPU when it happens to be installed (it is never a dependency).

    python benchmarks/bench_conv_ops.py [--batch 128] [--repeat 5] [--number 5]

Each figure is milliseconds per forward+backward: the best, over --repeat rounds, of the
mean of --number calls. The candidates for a layer take turns within each round, so a
busy machine slows them alike. Layers (batch 128 by default):
    conv1  1→32, 3×3, pad 1, on 28×28 (the first layer: no input gradient)
    conv2  32→64, 3×3, pad 1, on 14×14
    pool1  max_pool2d 2×2 of (N, 32, 28, 28)
    pool2  max_pool2d 2×2 of (N, 64, 14, 14)
and a whole CNN training step made of them (see `cnn_step`).

Read figures from a quiet machine (the load average is printed before and after): when
another process holds one of two cores, OpenBLAS's and PyTorch's two threads wait on
each other and a single matrix product can take many times longer.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Callable, Dict

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinygrad_mnist import Tensor, threads
from tinygrad_mnist._kernels import new_array
from tinygrad_mnist.nn.functional import conv2d, max_pool2d
from tinygrad_mnist.ops.convolution import BATCH_LAST, crop, offset_views, padded, padded_shape

PAD = ((0, 0), (0, 0), (1, 1), (1, 1))


def best_ms(candidates: Dict[str, Callable[[], object]], repeat: int,
            number: int) -> Dict[str, float]:
    """Best mean milliseconds per call of each candidate, the candidates interleaved."""
    best = dict.fromkeys(candidates, float("inf"))
    for fn in candidates.values():
        fn()  # warm up: allocator, BLAS threads
    for _ in range(repeat):
        for name, fn in candidates.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / number * 1e3)
    return best


CHANNEL_MAJOR = (1, 0, 2, 3)  # storage order (C, N, H, W)


def stored(a: np.ndarray, layout) -> np.ndarray:
    """The same (N, C, H, W) values, stored in the axis order `layout`."""
    return np.ascontiguousarray(a.transpose(layout)).transpose(np.argsort(layout))


# ------------------------------------------------------------------ conv variants
# Each takes arrays x (N, C, H, W), w (O, C, 3, 3), b (O,), padding 1, stride 1, and
# returns (gx, gw, gb) after a forward and a backward with an all-ones upstream.
def shipped_conv(need_x: bool):
    """tinygrad_mnist.ops.convolution through the Tensor API (engine overhead included)."""
    def run(x, w, b):
        xt = Tensor(x, requires_grad=need_x)
        wt, bt = Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
        out = conv2d(xt, wt, bt, padding=1)
        out.backward(np.ones_like(out.data))
        return xt.grad, wt.grad, bt.grad
    return run


def layout_conv(need_x: bool, layout=BATCH_LAST, keep_columns: bool = False,
                nchw: bool = False, direct_gw: bool = False):
    """The shipped computation in plain NumPy (no engine), with one policy changed:
    layout: how images are stored, e.g. (1, 0, 2, 3) for channel-major (C, N, H, W)
    instead of batch-last (C, H, W, N); the columns' order follows it.
    keep_columns: keep the forward's columns for backward instead of recomputing them
    (9× the input in memory until backward); nchw: copy the output and the input
    gradient into (N, C, H, W) memory instead of returning views; direct_gw: the
    weight gradient as G·Xᵀ instead of (X·Gᵀ)ᵀ (same product, other BLAS shape)."""
    rest = layout[1:]                          # the non-channel axes, as stored
    back = tuple(np.argsort((1,) + rest))      # (O, *rest) -> (N, O, H, W)

    def columns(x):
        win = sliding_window_view(padded(x, (1, 1), 0, layout), (3, 3), axis=(2, 3))
        return win.transpose((1, 4, 5) + rest).reshape(x.shape[1] * 9, -1)

    def run(x, w, b):
        o, shape = w.shape[0], x.shape
        dims = tuple(shape[a] for a in rest)
        cols = columns(x)
        out = (w.reshape(o, -1) @ cols + b[:, None]).reshape((o,) + dims).transpose(back)
        if not keep_columns:
            del cols
        if nchw:
            out = np.ascontiguousarray(out)
        g = np.ones_like(out).transpose((1,) + rest).reshape(o, -1)
        if not keep_columns:
            cols = columns(x)
        gw = (g @ cols.T if direct_gw else (cols @ g.T).T).reshape(w.shape)
        gx = None
        if need_x:
            gcols = (w.reshape(o, -1).T @ g).reshape((shape[1], 9) + dims)  # (C, 9, *rest)
            gxp = new_array(padded_shape(shape, (1, 1)), 0, x.dtype, layout)
            where = {axis: 2 + i for i, axis in enumerate(rest)}
            parts = gcols.transpose(where[0], 0, 1, where[2], where[3])  # (N, C, 9, H, W)
            for k, view in enumerate(offset_views(gxp, (3, 3), (1, 1), shape[2:])):
                view += parts[:, :, k]
            gx = crop(gxp, (1, 1))
            gx = np.ascontiguousarray(gx) if nchw else gx
        return gx, gw, g.sum(axis=1)
    return run


def _cols_rows(x, kh, kw):
    """(N·H·W, C·kh·kw) columns from NCHW memory (the textbook im2col)."""
    n, c, h, wd = x.shape
    win = sliding_window_view(np.pad(x, PAD), (kh, kw), axis=(2, 3))
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * wd, c * kh * kw)


def _col2im_nchw(gcols, shape):
    """Adjoint of a padded 3×3 stride-1 im2col, gcols (N, H, W, C, 3, 3)."""
    n, c, h, w = shape
    gxp = np.zeros((n, c, h + 2, w + 2), gcols.dtype)
    for p in range(3):
        for q in range(3):
            gxp[:, :, p:p + h, q:q + w] += gcols[..., p, q].transpose(0, 3, 1, 2)
    return gxp[:, :, 1:-1, 1:-1]


def rows_conv(need_x: bool):
    """Columns (N·H·W, C·9) @ Wᵀ, output transposed into contiguous NCHW."""
    def run(x, w, b):
        n, c, h, wd = x.shape
        o = w.shape[0]
        cols = _cols_rows(x, 3, 3)
        out = np.ascontiguousarray((cols @ w.reshape(o, -1).T + b).reshape(n, h, wd, o)
                                   .transpose(0, 3, 1, 2))
        del cols
        g = np.ones_like(out).transpose(0, 2, 3, 1).reshape(-1, o)
        gw = (g.T @ _cols_rows(x, 3, 3)).reshape(w.shape)
        gx = _col2im_nchw((g @ w.reshape(o, -1)).reshape(n, h, wd, c, 3, 3), x.shape) \
            if need_x else None
        return gx, gw, g.sum(axis=0)
    return run


def tensordot_conv(need_x: bool):
    """np.tensordot of the sliding-window view (it transposes and copies internally)."""
    def run(x, w, b):
        win = sliding_window_view(np.pad(x, PAD), (3, 3), axis=(2, 3))
        out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2) \
            + b[None, :, None, None]
        g = np.ones_like(out)
        gw = np.tensordot(g, win, axes=([0, 2, 3], [0, 2, 3]))
        gx = None
        if need_x:
            gcols = np.tensordot(g, w, axes=([1], [0]))  # (N, H, W, C, 3, 3)
            gx = _col2im_nchw(gcols, x.shape)
        return gx, gw, g.sum(axis=(0, 2, 3))
    return run


def einsum_conv(need_x: bool):
    """np.einsum(optimize=True) over the sliding-window view."""
    def run(x, w, b):
        win = sliding_window_view(np.pad(x, PAD), (3, 3), axis=(2, 3))
        out = np.einsum("nchwpq,ocpq->nohw", win, w, optimize=True) + b[None, :, None, None]
        g = np.ones_like(out)
        gw = np.einsum("nohw,nchwpq->ocpq", g, win, optimize=True)
        gx = None
        if need_x:
            gx = _col2im_nchw(np.einsum("nohw,ocpq->nhwcpq", g, w, optimize=True), x.shape)
        return gx, gw, g.sum(axis=(0, 2, 3))
    return run


def per_offset_conv(need_x: bool):
    """No column buffer at all: one (O, C) @ (C, N·H·W) product per kernel offset."""
    def run(x, w, b):
        n, c, h, wd = x.shape
        o = w.shape[0]
        xp = np.pad(x, PAD).transpose(1, 0, 2, 3)               # (C, N, H+2, W+2) view
        shifted = [np.ascontiguousarray(xp[:, :, p:p + h, q:q + wd]).reshape(c, -1)
                   for p in range(3) for q in range(3)]
        out = np.zeros((o, n * h * wd), x.dtype)
        for k, s in enumerate(shifted):
            out += w[:, :, k // 3, k % 3] @ s
        out += b[:, None]
        g = np.ones_like(out)
        gw = np.stack([g @ s.T for s in shifted], axis=-1).reshape(w.shape)
        gx = None
        if need_x:
            gxp = np.zeros((c, n, h + 2, wd + 2), x.dtype)
            for k in range(9):
                p, q = divmod(k, 3)
                gxp[:, :, p:p + h, q:q + wd] += (w[:, :, p, q].T @ g).reshape(c, n, h, wd)
            gx = gxp[:, :, 1:-1, 1:-1].transpose(1, 0, 2, 3)
        return gx, gw, g.sum(axis=1)
    return run


CONV_VARIANTS = {
    "shipped: batch-last im2col, 1 GEMM, output view": shipped_conv,
    "  same in plain NumPy (no engine)": layout_conv,
    "  same, channel-major (C, N, H, W) instead": lambda need_x: layout_conv(
        need_x, CHANNEL_MAJOR),
    "  same, output and input grad copied to NCHW": lambda need_x: layout_conv(
        need_x, nchw=True),
    "  same, columns kept from forward": lambda need_x: layout_conv(
        need_x, keep_columns=True),
    "  same, weight gradient as G·Xᵀ": lambda need_x: layout_conv(need_x, direct_gw=True),
    "rows im2col (N·H·W, C·9) @ Wᵀ, NCHW": rows_conv,
    "np.tensordot on sliding_window_view": tensordot_conv,
    "np.einsum(optimize=True)": einsum_conv,
    "per-offset GEMMs, no columns": per_offset_conv,
}


# --------------------------------------------------------------- max-pool variants
def shipped_pool(x):
    t = Tensor(x, requires_grad=True)
    out = max_pool2d(t, 2)
    out.backward(np.ones_like(out.data))
    return t.grad


def reshape_max_pool(x):
    """Reshape trick: max over axes (3, 5) of (N, C, H/2, 2, W/2, 2); the first-maximum
    mask via argmax of a window copy."""
    n, c, h, w = x.shape
    six = x.reshape(n, c, h // 2, 2, w // 2, 2)
    out = six.max(axis=(3, 5))
    first = six.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4).argmax(-1)
    g = np.ones_like(out)
    onehot = (first[..., None] == np.arange(4)) * g[..., None]
    return onehot.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        x.shape)


def argmax_window_pool(x):
    """Copy the windows out (N, C, H/2, W/2, 4), argmax, take, scatter back."""
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, h // 2, w // 2, 4)
    first = win.argmax(-1)
    out = np.take_along_axis(win, first[..., None], -1)[..., 0]
    gwin = np.zeros_like(win)
    np.put_along_axis(gwin, first[..., None], np.ones_like(out)[..., None], -1)
    return gwin.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        x.shape)


POOL_VARIANTS = {
    "shipped: per-offset max + first-max scan": shipped_pool,
    "reshape trick: max(axis=(3, 5)) + argmax": reshape_max_pool,
    "window copy + argmax + put_along_axis": argmax_window_pool,
}


# ------------------------------------------------------------------------- PyTorch
def torch_steps(batch: int) -> Dict[str, Callable[[], object]]:
    """Forward+backward of each layer in PyTorch, if it is installed."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {}
    torch.manual_seed(0)
    steps = {}
    for name, (c_in, c_out, side) in CONV_LAYERS.items():
        x = torch.randn(batch, c_in, side, side, requires_grad=c_in > 1)
        w = torch.randn(c_out, c_in, 3, 3, requires_grad=True)
        b = torch.randn(c_out, requires_grad=True)

        def step(x=x, w=w, b=b):
            out = F.conv2d(x, w, b, padding=1)
            out.backward(torch.ones_like(out))
        steps[name] = step
    for name, shape in POOL_LAYERS.items():
        x = torch.randn(batch, *shape, requires_grad=True)

        def step(x=x):
            out = F.max_pool2d(x, 2)
            out.backward(torch.ones_like(out))
        steps[name] = step
    print(f"PyTorch {torch.__version__} CPU, {torch.get_num_threads()} threads")
    return steps


CONV_LAYERS = {"conv1 1→32 3×3 28×28": (1, 32, 28), "conv2 32→64 3×3 14×14": (32, 64, 14)}
POOL_LAYERS = {"pool1 2×2 of 32×28×28": (32, 28, 28), "pool2 2×2 of 64×14×14": (64, 14, 14)}


# ----------------------------------------------------------- a whole MNIST CNN step
def cnn_step(batch: int, rng: np.random.Generator) -> Callable[[], object]:
    """Forward+backward of conv(1→32, 3×3, pad 1) → ReLU → max-pool 2 → conv(32→64,
    3×3, pad 1) → ReLU → max-pool 2 → linear(3136→128) → ReLU → linear(128→10) →
    cross-entropy, built from the Tensor ops (no optimiser step)."""
    from tinygrad_mnist import cross_entropy

    def param(*shape):
        return Tensor(rng.standard_normal(shape, dtype=np.float32) * 0.1, requires_grad=True)
    w1, b1, w2, b2 = param(32, 1, 3, 3), param(32), param(64, 32, 3, 3), param(64)
    w3, b3, w4, b4 = param(128, 3136), param(128), param(10, 128), param(10)
    x = Tensor(rng.standard_normal((batch, 1, 28, 28), dtype=np.float32))
    labels = rng.integers(0, 10, batch)

    def step():
        h = max_pool2d(conv2d(x, w1, b1, padding=1).relu(), 2)
        h = max_pool2d(conv2d(h, w2, b2, padding=1).relu(), 2).reshape(batch, -1)
        logits = (h @ w3.T + b3).relu() @ w4.T + b4
        cross_entropy(logits, labels).backward()
    return step


def torch_cnn_step(batch: int) -> Callable[[], object]:
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)

    def param(*shape):
        return (torch.randn(*shape) * 0.1).requires_grad_()
    w1, b1, w2, b2 = param(32, 1, 3, 3), param(32), param(64, 32, 3, 3), param(64)
    w3, b3, w4, b4 = param(128, 3136), param(128), param(10, 128), param(10)
    x, labels = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))

    def step():
        h = F.max_pool2d(F.relu(F.conv2d(x, w1, b1, padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, w2, b2, padding=1)), 2).reshape(batch, -1)
        logits = F.linear(F.relu(F.linear(h, w3, b3)), w4, b4)
        F.cross_entropy(logits, labels).backward()
    return step


TORCH = "PyTorch CPU (reference)"
LAYOUTS = {"NCHW": (0, 1, 2, 3), "channel-major": CHANNEL_MAJOR, "batch-last": BATCH_LAST}
SHIPPED = next(iter(CONV_VARIANTS))


def report(layer: str, times: Dict[str, float], shipped: str) -> None:
    print(f"\n{layer}")
    for name, ms in times.items():
        print(f"  {name:<56} {ms:8.2f}")
    if TORCH in times:
        print(f"  {'shipped / PyTorch':<56} {times[shipped] / times[TORCH]:8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                    help="BLAS threads (default 1, as the other benchmarks; 0: the "
                         "library's default)")
    args = parser.parse_args()
    with threads.limited(args.threads or None):
        run(args)


def run(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    timing = dict(repeat=args.repeat, number=args.number)
    torch = torch_steps(args.batch) or print("PyTorch not installed: no reference") or {}
    print(f"ms per forward+backward, float32, batch {args.batch}; "
          f"load average before: {os.getloadavg()[0]:.2f}")

    for layer, (c_in, c_out, side) in CONV_LAYERS.items():
        need_x = c_in > 1
        x = rng.standard_normal((args.batch, c_in, side, side), dtype=np.float32)
        x = stored(x, BATCH_LAST) if need_x else x  # as the previous conv leaves it
        w = rng.standard_normal((c_out, c_in, 3, 3), dtype=np.float32)
        b = rng.standard_normal(c_out, dtype=np.float32)
        runs = {name: make(need_x) for name, make in CONV_VARIANTS.items()}
        reference = runs[SHIPPED](x, w, b)
        for run in runs.values():  # every variant computes the same gradients
            for got, want in zip(run(x, w, b), reference):
                if want is not None:
                    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-2)
        candidates = {name: (lambda run=run: run(x, w, b)) for name, run in runs.items()}
        if layer in torch:
            candidates[TORCH] = torch[layer]
        report(layer + ("" if need_x else " (no input gradient)"),
               best_ms(candidates, **timing), SHIPPED)

    for layer, shape in POOL_LAYERS.items():
        candidates = {}
        for layout, order in LAYOUTS.items():
            x = stored(rng.standard_normal((args.batch,) + shape, dtype=np.float32), order)
            reference = shipped_pool(x)
            for name, fn in POOL_VARIANTS.items():
                np.testing.assert_array_equal(fn(x), reference)
                candidates[f"{name}, {layout}"] = lambda fn=fn, x=x: fn(x)
        if layer in torch:
            candidates[TORCH] = torch[layer]
        report(layer, best_ms(candidates, **timing),
               f"{next(iter(POOL_VARIANTS))}, batch-last")
    candidates = {"shipped": cnn_step(args.batch, rng)}
    if torch:
        candidates[TORCH] = torch_cnn_step(args.batch)
    report("whole CNN step: conv-relu-pool ×2, linear-relu-linear, cross-entropy",
           best_ms(candidates, **timing), "shipped")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
