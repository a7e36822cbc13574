"""Every differentiable op against central finite differences, on shapes, values and
upstream gradients drawn by hypothesis; plus the invariants every op must keep.

`OP_CASES` maps each primitive `Function` to a strategy of cases. A test fails if the
package defines a Function that has no entry here. `check_function` is the one checker
of the invariants (in the style of MyGrad's op tests), run on every entry: any subset
of the inputs may require a gradient, inputs are never mutated, gradients never alias
the upstream gradient, each other or the inputs, a Function never writes into the
gradient it is handed, and inputs in any memory layout (Fortran order, strided views)
give the same values and gradients.
"""
import importlib
import itertools
import pkgutil

import numpy as np
import pytest
from hypothesis import given, note, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_mnist as tg
import tinygrad_mnist.nn.functional as F
from tinygrad_mnist import Function, Tensor, gradcheck, gradgradcheck, ops
from strategies import Case, arrays, away_from, axes, broadcastable_pair, distinct, shapes
from conv_cases import CONV_CASES
from conftest import scoped_registry


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


@st.composite
def index_add_case(draw):
    """GetItem's gradient as a Function: g added into zeros at an index."""
    shape = draw(shapes(min_dims=1))
    basic = draw(st.booleans())
    if basic:
        index = draw(hnp_basic_indices(shape))
    else:
        index = np.array(draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1,
                                       max_size=6)))
    g = draw(arrays(np.zeros(shape)[index].shape))
    return Case(lambda t: ops.IndexAdd.apply(t, shape=shape, index=index, basic=basic), (g,))


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
    weight = draw(st.one_of(st.none(), arrays((c,), 0.1, 2.0)))   # a constant, as in torch
    options = dict(reduction=reduction, label_smoothing=smoothing)
    if draw(st.booleans()):
        labels = np.array(draw(st.lists(st.integers(-1, c - 1), min_size=n, max_size=n)))
        labels[0] = max(labels[0], 0)                # -1 is ignored; one label is kept
        return Case(lambda z: tg.cross_entropy(z, labels, weight, ignore_index=-1, **options),
                    (logits,))
    target = draw(arrays((n, c), 0.0, 1.0))
    return Case(lambda z, t: tg.cross_entropy(z, t, weight, **options), (logits, target))


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


@st.composite
def binary_cross_entropy_case(draw):
    shape = draw(shapes())
    x, t = draw(arrays(shape, 0.05, 0.95)), draw(arrays(shape, 0.0, 1.0))
    return Case(lambda a, b: ops.BinaryCrossEntropy.apply(a, b), (x, t))


@st.composite
def binary_cross_entropy_with_logits_case(draw):
    shape = draw(shapes())
    z, t = draw(arrays(shape, -5.0, 5.0)), draw(arrays(shape, 0.0, 1.0))
    pos_weight = draw(st.one_of(st.none(), arrays(shape[-1:], 0.5, 3.0)))

    def fn(a, b):
        p = None if pos_weight is None else pos_weight.astype(a.dtype)
        return ops.BinaryCrossEntropyWithLogits.apply(a, b, pos_weight=p)
    return Case(fn, (z, t))


@st.composite
def cast_case(draw):
    """Through a wider float type and back: both casts run, and no precision is lost."""
    x = draw(arrays(draw(shapes())))
    return Case(lambda t: ops.Cast.apply(ops.Cast.apply(t, dtype=np.longdouble),
                                               dtype=t.dtype), (x,))


@st.composite
def expand_case(draw):
    shape = draw(shapes())
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    target = lead + tuple(draw(st.integers(1, 3)) if n == 1 else n for n in shape)
    return Case(lambda t: t.expand(*target), (draw(arrays(shape)),))


@st.composite
def extremum_dim_case(draw, method):
    """`max(dim)`/`min(dim)` values: the gradient goes to the picked element only."""
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    keepdim = draw(st.booleans())
    return Case(lambda t: getattr(t, method)(dim, keepdim).values, (draw(distinct(shape)),))


