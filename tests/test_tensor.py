"""Tensor API, engine invariants, numerical stability and error messages."""
import gc
import tracemalloc
import warnings
import weakref

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_mnist as tg
from tinygrad_mnist import Tensor, no_grad
from strategies import arrays, shapes


# ------------------------------------------------------------------- construction
def test_dtypes_float32_by_default_float64_kept():
    assert Tensor([1, 2, 3]).dtype == np.float32
    assert Tensor(1.5).dtype == np.float32
    assert Tensor(np.zeros(3)).dtype == np.float64
    assert Tensor(np.zeros(3, np.float32)).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.int64  # labels stay integers


def test_constructor_copies_its_input():
    a = np.ones(3)
    t = Tensor(a)
    a[0] = 5
    assert t.data[0] == 1


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.arange(3), requires_grad=True)


def test_factories_are_reproducible_from_a_generator():
    a = Tensor.randn(3, 4, generator=np.random.default_rng(7))
    b = tg.randn((3, 4), generator=np.random.default_rng(7))
    np.testing.assert_array_equal(a.data, b.data)
    assert a.dtype == np.float32 and a.shape == (3, 4)
    u = Tensor.uniform(1000, low=-2, high=3, generator=np.random.default_rng(0))
    assert -2 <= u.data.min() and u.data.max() < 3 and u.dtype == np.float32
    assert tg.zeros(2, 3).data.sum() == 0 and tg.ones(2).data.sum() == 2


def test_basic_accessors():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert t.shape == (2, 2) and t.ndim == 2 and len(t) == 2 and t.numel() == 4
    assert t.sum().item() == 10.0
    d = t.detach()
    assert not d.requires_grad and d.data is t.data
    assert "requires_grad=True" in repr(t)
    with pytest.raises(ValueError, match="one-element"):
        t.item()


# ------------------------------------------------------------------- arithmetic
def test_python_scalars_on_either_side():
    x = Tensor([1.0, 2.0, 4.0], requires_grad=True)
    y = (2 - x) * 3 + 1 / x - x / 2 + x ** 2
    y.sum().backward()
    expected = -3 - 1 / x.data ** 2 - 0.5 + 2 * x.data
    np.testing.assert_allclose(x.grad, expected, rtol=1e-6)
    assert y.dtype == np.float32


def test_matmul_1d_2d_and_batched_follow_numpy():
    rng = np.random.default_rng(0)
    for sa, sb in [((3,), (3,)), ((3,), (3, 2)), ((4, 3), (3,)), ((2, 4, 3), (3, 5)),
                   ((2, 1, 4, 3), (5, 3, 2))]:
        a, b = rng.standard_normal(sa), rng.standard_normal(sb)
        np.testing.assert_allclose((Tensor(a) @ Tensor(b)).data, a @ b)


def test_indexing_with_repeated_integers_accumulates():
    x = Tensor(np.arange(4.0), requires_grad=True)
    x[np.array([0, 2, 2, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad, [1, 0, 3, 0])
    y = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y[:, 1:].sum().backward()
    np.testing.assert_array_equal(y.grad, [[0, 1, 1], [0, 1, 1]])


def test_shape_ops():
    x = Tensor(np.arange(24.0).reshape(2, 3, 4))
    assert x.reshape(6, 4).shape == (6, 4) and x.reshape((4, -1)).shape == (4, 6)
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12)
    assert x.permute(2, 0, 1).shape == (4, 2, 3)
    assert x.transpose(0, 2).shape == (4, 3, 2) and x.T.shape == (4, 3, 2)
    assert tg.stack([x, x], axis=1).shape == (2, 2, 3, 4)
    assert tg.concatenate([x, x], axis=-1).shape == (2, 3, 8)
    np.testing.assert_array_equal(x.max(axis=(0, 2)).data, [15, 19, 23])
    assert x.mean(axis=1, keepdims=True).shape == (2, 1, 4)
    assert x.sum(dim=0, keepdim=True).shape == (1, 3, 4)  # PyTorch spelling
    empty = Tensor(np.zeros((0, 3, 4)))
    assert empty.flatten(1).shape == (0, 12) and empty.flatten().shape == (0,)
    assert np.isnan(empty.mean().data) and np.isnan(empty.mean(axis=0).data).all()  # as torch
    assert empty.mean(axis=1).shape == (0, 4)


# -------------------------------------------------------------- properties
@given(arrays(shapes(min_dims=1), -50, 50))
def test_softmax_sums_to_one(x):
    p = Tensor(x).softmax(axis=-1).data
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)


