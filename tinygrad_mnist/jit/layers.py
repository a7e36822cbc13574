"""The compiled form of each layer the compiler knows: one emitter per layer class,
found in `LAYERS` by class.

An emitter writes the layer's forward lines into the plan and returns its output and
a `backward` function that, called later with the output's gradient, writes the
backward lines and returns the input's gradient. Both do what the eager `Function`s
do (`ops.py`, `fused.py`, `conv.py`), op for op, in the same order, on buffers laid out
in memory as the eager arrays are (`like(...)` runs the eager expression once on
zeros to find out): so the compiled step gives bitwise the eager step's numbers. The
differences are only where results go: `out=` into a buffer allocated once, in place
where nothing reads the old value again (ReLU over the Linear output before it), and
views made once. What an emitter read from its layer once (a dropout probability, a
stride) becomes a guard condition: the plan runs only while it still holds.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import _kernels as K
from .. import nn
from ..ops.convolution import BATCH_LAST, as_pair, crop, offset_views, padded_shape
from .plan import Builder, Unsupported, Value

Backward = Callable[[Value], Optional[Value]]
Emitter = Callable[[Builder, Any, Value, str], Tuple[Value, Optional[Backward]]]


def like(expression: Callable[[], np.ndarray]) -> np.ndarray:
    """The array the eager expression makes (on whatever the buffers hold; warnings
    about their values are silenced): its shape, dtype and memory layout are what a
    buffer standing in for it needs."""
    with np.errstate(all="ignore"):
        return expression()


def parameter(b: Builder, layer: Any, layer_name: str, attr: str, tag: str
              ) -> Optional[Value]:
    """The data of `layer.<attr>` (a Parameter, or None), bound by name, with guards
    that the layer still has that parameter, with that data array and the same
    requires_grad."""
    p = getattr(layer, attr)
    if p is None:
        b.check(f"{layer_name}.{attr} is None")
        return None
    if p in b.param_names:
        raise Unsupported("a parameter shared by two layers")
    param = b.param_objects[p] = b.name(f"{tag}_{attr}_param", p)
    data = b.param_names[p] = b.name(f"{tag}_{attr}", p.data)
    b.check(f"{layer_name}.{attr} is {param} and {param}.data is {data} and "
            f"{param}.requires_grad is {p.requires_grad}")
    return Value(data, p.data, p.requires_grad)


def set_grad(b: Builder, p: Any, value: Value) -> Value:
    """Record the buffer `value` as the gradient of parameter `p` (what the eager step
    leaves in `p.grad`)."""
    if value.array.dtype != p.data.dtype or value.array.shape != p.data.shape:
        raise Unsupported(f"a gradient of dtype {value.array.dtype} for a parameter of "
                          f"{p.data.dtype}")
    b.grads[p] = value
    return value


def grad_buffer(b: Builder, p: Any, eager_layout: Callable[[], np.ndarray],
                hint: str) -> Value:
    """A buffer for parameter `p`'s gradient: the one an earlier plan of the same step
    made; else the gradient array the eager step just left in `p.grad` (the plan is
    built right after one), which is laid out as the eager step lays it out; else a new
    array like `eager_layout()`. Reusing them, the plans hold no second copy of the
    parameter-sized gradients."""
    shared = b.shared.get(("grad", p))
    current = p.grad if p.grad is None or isinstance(p.grad, np.ndarray) else p.grad.data
    if shared is not None and shared.shape == p.data.shape and shared.dtype == p.data.dtype:
        array = shared
    elif current is not None and current.shape == p.data.shape and \
            current.dtype == p.data.dtype:
        array = current
    else:
        array = eager_layout()
    b.shared[("grad", p)] = array
    return set_grad(b, p, Value(b.name_of(array, hint), array, False))


def reshaped(b: Builder, value: Value, shape: Tuple[int, ...], hint: str) -> Value:
    """`value.reshape(shape)` as the eager `Reshape` makes it: a view where NumPy can
    make one (made once, here), else a copy in C order (made each step)."""
    if not value.fixed:
        b.emit(f"{hint} = {value.name}.reshape({shape})")
        return Value(hint, value.array.reshape(shape), value.requires_grad, value.scratch,
                     fixed=False)
    result = value.array.reshape(shape)
    if np.shares_memory(result, value.array):
        return b.view(hint, result, value.requires_grad, value.scratch)
    out = b.new(hint, result.shape, result.dtype, requires_grad=value.requires_grad,
                scratch=True)
    as_source = b.view(f"{hint}_as_source", out.array.reshape(value.array.shape))
    b.emit(f"copyto({as_source.name}, {value.name})")
    return out


def fixed(b: Builder, value: Value, hint: str) -> Value:
    """A buffer holding `value`: the value itself if it is one, else a copy made each
    step (the batch, whose array is new each step). Values are copied exactly, so
    nothing changes but where they are."""
    if value.fixed:
        return value
    out = b.buffer(hint, value.array)
    b.emit(f"copyto({out.name}, {value.name})")
    return out._replace(requires_grad=value.requires_grad)


def attribute_guard(b: Builder, layer_name: str, layer: Any, *attrs: str) -> None:
    for attr in attrs:
        b.check(f"{layer_name}.{attr} == {getattr(layer, attr)!r}")


# --------------------------------------------------------------------------- Linear
def linear(b: Builder, layer: nn.Linear, x: Value, tag: str) -> Tuple[Value, Backward]:
    if x.array.ndim != 2:
        raise Unsupported(f"Linear on a {x.array.ndim}-D input (the compiler knows 2-D)")
    L = b.name(tag, layer)
    w = parameter(b, layer, L, "weight", tag)
    bias = parameter(b, layer, L, "bias", tag)
    n = x.array.shape[0]
    b.comment(f"{tag}: {layer!r}: y = x·Wᵀ + b")
    out = b.view(f"{tag}_out", like(lambda: x.array @ w.array.T),
                 x.requires_grad or w.requires_grad or bool(bias and bias.requires_grad),
                 scratch=True)                     # backward reads W and x, not y
    wt = b.view(f"{tag}_weight_T", w.array.T)
    b.emit(f"matmul({x.name}, {wt.name}, out={out.name})")
    if bias is not None:
        b.emit(f"{out.name} += {bias.name}")

    def backward(g: Value) -> Optional[Value]:
        b.comment(f"{tag}: {layer!r}: dx = g·W, dW = gᵀ·x, db = Σ_rows g")
        gx = None
        if x.requires_grad:
            gx = b.view(f"{tag}_grad_in", like(lambda: g.array @ w.array), True, True)
            b.emit(f"matmul({g.name}, {w.name}, out={gx.name})")
        if w.requires_grad:
            gt = b.view(f"{g.name}_T", g.array.T)
            gw = grad_buffer(b, layer.weight,
                             lambda: like(lambda: K.matmul(g.array.T, x.array)),
                             f"{tag}_weight_grad")
            if n == 1:  # K.matmul: an outer product, by np.dot
                b.emit(f"dot({gt.name}, {x.name}, out={gw.name})")
            else:
                b.emit(f"matmul({gt.name}, {x.name}, out={gw.name})")
        if bias is not None and bias.requires_grad:
            ones = b.name(f"ones_{n}", K.ones(n, g.array.dtype))
            gb = grad_buffer(b, layer.bias, lambda: like(lambda: K.column_sums(g.array)),
                             f"{tag}_bias_grad")
            b.emit(f"matmul({ones}, {g.name}, out={gb.name})")   # K.column_sums
        return gx

    return out, backward


# ---------------------------------------------------------------------- activations
def relu(b: Builder, layer: nn.ReLU, x: Value, tag: str) -> Tuple[Value, Backward]:
    # In place over a value nothing reads again (a Linear's output): the same numbers.
    out = x if x.scratch else b.view(f"{tag}_out", like(lambda: np.maximum(x.array, 0)))
    out = out._replace(requires_grad=x.requires_grad, scratch=False)  # backward reads y
    b.comment(f"{tag}: ReLU: y = max(x, 0)")
    b.emit(f"maximum({x.name}, 0, out={out.name})")

    def backward(g: Value) -> Value:
        b.comment(f"{tag}: ReLU: dx = g·[y > 0]")
        mask = b.view(f"{tag}_grad_in", like(lambda: (out.array > 0).astype(g.array.dtype)),
                      True, True)
        b.emit(f"greater({out.name}, 0, out={mask.name})", f"{mask.name} *= {g.name}")
        return mask

    return out, backward


def leaky_relu(b: Builder, layer: nn.LeakyReLU, x: Value, tag: str) -> Tuple[Value, Backward]:
    L = b.name(tag, layer)
    attribute_guard(b, L, layer, "negative_slope")
    slope = float(layer.negative_slope)
    a = x.array
    positive = b.view(f"{tag}_positive", like(lambda: a > 0))
    out = b.view(f"{tag}_out", like(lambda: np.where(a > 0, a, a * slope)), x.requires_grad,
                 scratch=True)
    b.comment(f"{tag}: {layer!r}: y = x if x > 0 else slope·x")
    b.emit(f"greater({x.name}, 0, out={positive.name})",
           f"multiply({x.name}, {slope!r}, out={out.name})",
           f"copyto({out.name}, {x.name}, where={positive.name})")

    def backward(g: Value) -> Value:
        b.comment(f"{tag}: LeakyReLU: dx = g if x > 0 else slope·g")
        gx = b.view(f"{tag}_grad_in", like(lambda: np.where(a > 0, g.array, g.array * slope)),
                    True, True)
        b.emit(f"multiply({g.name}, {slope!r}, out={gx.name})",
               f"copyto({gx.name}, {g.name}, where={positive.name})")
        return gx

    return out, backward


def tanh(b: Builder, layer: nn.Tanh, x: Value, tag: str) -> Tuple[Value, Backward]:
    out = x if x.scratch else b.view(f"{tag}_out", like(lambda: np.tanh(x.array)))
    out = out._replace(requires_grad=x.requires_grad, scratch=False)
    b.comment(f"{tag}: Tanh")
    b.emit(f"tanh({x.name}, out={out.name})")

    def backward(g: Value) -> Value:
        b.comment(f"{tag}: Tanh: dx = g·(1 - y²)")
        y = out.array
        t = b.view(f"{tag}_one_minus_y2", like(lambda: 1 - y * y))
        gx = b.view(f"{tag}_grad_in", like(lambda: g.array * (1 - y * y)), True, True)
        b.emit(f"multiply({out.name}, {out.name}, out={t.name})",
               f"subtract(1, {t.name}, out={t.name})",
               f"multiply({g.name}, {t.name}, out={gx.name})")
        return gx

    return out, backward


def sigmoid(b: Builder, layer: nn.Sigmoid, x: Value, tag: str) -> Tuple[Value, Backward]:
    a = x.array
    e = b.view(f"{tag}_e", like(lambda: np.exp(-np.abs(a))))
    nonneg = b.view(f"{tag}_nonnegative", like(lambda: a >= 0))
    num = b.view(f"{tag}_numerator", like(lambda: np.where(a >= 0, 1, e.array)))
    den = b.view(f"{tag}_denominator", like(lambda: 1 + e.array))
    out = b.view(f"{tag}_out", like(lambda: (np.where(a >= 0, 1, e.array) / (1 + e.array)
                                             ).astype(a.dtype, copy=False)),
                 x.requires_grad)
    if out.array.dtype != num.array.dtype:
        raise Unsupported(f"Sigmoid of {a.dtype}")
    b.comment(f"{tag}: Sigmoid: y = e^min(x,0) / (1 + e^-|x|)")
    b.emit(f"absolute({x.name}, out={e.name})", f"negative({e.name}, out={e.name})",
           f"exp({e.name}, out={e.name})",
           f"greater_equal({x.name}, 0, out={nonneg.name})",
           f"copyto({num.name}, {e.name})", f"copyto({num.name}, 1, where={nonneg.name})",
           f"add({e.name}, 1, out={den.name})",
           f"divide({num.name}, {den.name}, out={out.name})")

    def backward(g: Value) -> Value:
        b.comment(f"{tag}: Sigmoid: dx = g·y·(1 - y)")
        y = out.array
        gy = b.view(f"{tag}_g_y", like(lambda: g.array * y))
        one_minus = b.view(f"{tag}_one_minus_y", like(lambda: 1 - y))
        gx = b.view(f"{tag}_grad_in", like(lambda: g.array * y * (1 - y)), True, True)
        b.emit(f"multiply({g.name}, {out.name}, out={gy.name})",
               f"subtract(1, {out.name}, out={one_minus.name})",
               f"multiply({gy.name}, {one_minus.name}, out={gx.name})")
        return gx

    return out, backward


# ------------------------------------------------------------------ Flatten, Dropout
def flatten(b: Builder, layer: nn.Flatten, x: Value, tag: str) -> Tuple[Value, Backward]:
    L = b.name(tag, layer)
    attribute_guard(b, L, layer, "start_dim", "end_dim")
    ndim = x.array.ndim
    if not (ndim and -ndim <= layer.start_dim < ndim and -ndim <= layer.end_dim < ndim):
        raise Unsupported(f"Flatten({layer.start_dim}, {layer.end_dim}) of {x.array.shape}")
    start, end = layer.start_dim % ndim, layer.end_dim % ndim        # as Tensor.flatten
    shape = x.array.shape[:start] + (-1,) + x.array.shape[end + 1:]
    shape = np.empty(x.array.shape, np.int8).reshape(shape).shape
    b.comment(f"{tag}: {layer!r}")
    out = reshaped(b, x, shape, f"{tag}_out")

    def backward(g: Value) -> Value:
        b.comment(f"{tag}: Flatten: dx = g reshaped back")
        return reshaped(b, g, x.array.shape, f"{tag}_grad_in")

    return out, backward


def dropout(b: Builder, layer: nn.Dropout, x: Value, tag: str
            ) -> Tuple[Value, Optional[Backward]]:
    L = b.name(tag, layer)
    attribute_guard(b, L, layer, "training", "p")
    p = layer.p
    if not layer.training or p == 0.0:
        return x, None                                  # F.dropout returns its input
    a = x.array
    scale = b.view(f"{tag}_scale", like(lambda: np.zeros(a.shape, a.dtype)))
    out = b.view(f"{tag}_out", like(lambda: a * scale.array), x.requires_grad, scratch=True)
    b.comment(f"{tag}: {layer!r}: y = x·mask/(1-p), the mask drawn as F.dropout draws it")
    if p == 1.0:
        b.emit(f"multiply({x.name}, {scale.name}, out={out.name})")   # scale stays zero
    else:
        draws = b.view(f"{tag}_draws", np.zeros(a.shape, np.float32))
        rng = f"{tag}_rng"
        b.emit(f"{rng} = {L}.generator",
               f"if {rng} is None:",
               f"    {rng} = default_generator()",
               f"{rng}.random(None, float32, {draws.name})",
               f"greater_equal({draws.name}, {p!r}, out={scale.name})",
               f"{scale.name} *= {1.0 / (1.0 - p)!r}",
               f"multiply({x.name}, {scale.name}, out={out.name})")

    def backward(g: Value) -> Value:
        b.comment(f"{tag}: Dropout: dx = g·mask/(1-p)")
        gx = b.view(f"{tag}_grad_in", like(lambda: g.array * scale.array), True, True)
        b.emit(f"multiply({g.name}, {scale.name}, out={gx.name})")
        return gx

    return out, backward


# ------------------------------------------------------------------ batch norm
def channel_sums(b: Builder, value: Value, hint: str) -> Value:
    """K.channel_sums(value): Σ over every axis but 1, as the same matrix products."""
    a = value.array
    n, c = a.shape[:2]
    out = b.view(hint, like(lambda: K.channel_sums(a)))
    ones_n = b.name(f"ones_{n}", K.ones(n, a.dtype))
    if a.ndim == 2:
        b.emit(f"matmul({ones_n}, {value.name}, out={out.name})")
        return out
    rows = reshaped(b, value, (n, -1), f"{hint}_rows")
    per_position = b.view(f"{hint}_per_position", like(lambda: K.ones(n, a.dtype) @ rows.array))
    by_channel = b.view(f"{hint}_by_channel", per_position.array.reshape(c, -1))
    ones_l = b.name(f"ones_{by_channel.array.shape[1]}", K.ones(by_channel.array.shape[1],
                                                                a.dtype))
    b.emit(f"matmul({ones_n}, {rows.name}, out={per_position.name})",
           f"matmul({by_channel.name}, {ones_l}, out={out.name})")
    return out


def batch_norm(b: Builder, layer: nn.BatchNorm1d, x: Value, tag: str
               ) -> Tuple[Value, Backward]:
    """BatchNorm1d (N, C) or (N, C, L), and BatchNorm2d through its (N, C, H·W) view."""
    L = b.name(tag, layer)
    attribute_guard(b, L, layer, "training", "momentum", "eps", "track_running_stats")
    if not layer.training:
        raise Unsupported("batch norm in eval mode in a training step")
    image = isinstance(layer, nn.BatchNorm2d)
    expected = 4 if image else (2, 3)
    if (x.array.ndim not in expected if not image else x.array.ndim != 4) or \
            x.array.shape[1] != layer.num_features:
        raise Unsupported(f"{type(layer).__name__} on input {x.array.shape}")
    weight = parameter(b, layer, L, "weight", tag)
    bias = parameter(b, layer, L, "bias", tag)
    track = layer.track_running_stats
    if track:
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            b.check(f"{L}.{name} is {b.name(f'{tag}_{name}', getattr(layer, name))}")
    b.comment(f"{tag}: {layer!r}: batch statistics, fused as fused.BatchNorm")
    x4 = x
    if image:
        n, c, h, w = x.array.shape
        x = reshaped(b, fixed(b, x, f"{tag}_in"), (n, c, h * w), f"{tag}_in_3d")
    else:
        x = fixed(b, x, f"{tag}_in")
    a = x.array
    shape = (1, -1) + (1,) * (a.ndim - 2)
    count = a.size // a.shape[1]
    if count <= 1:
        raise Unsupported("batch norm with one value per channel")
    factor = f"{tag}_factor"
    if track:
        b.emit(f"{tag}_num_batches_tracked += 1")
        b.emit(f"{factor} = 1.0 / int({tag}_num_batches_tracked)" if layer.momentum is None
               else f"{factor} = {float(layer.momentum)!r}")
    mean = channel_sums(b, x, f"{tag}_mean")
    mean_b = b.view(f"{tag}_mean_b", mean.array.reshape(shape))
    xhat = b.view(f"{tag}_xhat", like(lambda: a - mean_b.array))
    square = b.view(f"{tag}_xhat2", like(lambda: xhat.array * xhat.array))
    b.emit(f"{mean.name} /= {count}",                              # μ = Σx / count
           f"subtract({x.name}, {mean_b.name}, out={xhat.name})",
           f"multiply({xhat.name}, {xhat.name}, out={square.name})")
    var = channel_sums(b, square, f"{tag}_var")
    inv_std = b.view(f"{tag}_inv_std", like(lambda: 1 / np.sqrt(var.array + layer.eps)))
    inv_b = b.view(f"{tag}_inv_std_b", inv_std.array.reshape(shape))
    b.emit(f"{var.name} /= {count}",                               # biased variance
           f"add({var.name}, {layer.eps!r}, out={inv_std.name})",
           f"sqrt({inv_std.name}, out={inv_std.name})",
           f"divide(1, {inv_std.name}, out={inv_std.name})",
           f"{xhat.name} *= {inv_b.name}")                           # x̂ = (x - μ)/σ
    weight_b = None if weight is None else b.view(f"{tag}_weight_b", weight.array.reshape(shape))
    requires_grad = x.requires_grad or any(v is not None and v.requires_grad
                                           for v in (weight, bias))
    if weight_b is not None:
        out = b.view(f"{tag}_out", like(lambda: xhat.array * weight_b.array), requires_grad,
                     scratch=True)
        b.emit(f"multiply({xhat.name}, {weight_b.name}, out={out.name})")
    else:
        out = b.view(f"{tag}_out", like(lambda: xhat.array.copy()), requires_grad, scratch=True)
        b.emit(f"copyto({out.name}, {xhat.name})")
    if bias is not None:
        bias_b = b.view(f"{tag}_bias_b", bias.array.reshape(shape))
        b.emit(f"{out.name} += {bias_b.name}")
    if track:                       # running statistics, as fused.BatchNorm updates them
        step = b.view(f"{tag}_running_step", np.zeros_like(mean.array))
        b.emit(f"{tag}_running_mean *= 1.0 - {factor}",
               f"{tag}_running_mean += multiply({mean.name}, {factor}, out={step.name})",
               f"{tag}_running_var *= 1.0 - {factor}",
               f"multiply({var.name}, {count / (count - 1)!r}, out={step.name})",
               f"{tag}_running_var += multiply({step.name}, {factor}, out={step.name})")
    result = reshaped(b, out, x4.array.shape, f"{tag}_out_4d") if image else out

    def backward(g: Value) -> Optional[Value]:
        b.comment(f"{tag}: BatchNorm: db = Σg, dw = Σg·x̂, "
                  f"dx = (g - mean(g) - x̂·mean(g·x̂))·w/σ")
        if image:
            g = reshaped(b, g, a.shape, f"{tag}_grad_3d")
        sum_g = channel_sums(b, g, f"{tag}_sum_g")
        gx_hat = b.view(f"{tag}_g_xhat", like(lambda: g.array * xhat.array))
        b.emit(f"multiply({g.name}, {xhat.name}, out={gx_hat.name})")
        sum_gx = channel_sums(b, gx_hat, f"{tag}_sum_gx")
        gx = None
        if x.requires_grad:
            if weight_b is None:
                scale = inv_b
            else:
                scale = b.view(f"{tag}_scale", like(lambda: inv_b.array * weight_b.array))
                b.emit(f"multiply({inv_b.name}, {weight_b.name}, out={scale.name})")
            mean_g = b.view(f"{tag}_mean_g", like(lambda: sum_g.array / count))
            mean_gx = b.view(f"{tag}_mean_gx", like(lambda: sum_gx.array / count))
            mean_g_b = b.view(f"{tag}_mean_g_b", mean_g.array.reshape(shape))
            mean_gx_b = b.view(f"{tag}_mean_gx_b", mean_gx.array.reshape(shape))
            gx = b.view(f"{tag}_grad_in", like(lambda: g.array - mean_g_b.array), True, True)
            term = b.view(f"{tag}_xhat_mean_gx", like(lambda: xhat.array * mean_gx_b.array))
            b.emit(f"divide({sum_g.name}, {count}, out={mean_g.name})",
                   f"subtract({g.name}, {mean_g_b.name}, out={gx.name})",
                   f"divide({sum_gx.name}, {count}, out={mean_gx.name})",
                   f"multiply({xhat.name}, {mean_gx_b.name}, out={term.name})",
                   f"{gx.name} -= {term.name}",
                   f"{gx.name} *= {scale.name}")
        if weight is not None and weight.requires_grad:
            set_grad(b, layer.weight, sum_gx)
        if bias is not None and bias.requires_grad:
            set_grad(b, layer.bias, sum_g)
        if gx is not None and image:
            gx = reshaped(b, gx, x4.array.shape, f"{tag}_grad_in_4d")
        return gx

    return result, backward


# -------------------------------------------------------------------- convolution
def _out_size(shape, kernel, stride, padding) -> Tuple[int, int]:
    hp, wp = shape[2] + 2 * padding[0], shape[3] + 2 * padding[1]
    if kernel[0] > hp or kernel[1] > wp:
        raise Unsupported(f"kernel {kernel} larger than the padded input")
    return (hp - kernel[0]) // stride[0] + 1, (wp - kernel[1]) // stride[1] + 1


def conv2d(b: Builder, layer: nn.Conv2d, x: Value, tag: str) -> Tuple[Value, Backward]:
    if x.array.ndim != 4 or x.array.shape[1] != layer.in_channels:
        raise Unsupported(f"Conv2d on input {x.array.shape}")
    L = b.name(tag, layer)
    attribute_guard(b, L, layer, "stride", "padding")
    w = parameter(b, layer, L, "weight", tag)
    bias = parameter(b, layer, L, "bias", tag)
    stride, padding = layer.stride, layer.padding
    o, c, kh, kw = w.array.shape
    kernel = (kh, kw)
    n = x.array.shape[0]
    out_size = oh, ow = _out_size(x.array.shape, kernel, stride, padding)
    b.comment(f"{tag}: {layer!r}: out = W·im2col(x) + b, stored batch-last")
    # padded(x, padding, 0, BATCH_LAST): the border is zero from the start
    if padding == (0, 0) and x.fixed and x.array.transpose(BATCH_LAST).flags.c_contiguous:
        xp = x
    else:
        xp = b.new(f"{tag}_padded", padded_shape(x.array.shape, padding), x.array.dtype,
                   BATCH_LAST)
        interior = b.view(f"{tag}_padded_interior", crop(xp.array, padding))
        b.emit(f"copyto({interior.name}, {x.name})")
    # im2col: the columns (C·kh·kw, OH·OW·N), one gathering copy of the windows
    (sh, sw) = stride
    windows = sliding_window_view(xp.array, kernel, axis=(2, 3))[:, :, :sh * oh:sh, :sw * ow:sw]
    windows = b.view(f"{tag}_windows", windows.transpose(1, 4, 5, 2, 3, 0))
    cols = b.new(f"{tag}_cols", (c * kh * kw, oh * ow * n), x.array.dtype)
    cols_6d = b.view(f"{tag}_cols_6d", cols.array.reshape(windows.array.shape))
    w2d = b.view(f"{tag}_weight_2d", w.array.reshape(o, -1))
    out2d = b.view(f"{tag}_out_2d", like(lambda: w2d.array @ cols.array))
    b.emit(f"copyto({cols_6d.name}, {windows.name})",
           f"matmul({w2d.name}, {cols.name}, out={out2d.name})")
    if bias is not None:
        bias_col = b.view(f"{tag}_bias_col", bias.array[:, None])
        b.emit(f"{out2d.name} += {bias_col.name}")
    requires_grad = x.requires_grad or w.requires_grad or bool(bias and bias.requires_grad)
    out = b.view(f"{tag}_out", out2d.array.reshape(o, oh, ow, n).transpose(3, 0, 1, 2),
                 requires_grad, scratch=True)

    def backward(g: Value) -> Optional[Value]:
        b.comment(f"{tag}: Conv2d: dW = G·Xᵀ (as (X·Gᵀ)ᵀ), db = ΣG, dx = col2im(Wᵀ·G); "
                  f"X is still in {cols.name} from the forward")
        gt = g.array.transpose(BATCH_LAST)                # G: no copy if batch-last
        if g.fixed and np.shares_memory(gt.reshape(o, -1), g.array):
            g2d = b.view(f"{tag}_grad_2d", gt.reshape(o, -1))
        else:
            g2d = b.new(f"{tag}_grad_2d", (o, oh * ow * n), g.array.dtype)
            as_g = b.view(f"{tag}_grad_2d_4d", g2d.array.reshape(gt.shape))
            b.emit(f"copyto({as_g.name}, {g.name}.transpose({BATCH_LAST}))")
        gx = None
        if w.requires_grad:
            g2d_t = b.view(f"{tag}_grad_2d_T", g2d.array.T)
            gw_t = b.view(f"{tag}_weight_grad_T", like(lambda: cols.array @ g2d.array.T))
            gw_view = gw_t.array.T.reshape(w.array.shape)
            # the engine keeps a copy (np.array, order K) of the view (X·Gᵀ)ᵀ
            gw = grad_buffer(b, layer.weight, lambda: like(lambda: np.array(gw_view)),
                             f"{tag}_weight_grad")
            source = b.view(f"{tag}_weight_grad_view", gw_view)
            b.emit(f"matmul({cols.name}, {g2d_t.name}, out={gw_t.name})",
                   f"copyto({gw.name}, {source.name})")
        if x.requires_grad:
            gcols = b.view(f"{tag}_grad_cols", like(lambda: w2d.array.T @ g2d.array))
            w2d_t = b.view(f"{tag}_weight_2d_T", w2d.array.T)
            b.emit(f"matmul({w2d_t.name}, {g2d.name}, out={gcols.name})")
            # col2im: add every column back where it was read from, into zeros
            gxp = b.new(f"{tag}_grad_padded", padded_shape(x.array.shape, padding),
                        g.array.dtype, BATCH_LAST)
            parts = gcols.array.reshape(c, kh * kw, oh, ow, n).transpose(4, 0, 1, 2, 3)
            b.emit(f"{gxp.name}.fill(0)")
            for k, view in enumerate(offset_views(gxp.array, kernel, stride, out_size)):
                view_name = b.view(f"{tag}_grad_padded_{k}", view).name
                part_name = b.view(f"{tag}_grad_cols_{k}", parts[:, :, k]).name
                b.emit(f"{view_name} += {part_name}")
            gx = b.view(f"{tag}_grad_in", crop(gxp.array, padding), True, True)
        if bias is not None and bias.requires_grad:
            ones = b.name(f"ones_{g2d.array.shape[1]}", K.ones(g2d.array.shape[1],
                                                                 g2d.array.dtype))
            gb = grad_buffer(b, layer.bias, lambda: like(lambda: K.row_sums(g2d.array)),
                             f"{tag}_bias_grad")
            b.emit(f"matmul({g2d.name}, {ones}, out={gb.name})")        # K.row_sums
        return gx

    return out, backward


# ------------------------------------------------------------------------ pooling
def _pool_setup(b: Builder, layer: Any, x: Value, tag: str, fill: Any):
    if x.array.ndim != 4:
        raise Unsupported(f"{type(layer).__name__} on input {x.array.shape}")
    L = b.name(tag, layer)
    attribute_guard(b, L, layer, "kernel_size", "stride", "padding")
    kernel = as_pair(layer.kernel_size, "kernel_size", "pool", 1)
    stride = as_pair(layer.stride, "stride", "pool", 1)
    padding = as_pair(layer.padding, "padding", "pool", 0)
    out_size = _out_size(x.array.shape, kernel, stride, padding)
    layout = K.layout(x.array)
    if padding == (0, 0) and x.fixed and x.array.transpose(layout).flags.c_contiguous:
        xp = x                                      # padded() returns x itself
    else:
        xp = b.new(f"{tag}_padded", padded_shape(x.array.shape, padding), x.array.dtype,
                   layout)
        xp.array[...] = fill                        # the border keeps the fill
        interior = b.view(f"{tag}_padded_interior", crop(xp.array, padding))
        b.emit(f"copyto({interior.name}, {x.name})")
    views = [b.view(f"{tag}_window_{k}", v)
             for k, v in enumerate(offset_views(xp.array, kernel, stride, out_size))]
    return kernel, stride, padding, out_size, layout, views


def _stored(b: Builder, g: Value, layout: Tuple[int, ...], hint: str) -> Value:
    """K.stored(g, layout): g itself if stored in `layout`, else a copy that is."""
    if g.fixed and g.array.transpose(layout).flags.c_contiguous:
        return g
    out = b.new(hint, g.array.shape, g.array.dtype, layout)
    b.emit(f"copyto({out.name}, {g.name})")
    return out


def max_pool2d(b: Builder, layer: nn.MaxPool2d, x: Value, tag: str) -> Tuple[Value, Backward]:
    lowest = -np.inf if x.array.dtype.kind == "f" else np.iinfo(x.array.dtype).min
    kernel, stride, padding, out_size, layout, views = _pool_setup(b, layer, x, tag, lowest)
    b.comment(f"{tag}: {layer!r}: the maximum over each window, and which offset won")
    out = b.view(f"{tag}_out", like(lambda: views[0].array.copy(order="K")), x.requires_grad,
                 scratch=True)
    b.emit(f"copyto({out.name}, {views[0].name})")
    for view in views[1:]:
        b.emit(f"maximum({out.name}, {view.name}, out={out.name})")
    # Index of the first maximum in row-major order: the number of leading offsets that
    # miss it (searching starts all true and argmax at zero; the first offset's round is
    # written directly, which gives the same booleans and counts).
    argmax = b.view(f"{tag}_argmax", like(lambda: np.zeros_like(
        out.array, dtype=np.min_scalar_type(len(views)))))
    searching = b.view(f"{tag}_searching", like(lambda: np.ones_like(out.array, dtype=bool)))
    missed = b.view(f"{tag}_missed", like(lambda: views[0].array != out.array))
    if len(views) > 1:
        b.emit(f"not_equal({views[0].name}, {out.name}, out={searching.name})",
               f"copyto({argmax.name}, {searching.name})")
        for view in views[1:-1]:
            b.emit(f"not_equal({view.name}, {out.name}, out={missed.name})",
                   f"{searching.name} &= {missed.name}",
                   f"{argmax.name} += {searching.name}")
    else:
        b.emit(f"{argmax.name}.fill(0)")
    shape = x.array.shape
    tiles = tuple(stride) == tuple(kernel) and padding == (0, 0)

    def backward(g: Value) -> Value:
        b.comment(f"{tag}: MaxPool2d: dx = g at each window's first maximum")
        gs = _stored(b, g, layout, f"{tag}_grad_stored")
        hit = b.view(f"{tag}_hit", like(lambda: argmax.array == 0))
        if tiles:   # each input element in at most one window: written, not added
            gx = b.new(f"{tag}_grad_in", shape, g.array.dtype, layout, True, True)
            for k, view in enumerate(offset_views(gx.array, kernel, stride, out_size)):
                target = b.view(f"{tag}_grad_in_{k}", view).name
                b.emit(f"equal({argmax.name}, {k}, out={hit.name})",
                       f"multiply({hit.name}, {gs.name}, out={target})")
            return gx  # elements in no window stay zero: nothing ever writes them
        gxp = b.new(f"{tag}_grad_padded", padded_shape(shape, padding), g.array.dtype, layout)
        part = b.view(f"{tag}_part", like(lambda: np.empty_like(gs.array)))
        b.emit(f"{gxp.name}.fill(0)")
        for k, view in enumerate(offset_views(gxp.array, kernel, stride, out_size)):
            target = b.view(f"{tag}_grad_padded_{k}", view).name
            b.emit(f"equal({argmax.name}, {k}, out={hit.name})",
                   f"{target} += multiply({hit.name}, {gs.name}, out={part.name})")
        return b.view(f"{tag}_grad_in", crop(gxp.array, padding), True, True)

    return out, backward


def avg_pool2d(b: Builder, layer: nn.AvgPool2d, x: Value, tag: str) -> Tuple[Value, Backward]:
    if x.array.dtype.kind != "f":
        raise Unsupported("average pooling of integers")
    kernel, stride, padding, out_size, layout, views = _pool_setup(b, layer, x, tag, 0)
    b.comment(f"{tag}: {layer!r}: the mean over each window")
    out = b.view(f"{tag}_out", like(lambda: views[0].array.copy(order="K")), x.requires_grad,
                 scratch=True)
    inv = b.name(f"{tag}_inverse_count", np.asarray(1.0 / len(views), dtype=out.array.dtype))
    b.emit(f"copyto({out.name}, {views[0].name})")
    for view in views[1:]:
        b.emit(f"{out.name} += {view.name}")
    b.emit(f"{out.name} *= {inv}")
    shape = x.array.shape

    def backward(g: Value) -> Value:
        b.comment(f"{tag}: AvgPool2d: dx = g/(kh·kw) on every element of its window")
        gs = _stored(b, g, layout, f"{tag}_grad_stored")
        share = b.view(f"{tag}_share", like(lambda: gs.array * b.namespace[inv]))
        b.emit(f"multiply({gs.name}, {inv}, out={share.name})")
        gxp = b.new(f"{tag}_grad_padded", padded_shape(shape, padding), g.array.dtype, layout)
        b.emit(f"{gxp.name}.fill(0)")
        for k, view in enumerate(offset_views(gxp.array, kernel, stride, out_size)):
            b.emit(f"{b.view(f'{tag}_grad_padded_{k}', view).name} += {share.name}")
        return b.view(f"{tag}_grad_in", crop(gxp.array, padding), True, True)

    return out, backward


#: The layers the compiler knows, by class (a subclass that keeps its forward counts
#: as its base; one that overrides forward runs eagerly).
LAYERS: Dict[type, Emitter] = {
    nn.Linear: linear, nn.ReLU: relu, nn.LeakyReLU: leaky_relu, nn.Tanh: tanh,
    nn.Sigmoid: sigmoid, nn.Flatten: flatten, nn.Dropout: dropout,
    nn.BatchNorm1d: batch_norm, nn.BatchNorm2d: batch_norm, nn.Conv2d: conv2d,
    nn.MaxPool2d: max_pool2d, nn.AvgPool2d: avg_pool2d,
}