@st.composite
def spread_case(draw, method):
    """var/std over dims with at least two values each, of distinct values."""
    x = draw(distinct((3, 4), spacing=0.3))
    dim = draw(st.sampled_from([None, 0, 1, -1, (0, 1)]))
    correction = draw(st.sampled_from([0, 1]))
    keepdim = draw(st.booleans())
    return Case(lambda t: getattr(t, method)(dim, keepdim=keepdim, correction=correction),
                (x,))


@st.composite
def gather_case(draw):
    n, c, k = (draw(st.integers(1, 4)) for _ in range(3))
    index = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n * k, max_size=n * k)))
    return Case(lambda t: t.gather(1, index.reshape(n, k)), (draw(arrays((n, c))),))


@st.composite
def pow_tensor_case(draw):
    """x ** p with a constant exponent tensor broadcast against x."""
    k = draw(st.integers(1, 3))
    x = draw(arrays((draw(st.integers(1, 3)), 1), 0.2, 3.0))
    p = np.array(draw(st.lists(st.sampled_from([2.0, 3.0, -1.0, 0.5]), min_size=k,
                               max_size=k)))
    return Case(lambda t: t ** Tensor(p), (x,))


@st.composite
def apart_pair(draw, method):
    """a.maximum(b) / a.minimum(b) with |a - b| >= 0.1 everywhere (no ties)."""
    shape = draw(shapes())
    a = draw(arrays(shape))
    return Case(lambda x, y: getattr(x, method)(y),
                (a, a + draw(away_from(shape, [0.0], 0.1))))


@st.composite
def where_case(draw):
    """where(condition, a, b) with a and b of broadcastable shapes and a drawn condition."""
    sa, sb = draw(broadcastable_pair())
    a, b = draw(arrays(sa)), draw(arrays(sb))
    shape = np.broadcast_shapes(sa, sb)
    condition = draw(hnp.arrays(np.bool_, shape))
    return Case(lambda x, y: tg.where(condition, x, y), (a, b))


@st.composite
def remainder_case(draw):
    """a % b with |b| >= 0.5 and a / b at least 0.05 from an integer (where a % b jumps)."""
    sa, sb = draw(broadcastable_pair())
    b = draw(away_from(sb, [0.0], 0.5))
    shape = np.broadcast_shapes(sa, sb)
    whole = draw(hnp.arrays(np.float64, shape, elements=st.integers(-3, 3)))
    part = draw(arrays(shape, 0.05, 0.95))
    a = (whole + part) * b             # broadcast to both shapes: a's own shape is `shape`
    return Case(lambda x, y: x % y, (a, b))


@st.composite
def along_a_dim_case(draw, method):
    """`cumsum(dim)` / `prod(dim)` along a drawn dimension (values may be zero)."""
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    x = draw(arrays(shape, -2.0, 2.0))
    x[draw(hnp.arrays(np.bool_, shape))] = 0.0
    if method == "exclusive_products":             # Prod's local gradient, a Function
        axis = dim % len(shape)
        return Case(lambda t: ops.ExclusiveProducts.apply(t, axis=axis), (x,))
    return Case(lambda t: getattr(t, method)(dim), (x,))


EINSUM_EQUATIONS = ["ij,jk->ik", "ij->ji", "ij->", "i,j->ij", "bij,bjk->bik", "ijk,ij->k",
                    "ab,bc,cd->ad", "ij,k->", ",i->i"]


