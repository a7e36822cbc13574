"""Every differentiable op against central finite differences, on shapes, values and
upstream gradients drawn by hypothesis; plus the invariants every op must keep.

`OP_CASES` maps each primitive `Function` to a strategy of cases. A test fails if the
package defines a Function that has no entry here.
"""
import importlib
import pkgutil

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_mnist as tg
from tinygrad_mnist import Function, Tensor, gradcheck, ops
from strategies import Case, arrays, away_from, axes, broadcastable_pair, distinct, shapes
from conv_cases import CONV_CASES


def binary(op, low=-3.0, high=3.0, b_away_from_zero=False):
    @st.composite
    def case(draw):
        sa, sb = draw(broadcastable_pair())
        a = draw(arrays(sa, low, high))
        b = draw(away_from(sb, [0.0], 0.5) if b_away_from_zero else arrays(sb, low, high))
        return Case(op, (a, b))
    return case()


def unary(op, values=arrays, **kwargs):
    return shapes().flatmap(lambda s: values(s, **kwargs)).map(lambda x: Case(op, (x,)))


@st.composite
def pow_case(draw):
    p = draw(st.sampled_from([2, 3, -1, 0.5, 1.5, -0.5]))
    x = draw(arrays(draw(shapes()), 0.2, 3.0))
    return Case(lambda t: t ** p, (x,))


@st.composite
def clip_case(draw):
    low, high = draw(st.sampled_from([(-1.0, 1.0), (None, 0.5), (-0.5, None)]))
    kinks = [k for k in (low, high) if k is not None]
    x = draw(away_from(draw(shapes()), kinks))
    return Case(lambda t: t.clip(low, high), (x,))


@st.composite
def reduce_case(draw, method, values):
    shape = draw(shapes())
    axis = draw(axes(len(shape)))
    keepdims = draw(st.booleans())
    x = draw(values(shape))
    return Case(lambda t: getattr(t, method)(axis, keepdims), (x,))


@st.composite
def matmul_case(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    batch_a, batch_b = draw(broadcastable_pair(max_dims=2, max_side=3))
    a_shape = (k,) if draw(st.booleans()) else batch_a + (n, k)
    b_shape = (k,) if draw(st.booleans()) else batch_b + (k, m)
    return Case(lambda a, b: a @ b, (draw(arrays(a_shape)), draw(arrays(b_shape))))


@st.composite
def linear_case(draw):
    n_in, n_out = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    lead = draw(shapes(min_dims=0, max_dims=2))
    x, w = draw(arrays(lead + (n_in,))), draw(arrays((n_out, n_in)))
    if draw(st.booleans()):
        return Case(lambda x, w, b: ops.Linear.apply(x, w, b), (x, w, draw(arrays((n_out,)))))
    return Case(lambda x, w: ops.Linear.apply(x, w), (x, w))


@st.composite
def reshape_case(draw):
    shape = draw(shapes())
    target = draw(st.permutations(shape).map(tuple)) + (1,) * draw(st.integers(0, 1))
    if draw(st.booleans()) and target:
        target = (-1,) + target[1:]
    return Case(lambda t: t.reshape(target), (draw(arrays(shape)),))


@st.composite
def permute_case(draw):
    shape = draw(shapes())
    order = draw(st.permutations(range(len(shape))))
    return Case(lambda t: t.permute(*order), (draw(arrays(shape)),))


@st.composite
def getitem_case(draw):
    shape = draw(shapes(min_dims=1))
    x = draw(arrays(shape))
    if draw(st.booleans()):
        index = draw(hnp_basic_indices(shape))
    else:  # integer arrays, repeated indices included
        index = draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1,
                              max_size=6)).copy()
        index = np.array(index)
    return Case(lambda t: t[index], (x,))


def hnp_basic_indices(shape):
    from hypothesis.extra.numpy import basic_indices
    return basic_indices(shape, allow_newaxis=True)


@st.composite
def concatenate_case(draw):
    base = draw(shapes(min_dims=1))
    axis = draw(st.integers(0, len(base) - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    xs = tuple(draw(arrays(base[:axis] + (s,) + base[axis + 1:])) for s in sizes)
    return Case(lambda *ts: tg.concatenate(ts, axis=axis), xs)


@st.composite
def log_softmax_case(draw):
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return Case(lambda t: t.log_softmax(axis), (draw(arrays(shape, -5, 5)),))


@st.composite
def cross_entropy_case(draw):
    n, c = draw(st.integers(1, 4)), draw(st.integers(2, 5))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.5]))
    logits = draw(arrays((n, c), -5, 5))
    if draw(st.booleans()):
        labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
        return Case(lambda z: tg.cross_entropy(z, labels, reduction, smoothing), (logits,))
    target = draw(arrays((n, c), 0.0, 1.0))
    return Case(lambda z, t: tg.cross_entropy(z, t, reduction, smoothing), (logits, target))


