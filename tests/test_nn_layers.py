"""Layers, nn.functional and loss modules: values against NumPy, gradient checks,
modes, and hypothesis properties."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_mnist as tg
from tinygrad_mnist import gradcheck, nn
from tinygrad_mnist.nn import functional as F
from strategies import arrays


def rng(seed=0):
    return np.random.default_rng(seed)


def t32(x):
    return tg.Tensor(np.asarray(x, dtype=np.float32))


# ---------------------------------------------------------------------------- Linear
def test_linear_default_init_is_pytorchs_and_float32():
    layer = nn.Linear(400, 30, generator=rng())
    bound = 1 / math.sqrt(400)
    assert layer.weight.shape == (30, 400) and layer.bias.shape == (30,)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    for p in (layer.weight.data, layer.bias.data):
        assert p.min() >= -bound and p.max() <= bound
    # U(-b, b) has std b/√3; 12000 samples pin it within a few percent
    assert abs(layer.weight.data.std() - bound / math.sqrt(3)) < 0.03 * bound
    assert "U(-1/√in_features, 1/√in_features)" in nn.Linear.__doc__


def test_linear_init_is_reproducible_from_generator_and_manual_seed():
    a, b = nn.Linear(5, 4, generator=rng(3)), nn.Linear(5, 4, generator=rng(3))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    nn.init.manual_seed(11)
    c = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 2))
    nn.init.manual_seed(11)
    d = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 2))
    for x, y in zip(c.parameters(), d.parameters()):
        np.testing.assert_array_equal(x.data, y.data)


def test_linear_forward_matches_numpy_and_has_no_bias_option():
    layer = nn.Linear(3, 2, generator=rng())
    x = rng(1).standard_normal((4, 3)).astype(np.float32)
    expected = x @ layer.weight.data.T + layer.bias.data
    np.testing.assert_allclose(layer(tg.Tensor(x)).data, expected, rtol=1e-6)
    plain = nn.Linear(3, 2, bias=False)
    assert plain.bias is None and len(list(plain.parameters())) == 1
    np.testing.assert_allclose(plain(tg.Tensor(x)).data, x @ plain.weight.data.T, rtol=1e-6)
    with pytest.raises(ValueError, match="does not fit weight"):
        layer(t32(np.ones((4, 5))))


def test_f_linear_gradcheck():
    r = rng(2)
    x, w, b = r.standard_normal((3, 4)), r.standard_normal((2, 4)), r.standard_normal(2)
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), x, w, b)
    assert gradcheck(lambda x, w: F.linear(x, w), x, w)


# ----------------------------------------------------------------------- activations
def test_activation_modules_match_numpy():
    x = np.linspace(-3, 3, 13, dtype=np.float32)
    cases = [(nn.ReLU(), np.maximum(x, 0)), (nn.LeakyReLU(0.2), np.where(x > 0, x, 0.2 * x)),
             (nn.Tanh(), np.tanh(x)), (nn.Sigmoid(), 1 / (1 + np.exp(-x)))]
    for module, expected in cases:
        out = module(tg.Tensor(x))
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.data, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(F.relu(x).data, np.maximum(x, 0))
    np.testing.assert_allclose(F.leaky_relu(x, 0.1).data, np.where(x > 0, x, 0.1 * x))
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"


def test_flatten_keeps_batch_dimension():
    x = t32(np.arange(24).reshape(2, 3, 4))
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0)(x).shape == (24,)
    assert nn.Flatten(1, 1)(x).shape == (2, 3, 4)


# --------------------------------------------------------------------------- dropout
def test_dropout_is_inverted_and_only_active_in_training():
    x = t32(np.ones((200, 50)))
    drop = nn.Dropout(0.3, generator=5)
    out = drop(x).data
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((out == 0).mean() - 0.3) < 0.02
    assert abs(out.mean() - 1.0) < 0.03
    assert out.dtype == np.float32
    drop.eval()
    assert drop(x) is x


def test_dropout_reproducible_from_seed_and_default_generator():
    x = t32(np.ones((10, 10)))
    np.testing.assert_array_equal(nn.Dropout(0.5, generator=1)(x).data,
                                  nn.Dropout(0.5, generator=1)(x).data)
    nn.init.manual_seed(4)
    a = nn.Dropout(0.5)(x).data
    nn.init.manual_seed(4)
    np.testing.assert_array_equal(a, nn.Dropout(0.5)(x).data)


def test_dropout_edge_probabilities_and_errors():
    x = tg.Tensor(np.ones(5, np.float32), requires_grad=True)
    assert F.dropout(x, 0.0) is x
    out = F.dropout(x, 1.0)
    assert np.all(out.data == 0)
    out.sum().backward()
    assert np.all(x.grad == 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.dropout(x, -0.1)


def test_dropout_gradcheck_with_fixed_mask():
    x = rng(6).standard_normal((4, 5))
    assert gradcheck(lambda t: F.dropout(t, 0.4, True, generator=np.random.default_rng(9)), x)
    out = F.dropout(tg.Tensor(x), 0.4, True, generator=np.random.default_rng(9)).data
    keep = np.random.default_rng(9).random((4, 5), dtype=np.float32) >= 0.4
    np.testing.assert_allclose(out, np.where(keep, x / 0.6, 0.0))


# ----------------------------------------------------------------------- batch norm
def test_batchnorm_training_uses_batch_statistics_and_updates_running_ones():
    bn = nn.BatchNorm1d(3)
    x = rng(7).standard_normal((8, 3)).astype(np.float32) * 2 + 5
    out = bn(tg.Tensor(x)).data
    mean, var = x.mean(0), x.var(0)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-5)
    assert int(bn.num_batches_tracked) == 1
    assert bn.running_mean.dtype == np.float32 and out.dtype == np.float32


def test_batchnorm_eval_uses_running_statistics():
    bn = nn.BatchNorm1d(2)
    bn.running_mean[...] = [1.0, -1.0]
    bn.running_var[...] = [4.0, 0.25]
    bn.weight.data[...] = [2.0, 1.0]
    bn.bias.data[...] = [0.5, 0.0]
    bn.eval()
    x = np.array([[3.0, 0.0], [1.0, -1.0]], np.float32)
    expected = (x - [1.0, -1.0]) / np.sqrt(np.array([4.0, 0.25]) + 1e-5) * [2.0, 1.0] + [0.5, 0]
    np.testing.assert_allclose(bn(tg.Tensor(x)).data, expected, rtol=1e-5)
    assert int(bn.num_batches_tracked) == 0


def test_batchnorm_3d_input_cumulative_momentum_and_no_tracking():
    x = rng(8).standard_normal((4, 2, 5)).astype(np.float32)
    bn = nn.BatchNorm1d(2, momentum=None)
    out = bn(tg.Tensor(x)).data
    mean, var = x.mean((0, 2), keepdims=True), x.var((0, 2), keepdims=True)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean, mean.ravel(), rtol=1e-5)  # 1/1 weight
    free = nn.BatchNorm1d(2, affine=False, track_running_stats=False).eval()
    assert free.running_mean is None and list(free.state_dict()) == []
    np.testing.assert_allclose(free(tg.Tensor(x)).data, out, rtol=1e-5)


def test_batchnorm_errors():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(t32(np.ones((1, 3))))
    with pytest.raises(ValueError, match=r"expected input \(N, 3\)"):
        bn(t32(np.ones((4, 2))))


def test_batchnorm_gradcheck_in_training_mode():
    r = rng(10)
    x, w, b = r.standard_normal((5, 3)), r.standard_normal(3), r.standard_normal(3)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), x, w, b)
    x3 = r.standard_normal((3, 2, 4))
    w2, b2 = r.standard_normal(2), r.standard_normal(2)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                     x3, w2, b2)
    module = nn.BatchNorm1d(3, dtype=np.float64)
    assert gradcheck(lambda t: module(t), x)  # the module, input gradient


# --------------------------------------------------------------------------- losses
def test_loss_modules_match_functional():
    logits = rng(11).standard_normal((6, 4)).astype(np.float32)
    labels = np.array([0, 3, 1, 1, 2, 0])
    z = tg.Tensor(logits)
    ce = nn.CrossEntropyLoss(label_smoothing=0.1)(z, labels)
    assert ce.item() == F.cross_entropy(z, labels, label_smoothing=0.1).item()
    nll = nn.NLLLoss(reduction="sum")(z.log_softmax(1), labels)
    summed = F.cross_entropy(z, labels, reduction="sum").item()
    assert nll.item() == pytest.approx(summed, rel=1e-5)
    target = rng(12).standard_normal((6, 4)).astype(np.float32)
    mse = nn.MSELoss()(z, target)
    assert mse.item() == pytest.approx(((logits - target) ** 2).mean(), rel=1e-6)
    assert repr(nn.MSELoss("sum")) == "MSELoss(reduction='sum')"
    with pytest.raises(ValueError, match="reduction"):
        nn.NLLLoss(reduction="avg")


def test_nll_loss_values_single_sample_and_errors():
    logp = np.log(np.array([[0.2, 0.8], [0.6, 0.4]]))
    loss = F.nll_loss(tg.Tensor(logp), np.array([1, 0]), reduction="none")
    np.testing.assert_allclose(loss.data, -np.log([0.8, 0.6]))
    assert F.nll_loss(tg.Tensor(logp[0]), np.array(1)).item() == pytest.approx(-np.log(0.8))
    with pytest.raises(ValueError, match="outside"):
        F.nll_loss(tg.Tensor(logp), np.array([0, 2]))
    with pytest.raises(TypeError, match="integer class labels"):
        F.nll_loss(tg.Tensor(logp), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        F.nll_loss(tg.Tensor(logp), np.array([0]))


def test_class_weights_and_ignored_labels_follow_pytorchs_formula():
    """Sample i costs -w[y_i]·log p[i, y_i]; ignored labels cost 0; the mean divides by
    the weights of the labels kept (nan when every label is ignored, as in PyTorch, with
    a zero gradient: a batch of ignored labels must not turn the weights to NaN)."""
    logp = np.log(np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]))
    labels, weight = np.array([1, 0, -100]), np.array([2.0, 3.0])
    costs = [-3 * np.log(0.8), -2 * np.log(0.6), 0.0]
    loss = F.nll_loss(tg.Tensor(logp), labels, weight, reduction="none")
    np.testing.assert_allclose(loss.data, costs)
    assert F.nll_loss(logp, labels, weight, reduction="sum").item() == pytest.approx(sum(costs))
    assert F.nll_loss(logp, labels, weight).item() == pytest.approx(sum(costs) / 5)
    for smoothing in (0.0, 0.1):
        z = tg.Tensor(logp, requires_grad=True)
        loss = F.cross_entropy(z, np.array([-100, -100, -100]), label_smoothing=smoothing)
        loss.backward()
        assert np.isnan(loss.item()) and not z.grad.data.any()
    ce = nn.CrossEntropyLoss(tg.tensor(weight), ignore_index=1)   # weight first, as in torch
    z = tg.Tensor(np.log([[1.0, 4.0], [3.0, 2.0], [1.0, 1.0]]))     # softmax: the p above
    assert ce(z, np.array([1, 0, 1])).item() == pytest.approx(-np.log(0.6))
    assert list(ce.state_dict()) == ["weight"]
    with pytest.raises(TypeError, match=r"got the string 'sum' \(give reduction='sum' by"):
        F.cross_entropy(z, labels, "sum")                # the third argument is weight
    with pytest.raises(ValueError, match="weight must be 2 finite numbers, one per class"):
        nn.NLLLoss(np.ones(3))(z, np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="size_average and reduce are deprecated"):
        nn.CrossEntropyLoss(size_average=False)


def test_softmax_without_dim_takes_pytorchs_implicit_dim_and_warns():
    x = rng(21).standard_normal((2, 3, 4, 5))
    for shape, dim in (((3,), 0), ((2, 3), 1), ((2, 3, 4), 0), ((2, 3, 4, 5), 1)):
        v = x.reshape(-1)[:int(np.prod(shape))].reshape(shape)
        with pytest.warns(UserWarning, match=f"no dim given, so dim={dim} is taken"):
            out = nn.Softmax()(tg.Tensor(v))
        np.testing.assert_allclose(out.data, F.softmax(tg.Tensor(v), dim).data)
        with pytest.warns(UserWarning, match=f"log_softmax: no dim given, so dim={dim}"):
            F.log_softmax(v)


def test_binary_cross_entropy_values_edges_and_errors():
    x, t = np.array([0.2, 0.9, 0.0, 1.0]), np.array([0.0, 1.0, 1.0, 1.0])
    probs = tg.Tensor(x, requires_grad=True)
    loss = F.binary_cross_entropy(probs, t, reduction="none")
    np.testing.assert_allclose(loss.data, [-np.log(0.8), -np.log(0.9), 100.0, 0.0])
    loss.sum().backward()                   # (x - t) / max(x(1-x), 1e-12): finite at 0 and 1
    np.testing.assert_allclose(probs.grad.data, [0.2 / 0.16, -0.1 / 0.09, -1e12, 0.0])
    z = tg.Tensor(np.array([0.0, 2.0, -40.0, 40.0]), requires_grad=True)
    with_logits = nn.BCEWithLogitsLoss(reduction="sum")(z, t)
    sigmoid = 1 / (1 + np.exp(-z.data))
    assert with_logits.item() == pytest.approx(
        F.binary_cross_entropy(sigmoid[:2], t[:2], reduction="sum").item() + 40.0)
    with_logits.backward()
    np.testing.assert_allclose(z.grad.data, sigmoid - t, atol=1e-15)   # z = 0 included
    weighted = nn.BCEWithLogitsLoss(pos_weight=np.array([3.0]), reduction="none")
    np.testing.assert_allclose(weighted(tg.Tensor(np.zeros(2)), np.array([1.0, 0.0])).data,
                               [3 * np.log(2), np.log(2)])
    assert nn.BCELoss(np.array([2.0, 0.0]))(tg.Tensor([0.5, 0.5]), [1.0, 1.0]).item() == \
        pytest.approx(np.log(2))
    assert nn.L1Loss()(tg.Tensor([1.0, -2.0]), [0.0, 0.0]).item() == 1.5
    with pytest.raises(ValueError, match=r"input must be probabilities in \[0, 1\], got "
                                         r"values in \[0.5, 1.5\] \(for logits use"):
        F.binary_cross_entropy(tg.Tensor([0.5, 1.5]), [0.0, 1.0])
    with pytest.raises(ValueError, match="target shape \\(3,\\) differs from input shape"):
        F.binary_cross_entropy(tg.Tensor([0.5, 0.5]), [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="pos_weight of shape \\(2,\\) does not broadcast"):
        F.binary_cross_entropy_with_logits(tg.zeros(2, 3), tg.zeros(2, 3), pos_weight=np.ones(2))


def test_mse_loss_reductions_and_shape_error():
    a, b = np.array([1.0, 2.0, 4.0]), np.array([1.0, 0.0, 1.0])
    assert F.mse_loss(tg.Tensor(a), b).item() == pytest.approx(13 / 3)
    assert F.mse_loss(tg.Tensor(a), tg.Tensor(b), "sum").item() == pytest.approx(13)
    np.testing.assert_allclose(F.mse_loss(tg.Tensor(a), b, "none").data, [0, 4, 9])
    with pytest.raises(ValueError, match="target shape"):
        F.mse_loss(tg.Tensor(a), np.zeros(2))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_gradchecks(reduction):
    r = rng(13)
    x, y = r.standard_normal((4, 3)), r.standard_normal((4, 3))
    assert gradcheck(lambda a, b: F.mse_loss(a, b, reduction), x, y)
    labels = np.array([2, 0, 1, 2])
    assert gradcheck(lambda a: F.nll_loss(a, labels, reduction=reduction), x)
    assert gradcheck(lambda a: F.nll_loss(a, np.array(1), reduction=reduction), x[0])
    weight, some_ignored = np.array([0.5, 2.0, 1.5]), np.array([2, -100, 1, 2])
    assert gradcheck(lambda a: F.nll_loss(a, some_ignored, weight, reduction=reduction), x)


# ----------------------------------------------------------------------- properties
logits_2d = st.tuples(st.integers(1, 5), st.integers(2, 6)).flatmap(
    lambda s: arrays(s, -20.0, 20.0))


@given(logits_2d)
def test_softmax_is_a_distribution_and_log_softmax_its_log(z):
    p = F.softmax(tg.Tensor(z), dim=1).data
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(F.log_softmax(tg.Tensor(z), 1).data), p, rtol=1e-9,
                               atol=1e-300)
    np.testing.assert_allclose(F.softmax(tg.Tensor(z + 7.5), 1).data, p, rtol=1e-9,
                               atol=1e-12)


@given(logits_2d, st.data(), st.sampled_from(["mean", "sum", "none"]))
def test_nll_of_log_softmax_is_cross_entropy(z, data, reduction):
    n, c = z.shape
    labels = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    nll = F.nll_loss(F.log_softmax(tg.Tensor(z), 1), labels, reduction=reduction).data
    np.testing.assert_allclose(nll, F.cross_entropy(tg.Tensor(z), labels,
                                                    reduction=reduction).data,
                               rtol=1e-9, atol=1e-12)


@given(st.integers(1, 4).flatmap(lambda n: st.tuples(arrays((n, 3)), arrays((n, 3)))))
def test_mse_is_nonnegative_and_sum_is_n_times_mean(pair):
    a, b = pair
    mean = F.mse_loss(tg.Tensor(a), b).item()
    assert mean >= 0 and F.mse_loss(tg.Tensor(a), a).item() == 0
    assert F.mse_loss(tg.Tensor(a), b, "sum").item() == pytest.approx(mean * a.size)


@given(st.floats(0.0, 0.95), st.integers(0, 2 ** 32 - 1))
def test_dropout_keeps_or_scales_every_element(p, seed):
    x = rng(seed).standard_normal((6, 7))
    out = F.dropout(tg.Tensor(x), p, True, generator=np.random.default_rng(seed)).data
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-12)


@given(st.integers(2, 6), st.integers(1, 4), st.integers(0, 2 ** 32 - 1))
def test_batchnorm_output_is_standardised_per_channel(n, c, seed):
    x = rng(seed).standard_normal((n, c)) * 3 + 1
    out = F.batch_norm(tg.Tensor(x), None, None, training=True).data
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-9)
    var = x.var(0)
    np.testing.assert_allclose(out.var(0), var / (var + 1e-5), rtol=1e-6)


def test_losses_take_a_score_per_class_at_each_position():
    """(N, C, H, W) scores against (N, H, W) labels: the loss of each position, as
    PyTorch's (for a per-pixel classifier)."""
    z = rng(3).standard_normal((2, 3, 4, 5))
    labels = rng(4).integers(0, 3, (2, 4, 5))
    flat = F.cross_entropy(np.moveaxis(z, 1, -1).reshape(-1, 3), labels.reshape(-1),
                           reduction="none").data.reshape(2, 4, 5)
    np.testing.assert_allclose(F.cross_entropy(z, labels, reduction="none").data, flat)
    assert F.cross_entropy(z, labels).item() == pytest.approx(flat.mean())
    assert nn.NLLLoss(reduction="none")(F.log_softmax(tg.Tensor(z), 1), labels).shape == (
        2, 4, 5)
    with pytest.raises(ValueError, match=r"the target must be labels of shape \(2, 4, 5\) "
                                         r"or probabilities of the input's shape"):
        F.cross_entropy(z, labels[:, 0])
    with pytest.raises(TypeError, match="nll_loss: target must hold integer class labels"):
        F.nll_loss(z, labels * 1.0)
