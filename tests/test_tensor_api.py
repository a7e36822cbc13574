"""The PyTorch-shaped Tensor surface (the mixins in `mixin/`) beyond single idioms:
`.grad` as a Tensor, in-place operators and their errors, NumPy interplay, type
promotion, identity hashing, and the gradients of `max(dim)`."""
import re
import warnings

import numpy as np
import pytest

import tinygrad_mnist as tg
from tinygrad_mnist import Tensor, nn, optim


# ---------------------------------------------------------------------------- .grad
def test_grad_is_one_tensor_that_gradients_accumulate_into():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    grad, array = x.grad, x.grad.data
    assert isinstance(grad, Tensor) and x.grad is grad and not grad.requires_grad
    (x * x).sum().backward()
    assert x.grad is grad and x.grad.data is array      # accumulated in place
    np.testing.assert_array_equal(grad.numpy(), [5.0, 7.0])


def test_grad_can_be_cleared_in_place_or_dropped_or_assigned():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    grad = x.grad
    grad.zero_()
    (x * 1).sum().backward()
    assert x.grad is grad and grad.tolist() == [1.0, 1.0]
    x.grad = None
    assert x.grad is None
    array = np.ones(2)
    x.grad = array                                       # an array is wrapped, not copied
    assert isinstance(x.grad, Tensor) and x.grad.data is array
    with pytest.raises(TypeError, match="assigned grad expected to be a Tensor"):
        x.grad = [1.0, 2.0]


def test_a_manual_update_with_the_grad_tensor_changes_the_parameter_in_place():
    w = nn.Parameter(np.array([1.0, 2.0], np.float32))
    data = w.data
    (w * w).sum().backward()
    with tg.no_grad():
        w -= 0.25 * w.grad
    assert w.data is data and w.tolist() == [0.5, 1.0]
    w.data -= 0.5 * w.grad                               # the NumPy spelling, in place too
    assert w.data is data and type(w.data) is np.ndarray and w.tolist() == [-0.5, -1.0]


# -------------------------------------------------------------------------- in place
def test_in_place_operators_update_the_tensors_own_array():
    x = tg.zeros(3)
    data, alias = x.data, x
    x += 1
    x *= 4
    x -= tg.tensor([1.0, 2.0, 3.0])
    x /= 2
    assert x is alias and x.data is data and x.tolist() == [1.5, 1.0, 0.5]


def test_in_place_on_a_leaf_that_requires_grad_is_pytorchs_error():
    w = tg.ones(2, requires_grad=True)
    for op in (lambda: w.__iadd__(1), lambda: w.mul_(2), lambda: w.zero_(),
               lambda: w.copy_(tg.zeros(2)), lambda: w.__setitem__(0, 5.0)):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being "
                                               "used in an in-place operation"):
            op()
    assert w.tolist() == [1.0, 1.0]
    with tg.no_grad():
        w.mul_(3)
    assert w.tolist() == [3.0, 3.0] and w.requires_grad


def test_in_place_on_a_tensor_in_a_graph_is_refused_not_silently_wrong():
    x = tg.ones(2, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="out of place"):
        y += 1
    c = tg.ones(2)
    with pytest.raises(RuntimeError, match="out of place"):
        c += x                                           # would put c in the graph
    assert c.tolist() == [1.0, 1.0]


def test_in_place_keeps_the_dtype_and_refuses_a_lossy_cast():
    i = tg.tensor([1, 2])
    i += 3
    assert i.dtype == np.int64 and i.tolist() == [4, 5]
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type int64"):
        i /= 2
    with pytest.raises(ValueError, match="cannot write shape"):
        i += tg.ones(3, dtype=tg.long)


