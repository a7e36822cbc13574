"""ONNX export: the files pass onnx.checker, and ONNX Runtime gives the framework's logits
to 1e-5 on real MNIST test images and on random inputs; unsupported layers are named."""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, Tuple

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason='ONNX export needs the deploy extra: '
                           'pip install -e ".[deploy]"')
ort = pytest.importorskip("onnxruntime", reason='checking exports needs the deploy extra: '
                          'pip install -e ".[deploy]"')

import tinygrad_mnist as tg  # noqa: E402
from tinygrad_mnist import Tensor, cross_entropy, nn, no_grad  # noqa: E402
from tinygrad_mnist.app import cli  # noqa: E402
from tinygrad_mnist.models import build_model  # noqa: E402
from tinygrad_mnist.app.config import TrainConfig  # noqa: E402
from tinygrad_mnist.app.export import ExportError, to_onnx  # noqa: E402
from tinygrad_mnist.app.inference import load_trained  # noqa: E402
from tinygrad_mnist.models import MLP  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
MEAN, STD = 0.1307, 0.3081


# ---------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def mnist() -> Any:
    if not os.environ.get("TINYGRAD_MNIST_DATA"):
        pytest.skip("TINYGRAD_MNIST_DATA is not set: the export tests need real test images")
    from tinygrad_mnist.data import load_mnist
    return load_mnist(download=False)


@pytest.fixture(scope="module")
def test_images(mnist: Any) -> np.ndarray:
    """512 real MNIST test images as float32 (N, 28, 28) in [0, 1]."""
    return mnist.test_images[:512].astype(np.float32) / 255


def framework_logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    with no_grad():
        return model(Tensor(x)).data


def onnx_outputs(path: Path, x: np.ndarray) -> list:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.astype(np.float32)})


def with_running_stats(bn: nn.Module, rng: np.random.Generator) -> nn.Module:
    """A batch norm whose statistics and affine parameters are not the identity."""
    c = bn.num_features
    bn.running_mean[...] = rng.normal(0, 0.5, c)
    bn.running_var[...] = rng.uniform(0.5, 2.0, c)
    bn.weight.data[...] = rng.uniform(0.5, 1.5, c)
    bn.bias.data[...] = rng.normal(0, 0.2, c)
    return bn


def mlp_with_every_layer(seed: int = 0) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 64, generator=rng), nn.ReLU(), nn.Dropout(0.5),
        with_running_stats(nn.BatchNorm1d(64), rng),
        nn.Sequential(nn.Linear(64, 32, generator=rng), nn.LeakyReLU(0.1)),
        nn.Linear(32, 32, generator=rng), nn.Tanh(),
        nn.Linear(32, 16, generator=rng), nn.Sigmoid(),
        nn.Linear(16, 10, generator=rng))


def small_cnn(seed: int = 0) -> nn.Sequential:
    """Conv, batch norm, both poolings (one overlapping and padded), a strided conv."""
    rng = np.random.default_rng(seed)

    def conv(c_in: int, c_out: int, k: int, **options: int) -> nn.Module:
        layer = nn.Conv2d(c_in, c_out, k, **options)
        layer.weight.data[...] = rng.normal(0, 1 / np.sqrt(c_in * k * k), layer.weight.shape)
        layer.bias.data[...] = rng.normal(0, 0.1, c_out)
        return layer
    return nn.Sequential(
        conv(1, 4, 3, padding=1), with_running_stats(nn.BatchNorm2d(4), rng), nn.ReLU(),
        nn.MaxPool2d(2),                                            # 14x14
        nn.Sequential(conv(4, 6, 3, stride=2, padding=1), nn.LeakyReLU(0.05)),  # 7x7
        nn.AvgPool2d(3, stride=2, padding=1),                       # 4x4
        nn.Dropout(0.3), nn.Flatten(),
        nn.Linear(6 * 4 * 4, 10, generator=rng))


