"""Convolution and pooling against plain loop implementations written here, plus the
tie rule of max pooling, error messages, dtypes and what the ops keep for backward.
(Finite-difference gradient checks of the three Functions are in test_gradients.py.)"""
import numpy as np
import pytest

import tinygrad_mnist as tg
from tinygrad_mnist import Tensor
from tinygrad_mnist.ops import convolution as conv
from tinygrad_mnist.nn.functional import avg_pool2d, conv2d, max_pool2d


# --------------------------------------------------------- plain loop references
def pad(x, padding, value=0.0):
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def out_size(x, kernel, stride, padding):
    return tuple((x.shape[2 + a] + 2 * padding[a] - kernel[a]) // stride[a] + 1
                 for a in range(2))


def naive_conv(x, w, b, stride, padding, g):
    """Forward and all gradients of conv2d, one output element at a time."""
    (sh, sw), (kh, kw) = stride, w.shape[2:]
    oh, ow = out_size(x, (kh, kw), stride, padding)
    xp = pad(x, padding)
    out = np.zeros((x.shape[0], w.shape[0], oh, ow))
    gxp, gw = np.zeros_like(xp), np.zeros_like(w)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            for i in range(oh):
                for j in range(ow):
                    rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
                    out[n, o, i, j] = np.sum(xp[n, :, rows, cols] * w[o])
                    gxp[n, :, rows, cols] += g[n, o, i, j] * w[o]
                    gw[o] += g[n, o, i, j] * xp[n, :, rows, cols]
    if b is not None:
        out += b[None, :, None, None]
    gx = gxp[:, :, padding[0]:padding[0] + x.shape[2], padding[1]:padding[1] + x.shape[3]]
    return out, gx, gw, g.sum(axis=(0, 2, 3))


def naive_pool(x, kernel, stride, padding, g, kind):
    """Forward and input gradient of max or average pooling, one window at a time.
    Max: the gradient goes to the first maximum of the window in row-major order."""
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = out_size(x, kernel, stride, padding)
    xp = pad(x, padding, -np.inf if kind == "max" else 0.0)
    out, gxp = np.zeros(x.shape[:2] + (oh, ow)), np.zeros_like(xp)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(oh):
                for j in range(ow):
                    window = xp[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    if kind == "max":
                        first = None
                        for p in range(kh):
                            for q in range(kw):
                                if first is None or window[p, q] > window[first]:
                                    first = (p, q)
                        out[n, c, i, j] = window[first]
                        gxp[n, c, i * sh + first[0], j * sw + first[1]] += g[n, c, i, j]
                    else:
                        out[n, c, i, j] = window.sum() / (kh * kw)
                        gxp[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw] += (
                            g[n, c, i, j] / (kh * kw))
    ph, pw = padding
    return out, gxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]


LAYOUTS = {"NCHW": (0, 1, 2, 3), "channel-major": (1, 0, 2, 3), "batch-last": (1, 2, 3, 0)}


def stored(x, layout):
    """The same (N, C, H, W) values with the axes stored in another order, e.g.
    batch-last (C, H, W, N), as a conv returns them."""
    order = LAYOUTS[layout]
    return np.ascontiguousarray(x.transpose(order)).transpose(np.argsort(order))


def run(fn, *arrays):
    """fn on float64 leaf tensors, backpropagating a fixed random upstream gradient."""
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    g = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(g)
    return out.data, [t.grad for t in tensors], g


# --------------------------------------------------------------------- convolution
CONV_CONFIGS = [  # (N, C_in, C_out, H, W), kernel, stride, padding, bias
    ((2, 3, 4, 7, 6), (3, 3), (1, 1), (1, 1), True),
    ((2, 1, 3, 8, 8), (3, 3), (1, 1), (0, 0), False),
    ((1, 2, 2, 7, 7), (3, 3), (2, 2), (1, 1), True),
    ((2, 2, 3, 6, 9), (2, 3), (2, 1), (0, 1), True),
    ((1, 3, 2, 5, 5), (1, 1), (1, 2), (0, 0), True),
    ((2, 2, 2, 4, 5), (4, 5), (1, 1), (0, 0), True),   # kernel covers the whole image
    ((1, 1, 1, 3, 3), (3, 3), (2, 2), (3, 1), False),  # windows entirely in the padding
]