# ----------------------------------------------------------------------------- NumPy
def test_numpy_arrays_and_tensors_mix_both_ways():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    a = np.array([10.0, 20.0])
    for out in (a + x, x + a, a * x, a - x, a / x, a % x):
        assert isinstance(out, Tensor) and out.requires_grad and out.dtype == np.float32
    (a * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [10.0, 20.0])
    assert isinstance(a < x, Tensor) and (a > x).tolist() == [True, True]
    buffer = np.zeros(2, np.float32)
    before = buffer
    buffer += x                                          # in place, still an array
    assert buffer is before and buffer.tolist() == [1.0, 2.0]
    assert np.mean(x) == 1.5 and isinstance(np.exp(x), np.ndarray)
    assert np.asarray(x) is x.data and np.array(x, np.float64).dtype == np.float64


def test_an_optimizer_reading_grad_as_an_array_gets_the_same_numbers():
    """Code written for `.grad` as an array (np.multiply, +=, copyto) still works."""
    p = nn.Parameter(np.array([1.0, -2.0], np.float32))
    (p * p).sum().backward()
    g = p.grad
    buf = np.empty(2, np.float32)
    np.copyto(buf, g)
    buf += g
    np.multiply(g, 0.5, out=buf)
    assert buf.tolist() == [1.0, -2.0]


# ------------------------------------------------------------------------ promotion
@pytest.mark.parametrize("expr, dtype, values", [
    (lambda: tg.tensor([1, 2]) * 0.5, np.float32, [0.5, 1.0]),
    (lambda: tg.tensor([1, 2]) / 2, np.float32, [0.5, 1.0]),
    (lambda: 3 / tg.tensor([1, 2]), np.float32, [3.0, 1.5]),
    (lambda: tg.tensor([True, False]) + 1, np.int64, [2, 1]),
    (lambda: tg.tensor([1, 2]) + tg.tensor([0.5, 0.5]), np.float32, [1.5, 2.5]),
    (lambda: tg.tensor([0.5], dtype=tg.float64) + tg.tensor([1]), np.float64, [1.5]),
    (lambda: tg.tensor([1.0, 2.0]) + np.array([0.5, 0.5]), np.float32, [1.5, 2.5]),
    (lambda: tg.tensor([3, 4]) ** 2, np.int64, [9, 16]),
    (lambda: tg.tensor([4, 9]) ** 0.5, np.float32, [2.0, 3.0]),
    (lambda: tg.tensor([True, True]).sum(), np.int64, 2),
    (lambda: tg.exp(tg.tensor([0])), np.float32, [1.0]),
])
def test_type_promotion_follows_pytorch(expr, dtype, values):
    out = expr()
    assert out.dtype == dtype and out.tolist() == values


def test_none_and_strings_are_no_operands():
    with pytest.raises(TypeError, match="operand type 'NoneType'"):
        tg.ones(2) + None
    assert (tg.ones(2) == None) is False and (tg.ones(2) != "a") is True  # noqa: E711


# ----------------------------------------------------------------- identity, equality
def test_tensors_hash_by_identity_so_dicts_and_optimizers_keep_working():
    a, b = nn.Parameter(np.ones(1)), nn.Parameter(np.ones(1))    # equal values
    assert bool(a == b) and hash(a) != hash(b)
    assert {a: 1, b: 2}[b] == 2 and len({a, b}) == 2
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    for p in (a, b):
        (p * 2).sum().backward()
    opt.step()
    assert len(opt.state) == 2 and opt.state_dict()["param_groups"][0]["params"] == [0, 1]
    with pytest.raises(ValueError, match="appears twice"):
        optim.SGD([a, a], lr=0.1)


def test_the_truth_of_a_many_element_tensor_is_ambiguous():
    with pytest.raises(RuntimeError, match="more than one value is ambiguous"):
        bool(tg.ones(2) == tg.ones(2))
    assert bool(tg.tensor([1.0]) == 1.0)


