"""The convolutional layers (nn.Conv2d, MaxPool2d, AvgPool2d, BatchNorm2d) and
models.CNN: shapes, PyTorch's initialisation, BatchNorm2d against NumPy in train and
eval mode, state dicts, named errors, float64 gradient checks of BatchNorm2d and of a
whole conv stack, and a tiny CNN trained through the command line on real MNIST."""
import functools
import json
import math
import os

import numpy as np
import pytest

import tinygrad_mnist as tg
from tinygrad_mnist import gradcheck, models, nn
from tinygrad_mnist.app import cli
from tinygrad_mnist.nn.functional import avg_pool2d, conv2d, max_pool2d


def rng(seed=0):
    return np.random.default_rng(seed)


def t32(x):
    return tg.Tensor(np.asarray(x, dtype=np.float32))


def images(seed=0, shape=(4, 3, 6, 6)):
    return rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------- Conv2d
@pytest.mark.parametrize("kernel, stride, padding, out", [
    (3, 1, 0, (4, 4)), (3, 1, 1, (6, 6)), (3, 2, 1, (3, 3)), ((3, 1), (2, 1), (0, 2), (2, 10)),
])
def test_conv2d_shapes_and_values(kernel, stride, padding, out):
    layer = nn.Conv2d(3, 5, kernel, stride=stride, padding=padding, generator=rng())
    x = images()
    y = layer(t32(x))
    assert y.shape == (4, 5) + out and y.dtype == np.float32
    expected = conv2d(t32(x), layer.weight, layer.bias, stride, padding).data
    np.testing.assert_array_equal(y.data, expected)
    assert layer.weight.shape[:2] == (5, 3) and layer.bias.shape == (5,)


def test_conv2d_default_init_is_pytorchs():
    layer = nn.Conv2d(16, 64, 3, generator=rng(1))
    fan_in = 16 * 3 * 3
    bound = 1 / math.sqrt(fan_in)
    for p in (layer.weight.data, layer.bias.data):
        assert p.dtype == np.float32 and p.min() >= -bound and p.max() <= bound
    # U(-b, b) has std b/√3; 9216 samples pin it within a few percent
    assert abs(layer.weight.data.std() - bound / math.sqrt(3)) < 0.03 * bound
    assert abs(layer.bias.data).max() > 0.5 * bound     # the bias is drawn too, not zero
    same = nn.Conv2d(16, 64, 3, generator=rng(1))
    np.testing.assert_array_equal(layer.weight.data, same.weight.data)
    np.testing.assert_array_equal(layer.bias.data, same.bias.data)


def test_conv2d_without_bias_and_repr():
    layer = nn.Conv2d(1, 4, 3, padding=1, bias=False)
    assert layer.bias is None and list(layer.state_dict()) == ["weight"]
    assert repr(layer) == ("Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), "
                           "padding=(1, 1), bias=False)")
    assert repr(nn.Conv2d(2, 3, (5, 3), stride=2)) == \
        "Conv2d(2, 3, kernel_size=(5, 3), stride=(2, 2))"
    assert layer(t32(images(shape=(2, 1, 5, 5)))).shape == (2, 4, 5, 5)


# ---------------------------------------------------------------------------- pooling
def test_pooling_layers_match_the_functional_ops():
    x = t32(images())
    mp = nn.MaxPool2d(2)
    assert mp.stride == 2 and mp(x).shape == (4, 3, 3, 3)
    np.testing.assert_array_equal(mp(x).data, max_pool2d(x, 2).data)
    np.testing.assert_array_equal(mp(x).data, x.data.reshape(4, 3, 3, 2, 3, 2).max((3, 5)))
    ap = nn.AvgPool2d(3, stride=2, padding=1)
    assert ap(x).shape == (4, 3, 3, 3)
    np.testing.assert_array_equal(ap(x).data, avg_pool2d(x, 3, 2, 1).data)
    assert repr(mp) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(ap) == "AvgPool2d(kernel_size=3, stride=2, padding=1)"