@given(st.data())
def test_cross_entropy_is_minus_log_probability_of_the_label(data):
    n, c = data.draw(st.integers(1, 5)), data.draw(st.integers(2, 6))
    logits = data.draw(arrays((n, c), -20, 20))
    labels = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    losses = tg.cross_entropy(Tensor(logits), labels, reduction="none").data
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(losses, -np.log(p[np.arange(n), labels]), rtol=1e-9, atol=1e-12)
    assert np.all(losses >= 0)
    onehot = np.eye(c)[labels]
    mean = tg.cross_entropy(Tensor(logits), onehot).item()
    np.testing.assert_allclose(mean, losses.mean(), rtol=1e-9, atol=1e-12)


def test_stable_for_huge_float32_logits():
    z = Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], np.float32),
               requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = tg.cross_entropy(z, np.array([1, 2]))
        loss.backward()
        assert np.all(np.isfinite(z.log_softmax().data))
        for op in (Tensor.sigmoid, Tensor.tanh):
            out = op(Tensor(np.array([-1e4, -80.0, 0.0, 80.0, 1e4], np.float32)))
            assert np.all(np.isfinite(out.data))
    assert np.isfinite(loss.item()) and np.all(np.isfinite(z.grad))
    np.testing.assert_allclose(loss.item(), (2e4 + np.log(3)) / 2, rtol=1e-6)


# ------------------------------------------------------------------ the engine
def test_diamond_graph_accumulates():
    x = Tensor(np.array([3.0]), requires_grad=True)
    a, b = x * 2, x * x
    (a * b + a + b).sum().backward()  # d/dx (2x³ + 2x + x²) = 6x² + 2 + 2x
    np.testing.assert_allclose(x.grad, [6 * 9 + 2 + 6])


def test_gradients_accumulate_across_backward_calls():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [3 + 2, 3 + 4])


def test_leaf_grads_do_not_alias_each_other():
    a = Tensor(np.zeros(3), requires_grad=True)
    b = Tensor(np.zeros(3), requires_grad=True)
    (a + b).sum().backward()
    a.grad *= 10
    np.testing.assert_array_equal(b.grad, [1, 1, 1])


def test_implicit_seed_gradient_is_never_handed_out_writable():
    # backward() without a gradient starts from a shared read-only one: a leaf gets
    # its own writable copy, and changing it leaves later backward passes unaffected.
    for make_root in (lambda t: t, lambda t: t.reshape(()), lambda t: t * 1):
        for _ in range(2):
            x = Tensor(np.array([2.0]), requires_grad=True)
            make_root(x).backward()
            np.testing.assert_array_equal(x.grad, [1.0])
            x.grad *= 7


def test_grad_has_its_tensors_dtype():
    w = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    (Tensor(np.ones((4, 3))) @ w.T).sum().backward()  # float64 input
    assert w.grad.dtype == np.float32