# ------------------------------------------------------------------------ reductions
def test_max_along_a_dim_gives_values_indices_and_the_first_maximums_gradient():
    x = tg.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], requires_grad=True)
    result = x.max(dim=1)
    values, indices = result
    assert result.values is values and indices.dtype == np.int64
    assert values.tolist() == [3.0, 2.0] and indices.tolist() == [1, 0]
    values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]     # the first maximum
    y = tg.tensor([1.0, 3.0, 3.0], requires_grad=True)
    y.max().backward()                                                 # ties share it
    assert y.grad.tolist() == [0.0, 0.5, 0.5]


def test_numpy_style_axis_still_gives_values():
    x = tg.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert x.max(axis=(0, 2)).tolist() == [15.0, 19.0, 23.0]
    assert x.max(axis=1, keepdims=True).shape == (2, 1, 4)


# ----------------------------------------------------------------- casts and devices
def test_casts_are_differentiable_and_gradients_keep_the_leafs_dtype():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64 and y.requires_grad and x.float() is x
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [2.0, 4.0]
    assert not x.long().requires_grad


def test_other_devices_are_refused_in_one_line():
    x = tg.ones(2)
    for call in (lambda: x.cuda(), lambda: x.to("cuda"), lambda: x.to(tg.device("mps")),
                 lambda: nn.Linear(2, 2).to("cuda:0"), lambda: tg.tensor([1], device="cuda")):
        with pytest.raises(RuntimeError, match="CPU only") as error:
            call()
        assert "\n" not in str(error.value)
    assert x.to("cpu") is x and x.to(tg.device("cpu"), tg.float32) is x
    assert tg.device("cuda:1").index == 1 and repr(tg.device("cpu")) == "device(type='cpu')"


def test_tensor_infers_pytorchs_dtypes_and_copies():
    base = tg.tensor([1.0, 2.0])
    copy = tg.tensor(base)
    copy += 1
    assert base.tolist() == [1.0, 2.0]
    assert tg.tensor(np.arange(3, dtype=np.int32)).dtype == np.int32
    assert tg.tensor([[1, 2]], dtype=tg.float64).dtype == np.float64
    with pytest.raises(TypeError, match="floating-point"):
        tg.tensor([1, 2], requires_grad=True)


def test_a_model_takes_numpy_arrays():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    assert model(np.ones((4, 3), np.float32)).shape == (4, 2)


