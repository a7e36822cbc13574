"""The nn surface added for PyTorch code: Identity, Softmax, LogSoftmax, Dropout2d,
`inplace=` options, Module traversal and `to()`, F.one_hot/dropout2d/conv2d options, and
the added nn.init functions."""
import math

import numpy as np
import pytest

import tinygrad_mnist as tg
import tinygrad_mnist.nn.functional as F
from tinygrad_mnist import nn


def test_identity_softmax_and_log_softmax_layers():
    x = tg.tensor([[1.0, 2.0, 3.0]])
    assert nn.Identity(54, unused="x")(x) is x
    np.testing.assert_allclose(nn.Softmax(dim=1)(x).numpy().sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(nn.LogSoftmax(dim=1)(x).numpy(), F.log_softmax(x, 1).numpy())
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"


def test_inplace_is_accepted_and_leaves_the_input_unchanged():
    x = tg.tensor([-1.0, 2.0])
    for layer in (nn.ReLU(inplace=True), nn.LeakyReLU(0.1, inplace=True),
                  nn.Dropout(0.5, inplace=True).eval()):
        layer(x)
        assert x.tolist() == [-1.0, 2.0]
    assert F.relu(x, inplace=True).tolist() == [0.0, 2.0] and x.tolist() == [-1.0, 2.0]


def test_dropout2d_drops_whole_channels_and_rescales():
    layer = nn.Dropout2d(0.25, generator=3)
    y = layer(tg.ones(16, 8, 5, 5)).numpy()
    per_channel = y.reshape(16, 8, -1)
    assert np.all((per_channel == 0).all(-1) | np.isclose(per_channel, 1 / 0.75).all(-1))
    assert 0 < (per_channel == 0).all(-1).mean() < 0.5
    assert layer.eval()(tg.ones(2, 3, 4, 4)).numpy().min() == 1.0
    with pytest.raises(ValueError, match=r"dropout2d: expected input \(N, C, H, W\)"):
        F.dropout2d(tg.ones(3, 4))
    x = tg.ones(1, 2, 2, 2, requires_grad=True)
    F.dropout2d(x, 0.5, generator=np.random.default_rng(0)).sum().backward()
    assert set(np.unique(x.grad.numpy())) <= {0.0, 2.0}


def test_named_modules_follows_pytorchs_signature():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]
    assert [n for n, _ in model.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
    assert [n for n, _ in model.named_modules(prefix="net")][:2] == ["net", "net.0"]
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_parameters(prefix="m")] == ["m.0.weight", "m.0.bias"]
    assert list(model.parameters(recurse=False)) == []
    assert len(list(shared.parameters(recurse=False))) == 2


def test_module_to_casts_parameters_and_buffers_and_refuses_other_devices():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model(tg.ones(5, 3)).sum().backward()
    assert model.to(tg.float64) is model
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64
               for p in model.parameters())
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64          # not a float: kept
    assert model.float()[0].weight.dtype == np.float32
    assert model.to("cpu") is model and model.cpu() is model
    with pytest.raises(TypeError, match="only floating-point dtypes"):
        model.to(tg.long)
    with pytest.raises(RuntimeError, match="CPU only"):
        model.cuda()


def test_one_hot():
    out = F.one_hot(tg.tensor([[0, 2], [1, 1]]))
    assert out.shape == (2, 2, 3) and out.dtype == np.int64
    assert out.tolist()[0] == [[1, 0, 0], [0, 0, 1]]
    with pytest.raises(ValueError, match=r"class values must be in \[0, 2\)"):
        F.one_hot(tg.tensor([0, 2]), 2)
    with pytest.raises(TypeError, match="integer class labels"):
        F.one_hot(tg.tensor([0.0]))


def test_functional_conv_and_pool_take_pytorchs_keywords():
    x, w, b = tg.ones(1, 1, 4, 4), tg.ones(2, 1, 3, 3), tg.tensor([0.0, 1.0])
    assert F.conv2d(input=x, weight=w, bias=b, stride=1, padding=1).shape == (1, 2, 4, 4)
    assert F.max_pool2d(input=x, kernel_size=2).shape == (1, 1, 2, 2)
    assert F.avg_pool2d(np.ones((1, 1, 4, 4), np.float32), 2).shape == (1, 1, 2, 2)
    with pytest.raises(ValueError, match="conv2d: dilation=2 is not supported, only dilation=1"):
        F.conv2d(x, w, dilation=2)