@pytest.mark.parametrize("shape, kernel, stride, padding, bias", CONV_CONFIGS)
def test_conv2d_matches_loops(shape, kernel, stride, padding, bias):
    n, c_in, c_out, h, w = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c_in, h, w))
    weight = rng.standard_normal((c_out, c_in) + kernel)
    b = rng.standard_normal(c_out)
    if bias:
        out, grads, g = run(lambda x, w, b: conv2d(x, w, b, stride, padding), x, weight, b)
    else:
        out, grads, g = run(lambda x, w: conv2d(x, w, None, stride, padding), x, weight)
    expected = naive_conv(x, weight, b if bias else None, stride, padding, g)
    np.testing.assert_allclose(out, expected[0], atol=1e-12)
    for got, want in zip(grads, expected[1:]):
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_conv2d_int_and_pair_arguments_agree():
    rng = np.random.default_rng(2)
    x, w = Tensor(rng.standard_normal((1, 2, 7, 7))), Tensor(rng.standard_normal((3, 2, 3, 3)))
    np.testing.assert_array_equal(conv2d(x, w, stride=2, padding=1).data,
                                  conv2d(x, w, stride=(2, 2), padding=(1, 1)).data)


def test_conv2d_chain_on_strided_inputs():
    """A conv's output is a batch-last view; a second conv, and convs of reversed
    or sliced arrays, read any strides correctly."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 9, 8))[:, :, ::-1, 1:]
    w1, w2 = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal((2, 3, 2, 2))
    hidden = naive_conv(x, w1, None, (1, 1), (1, 1), np.zeros((2, 3, 9, 7)))[0]
    expected = naive_conv(np.maximum(hidden, 0), w2, None, (1, 1), (0, 0),
                          np.zeros((2, 2, 8, 6)))[0]
    out = conv2d(conv2d(Tensor(x), Tensor(w1), padding=1).relu(), Tensor(w2))
    np.testing.assert_allclose(out.data, expected, atol=1e-12)


def test_conv2d_skips_the_input_gradient_when_not_needed(monkeypatch):
    """A first layer's input needs no gradient: col2im must not run at all."""
    def fail(*args, **kwargs):
        raise AssertionError("col2im ran for an input that needs no gradient")

    monkeypatch.setattr(conv, "col2im", fail)
    x = Tensor(np.ones((2, 1, 5, 5), np.float32))
    w = Tensor(np.ones((4, 1, 3, 3), np.float32), requires_grad=True)
    conv2d(x, w, padding=1).sum().backward()
    assert x.grad is None and w.grad.shape == (4, 1, 3, 3)


def test_conv2d_keeps_no_column_buffer_for_backward():
    """What backward keeps is the input and the weight, never the (C·k·k, N·OH·OW)
    columns, which are 9x the input for a 3x3 kernel."""
    x = Tensor(np.ones((4, 8, 10, 10), np.float32), requires_grad=True)
    w = Tensor(np.ones((16, 8, 3, 3), np.float32), requires_grad=True)
    out = conv2d(x, w, padding=1)
    kept = [v for v in out._ctx.saved if isinstance(v, np.ndarray)]
    assert sum(v.size for v in kept) == x.numel() + w.numel()


def test_conv2d_bias_gradient_only_when_asked():
    x = Tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    w = Tensor(np.ones((2, 1, 2, 2)), requires_grad=True)
    b = Tensor(np.zeros(2))  # a constant bias
    conv2d(x, w, b).sum().backward()
    assert b.grad is None and x.grad is not None and w.grad is not None


# ------------------------------------------------------------------------- pooling
POOL_CONFIGS = [  # (N, C, H, W), kernel, stride, padding
    ((2, 3, 6, 6), (2, 2), (2, 2), (0, 0)),   # tiling fast path
    ((2, 2, 7, 5), (2, 2), (2, 2), (0, 0)),   # fast path, last row and column dropped
    ((1, 2, 6, 6), (3, 2), (3, 2), (0, 0)),   # fast path, non-square
    ((2, 2, 7, 7), (3, 3), (2, 2), (1, 1)),   # overlapping windows and padding
    ((1, 3, 6, 7), (3, 3), (1, 1), (0, 0)),   # heavy overlap
    ((1, 1, 5, 6), (2, 3), (1, 2), (1, 1)),
    ((2, 2, 6, 6), (2, 2), (2, 2), (1, 1)),   # stride == kernel, padded: general path
    ((1, 2, 4, 4), (1, 1), (2, 2), (0, 0)),   # gaps between windows
]