@st.composite
def einsum_case(draw):
    """An equation of EINSUM_EQUATIONS with a size drawn for each letter (a letter only
    one operand has, summed in forward, included)."""
    equation = draw(st.sampled_from(EINSUM_EQUATIONS))
    sizes = {c: draw(st.integers(1, 3)) for c in sorted(set(equation) - set(",->"))}
    inputs = equation.split("->")[0].split(",")
    operands = tuple(draw(arrays(tuple(sizes[c] for c in s))) for s in inputs)
    return Case(lambda *ts: tg.einsum(equation, *ts), operands)


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
    "Max": reduce_case("amax", distinct),
    "MatMul": matmul_case(),
    "Linear": linear_case(),
    "Reshape": reshape_case(),
    "Permute": permute_case(),
    "GetItem": getitem_case(),
    "Concatenate": concatenate_case(),
    "LogSoftmax": log_softmax_case(),
    "CrossEntropy": cross_entropy_case(),
    "BatchNorm": batch_norm_case(),
    "BinaryCrossEntropy": binary_cross_entropy_case(),
    "BinaryCrossEntropyWithLogits": binary_cross_entropy_with_logits_case(),
    "IndexAdd": index_add_case(),
    **CONV_CASES,
    "Cast": cast_case(),
    "Expand": expand_case(),
    "Sin": unary(Tensor.sin),
    "Cos": unary(Tensor.cos),
    "Where": where_case(),
    "Extremum": apart_pair("maximum"),
    "Remainder": remainder_case(),
    "Cumsum": along_a_dim_case("cumsum"),
    "Prod": along_a_dim_case("prod"),
    "ExclusiveProducts": along_a_dim_case("exclusive_products"),
    "Erf": unary(Tensor.erf),
    "Erfc": unary(Tensor.erfc),
    "Log1p": unary(Tensor.log1p, low=-0.5, high=3.0),
    "Rounding": unary(Tensor.floor, values=away_from, kinks=list(range(-3, 4))),
    "Einsum": einsum_case(),
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
    "amin": reduce_case("amin", distinct),
    "max_dim": extremum_dim_case("max"),
    "min_dim": extremum_dim_case("min"),
    "abs": unary(Tensor.abs, values=away_from, kinks=[0.0]),
    "var": spread_case("var"),
    "std": spread_case("std"),
    "norm": shapes().flatmap(lambda s: away_from(s, [0.0], 0.1)).map(
        lambda x: Case(lambda t: t.norm(), (x,))),
    "norm_p": st.tuples(shapes().flatmap(lambda s: away_from(s, [0.0], 0.1)),
                        st.sampled_from([0.5, 1.5, 3.0])).map(
        lambda xp: Case(lambda t: t.norm(xp[1]), (xp[0],))),
    "prod_all": shapes().flatmap(arrays).map(lambda x: Case(lambda t: t.prod(), (x,))),
    "round": unary(Tensor.round, values=away_from, kinks=[k + 0.5 for k in range(-4, 4)]),
    "sign": unary(Tensor.sign, values=away_from, kinks=[0.0]),
    "gelu": unary(F.gelu),
    "gelu_tanh": unary(lambda t: F.gelu(t, approximate="tanh")),
    "silu": unary(F.silu),
    "elu": unary(lambda t: F.elu(t, 0.5), values=away_from, kinks=[0.0]),
    "softplus": unary(lambda t: F.softplus(t, 2.0, 4.0), values=away_from, kinks=[2.0]),
    "layer_norm": st.tuples(shapes(min_dims=2, min_side=2).flatmap(
        lambda s: distinct(s, spacing=0.3)), st.integers(1, 2)).map(
        lambda xk: Case(lambda t: F.layer_norm(t, xk[0].shape[-xk[1]:]), (xk[0],))),
    "adaptive_avg_pool2d": st.tuples(shapes(min_dims=4, max_dims=4, max_side=5).flatmap(
        arrays), st.integers(1, 3), st.integers(1, 3)).map(
        lambda xs: Case(lambda t: F.adaptive_avg_pool2d(t, xs[1:]), (xs[0],))),
    "repeat": shapes(min_dims=1, max_side=3).flatmap(arrays).map(
        lambda x: Case(lambda t: t.repeat(*([2] + [1] * (x.ndim - 1))), (x,))),
    "chunk": shapes(min_dims=1).flatmap(arrays).map(
        lambda x: Case(lambda t: tg.cat([p * (k + 1) for k, p in enumerate(t.chunk(2, -1))],
                                        -1), (x,))),
    "gather": gather_case(),
    "unsqueeze": shapes().flatmap(arrays).map(lambda x: Case(lambda t: t.unsqueeze(-1), (x,))),
    "squeeze": shapes().flatmap(arrays).map(lambda x: Case(lambda t: t.squeeze(), (x,))),
    "pow_tensor_exponent": pow_tensor_case(),
    "rpow": unary(lambda t: 2.0 ** t),
    "clone": unary(Tensor.clone),
    "sort": shapes(min_dims=1).flatmap(lambda s: distinct(s)).map(
        lambda x: Case(lambda t: t.sort(-1, descending=True).values * np.arange(
            1.0, x.shape[-1] + 1), (x,))),
    "topk": shapes(min_dims=1).flatmap(lambda s: distinct(s)).map(
        lambda x: Case(lambda t: t.topk(1, 0).values, (x,))),
    "logsumexp": shapes(min_dims=1).flatmap(arrays).map(
        lambda x: Case(lambda t: t.logsumexp(-1), (x,))),
    "l1_loss": shapes().flatmap(lambda s: st.tuples(away_from(s, [0.0], 0.1), arrays(s))).map(
        lambda xs: Case(lambda a, b: tg.nn.functional.l1_loss(a + b, b), xs)),
    "minimum": apart_pair("minimum"),
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