# ------------------------------------------------------------------------ BatchNorm2d
def reference_bn(x, gamma, beta, eps=1e-5):
    mean = x.mean((0, 2, 3), keepdims=True)
    var = x.var((0, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma[:, None, None] + beta[:, None, None]


@pytest.mark.parametrize("layout", ["contiguous", "batch-last"])
def test_batchnorm2d_training_matches_numpy(layout):
    x = images(2, (6, 3, 5, 4)) * 2 + 3
    if layout == "batch-last":  # how a Conv2d returns its output: a transposed view
        x = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    bn = nn.BatchNorm2d(3)
    bn.weight.data[...] = [1.5, -0.5, 2.0]
    bn.bias.data[...] = [0.1, 0.2, -0.3]
    out = bn(t32(x)).data
    np.testing.assert_allclose(out, reference_bn(x, bn.weight.data, bn.bias.data),
                               rtol=1e-4, atol=1e-5)
    count = 6 * 5 * 4
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean((0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var,
                               0.9 + 0.1 * x.var((0, 2, 3)) * count / (count - 1), rtol=1e-5)
    assert int(bn.num_batches_tracked) == 1 and out.dtype == np.float32


def test_batchnorm2d_eval_uses_running_statistics():
    bn = nn.BatchNorm2d(2)
    bn.running_mean[...] = [1.0, -1.0]
    bn.running_var[...] = [4.0, 0.25]
    bn.weight.data[...] = [2.0, 1.0]
    bn.bias.data[...] = [0.5, 0.0]
    bn.eval()
    x = images(3, (3, 2, 4, 4))
    c = (slice(None), None, None)
    expected = ((x - np.array([1.0, -1.0])[c]) / np.sqrt(np.array([4.0, 0.25])[c] + 1e-5)
                * np.array([2.0, 1.0])[c] + np.array([0.5, 0.0])[c])
    np.testing.assert_allclose(bn(t32(x)).data, expected, rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked) == 0 and bn.running_mean[0] == 1.0


def test_batchnorm2d_options_come_from_batchnorm1d():
    x = images(4, (2, 3, 3, 3))
    cumulative = nn.BatchNorm2d(3, momentum=None)
    cumulative(t32(x))
    np.testing.assert_allclose(cumulative.running_mean, x.mean((0, 2, 3)), rtol=1e-5)
    free = nn.BatchNorm2d(3, affine=False, track_running_stats=False).eval()
    assert list(free.state_dict()) == [] and free.weight is None
    np.testing.assert_allclose(free(t32(x)).data, reference_bn(x, np.ones(3), np.zeros(3)),
                               rtol=1e-4, atol=1e-5)
    assert repr(nn.BatchNorm2d(8)) == ("BatchNorm2d(8, eps=1e-05, momentum=0.1, "
                                       "affine=True, track_running_stats=True)")


# ------------------------------------------------------------------------- errors
@pytest.mark.parametrize("layer, shape, message", [
    (nn.Conv2d(3, 4, 3), (2, 2, 8, 8), r"Conv2d: expected input \(N, 3, H, W\), got \(2, 2"),
    (nn.Conv2d(3, 4, 3), (3, 8, 8), r"Conv2d: expected input \(N, 3, H, W\)"),
    (nn.Conv2d(3, 4, 5), (1, 3, 4, 4), r"Conv2d\(3, 4, kernel_size=\(5, 5\).*larger than"),
    (nn.MaxPool2d(2), (4, 8), r"MaxPool2d: expected input \(N, C, H, W\), got \(4, 8\)"),
    (nn.AvgPool2d(4), (1, 1, 3, 3), r"AvgPool2d\(kernel_size=4.*larger than"),
    (nn.BatchNorm2d(3), (4, 3, 5), r"BatchNorm2d: expected input \(N, 3, H, W\)"),
    (nn.BatchNorm2d(3), (4, 2, 5, 5), r"BatchNorm2d: expected input \(N, 3, H, W\)"),
    (nn.BatchNorm2d(3), (1, 3, 1, 1), "more than 1 value per channel"),
])
def test_wrong_inputs_are_named(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer(t32(np.ones(shape)))


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv2d(0, 4, 3), "channel counts must be >= 1"),
    (lambda: nn.Conv2d(1, 4, 0), "Conv2d: kernel_size must be at least 1"),
    (lambda: nn.Conv2d(1, 4, 3, stride=(1, 2, 3)), "Conv2d: stride must be an int or a pair"),
    (lambda: nn.Conv2d(1, 4, 3, padding=-1), "Conv2d: padding must be at least 0"),
    (lambda: nn.MaxPool2d(2, padding=2), "MaxPool2d: padding 2 must be at most half"),
    (lambda: nn.AvgPool2d(2, stride=0), "AvgPool2d: stride must be at least 1"),
    (lambda: nn.BatchNorm2d(3, momentum=2.0), "momentum must be in"),
    (lambda: nn.Conv2d(1, 4, 2, padding="same"), "padding='same' with the even kernel"),
    (lambda: nn.Conv2d(1, 4, 3, 2, "same"), "padding='same' needs stride 1"),
    (lambda: nn.Conv2d(1, 4, 3, padding="full"), "padding must be an int, a pair, 'valid'"),
    (lambda: nn.Conv2d(2, 4, 3, groups=2), "groups=2 is not supported, only groups=1"),
    (lambda: nn.Conv2d(1, 4, 3, dilation=2), "dilation=2 is not supported, only dilation=1"),
    (lambda: nn.Conv2d(1, 4, 3, padding_mode="reflect"), "only padding_mode='zeros'"),
    (lambda: nn.MaxPool2d(3, 2, ceil_mode=True), "MaxPool2d: ceil_mode=True is not supported"),
    (lambda: nn.AvgPool2d(3, count_include_pad=False), "count_include_pad=False is not"),
])
def test_bad_options_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ----------------------------------------------------------------- gradient checks
def test_batchnorm2d_gradcheck_in_training_mode():
    r = rng(10)
    x, w, b = r.standard_normal((3, 2, 3, 3)), r.standard_normal(2), r.standard_normal(2)
    assert gradcheck(lambda x, w, b: nn.functional.batch_norm(x, None, None, w, b, True),
                     x, w, b)
    bn = nn.BatchNorm2d(2, dtype=np.float64)
    assert gradcheck(lambda x, w, b: with_parameters(bn, {"weight": w, "bias": b}, x),
                     x, w, b)


def with_parameters(model, tensors, x):
    """model(x) with its named parameters replaced by `tensors` (so that gradcheck can
    vary them), then put back."""
    modules = dict(model.named_modules())

    def put(values):
        for name, value in values.items():
            owner, _, attr = name.rpartition(".")
            object.__setattr__(modules[owner], attr, value)
    saved = dict(model.named_parameters())
    put(tensors)
    try:
        return model(x)
    finally:
        put(saved)


def test_gradcheck_through_a_conv_stack():
    """Conv2d → BatchNorm2d → ReLU → MaxPool2d → Flatten → Linear, float64, training
    mode: the input and every parameter."""
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, generator=rng(1), dtype=np.float64),
                          nn.BatchNorm2d(3, dtype=np.float64), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(12, 4, generator=rng(2), dtype=np.float64))
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "5.weight", "5.bias"]
    x = rng(3).standard_normal((3, 2, 4, 4))
    params = [p.data for _, p in model.named_parameters()]
    assert gradcheck(lambda x, *ps: with_parameters(model, dict(zip(names, ps)), x),
                     x, *params)
    # not vacuous: the substituted tensors are the ones the layers use
    ts = [tg.Tensor(p, requires_grad=True) for p in params]
    with_parameters(model, dict(zip(names, ts)), tg.Tensor(x)).sum().backward()
    assert all(t.grad is not None and np.abs(t.grad).max() > 0 for t in ts)
    assert all(p.grad is None for p in model.parameters())