def export(model: nn.Module, tmp_path: Path, input_shape: Tuple[int, ...],
           **kwargs: Any) -> Path:
    path = tmp_path / "model.onnx"
    to_onnx(model, path, input_shape, **kwargs)
    onnx.checker.check_model(str(path), full_check=True)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary left
    return path


# ---------------------------------------------------------------- real images
def test_mlp_matches_on_real_test_images(tmp_path: Path, test_images: np.ndarray) -> None:
    """Pixels in [0, 1] go in; the file standardises them (mean/std folded in)."""
    model = mlp_with_every_layer()
    path = export(model, tmp_path, (1, 784), mean=MEAN, std=STD, softmax=True)
    x = test_images.reshape(-1, 784)
    expected = framework_logits(model, (x - np.float32(MEAN)) / np.float32(STD))
    logits, proba = onnx_outputs(path, x)
    np.testing.assert_allclose(logits, expected, **TOL)
    e = np.exp(expected - expected.max(axis=1, keepdims=True))
    np.testing.assert_allclose(proba, e / e.sum(axis=1, keepdims=True), **TOL)


def test_trained_mlp_matches_and_predicts_digits(tmp_path: Path, mnist: Any,
                                                 test_images: np.ndarray) -> None:
    """The package's MLP, trained briefly, exported without normalisation."""
    rng = np.random.default_rng(1)
    model = MLP(hidden=(32,), generator=rng)
    params = list(model.parameters())
    for _ in range(40):   # few, large batches: quick even on a busy machine
        i = rng.integers(0, len(mnist.train_images), 512)
        xb = mnist.train_images[i].reshape(512, 784).astype(np.float32) / 255
        loss = cross_entropy(model(Tensor(xb)), mnist.train_labels[i])
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data -= np.float32(0.5) * p.grad
    x = test_images.reshape(-1, 784)
    expected = framework_logits(model, x)
    (logits,) = onnx_outputs(export(model, tmp_path, (1, 784)), x)
    np.testing.assert_allclose(logits, expected, **TOL)
    labels = mnist.test_labels[:len(x)]
    assert (logits.argmax(axis=1) == labels).mean() > 0.8


def test_cnn_matches_on_real_test_images(tmp_path: Path, test_images: np.ndarray) -> None:
    model = small_cnn()
    path = export(model, tmp_path, (1, 1, 28, 28), mean=MEAN, std=STD)
    x = test_images[:, None]
    expected = framework_logits(model, (x - np.float32(MEAN)) / np.float32(STD))
    np.testing.assert_allclose(onnx_outputs(path, x)[0], expected, **TOL)