def test_coverage_check_catches_a_new_op(function_registry):
    class Unchecked(Function):
        def forward(self, x):
            return x

    assert "Unchecked" in all_functions() - set(OP_CASES)


def test_functions_defined_in_a_scoped_registry_are_gone_afterwards():
    real_add, before = Function.registry["Add"], dict(Function.registry)
    with scoped_registry() as registry:
        assert registry is Function.registry

        class Scoped(Function):
            pass

        class Add(Function):  # shadows the real op's name inside the scope
            pass

        assert Function.registry["Scoped"] is Scoped and Function.registry["Add"] is Add
    assert "Scoped" not in Function.registry
    assert Function.registry["Add"] is real_add
    assert Function.registry == before


def test_a_scoped_registry_keeps_package_functions_first_imported_inside_it():
    try:
        with scoped_registry():  # a package module first imported here registers its ops
            lazy = type("LazyOp", (Function,), {"__module__": "tinygrad_mnist.lazy"})
        assert Function.registry["LazyOp"] is lazy   # it never registers them again
    finally:
        Function.registry.pop("LazyOp", None)


def with_constants(case, requires_grad):
    """`case.fn` as a function of only the inputs that require a gradient; the others
    are bound as constant Tensors (requires_grad=False), so `gradcheck`, which makes
    every input it is given require one, checks exactly that subset."""
    constants = {k: Tensor(x) for k, (x, r) in enumerate(zip(case.inputs, requires_grad))
                 if not r}

    def fn(*variables):
        it = iter(variables)
        return case.fn(*[constants[k] if k in constants else next(it)
                         for k in range(len(case.inputs))])
    return fn