def test_conv_columns_do_not_outlive_forward_or_backward():
    """The (C·kh·kw, OH·OW·N) column matrix is 9x the input for a 3x3 kernel: Conv2d
    keeps only its input for backward, and backward frees what it made."""
    import tracemalloc
    layer = nn.Conv2d(32, 64, 3, padding=1, generator=rng())
    x = tg.Tensor(images(1, (16, 32, 14, 14)), requires_grad=True)
    columns = 32 * 9 * 14 * 14 * 16 * 4
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        y = layer(x)
        kept = tracemalloc.get_traced_memory()[0] - before - y.data.nbytes
        y.backward(np.ones(y.shape, np.float32))
        del y
        left = tracemalloc.get_traced_memory()[0] - before - x.grad.nbytes
        left -= layer.weight.grad.nbytes + layer.bias.grad.nbytes
    finally:
        tracemalloc.stop()
    assert kept < columns / 8 and left < columns / 8, (kept, left, columns)


# --------------------------------------------------------------------- models.CNN
def test_cnn_model_is_registered_with_the_image_layout():
    assert models.MODELS["cnn"] is models.CNN and models.LAYOUTS["cnn"] == "image"
    model = models.CNN(dropout=0.2, generator=rng())
    assert isinstance(model, nn.Sequential)
    assert type(model).forward is nn.Sequential.forward  # exportable to ONNX
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"] * 3 + [
        "Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert [m.out_channels for m in model if isinstance(m, nn.Conv2d)] == [32, 64, 128]
    assert model[13].in_features == 128 * 3 * 3 and model[13].out_features == 128
    assert model(t32(images(shape=(3, 1, 28, 28)))).shape == (3, 10)


@pytest.mark.parametrize("kwargs, fc", [
    (dict(hidden=[]), [(1152, 10)]),
    (dict(hidden=[64, 32], channels=(8, 16)), [(784, 64), (64, 32), (32, 10)]),
    (dict(hidden=[16], channels=(4, 8, 8)), [(72, 16), (16, 10)]),
])
def test_cnn_options(kwargs, fc):
    model = models.CNN(**kwargs)
    linears = [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)]
    assert linears == fc and not any(isinstance(m, nn.Dropout) for m in model)
    assert model(t32(images(shape=(2, 1, 28, 28)))).shape == (2, 10)