# ---------------------------------------------------------------- random inputs
@pytest.mark.parametrize("batch", [1, 7])
def test_every_mlp_layer_on_random_inputs(tmp_path: Path, batch: int) -> None:
    model = mlp_with_every_layer(seed=3)
    path = export(model, tmp_path, (1, 1, 28, 28))     # Flatten turns images into rows
    x = np.random.default_rng(batch).random((batch, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(onnx_outputs(path, x)[0], framework_logits(model, x), **TOL)


def test_cnn_on_random_inputs(tmp_path: Path) -> None:
    model = small_cnn(seed=5)
    path = export(model, tmp_path, (2, 1, 28, 28))
    x = np.random.default_rng(0).normal(size=(3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(onnx_outputs(path, x)[0], framework_logits(model, x), **TOL)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_the_added_activations_layer_norm_and_adaptive_pooling(tmp_path: Path,
                                                               approximate: str) -> None:
    rng = np.random.default_rng(1)
    norm = nn.LayerNorm([4, 7, 7])
    norm.weight.data[...] = rng.uniform(0.5, 1.5, norm.weight.shape)
    norm.bias.data[...] = rng.normal(0, 0.2, norm.bias.shape)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.GELU(approximate), nn.AdaptiveAvgPool2d(7),
        norm, nn.SiLU(), nn.AdaptiveAvgPool2d((1, None)), nn.Flatten(),
        nn.Linear(28, 16, generator=rng), nn.ELU(0.5), nn.LayerNorm(16, bias=False),
        nn.Linear(16, 16, generator=rng), nn.Softplus(2.0, 1.0),
        nn.Linear(16, 10, generator=rng))
    path = export(model, tmp_path, (1, 1, 28, 28))
    x = rng.normal(size=(3, 1, 28, 28)).astype(np.float32) * 3
    np.testing.assert_allclose(onnx_outputs(path, x)[0], framework_logits(model, x), **TOL)
    global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    path = export(global_pool, tmp_path, (1, 3, 5, 5))
    assert [n.op_type for n in onnx.load(str(path)).graph.node][:2] == [
        "GlobalAveragePool", "Flatten"]
    with pytest.raises(ExportError, match=r"output_size 3 of a 28x28 input .* must divide"):
        to_onnx(nn.Sequential(nn.AdaptiveAvgPool2d(3)), tmp_path / "m.onnx", (1, 1, 28, 28))


def test_partial_flatten_and_linear_on_3d_input(tmp_path: Path) -> None:
    """Flatten(start_dim=2) becomes a Reshape; Linear on (N, C, L) a MatMul and an Add."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Flatten(start_dim=2), nn.Linear(28 * 28, 5, generator=rng),
                          nn.ReLU(), nn.Flatten(), nn.Linear(3 * 5, 10, generator=rng))
    path = export(model, tmp_path, (1, 3, 28, 28))
    x = rng.random((4, 3, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(onnx_outputs(path, x)[0], framework_logits(model, x), **TOL)


def test_per_pixel_mean_and_std(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(784, 10, generator=rng))
    mean, std = rng.random(784).astype(np.float32), rng.uniform(0.5, 1, 784).astype(np.float32)
    path = export(model, tmp_path, (1, 784), mean=mean, std=std)
    x = rng.random((5, 784), dtype=np.float32)
    np.testing.assert_allclose(onnx_outputs(path, x)[0],
                               framework_logits(model, (x - mean) / std), **TOL)


def test_the_file_states_its_input_contract(tmp_path: Path) -> None:
    path = export(MLP(hidden=(8,)), tmp_path, (1, 784), mean=MEAN, std=STD)
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == 17
    meta = {p.key: p.value for p in proto.metadata_props}
    assert "pixels in [0, 1]" in meta["input_contract"] and "mnist_style" in proto.doc_string
    assert float(meta["mean"]) == pytest.approx(MEAN)
    (inp,) = proto.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "input" and dims == ["N", 784]
    assert [o.name for o in proto.graph.output] == ["logits"]


def test_export_keeps_the_training_mode(tmp_path: Path) -> None:
    model = mlp_with_every_layer()
    model.train()
    model[3].eval()
    export(model, tmp_path, (1, 784))
    assert model.training and model[1].training and not model[3].training


@pytest.mark.parametrize("model_name, layout_shape", [("mlp", (784,)), ("cnn", (1, 28, 28))])
def test_the_export_command_folds_in_a_runs_statistics(tmp_path: Path, model_name: str,
                                                       layout_shape: Tuple[int, ...]) -> None:
    """`tinygrad-mnist export RUN --onnx FILE`: the file takes pixels in [0, 1] in the
    model's layout and gives the run's model's logits."""
    config = TrainConfig.from_dict({"model": model_name, "hidden": [16]})
    run = tmp_path / "run"
    run.mkdir()
    tg.save({"format": "tinygrad_mnist.model", "model": build_model(config).state_dict(),
             "config": dataclasses.asdict(config), "stats": [0.13, 0.31], "epoch": 1,
             "val_acc": 0.5}, run / "best.npz")
    path = tmp_path / "model.onnx"
    assert cli.main(["export", str(run), "--onnx", str(path)]) == 0
    trained = load_trained(run)
    images = np.random.default_rng(0).random((6, 28, 28)).astype(np.float32)
    expected = framework_logits(trained.model, trained.prepare(images))
    logits = onnx_outputs(path, images.reshape(6, *layout_shape))[0]
    np.testing.assert_allclose(logits, expected, **TOL)


# ---------------------------------------------------------------- errors
class Custom(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * 2


class Residual(nn.Sequential):
    def forward(self, x: Tensor) -> Tensor:
        return x + super().forward(x)


class FancyReLU(nn.ReLU):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) - 1


class ReLU(nn.Module):
    """Not the package's ReLU, only its name: layers are matched by class, not by name."""
    def forward(self, x: Tensor) -> Tensor:
        return x * 3


class ThinLinear(nn.Linear):
    """A subclass that keeps Linear's forward: exported as a Linear."""


def test_a_subclass_keeping_forward_exports_as_its_base_class(tmp_path: Path) -> None:
    model = nn.Sequential(ThinLinear(784, 10), nn.ReLU())
    path = export(model, tmp_path, (1, 784))
    assert [node.op_type for node in onnx.load(str(path)).graph.node][:2] == ["Gemm", "Relu"]
    x = np.random.default_rng(0).standard_normal((5, 784)).astype(np.float32)
    np.testing.assert_allclose(onnx_outputs(path, x)[0], framework_logits(model, x), **TOL)


@pytest.mark.parametrize("model, message", [
    (nn.Sequential(ReLU()), r"layer 0 \(ReLU\).*supported layers"),
    (nn.Sequential(nn.Linear(784, 10), Custom()), r"layer 1 \(Custom\).*supported layers"),
    (nn.Sequential(nn.Sequential(nn.ReLU(), FancyReLU())), r"layer 0\.1 \(FancyReLU\)"),
    (nn.Sequential(Residual(nn.Linear(784, 784))), r"0 \(Residual\): it overrides"),
    (Custom(), r"the model \(Custom\)"),
    (nn.Sequential(nn.BatchNorm1d(784, track_running_stats=False)), "running statistics"),
])
def test_unsupported_layers_are_named(tmp_path: Path, model: nn.Module, message: str) -> None:
    with pytest.raises(ExportError, match=message):
        to_onnx(model, tmp_path / "m.onnx", (1, 784))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_shape=(784,)), r"\(batch, \.\.\.\)"),
    (dict(input_shape=(1, 0)), "positive"),
    (dict(input_shape="784"), "tuple of ints"),
    (dict(input_shape=(1, 783)), r"layer 0 \(Linear\) fails on an input of shape \(1, 783\)"),
    (dict(input_shape=(1, 784), mean=0.1), "both mean and std"),
    (dict(input_shape=(1, 784), mean=0.1, std=0.0), "std must be positive"),
    (dict(input_shape=(1, 784), mean=np.zeros(10), std=1.0), "does not broadcast"),
])
def test_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ExportError, match=message):
        to_onnx(nn.Sequential(nn.Linear(784, 10)), tmp_path / "m.onnx", **kwargs)


def test_a_missing_onnx_package_is_explained(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)   # "import onnx" now fails
    with pytest.raises(ImportError, match=r'pip install -e "\.\[deploy\]"'):
        to_onnx(nn.Sequential(nn.ReLU()), tmp_path / "m.onnx", (1, 784))


@pytest.mark.parametrize("index, attr, value", [
    (0, "groups", 2), (0, "dilation", 2), (3, "ceil_mode", True), (5, "count_include_pad", False),
])
def test_unsupported_options_are_named(tmp_path: Path, index: int, attr: str,
                                       value: Any) -> None:
    model = small_cnn()
    object.__setattr__(model[index], attr, value)
    with pytest.raises(ExportError, match=f"{attr}={value!r}"):
        to_onnx(model, tmp_path / "m.onnx", (1, 1, 28, 28))