def check_function(case, requires_grad, seed, read_only=False, finite_differences=True):
    """The invariants every Function keeps, checked on one case: `requires_grad[k]`
    says whether input k requires a gradient (any subset, none included); the upstream
    gradient is drawn from `seed`, and made read-only when `read_only`.

    * the output requires grad exactly when some input does; when none does, backward
      raises the engine's error and no input gets a gradient;
    * forward and backward leave the inputs' data and the upstream gradient unchanged
      (a read-only upstream turns any write into an error);
    * an input that does not require grad has `.grad is None`; one that does gets a
      gradient of its shape and dtype that shares no memory with the upstream
      gradient, with another input's gradient or with any input's data (else
      accumulating into one would change the other);
    * with `finite_differences`, the gradients of the inputs that require one match
      central finite differences (`gradcheck`, same tolerances, same upstream).
    """
    originals = [x.copy() for x in case.inputs]
    tensors = [Tensor(x, requires_grad=r) for x, r in zip(case.inputs, requires_grad)]
    out = case.fn(*tensors)
    assert out.requires_grad == any(requires_grad), \
        f"output requires_grad={out.requires_grad} for inputs requiring {requires_grad}"
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    upstream_copy = upstream.copy()
    upstream.flags.writeable = not read_only
    if any(requires_grad):
        out.backward(upstream)
    else:
        with pytest.raises(RuntimeError, match="does not require grad"):
            out.backward(upstream)
    np.testing.assert_array_equal(upstream, upstream_copy,
                                  err_msg="backward wrote into the upstream gradient")
    for k, (t, x, r) in enumerate(zip(tensors, originals, requires_grad)):
        np.testing.assert_array_equal(t.data, x, err_msg=f"input {k} was mutated")
        if not r:
            assert t.grad is None, f"input {k} requires no gradient but got one"
            continue
        assert t.grad is not None and t.grad.shape == x.shape, \
            f"input {k}: gradient {None if t.grad is None else t.grad.shape}, data {x.shape}"
        assert t.grad.dtype == x.dtype, f"input {k}: gradient {t.grad.dtype}, data {x.dtype}"
        assert not np.shares_memory(t.grad, upstream), \
            f"the gradient of input {k} shares memory with the upstream gradient"
    named = [(f"the gradient of input {k}", t.grad) for k, t in enumerate(tensors)
             if t.grad is not None] + [(f"the data of input {k}", t.data)
                                       for k, t in enumerate(tensors)]
    for (name_a, a), (name_b, b) in itertools.combinations(named, 2):
        if name_a.startswith("the gradient"):
            assert not np.shares_memory(a, b), f"{name_a} shares memory with {name_b}"
    if finite_differences and any(requires_grad):
        fn = case.fn if all(requires_grad) else with_constants(case, requires_grad)
        needing = [x for x, r in zip(case.inputs, requires_grad) if r]
        assert gradcheck(fn, *needing, generator=np.random.default_rng(seed))


@pytest.mark.parametrize("name", sorted(OP_CASES) + sorted(COMPOSED_CASES))
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_gradient_matches_finite_differences(name, data, seed):
    """Every input requires a gradient and the upstream gradient is writable: each
    gradient matches finite differences, and forward and backward mutate neither the
    inputs nor the upstream gradient (plus the rest of `check_function`)."""
    case = data.draw(OP_CASES[name] if name in OP_CASES else COMPOSED_CASES[name], label="case")
    check_function(case, (True,) * len(case.inputs), seed)


@pytest.mark.parametrize("name", sorted(OP_CASES))
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_any_subset_of_inputs_may_require_grad_and_the_gradient_is_read_only(
        name, data, seed):
    """Every `needs_input_grad` branch of every backward: for each case hypothesis
    draws, every subset of its inputs (none and all included, at most 2³ = 8) requires a
    gradient in turn; those that do not get none, the others still match finite
    differences. The upstream gradient is a read-only array: a Function must never
    write into the gradient it is handed, and any write raises."""
    case = data.draw(OP_CASES[name], label="case")
    for mask in itertools.product((False, True), repeat=len(case.inputs)):
        try:
            check_function(case, mask, seed, read_only=True)
        except Exception:
            note(f"with requires_grad={mask}")
            raise


def strided(x):
    """`x`'s values in a view that is not C-contiguous: every other element of a wider
    array along the last axis (for 0-d, a plain copy)."""
    if x.ndim == 0:
        return x.copy()
    wide = np.repeat(x, 2, axis=-1)
    wide[..., 1::2] = np.nan                      # what a view must never read
    return wide[..., ::2]


LAYOUTS = {"Fortran order": lambda x: np.array(x, order="F"), "a strided view": strided}


def values_and_gradients(case, inputs, upstream):
    tensors = [Tensor(x, requires_grad=True) for x in inputs]
    out = case.fn(*tensors)
    out.backward(upstream)
    return [out.data] + [t.grad.data for t in tensors]


@pytest.mark.parametrize("name", sorted(OP_CASES) + sorted(COMPOSED_CASES))
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_inputs_in_any_memory_layout_give_the_same_values_and_gradients(name, data, seed):
    """NumPy arrays arrive transposed, sliced or in Fortran order: a Function that
    writes through `ravel()` or `reshape(-1)` of such an array writes into a copy. The
    same values in another layout (inputs and upstream gradient) must give the same
    output and gradients."""
    case = data.draw(OP_CASES[name] if name in OP_CASES else COMPOSED_CASES[name], label="case")
    probe = case.fn(*[Tensor(x) for x in case.inputs])
    upstream = np.random.default_rng(seed).standard_normal(probe.shape)
    expected = values_and_gradients(case, case.inputs, upstream)
    for layout, arrange in LAYOUTS.items():
        got = values_and_gradients(case, [arrange(x) for x in case.inputs], arrange(upstream))
        for k, (a, b) in enumerate(zip(got, expected)):
            what = "the output" if k == 0 else f"the gradient of input {k - 1}"
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12,
                                       err_msg=f"{what} with inputs in {layout}")