@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden=[0]), "must be positive"), (dict(channels=()), "between 1 and 4"),
    (dict(channels=(8, -1)), "must be positive"),
])
def test_cnn_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.CNN(**kwargs)


def test_cnn_initialize_and_state_dict_round_trip(tmp_path):
    model = models.initialize(models.CNN(hidden=[16], generator=rng(1)), "he", rng(2))
    conv = model[4]
    assert abs(conv.weight.data.std() - math.sqrt(2 / (32 * 9))) < 0.1 * math.sqrt(2 / 288)
    model.train()
    x = t32(images(5, (8, 1, 28, 28)))
    model(x)                                       # running statistics move
    tg.save(model.state_dict(), tmp_path / "cnn.npz")
    state = tg.load(tmp_path / "cnn.npz")
    assert {"2.running_mean", "2.running_var", "2.num_batches_tracked", "0.weight"} <= set(state)
    assert "0.bias" not in state                   # convolutions before batch norm: no bias
    other = models.CNN(hidden=[16], generator=rng(9))
    other.load_state_dict(state)
    model.eval(), other.eval()
    np.testing.assert_array_equal(other(x).data, model(x).data)


def test_cnn_exports_to_onnx(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from tinygrad_mnist.app.export import to_onnx
    model = models.CNN(hidden=[16], dropout=0.5, generator=rng(3))
    model(t32(images(6, (16, 1, 28, 28))))        # non-trivial running statistics
    model.eval()
    to_onnx(model, tmp_path / "cnn.onnx", (1, 1, 28, 28))
    x = images(7, (3, 1, 28, 28))
    session = ort.InferenceSession(str(tmp_path / "cnn.onnx"),
                                   providers=["CPUExecutionProvider"])
    with tg.no_grad():
        np.testing.assert_allclose(session.run(None, {"input": x})[0], model(t32(x)).data,
                                   rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------- end to end
@pytest.mark.skipif(not os.environ.get("TINYGRAD_MNIST_DATA"),
                    reason="set TINYGRAD_MNIST_DATA to the MNIST folder")
def test_a_tiny_cnn_learns_through_the_command_line(tmp_path, monkeypatch):
    """The training app end to end with `--model cnn` (narrower convolutions: seconds)."""
    monkeypatch.setitem(models.MODELS, "cnn", functools.partial(models.CNN,
                                                                channels=(16, 32, 64)))
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "cnn", "--hidden", "32", "--limit", "2500",
                     "--val-size", "500", "--epochs", "2", "--batch-size", "32",
                     "--augment", "shift", "--seed", "1", "--quiet", "--no-plots",
                     "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "cnn" and report["config"]["augment"] == "shift"
    assert report["val_accuracy"] > 0.7 and report["test_accuracy"] > 0.7  # chance: 0.1
    from tinygrad_mnist.app.inference import load_trained
    trained = load_trained(out)
    assert isinstance(trained.model, models.CNN) and not trained.model.training
    digits = np.zeros((2, 28, 28), np.float32)
    digits[:, 4:24, 13:15] = 1.0                   # two vertical strokes: a "1"
    proba = trained.predict_proba(digits)
    assert proba.shape == (2, 10) and np.allclose(proba.sum(1), 1, atol=1e-5)


def test_slicing_a_model_gives_a_plain_sequential():
    model = models.CNN(channels=(4, 8, 8), generator=np.random.default_rng(0))
    head = model[-3:]
    assert type(head) is nn.Sequential and len(head) == 3
    assert head[0] is model[-3]
    body = models.MLP(hidden=[16])[:2]
    assert type(body) is nn.Sequential and len(body) == 2


def test_conv_channels_default_choice_and_runs_saved_before():
    from tinygrad_mnist.models import build_model
    from tinygrad_mnist.app.config import TrainConfig
    assert TrainConfig.from_dict({"model": "cnn"}).conv_channels == [32, 64, 128]
    chosen = {"model": "cnn", "dataset": "fashion-mnist", "conv_channels": [8, 16]}
    assert TrainConfig.from_dict(chosen).conv_channels == [8, 16]
    assert TrainConfig.from_dict({}).conv_channels is None            # the MLP has none
    with pytest.raises(ValueError, match="--conv-channels is for --model cnn, not mlp"):
        TrainConfig.from_dict({"conv_channels": [8]})
    # a CNN run saved before the option existed was trained with these widths
    assert TrainConfig.from_dict({"model": "cnn", "augment": "shift"}
                                 ).conv_channels == [32, 64, 128]
    model = build_model(TrainConfig.from_dict({"model": "cnn", "conv_channels": [8, 16]}))
    assert [m.weight.shape[0] for m in model if isinstance(m, nn.Conv2d)] == [8, 16]