def test_repr_shows_pytorchs_defaults_and_the_grad_fn():
    assert repr(tg.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(tg.tensor([1.5])) == "tensor([1.5])"
    assert "dtype=int32" in repr(tg.tensor([1], dtype=tg.int32))
    x = tg.tensor([1.0], requires_grad=True)
    assert repr(x).endswith("requires_grad=True)") and "grad_fn=<Mul>" in repr(x * 2)


def test_cumsum_prod_and_remainder_give_pytorchs_values_dtypes_and_gradients():
    x = tg.tensor([[1.0, 2.0, 0.0], [3.0, -1.0, 2.0]], requires_grad=True)
    assert x.cumsum(1).tolist() == [[1.0, 3.0, 3.0], [3.0, 2.0, 4.0]]
    x.cumsum(1).sum().backward()                         # x[j] is in 3 - j of the sums
    assert x.grad.tolist() == [[3.0, 2.0, 1.0]] * 2
    x.grad = None
    assert x.prod(1).tolist() == [0.0, -6.0] and x.prod().item() == 0.0
    x.prod(1).sum().backward()                           # the product of the others,
    assert x.grad.tolist() == [[0.0, 0.0, 2.0], [-2.0, 6.0, -3.0]]   # exact beside a 0
    assert x.prod(0, keepdim=True).shape == (1, 3) and tg.prod(x, -1).shape == (2,)
    assert tg.tensor([True, True]).cumsum(0).dtype == tg.int64
    assert tg.tensor([2, 3], dtype=tg.int32).prod().dtype == tg.int64
    assert tg.ones(2, 0).prod(1).tolist() == [1.0, 1.0] and tg.cumsum(tg.tensor(2.0), 0).item() == 2.0
    a = tg.tensor([5.5, -5.5], requires_grad=True)
    b = tg.tensor([2.0, 2.0], requires_grad=True)
    r = a % b                                            # the divisor's sign, as Python's %
    assert r.tolist() == [1.5, 0.5] and (a % -2).tolist() == [-0.5, -1.5]
    r.sum().backward()
    assert a.grad.tolist() == [1.0, 1.0] and b.grad.tolist() == [-2.0, 3.0]   # -floor(a/b)
    assert (tg.tensor([5, 7]) % 2.5).dtype == tg.float32 and (7 % tg.tensor([4])).item() == 3
    with pytest.raises(ValueError, match="cumsum: axis 2 is out of range"):
        x.cumsum(2)


def test_norm_takes_any_positive_p_and_is_zero_with_a_zero_gradient_at_zero():
    x = tg.tensor([3.0, -4.0, 0.0], requires_grad=True)
    assert x.norm(3).item() == pytest.approx(91 ** (1 / 3))
    assert x.norm(0.5).item() == pytest.approx((3 ** 0.5 + 2) ** 2)
    x.norm(0.5).backward()                               # |x|^0.5 has an infinite slope at 0
    assert np.isfinite(x.grad.numpy()).all() and x.grad[2].item() == 0.0
    zero = tg.zeros(3, requires_grad=True)
    zero.norm(3).backward()
    assert zero.grad.tolist() == [0.0, 0.0, 0.0]
    for p in (0, -1, "nuc"):
        with pytest.raises(ValueError, match="norm: p must be a number > 0, 'fro' or inf"):
            x.norm(p)


def test_logsumexp_of_a_row_of_minus_infinities_is_minus_infinity_without_a_warning():
    x = tg.tensor([[-np.inf, -np.inf], [0.0, np.log(3.0)]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.logsumexp(1).tolist() == [-np.inf, pytest.approx(np.log(4.0))]


def test_retain_grad_keeps_a_hidden_tensors_gradient_as_pytorch_does():
    x = tg.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
    h = x * 2
    h.retain_grad()
    r = h.relu()
    r.retain_grad()
    loss = (r * tg.tensor([[1.0, 2.0], [3.0, 4.0]])).sum()
    loss.retain_grad()
    assert (h.retains_grad, x.retains_grad, x.is_leaf, h.is_leaf) == (True, False, True, False)
    loss.backward(retain_graph=True)
    assert r.grad.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert h.grad.tolist() == [[1.0, 0.0], [3.0, 4.0]]            # through relu's mask
    loss.backward()                                               # accumulates, as a leaf's
    assert h.grad.tolist() == [[2.0, 0.0], [6.0, 8.0]] and loss.grad.item() == 2.0
    assert x.grad.tolist() == [[4.0, 0.0], [12.0, 16.0]] and h.retains_grad
    assert not np.shares_memory(h.grad.numpy(), r.grad.numpy())
    assert (x * 3).grad is None                                   # not asked: not kept
    with pytest.raises(RuntimeError, match="does not require grad, so it has no gradient"):
        tg.ones(2).retain_grad()


def test_rounding_stays_in_the_graph_with_a_zero_gradient_as_in_pytorch():
    x = tg.tensor([0.4, 1.6, -2.5], requires_grad=True)
    for method in ("floor", "ceil", "round", "sign"):
        y = getattr(x, method)()
        assert y.requires_grad and not y.is_leaf
        y.sum().backward()                              # PyTorch: zeros, not an error
        assert x.grad.tolist() == [0.0, 0.0, 0.0]
    assert x.round().tolist() == [0.0, 2.0, -2.0]       # halves to even, as PyTorch
    (x + (x.round() - x).detach()).sum().backward()     # the straight-through estimator
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


def test_an_empty_batch_reduces_along_its_other_dimensions():
    """model(x).argmax(1) of no images is no predictions, as in PyTorch; only reducing
    a dimension of size 0 has no value to pick."""
    logits = tg.zeros(0, 10, requires_grad=True)
    assert logits.argmax(1).shape == (0,) and logits.max(1).values.shape == (0,)
    assert logits.amin(1, keepdim=True).shape == (0, 1) and logits.min(-1)[1].shape == (0,)
    logits.amax(1).sum().backward()
    assert logits.grad.shape == (0, 10)
    for name, reduce in [("max", lambda: logits.max()), ("argmax", lambda: logits.argmax()),
                         ("amax", lambda: logits.amax(0)), ("max", lambda: logits.max(0)),
                         ("min", lambda: logits.min()), ("amin", lambda: logits.amin(0))]:
        with pytest.raises(ValueError, match=rf"^{name}: .* is empty \(shape \(0, 10\)\), so "
                                             r"there is no value to pick"):
            reduce()


def test_descending_sort_puts_nan_first_keeps_ties_and_takes_every_integer():
    x = tg.tensor([1.0, np.nan, 3.0, 3.0, -np.inf])
    values, order = x.sort(descending=True)              # PyTorch: NaN is the largest
    assert order.tolist() == [1, 2, 3, 0, 4] and np.isnan(values[0].item())
    assert x.sort().indices.tolist() == [4, 0, 2, 3, 1]   # ascending: NaN last
    big = tg.tensor([5, -2 ** 63, 2 ** 63 - 1, 0], dtype=tg.int64)
    assert big.sort(descending=True).indices.tolist() == [2, 0, 3, 1]   # no -x overflow
    assert tg.tensor([3, 1, 3], dtype=tg.uint8).topk(2).indices.tolist() == [0, 2]


def test_repeat_split_chunk_narrow_and_index_select_follow_pytorchs_rules():
    x = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.repeat(1, 2).tolist() == [[0, 1, 2, 0, 1, 2], [3, 4, 5, 3, 4, 5]]
    assert x.repeat(2, 1, 1).shape == (2, 2, 3)
    assert [p.shape for p in x.split(2, 1)] == [(2, 2), (2, 1)]
    assert [p.shape for p in tg.tensor(np.arange(6)).chunk(4)] == [(2,), (2,), (2,)]
    assert x.narrow(1, 1, 2).tolist() == [[1, 2], [4, 5]]
    x.index_select(1, tg.tensor([2, 2])).sum().backward()     # picked twice: gradient 2
    assert x.grad.tolist() == [[0, 0, 2], [0, 0, 2]]
    assert tg.tril(tg.ones(2, 2)).tolist() == [[1, 0], [1, 1]]
    with pytest.raises(ValueError, match=r"repeat: needs at least 2 non-negative sizes"):
        x.repeat(2)
    with pytest.raises(ValueError, match=r"split: sections \[1, 1\] must add up to the size 3"):
        x.split([1, 1], 1)
    with pytest.raises(ValueError, match="bmm: expected"):
        tg.bmm(x, x.t())


def test_einsum_reads_pytorchs_equations_and_names_what_is_wrong():
    a, b = tg.tensor(np.arange(6.0).reshape(2, 3)), tg.tensor(np.ones((3, 2)))
    assert tg.einsum("ij,jk->ik", a, b).tolist() == [[3, 3], [12, 12]]
    assert tg.einsum("ij,jk", [a, b]).shape == (2, 2)           # implicit output, a list
    assert tg.einsum("ij->", a).item() == 15
    for equation, operands, problem in [
            ("ii->i", [a], "name dimensions by letters, each at most once"),
            ("ij,jk->ik", [a, a], "'j' is 3 in one operand and 2 in another"),
            ("...j->j", [a], "'...' is not supported"),
            ("ij->k", [a], "the output names a letter no operand has"),
            ("ij,jk->ik", [a], "2 operand"), ("ijk->", [a], "the letters do not match the operands")]:
        with pytest.raises(ValueError, match=f"einsum '{re.escape(equation)}': {problem}"):
            tg.einsum(equation, *operands)