@pytest.mark.parametrize("kind, pool", [("max", max_pool2d), ("avg", avg_pool2d)])
@pytest.mark.parametrize("shape, kernel, stride, padding", POOL_CONFIGS)
@pytest.mark.parametrize("values", ["random", "ties"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_pooling_matches_loops(kind, pool, shape, kernel, stride, padding, values, layout):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    if values == "ties":  # like ReLU outputs: many equal values in a window
        x = np.maximum(np.round(x), 0)
    out, (gx,), g = run(lambda t: pool(t, kernel, stride, padding), stored(x, layout))
    expected_out, expected_gx = naive_pool(x, kernel, stride, padding, g, kind)
    np.testing.assert_allclose(out, expected_out, atol=1e-12)
    np.testing.assert_allclose(gx, expected_gx, atol=1e-12)


def test_max_pool_tie_goes_to_first_maximum_in_row_major_order():
    x = np.array([[[[1.0, 1.0, 0.0, 7.0],
                    [1.0, 1.0, 7.0, 7.0]]]])
    t = Tensor(x, requires_grad=True)
    max_pool2d(t, 2).backward(np.array([[[[10.0, 20.0]]]]))
    np.testing.assert_array_equal(t.grad, [[[[10.0, 0.0, 0.0, 20.0],
                                              [0.0, 0.0, 0.0, 0.0]]]])


def test_max_pool_overlapping_windows_accumulate():
    t = Tensor(np.array([[[[1.0, 5.0, 2.0, 0.0]]]]), requires_grad=True)
    out = max_pool2d(t, (1, 2), stride=1)
    np.testing.assert_array_equal(out.data, [[[[5.0, 5.0, 2.0]]]])
    out.backward(np.array([[[[1.0, 2.0, 4.0]]]]))
    np.testing.assert_array_equal(t.grad, [[[[0.0, 3.0, 4.0, 0.0]]]])


def test_max_pool_padding_never_wins():
    t = Tensor(-np.ones((1, 1, 2, 2)), requires_grad=True)
    out = max_pool2d(t, 3, stride=1, padding=1)
    np.testing.assert_array_equal(out.data, -np.ones((1, 1, 2, 2)))


def test_avg_pool_counts_padding_in_the_mean():
    out = avg_pool2d(Tensor(np.ones((1, 1, 2, 2))), 2, stride=1, padding=1)
    np.testing.assert_array_equal(out.data[0, 0], [[0.25, 0.5, 0.25],
                                                   [0.5, 1.0, 0.5],
                                                   [0.25, 0.5, 0.25]])


def test_pool_stride_defaults_to_kernel():
    x = Tensor(np.arange(36.0).reshape(1, 1, 6, 6))
    assert max_pool2d(x, 3).shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(max_pool2d(x, 3).data, max_pool2d(x, (3, 3), (3, 3)).data)


@pytest.mark.parametrize("pool", [max_pool2d, avg_pool2d])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("padding", [0, 1])
def test_pooling_keeps_the_memory_layout(pool, layout, padding):
    x = np.random.default_rng(7).standard_normal((3, 2, 6, 6))
    t = Tensor(stored(x, layout), requires_grad=True)
    out = pool(t, 2, padding=padding)
    out.backward(np.ones(out.shape))
    for a in (out.data, t.grad.data):
        assert a.transpose(LAYOUTS[layout]).flags.c_contiguous


@pytest.mark.parametrize("layer", ["relu", "batch_norm"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layers_after_a_conv_keep_the_memory_layout(layer, layout):
    """ReLU and batch norm return their output and input gradient stored like their
    input: between arrays of different layouts NumPy's loops run strided, several
    times slower, and every later op would pay for it."""
    rng = np.random.default_rng(3)
    x, g = rng.standard_normal((3, 2, 6, 6)), rng.standard_normal((3, 2, 6, 6))
    fn = tg.nn.BatchNorm2d(2, dtype=np.float64) if layer == "batch_norm" else Tensor.relu
    results = []
    for arrays in ((x, g), (stored(x, layout), stored(g, layout))):
        t = Tensor(arrays[0], requires_grad=True)
        out = fn(t)
        out.backward(arrays[1])
        results.append((out.data, t.grad.data))
    for a, expected in zip(results[1], results[0]):
        assert a.transpose(LAYOUTS[layout]).flags.c_contiguous
        np.testing.assert_allclose(a, expected, rtol=1e-12, atol=1e-12)


def test_conv2d_returns_a_batch_last_view_and_reads_it_without_copying():
    x = Tensor(np.ones((3, 2, 6, 6)), requires_grad=True)
    w = Tensor(np.ones((4, 2, 3, 3)), requires_grad=True)
    h = conv2d(x, w)
    assert h.data.transpose(1, 2, 3, 0).flags.c_contiguous
    assert conv.padded(h.data, (0, 0), 0, conv.BATCH_LAST) is h.data  # no copy to read it
    out = conv2d(h, Tensor(np.ones((2, 4, 1, 1))))
    out.backward(np.ones(out.shape))
    assert x.grad.data.transpose(1, 2, 3, 0).flags.c_contiguous


def test_pooling_a_conv_output_view():
    """Pooling reads the batch-last view a conv returns, forward and backward."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 1, 6, 6)), rng.standard_normal((3, 1, 3, 3))
    hidden = naive_conv(x, w, None, (1, 1), (1, 1), np.zeros((2, 3, 6, 6)))[0]
    for kind, pool in (("max", max_pool2d), ("avg", avg_pool2d)):
        out, (gx, gw), g = run(lambda x, w: pool(conv2d(x, w, padding=1), 2), x, w)
        expected_out, expected_gh = naive_pool(hidden, (2, 2), (2, 2), (0, 0), g, kind)
        np.testing.assert_allclose(out, expected_out, atol=1e-12)
        _, expected_gx, expected_gw, _ = naive_conv(x, w, None, (1, 1), (1, 1), expected_gh)
        np.testing.assert_allclose(gx, expected_gx, atol=1e-12)
        np.testing.assert_allclose(gw, expected_gw, atol=1e-12)


# -------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_forward_and_backward(dtype):
    rng = np.random.default_rng(6)
    x = Tensor(rng.standard_normal((2, 3, 8, 8)).astype(dtype), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 3, 3, 3)).astype(dtype), requires_grad=True)
    b = Tensor(np.zeros(4, dtype), requires_grad=True)
    h = conv2d(x, w, b, padding=1)
    pooled = [max_pool2d(h, 2), max_pool2d(h, 3, 2, 1), avg_pool2d(h, 2), avg_pool2d(h, 3, 1, 1)]
    for out in [h] + pooled:
        assert out.dtype == dtype
    tg.concatenate([p.reshape(2, -1) for p in pooled], axis=1).sum().backward()
    for t in (x, w, b):
        assert t.grad.dtype == dtype


def test_no_grad_records_no_graph():
    x = Tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    w = Tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    with tg.no_grad():
        out = max_pool2d(conv2d(x, w), 2)
    assert not out.requires_grad and out._ctx is None


# -------------------------------------------------------------------------- errors
def x_w(x_shape=(2, 3, 8, 8), w_shape=(4, 3, 3, 3)):
    return Tensor(np.zeros(x_shape)), Tensor(np.zeros(w_shape))


@pytest.mark.parametrize("call, message", [
    (lambda: conv2d(*x_w(x_shape=(3, 8, 8))),
     r"conv2d: input must be \(N, C, H, W\), got shape \(3, 8, 8\)"),
    (lambda: conv2d(*x_w(w_shape=(4, 2, 3, 3))),
     r"conv2d: weight \(4, 2, 3, 3\) does not fit input \(2, 3, 8, 8\): "
     r"expected weight \(out_channels, 3, kh, kw\)"),
    (lambda: conv2d(*x_w(w_shape=(4, 3, 3))), r"conv2d: weight \(4, 3, 3\) does not fit"),
    (lambda: conv2d(*x_w(), Tensor(np.zeros(3))),
     r"conv2d: bias \(3,\) does not fit weight \(4, 3, 3, 3\): expected bias \(4,\)"),
    (lambda: conv2d(*x_w(x_shape=(1, 3, 2, 8))),
     r"conv2d: kernel 3x3 is larger than the padded input 2x8 "
     r"\(input \(1, 3, 2, 8\), padding \(0, 0\)\)"),
    (lambda: conv2d(*x_w(), stride=0), r"conv2d: stride must be at least 1, got 0"),
    (lambda: conv2d(*x_w(), padding=(1, -1)), r"conv2d: padding must be at least 0"),
    (lambda: conv2d(*x_w(), stride=(1, 2, 3)), r"conv2d: stride must be an int or a pair"),
    (lambda: conv2d(*x_w(), stride=1.5), r"conv2d: stride must be an int or a pair"),
    (lambda: max_pool2d(Tensor(np.zeros((2, 8, 8))), 2),
     r"max_pool2d: input must be \(N, C, H, W\), got shape \(2, 8, 8\)"),
    (lambda: max_pool2d(Tensor(np.zeros((1, 1, 8, 8))), 2, padding=2),
     r"max_pool2d: padding \(2, 2\) must be at most half the kernel size \(2, 2\)"),
    (lambda: max_pool2d(Tensor(np.zeros((1, 1, 2, 2))), 3),
     r"max_pool2d: kernel 3x3 is larger than the padded input 2x2"),
    (lambda: max_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 0),
     r"max_pool2d: kernel_size must be at least 1"),
    (lambda: avg_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 2, stride=(0, 1)),
     r"avg_pool2d: stride must be at least 1"),
    (lambda: avg_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 3, padding=(0, 2)),
     r"avg_pool2d: padding \(0, 2\) must be at most half the kernel size \(3, 3\)"),
])
def test_errors_name_the_op_and_the_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_an_empty_batch_gives_empty_outputs_and_gradients():
    x = Tensor(np.zeros((0, 2, 5, 5)), requires_grad=True)
    w = Tensor(np.ones((3, 2, 3, 3)), requires_grad=True)
    out = avg_pool2d(max_pool2d(conv2d(x, w, padding=1), 3, 1, 1), 2)
    assert out.shape == (0, 3, 2, 2)
    out.sum().backward()
    assert x.grad.shape == (0, 2, 5, 5)
    np.testing.assert_array_equal(w.grad, np.zeros((3, 2, 3, 3)))