def test_broadcast_gradients_are_reduced_to_the_input_shape():
    a = Tensor(np.ones((4, 1, 3)), requires_grad=True)
    b = Tensor(np.ones((2, 1)), requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (4, 1, 3) and b.grad.shape == (2, 1)
    np.testing.assert_array_equal(b.grad, [[12], [12]])


def test_no_grad_records_nothing_as_context_and_decorator():
    w = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = (w * 2).sum()
    assert not y.requires_grad and y._ctx is None

    @no_grad()
    def f(t):
        return t * 2

    out = f(w)
    assert not out.requires_grad and out._ctx is None
    assert tg.is_grad_enabled()
    assert (w * 2).requires_grad


def test_grad_mode_is_per_thread():
    import threading

    w = Tensor(np.ones(3), requires_grad=True)
    inside, leave = threading.Event(), threading.Event()
    seen = {}

    def worker():
        with no_grad():
            inside.set()
            leave.wait(5)
            seen["worker"] = (w * 2).requires_grad

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(5)
    seen["main"] = (w * 2).requires_grad  # another thread's no_grad does not reach here
    leave.set()
    t.join()
    assert seen == {"main": True, "worker": False}


def test_deep_chain_backprops_without_recursion_error():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.backward()
    np.testing.assert_allclose(x.grad, 1.00001 ** 100_000, rtol=1e-9)


def test_graph_is_released_after_backward():
    x = Tensor(np.ones(3), requires_grad=True)
    hidden = x * 2
    ref = weakref.ref(hidden)
    loss = (hidden * hidden).sum()
    del hidden
    assert ref() is not None  # kept alive by the graph
    loss.backward()
    gc.collect()
    assert ref() is None
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


def test_retain_graph_allows_a_second_backward():
    x = Tensor(np.array([2.0]), requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad, [8.0])


def test_memory_stays_flat_over_repeated_training_steps():
    rng = np.random.default_rng(0)
    w1 = Tensor(rng.standard_normal((32, 20)).astype(np.float32), requires_grad=True)
    w2 = Tensor(rng.standard_normal((10, 32)).astype(np.float32), requires_grad=True)
    x = rng.standard_normal((16, 20)).astype(np.float32)
    y = rng.integers(0, 10, 16)

    def step():
        loss = tg.cross_entropy((Tensor(x) @ w1.T).relu() @ w2.T, y)
        loss.backward()
        for w in (w1, w2):
            w.data -= 0.01 * w.grad
            w.grad = None

    for _ in range(100):
        step()
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(1000):
            step()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"memory grew by {grown} bytes over 1000 steps"


# ---------------------------------------------------------------------- errors
def test_shape_errors_name_the_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(32, 784\) and \(100, 10\) "
                                         r"are not aligned"):
        Tensor.zeros(32, 784) @ Tensor.zeros(100, 10)
    with pytest.raises(ValueError, match=r"add: shapes \(3,\) and \(4,\)"):
        Tensor.zeros(3) + Tensor.zeros(4)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape shape \(2, 3\)"):
        Tensor.zeros(2, 3).reshape(4, 2)
    with pytest.raises(ValueError, match="concatenate"):
        tg.concatenate([Tensor.zeros(2, 3), Tensor.zeros(2, 4)], axis=0)
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        Tensor.zeros(2, 3).sum(axis=3)


def test_cross_entropy_names_a_bad_label():
    with pytest.raises(ValueError, match=r"class label 10 is outside \[0, 10\)"):
        tg.cross_entropy(Tensor.zeros(2, 10), np.array([3, 10]))
    with pytest.raises(ValueError, match=r"class label -1"):
        tg.cross_entropy(Tensor.zeros(2, 10), np.array([-1, 0]))
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        tg.cross_entropy(Tensor.zeros(2, 10), np.array([1, 2, 3]))


def test_backward_on_non_scalar_needs_a_gradient():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"scalar output.*shape \(3,\)"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(3)).sum().backward()
    with pytest.raises(ValueError, match="gradient shape"):
        (x * 2).backward(np.ones(4))


def test_bad_operands_raise_type_errors():
    with pytest.raises(TypeError, match="operand type 'str'"):
        Tensor.zeros(2) + "a"
    with pytest.raises(TypeError, match="exponent"):
        Tensor.zeros(2) ** "a"
    with pytest.raises(TypeError, match="exponent"):  # a tensor exponent needs no grad
        Tensor.zeros(2) ** Tensor.zeros(2, requires_grad=True)