# Second derivatives: every Function's backward, recorded (create_graph=True), against
# finite differences of its first derivatives. The same cases as OP_CASES unless a
# Function needs others here; a Function without a case fails the suite.
SECOND_ORDER_CASES = dict(OP_CASES)


def test_every_function_has_a_second_order_check():
    missing = all_functions() - set(SECOND_ORDER_CASES)
    assert not missing, f"ops without a second-order check: {sorted(missing)}"


def check_recorded(case, seed):
    """The invariants of a recorded backward: the gradients are Tensors that require
    grad where they depend on an input, share no memory with the upstream gradient,
    each other or the inputs; and neither that backward nor the backward through it
    mutates the inputs or the upstream gradient."""
    originals = [x.copy() for x in case.inputs]
    tensors = [Tensor(x, requires_grad=True) for x in case.inputs]
    out = case.fn(*tensors)
    rng = np.random.default_rng(seed)
    upstream = Tensor(rng.standard_normal(out.shape), requires_grad=True)
    upstream_copy = upstream.data.copy()
    grads = tg.autograd.grad(out, tensors, upstream, create_graph=True, allow_unused=True)
    named = [(f"the gradient of input {k}", g.data) for k, g in enumerate(grads)
             if g is not None]
    for name, a in named:
        assert not np.shares_memory(a, upstream.data), f"{name} shares the upstream's memory"
    for (name_a, a), (name_b, b) in itertools.combinations(
            named + [(f"input {k}", t.data) for k, t in enumerate(tensors)], 2):
        if name_a.startswith("the gradient"):
            assert not np.shares_memory(a, b), f"{name_a} shares memory with {name_b}"
    used = [g for g in grads if g is not None and g.requires_grad]
    if used:
        total = sum((g * Tensor(rng.standard_normal(g.shape))).sum() for g in used)
        total.backward()
    for k, (t, x) in enumerate(zip(tensors, originals)):
        np.testing.assert_array_equal(t.data, x, err_msg=f"input {k} was mutated")
    np.testing.assert_array_equal(upstream.data, upstream_copy,
                                  err_msg="the upstream gradient was mutated")


@pytest.mark.parametrize("name", sorted(SECOND_ORDER_CASES))
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_second_derivatives_match_finite_differences(name, data, seed):
    """gradgradcheck: the recorded backward of every Function, differentiated with
    respect to its inputs and its upstream gradient, matches finite differences of the
    first derivatives; plus `check_recorded`'s invariants."""
    case = data.draw(SECOND_ORDER_CASES[name], label="case")
    check_recorded(case, seed)
    assert gradgradcheck(case.fn, *case.inputs, generator=np.random.default_rng(seed))


def test_check_function_catches_a_write_into_the_gradient(function_registry):
    class DoublesInPlace(Function):
        def forward(self, x):
            return 2 * x

        def backward(self, g):
            g *= 2
            return g

    case = Case(lambda t: DoublesInPlace.apply(t), (np.array([1.0, 2.0]),))
    with pytest.raises(AssertionError, match="wrote into the upstream gradient"):
        check_function(case, (True,), seed=0, finite_differences=False)
    with pytest.raises(ValueError, match="read-only"):         # caught as it writes
        check_function(case, (True,), seed=0, read_only=True, finite_differences=False)


