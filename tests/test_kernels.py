"""Every speed helper in `_kernels` gives what the plain NumPy expression it replaces
gives (to rounding, where BLAS sums in another order; exactly where it only moves data)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_mnist import _kernels as K

floats = st.floats(-10, 10, width=32)


def matrices(min_side=1, max_side=70):
    return hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=min_side,
                                                   max_side=max_side), elements=floats)


@given(matrices())
def test_column_and_row_sums(a):
    np.testing.assert_allclose(K.column_sums(a), a.sum(axis=0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(K.row_sums(a), a.sum(axis=1), rtol=1e-5, atol=1e-4)


@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=1, max_side=70),
                  elements=floats))
def test_column_sums_of_one_row_is_that_row_in_new_memory(row):
    sums = K.column_sums(row[None, :])
    np.testing.assert_array_equal(sums, row[None, :].sum(axis=0))
    assert sums.base is None and not np.shares_memory(sums, row)


@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=4, max_side=5),
                  elements=floats))
def test_channel_sums(x):
    axes = tuple(a for a in range(x.ndim) if a != 1)
    np.testing.assert_allclose(K.channel_sums(x), x.sum(axis=axes), rtol=1e-5, atol=1e-4)


@given(matrices(), st.sampled_from([0, 1, -1]))
def test_row_max_is_exact(x, axis):
    np.testing.assert_array_equal(K.row_max(x, axis), x.max(axis=axis, keepdims=True))


@given(st.integers(1, 20), st.integers(1, 12), st.data())
def test_label_positions_gather_and_scatter(n, c, data):
    a = np.arange(n * c, dtype=np.float32).reshape(n, c)
    labels = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    at = K.label_positions(n, c, labels)
    np.testing.assert_array_equal(a.ravel()[at], a[np.arange(n), labels])
    b = a.copy()
    b.ravel()[at] -= 1
    a[np.arange(n), labels] -= 1
    np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("shapes", [((5, 1), (1, 7)), ((3, 5, 1), (3, 1, 4)),
                                    ((4, 3), (3, 2)), ((2, 4, 3), (2, 3, 5))])
def test_matmul(shapes):
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    np.testing.assert_allclose(K.matmul(a, b), a @ b, rtol=1e-6)
    if a.shape[-1] == 1:  # an outer product: each element is one rounded product
        np.testing.assert_array_equal(K.matmul(a, b), a * b)
        np.testing.assert_array_equal(K.matmul(a.swapaxes(-1, -2).copy().swapaxes(-1, -2),
                                               b), a * b)


def test_scalar_is_read_only_and_rounds_as_the_float():
    x = np.linspace(-3, 3, 11, dtype=np.float32)
    s = K.scalar(0.1, np.dtype(np.float32))
    assert not s.flags.writeable and s.dtype == np.float32
    np.testing.assert_array_equal(x * s, x * 0.1)


@pytest.mark.parametrize("size", [10, K.BLOCKED_ABOVE, K.BLOCKED_ABOVE + 1, 3 * K.BLOCK + 17])
def test_flat_pieces_cover_the_arrays_exactly_once(size):
    a, b = np.zeros(size, np.float32), np.zeros(size, np.float32)
    pieces = K.flat_pieces(a, b, None)
    assert (len(pieces) == 1) == (size <= K.BLOCKED_ABOVE)
    for pa, pb, none in pieces:
        assert none is None and pa.size == pb.size <= max(size, K.BLOCK)
        pa += 1
        pb += 2
    np.testing.assert_array_equal(a, 1)
    np.testing.assert_array_equal(b, 2)


def test_flat_pieces_of_a_strided_array_is_the_whole_array():
    a = np.zeros((K.BLOCKED_ABOVE, 2), np.float32)[:, 0]
    assert len(K.flat_pieces(a)) == 1 and K.flat_pieces(a)[0][0] is a


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (1, 2, 3, 0), (1, 0, 2, 3)])
def test_layout_helpers(order):
    shape = (2, 3, 4, 5)
    a = K.new_array(shape, 7, np.float32, order)
    assert a.shape == shape and K.layout(a) == order and (a == 7).all()
    x = np.arange(120, dtype=np.float32).reshape(shape)
    s = K.stored(x, order)
    np.testing.assert_array_equal(s, x)
    assert K.layout(s) == order
    assert K.stored(s, order) is s
