"""Hypothesis cases for the convolution and pooling Functions (used by `OP_CASES` in
test_gradients.py). Shapes stay small so that finite differences stay fast: N ≤ 2,
C ≤ 3, H, W ≤ 7, kernel 1-3, stride 1-2, padding 0-1."""
from hypothesis import strategies as st

from tinygrad_mnist.nn.functional import avg_pool2d, conv2d, max_pool2d
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


CONV_CASES = {
    "Conv2d": conv2d_case(),
    # Distinct values: a central difference must not cross a tie, where max jumps.
    "MaxPool2d": pool_case(max_pool2d, distinct),
    "AvgPool2d": pool_case(avg_pool2d, arrays),
}