def test_trunc_normal_stays_in_its_bounds_with_the_right_spread():
    w = nn.init.trunc_normal_(tg.empty(20000), mean=1.0, std=0.5, a=0.5, b=2.0,
                              generator=np.random.default_rng(0)).numpy()
    assert 0.5 <= w.min() and w.max() <= 2.0
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: (1 + math.erf(z / math.sqrt(2))) / 2  # noqa: E731
    alpha, beta = (0.5 - 1.0) / 0.5, (2.0 - 1.0) / 0.5            # the truncated normal's mean:
    mean = 1.0 + 0.5 * (pdf(alpha) - pdf(beta)) / (cdf(beta) - cdf(alpha))
    assert abs(w.mean() - mean) < 0.01
    with pytest.raises(ValueError, match="a < b"):
        nn.init.trunc_normal_(tg.empty(2), a=1.0, b=0.0)


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (5, 2), (4, 2, 3, 3)])
def test_orthogonal_gives_orthonormal_rows_or_columns(shape):
    w = nn.init.orthogonal_(tg.empty(*shape), gain=2.0,
                            generator=np.random.default_rng(1)).numpy().reshape(shape[0], -1)
    small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    np.testing.assert_allclose(small, 4.0 * np.eye(len(small)), atol=1e-5)


def test_eye_needs_a_matrix():
    np.testing.assert_array_equal(nn.init.eye_(tg.empty(2, 3)).numpy(), np.eye(2, 3))
    with pytest.raises(ValueError, match="2-D"):
        nn.init.eye_(tg.empty(2))


def test_added_activations_take_pytorchs_options_and_known_values():
    x = tg.tensor([-1000.0, -1.0, 0.0, 1.0, 1000.0])
    with np.errstate(over="raise", invalid="raise"):     # no overflow in any branch
        np.testing.assert_allclose(nn.ELU(0.5)(x).numpy(),
                                   [-0.5, 0.5 * (math.exp(-1) - 1), 0, 1, 1000], rtol=1e-6)
        np.testing.assert_allclose(nn.Softplus()(x).numpy(),
                                   [0, math.log1p(math.exp(-1)), math.log(2),
                                    math.log1p(math.e), 1000], rtol=1e-6)
        np.testing.assert_allclose(nn.SiLU()(x).numpy(),
                                   [0, -1 / (1 + math.e), 0, 1 / (1 + math.exp(-1)), 1000],
                                   rtol=1e-6)
    phi = [0.5 * (1 + math.erf(v / math.sqrt(2))) for v in (-1.0, 1.0)]
    np.testing.assert_allclose(nn.GELU()(tg.tensor([-1.0, 1.0])).numpy(),
                               [-phi[0], phi[1]], rtol=1e-6)
    assert F.softplus(tg.tensor([-40.0], dtype=tg.float64)).item() == pytest.approx(
        math.exp(-40), rel=1e-12)                        # log1p: exact far below zero
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        nn.GELU("exact")


def test_layer_norm_normalises_each_sample_and_names_a_shape_mismatch():
    x = tg.tensor(np.arange(12.0).reshape(2, 2, 3) ** 2)
    layer = nn.LayerNorm([2, 3])
    assert list(layer.state_dict()) == ["weight", "bias"] and layer.weight.shape == (2, 3)
    y = layer(x).numpy().reshape(2, -1)
    np.testing.assert_allclose(y.mean(1), 0, atol=1e-6)
    np.testing.assert_allclose(y.var(1), 1, rtol=1e-4)
    assert nn.LayerNorm(3, elementwise_affine=False).state_dict() == {}
    assert nn.LayerNorm(3, bias=False).bias is None
    with pytest.raises(ValueError, match=r"normalized_shape \[2\] must be the last dimensions"):
        nn.LayerNorm(2)(x)
    with pytest.raises(ValueError, match="normalized_shape must be positive ints"):
        nn.LayerNorm(0)


def test_adaptive_average_pooling_takes_any_output_size():
    x = tg.tensor(np.arange(2 * 5 * 7.0).reshape(1, 2, 5, 7))
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(1)(x).numpy().ravel(),
                               x.numpy().mean((2, 3)).ravel())
    out = F.adaptive_avg_pool2d(x, (2, None)).numpy()    # rows 0-2 and 2-4 overlap at 2
    assert out.shape == (1, 2, 2, 7)
    np.testing.assert_allclose(out[0, 0, 0], x.numpy()[0, 0, 0:3].mean(0))
    np.testing.assert_allclose(out[0, 0, 1], x.numpy()[0, 0, 2:5].mean(0))
    for bad in (0, (2, 3, 4), "1"):
        with pytest.raises(ValueError, match="output_size must be an int >= 1 or a pair"):
            F.adaptive_avg_pool2d(x, bad)
    with pytest.raises(ValueError, match=r"expected input \(N, C, H, W\) or \(C, H, W\)"):
        F.adaptive_avg_pool2d(tg.ones(3, 4), 1)
