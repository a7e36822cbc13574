"""Hypothesis cases for the convolution and pooling Functions (used by `OP_CASES` in
test_gradients.py). Shapes stay small so that finite differences stay fast: N ≤ 2,
C ≤ 3, H, W ≤ 7, kernel 1-3, stride 1-2, padding 0-1."""
import numpy as np
from hypothesis import strategies as st

from tinygrad_mnist import ops
from tinygrad_mnist.nn.functional import avg_pool2d, conv2d, max_pool2d
from tinygrad_mnist.ops.convolution import output_size
from strategies import Case, arrays, distinct

sides = st.integers(1, 3)


@st.composite
def window(draw, max_padding=lambda k: 1):
    """kernel, stride, padding pairs and an image side pair (H, W) the kernel fits."""
    kernel = (draw(sides), draw(sides))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(draw(st.integers(0, min(1, max_padding(k)))) for k in kernel)
    size = tuple(draw(st.integers(max(1, k - 2 * p), 7)) for k, p in zip(kernel, padding))
    return kernel, stride, padding, size


@st.composite
def conv2d_case(draw):
    kernel, stride, padding, (h, w) = draw(window())
    n, c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x = draw(arrays((n, c_in, h, w)))
    weight = draw(arrays((c_out, c_in) + kernel))
    if draw(st.booleans()):
        return Case(lambda x, w, b: conv2d(x, w, b, stride, padding),
                    (x, weight, draw(arrays((c_out,)))))
    return Case(lambda x, w: conv2d(x, w, stride=stride, padding=padding), (x, weight))


@st.composite
def pool_case(draw, pool, values):
    kernel, stride, padding, (h, w) = draw(window(max_padding=lambda k: k // 2))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    return Case(lambda x: pool(x, kernel, stride, padding), (draw(values(shape)),))


@st.composite
def columns_case(draw, adjoint):
    """Im2Col of an image, or (`adjoint`) Col2Im of columns: the helpers of Conv2d's
    backward, Functions so that a recorded backward differentiates them."""
    kernel, stride, padding, (h, w) = draw(window())
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    out_size = output_size("case", shape, kernel, stride, padding)
    windows = dict(kernel=kernel, stride=stride, padding=padding, out_size=out_size)
    if not adjoint:
        return Case(lambda x: ops.Im2Col.apply(x, **windows), (draw(arrays(shape)),))
    cols = (shape[1] * kernel[0] * kernel[1], out_size[0] * out_size[1] * shape[0])
    return Case(lambda c: ops.Col2Im.apply(c, shape=shape, **windows),
                (draw(arrays(cols)),))


@st.composite
def pool_gradient_case(draw, name):
    """The Functions of the pooling backwards, on a gradient (MaxPoolScatter,
    AvgPoolSpread) or an input-shaped array (MaxPoolGather), with the argmax of a
    max pooling of distinct values."""
    kernel, stride, padding, (h, w) = draw(window(max_padding=lambda k: k // 2))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    pool = ops.MaxPool2d()
    out = pool.forward(draw(distinct(shape)), kernel_size=kernel, stride=stride,
                       padding=padding)
    argmax = pool.saved[2]
    windows = dict(kernel=kernel, stride=stride, padding=padding, out_size=out.shape[2:])
    layout = (0, 1, 2, 3)
    if name == "MaxPoolGather":
        return Case(lambda x: ops.MaxPoolGather.apply(x, argmax=argmax, **windows),
                    (draw(arrays(shape)),))
    g = draw(arrays(out.shape))
    if name == "MaxPoolScatter":
        return Case(lambda t: ops.MaxPoolScatter.apply(t, shape=shape, layout=layout,
                                                       argmax=argmax, **windows), (g,))
    return Case(lambda t: ops.AvgPoolSpread.apply(t, shape=shape, layout=layout, **windows),
                (g,))


CONV_CASES = {
    "Conv2d": conv2d_case(),
    # Distinct values: a central difference must not cross a tie, where max jumps.
    "MaxPool2d": pool_case(max_pool2d, distinct),
    "AvgPool2d": pool_case(avg_pool2d, arrays),
    "Im2Col": columns_case(adjoint=False),
    "Col2Im": columns_case(adjoint=True),
    "MaxPoolScatter": pool_gradient_case("MaxPoolScatter"),
    "MaxPoolGather": pool_gradient_case("MaxPoolGather"),
    "AvgPoolSpread": pool_gradient_case("AvgPoolSpread"),
}