@st.composite
def batch_norm_case(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    spatial = draw(shapes(min_dims=0, max_dims=2, max_side=3))
    if n * int(np.prod(spatial)) < 2:                  # statistics need two values
        n = 2
    x = draw(distinct((n, c) + spatial, spacing=0.3))  # no channel is constant
    affine = (draw(st.booleans()), draw(st.booleans()))
    params = tuple(draw(arrays((c,))) for used in affine if used)

    def fn(x, *params):
        return ops.BatchNorm.apply(x, *params, eps=1e-5, affine=affine)
    return Case(fn, (x,) + params)


OP_CASES = {
    "Add": binary(lambda a, b: a + b),
    "Sub": binary(lambda a, b: a - b),
    "Mul": binary(lambda a, b: a * b),
    "Div": binary(lambda a, b: a / b, b_away_from_zero=True),
    "Neg": unary(lambda t: -t),
    "Pow": pow_case(),
    "Exp": unary(Tensor.exp),
    "Log": unary(Tensor.log, low=0.1, high=5.0),
    "Sqrt": unary(Tensor.sqrt, low=0.1, high=5.0),
    "Tanh": unary(Tensor.tanh),
    "Sigmoid": unary(Tensor.sigmoid, low=-10, high=10),
    "ReLU": unary(Tensor.relu, values=away_from, kinks=[0.0]),
    "LeakyReLU": unary(lambda t: t.leaky_relu(0.1), values=away_from, kinks=[0.0]),
    "Clip": clip_case(),
    "Sum": reduce_case("sum", arrays),
    "Max": reduce_case("max", distinct),
    "MatMul": matmul_case(),
    "Linear": linear_case(),
    "Reshape": reshape_case(),
    "Permute": permute_case(),
    "GetItem": getitem_case(),
    "Concatenate": concatenate_case(),
    "LogSoftmax": log_softmax_case(),
    "CrossEntropy": cross_entropy_case(),
    "BatchNorm": batch_norm_case(),
    "Conv2d": CONV_CASES["Conv2d"],
    "MaxPool2d": CONV_CASES["MaxPool2d"],
    "AvgPool2d": CONV_CASES["AvgPool2d"],
}

# Functions composed from the primitives: checked the same way.
COMPOSED_CASES = {
    "mean": reduce_case("mean", arrays),
    "softmax": log_softmax_case().map(lambda c: Case(lambda t: t.log_softmax().exp(), c.inputs)),
    "transpose": shapes(min_dims=2).flatmap(arrays).map(lambda x: Case(lambda t: t.transpose(0, -1), (x,))),
    "T": shapes().flatmap(arrays).map(lambda x: Case(lambda t: t.T, (x,))),
    "flatten": shapes(min_dims=1).flatmap(arrays).map(lambda x: Case(lambda t: t.flatten(), (x,))),
    "stack": shapes().flatmap(lambda s: st.tuples(arrays(s), arrays(s))).map(
        lambda xs: Case(lambda a, b: tg.stack([a, b], axis=-1), xs)),
    "cross_entropy_1d": st.integers(2, 5).flatmap(lambda c: arrays((c,))).map(
        lambda z: Case(lambda t: tg.cross_entropy(t, np.array(0)), (z,))),
    "mlp": st.tuples(arrays((3, 4)), arrays((5, 4)), arrays((5,)), arrays((2, 5))).map(
        lambda xs: Case(lambda x, w1, b1, w2: tg.cross_entropy(
            (x @ w1.T + b1).tanh() @ w2.T, np.array([0, 1, 0])), xs)),
}


def all_functions():
    """Import every module of the package, so every Function subclass registers."""
    for info in pkgutil.walk_packages(tg.__path__, prefix="tinygrad_mnist."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    return set(Function.registry)


def test_every_function_has_a_gradient_check():
    missing = all_functions() - set(OP_CASES)
    assert not missing, f"ops without a gradient check in OP_CASES: {sorted(missing)}"


def test_coverage_check_catches_a_new_op():
    class Unchecked(Function):
        def forward(self, x):
            return x

    try:
        assert "Unchecked" in all_functions() - set(OP_CASES)
    finally:
        del Function.registry["Unchecked"]


@pytest.mark.parametrize("name", sorted(OP_CASES) + sorted(COMPOSED_CASES))
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_gradient_matches_finite_differences(name, data, seed):
    case = data.draw(OP_CASES[name] if name in OP_CASES else COMPOSED_CASES[name], label="case")
    assert gradcheck(case.fn, *case.inputs, generator=np.random.default_rng(seed))


@pytest.mark.parametrize("name", sorted(OP_CASES))
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_forward_and_backward_never_mutate_inputs(name, data, seed):
    case = data.draw(OP_CASES[name], label="case")
    originals = [x.copy() for x in case.inputs]
    tensors = [Tensor(x, requires_grad=True) for x in case.inputs]
    out = case.fn(*tensors)
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    upstream_copy = upstream.copy()
    out.backward(upstream)
    for t, x in zip(tensors, originals):
        np.testing.assert_array_equal(t.data, x)
        assert t.grad is not None and t.grad.shape == x.shape
    np.testing.assert_array_equal(upstream, upstream_copy)


@pytest.mark.parametrize("name", sorted(OP_CASES))
@given(data=st.data())
def test_float32_stays_float32(name, data):
    case = data.draw(OP_CASES[name], label="case")
    tensors = [Tensor(x.astype(np.float32), requires_grad=True) for x in case.inputs]
    out = case.fn(*tensors)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, np.float32))
    assert all(t.grad.dtype == np.float32 for t in tensors)


def test_gradcheck_reports_a_wrong_gradient():
    class WrongSquare(Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, g):
            return g * self.saved[0]  # should be 2x

    try:
        with pytest.raises(AssertionError, match=r"input 0 .* analytic .* numeric"):
            gradcheck(lambda t: WrongSquare.apply(t), np.array([1.0, 2.0]))
    finally:
        del Function.registry["WrongSquare"]


def test_gradcheck_does_not_modify_its_inputs():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    gradcheck(lambda t: (t * t).sum(), x)
    np.testing.assert_array_equal(x, before)


def test_max_splits_gradient_between_ties():
    x = Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5, 0.0])