def test_check_function_catches_gradients_that_share_memory(monkeypatch,
                                                           function_registry):
    class HalfSum(Function):  # (a + b) / 2, one gradient array for both inputs
        def forward(self, a, b):
            return (a + b) / 2

        def backward(self, g):
            half = g / 2
            return half, half

    # An engine that hands every array to the leaves as it is, so that Add's (g, g)
    # is the upstream array itself and HalfSum's (half, half) one array twice.
    monkeypatch.setattr(Tensor, "_accumulate",
                        lambda self, grad, owned: setattr(self, "grad", grad))
    inputs = (np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    with pytest.raises(AssertionError, match="input 0 shares memory with the upstream"):
        check_function(Case(lambda a, b: a + b, inputs), (True, True), seed=0)
    with pytest.raises(AssertionError, match="input 0 shares memory with the gradient "
                                             "of input 1"):
        check_function(Case(lambda a, b: HalfSum.apply(a, b), inputs), (True, True), seed=0)


@pytest.mark.parametrize("name", sorted(OP_CASES))
@given(data=st.data())
def test_float32_stays_float32(name, data):
    case = data.draw(OP_CASES[name], label="case")
    tensors = [Tensor(x.astype(np.float32), requires_grad=True) for x in case.inputs]
    out = case.fn(*tensors)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, np.float32))
    assert all(t.grad.dtype == np.float32 for t in tensors)


def test_gradcheck_reports_a_wrong_gradient(function_registry):
    class WrongSquare(Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, g):
            return g * self.saved[0]  # should be 2x

    with pytest.raises(AssertionError, match=r"input 0 .* analytic .* numeric"):
        gradcheck(lambda t: WrongSquare.apply(t), np.array([1.0, 2.0]))


def test_gradcheck_does_not_modify_its_inputs():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    gradcheck(lambda t: (t * t).sum(), x)
    np.testing.assert_array_equal(x, before)


def test_maximum_and_minimum_split_the_gradient_at_ties_and_keep_infinities():
    a = tg.tensor([1.0, 2.0, -np.inf, -np.inf], dtype=tg.float64, requires_grad=True)
    b = tg.tensor([1.0, 3.0, 1.0, -np.inf], dtype=tg.float64, requires_grad=True)
    out = tg.maximum(a, b)
    np.testing.assert_array_equal(out.data, [1.0, 3.0, 1.0, -np.inf])   # not NaN
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.data, [0.5, 0.0, 0.0, 0.5])    # PyTorch's shares
    np.testing.assert_array_equal(b.grad.data, [0.5, 1.0, 1.0, 0.5])
    np.testing.assert_array_equal(tg.minimum(a, b).data, [1.0, 2.0, -np.inf, -np.inf])


def test_a_zero_vector_and_a_zeroth_power_get_zero_gradients_not_nan():
    x = tg.zeros(3, dtype=tg.float64, requires_grad=True)
    (x.norm() + (x ** 0).sum()).backward()                    # PyTorch: 0 for both
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0])
    rows = tg.tensor([[3.0, 4.0], [0.0, 0.0], [np.nan, 1.0]], dtype=tg.float64)
    np.testing.assert_array_equal(rows.norm(dim=1).data, [5.0, 0.0, np.nan])


def test_max_splits_gradient_between_ties():
    x = Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5, 0.0])


def test_one_array_returned_for_two_inputs_is_not_shared_by_their_grads(function_registry):
    """A Function may hand the same new array to two inputs; the engine must not let
    two leaves (or a leaf and a pending gradient) keep that one array."""
    class HalfSum(Function):
        def forward(self, a, b):
            return (a + b) / 2

        def backward(self, g):
            half = g / 2
            return half, half

    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    HalfSum.apply(a, b).backward(np.ones(2))
    assert not np.shares_memory(a.grad, b.grad)
    x, a = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    (HalfSum.apply(a, x * 1.0) + a * 3.0).backward(np.ones(2))
    np.testing.assert_array_equal(x.grad, [0.5, 0.5])
    np.testing.assert_array_equal(a.grad, [3.5, 3.5])


def test_gradcheck_perturbs_inputs_given_in_any_layout():
    """gradcheck writes its perturbations through a flat view of each input's copy."""
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], order="F")
    assert gradcheck(lambda t: (t * t).sum(), x)
    assert gradcheck(lambda t: (t * t).sum(), strided(x))
