"""Export a trained model to ONNX, for serving it without this package.

    to_onnx(model, "model.onnx", input_shape=(1, 784), mean=stats.mean, std=stats.std)
    export_run("runs/RUN", "model.onnx")   # a run's best model, taking pixels in [0, 1]
    export_run(["runs/A", "runs/B"], "ensemble.onnx")  # an ensemble, as one graph

Supported: `Sequential` pipelines (nested ones too, `MLP` included) of `Linear`,
`Conv2d`, `ReLU`, `LeakyReLU`, `Tanh`, `Sigmoid`, `MaxPool2d`, `AvgPool2d`, `Flatten`,
`BatchNorm1d`/`BatchNorm2d` (in eval form: running statistics) and `Dropout` (the
identity at inference). Anything else, or a Sequential subclass with its own `forward`,
raises :class:`ExportError` naming the layer.

The input contract, written into the file's doc string and metadata as well:

* one float32 input ``input`` of ``input_shape`` with a free batch dimension, e.g.
  ``(N, 784)`` for an MLP or ``(N, 1, 28, 28)`` for a CNN, holding MNIST-style images
  (light ink on black, centred; see `tinygrad_mnist.data.mnist_style` for drawings and
  photos);
* given ``mean`` and ``std`` (the training statistics), the graph starts with
  ``(input - mean) / std``, so it takes pixels in [0, 1]; without them it takes the
  model's input exactly as the framework does (already standardised);
* output ``logits`` ``(N, 10)``, and ``probabilities`` (a softmax) with ``softmax=True``.

`onnx` is an optional dependency (``pip install -e ".[deploy]"``), imported only here.
"""
from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Type,
                    TypeVar, Union)

import numpy as np

from .. import nn
from ..atomic import atomic_write
from ..autograd import no_grad
from .inference import Ensemble, load_models
from ..nn import Module, Sequential
from ..tensor import Tensor

if TYPE_CHECKING:  # pragma: no cover
    import onnx

OPSET = 17
IR_VERSION = 8  # the IR version of opset 17: files that older ONNX Runtimes can read
ArrayLike = Union[float, Sequence[float], np.ndarray]
T = TypeVar("T")


class ExportError(ValueError):
    """The model (or an argument) cannot be expressed as an ONNX graph."""


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError('ONNX export needs the optional "onnx" package: '
                          'pip install -e ".[deploy]" (or pip install onnx)') from None
    return onnx


# ------------------------------------------------------------------------ the graph
class _Graph:
    """Nodes and initializers being collected, with unique names."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.nodes: List[Any] = []
        self.initializers: List[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: Any, dtype: Any = np.float32) -> str:
        name = self.name(hint)
        array = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: Sequence[str], hint: str, **attrs: Any) -> str:
        out = self.name(hint)
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], name=out,
                                                     **attrs))
        return out


Handler = Callable[[_Graph, Module, str, Tuple[int, ...]], str]


def _array(value: Any) -> np.ndarray:
    return np.asarray(value.data if isinstance(value, Tensor) else value)


def _pair(module: Module, attr: str, default: Any = None) -> Tuple[int, int]:
    value = getattr(module, attr, default)
    if value is None:
        value = default
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) for v in pair):
        raise ExportError(f"{type(module).__name__}: cannot export {attr}={value!r} "
                          "(expected an int or a pair of ints)")
    return int(pair[0]), int(pair[1])


def require_defaults(module: Module, **defaults: Any) -> None:
    """Options the ONNX mapping does not cover must have their default value."""
    for attr, default in defaults.items():
        value = getattr(module, attr, default)
        if value != default and _pair_or_same(value) != _pair_or_same(default):
            raise ExportError(f"{type(module).__name__}: cannot export {attr}={value!r} "
                              f"(only {default!r} is supported)")


def _pair_or_same(value: Any) -> Any:
    return (value, value) if isinstance(value, numbers.Integral) else value


# ------------------------------------------------------------------------ layers
def _linear(g: _Graph, m: Module, x: str, shape: Tuple[int, ...]) -> str:
    weight = _array(m.weight).astype(np.float32)            # (out, in)
    bias = getattr(m, "bias", None)
    if len(shape) == 2:
        inputs = [x, g.const("weight", weight)]
        if bias is not None:
            inputs.append(g.const("bias", _array(bias)))
        return g.node("Gemm", inputs, "linear", transB=1)
    out = g.node("MatMul", [x, g.const("weight_t", weight.T)], "linear")
    return out if bias is None else g.node("Add", [out, g.const("bias", _array(bias))],
                                           "linear_bias")


def conv_attrs(m: Module) -> Dict[str, Any]:
    """A Conv2d's kernel_shape, strides and pads (ONNX's names and layout); ExportError
    for options the exports do not cover."""
    require_defaults(m, groups=1, dilation=1, padding_mode="zeros")
    if isinstance(getattr(m, "padding", 0), str):
        raise ExportError(f"Conv2d: cannot export padding={m.padding!r}; use integers")
    ph, pw = _pair(m, "padding", 0)
    return dict(kernel_shape=list(_array(m.weight).shape[2:]),
                strides=list(_pair(m, "stride", 1)), pads=[ph, pw, ph, pw])


def _conv(g: _Graph, m: Module, x: str, shape: Tuple[int, ...]) -> str:
    attrs = conv_attrs(m)
    inputs = [x, g.const("weight", _array(m.weight))]
    if getattr(m, "bias", None) is not None:
        inputs.append(g.const("bias", _array(m.bias)))
    return g.node("Conv", inputs, "conv", **attrs)


def pool_attrs(m: Module) -> Dict[str, Any]:
    """A pooling layer's kernel_shape, strides and pads (ONNX's names and layout);
    ExportError for options the exports do not cover."""
    require_defaults(m, dilation=1, ceil_mode=False, return_indices=False,
                      divisor_override=None)
    kernel = _pair(m, "kernel_size")
    ph, pw = _pair(m, "padding", 0)
    return dict(kernel_shape=list(kernel), strides=list(_pair(m, "stride", kernel)),
                pads=[ph, pw, ph, pw])


def _max_pool(g: _Graph, m: Module, x: str, shape: Tuple[int, ...]) -> str:
    return g.node("MaxPool", [x], "max_pool", **pool_attrs(m))


def _avg_pool(g: _Graph, m: Module, x: str, shape: Tuple[int, ...]) -> str:
    require_defaults(m, count_include_pad=True)
    return g.node("AveragePool", [x], "avg_pool", count_include_pad=1, **pool_attrs(m))


def batch_norm_arrays(m: Module) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A batch norm's scale, bias, running mean and running variance (eval form);
    ExportError without running statistics."""
    mean, var = getattr(m, "running_mean", None), getattr(m, "running_var", None)
    if mean is None or var is None or not getattr(m, "track_running_stats", True):
        raise ExportError(f"{type(m).__name__}: cannot export without running statistics "
                          "(track_running_stats=False normalises with batch statistics)")
    c = int(m.num_features)
    weight = getattr(m, "weight", None)
    bias = getattr(m, "bias", None)
    return (np.ones(c) if weight is None else _array(weight),
            np.zeros(c) if bias is None else _array(bias), _array(mean), _array(var))


def _batch_norm(g: _Graph, m: Module, x: str, shape: Tuple[int, ...]) -> str:
    inputs = [x, *(g.const(hint, a) for hint, a in
                   zip(("bn_scale", "bn_bias", "bn_mean", "bn_var"), batch_norm_arrays(m)))]
    return g.node("BatchNormalization", inputs, "batch_norm", epsilon=float(m.eps))


def _flatten(g: _Graph, m: Module, x: str, shape: Tuple[int, ...]) -> str:
    rank = len(shape)
    start, end = m.start_dim % rank, m.end_dim % rank
    if start == 1 and end == rank - 1:
        return g.node("Flatten", [x], "flatten", axis=1)
    # Reshape: 0 copies an input dimension (keeps the batch free), -1 is the merged one.
    target = [0] * start + [-1] + list(shape[end + 1:])
    return g.node("Reshape", [x, g.const("shape", target, np.int64)], "flatten")


def _activation(op: str, **attrs: Any) -> Handler:
    def handler(g: _Graph, m: Module, x: str, shape: Tuple[int, ...]) -> str:
        values = {k: float(getattr(m, v)) for k, v in attrs.items()}
        return g.node(op, [x], op.lower(), **values)
    return handler


def _identity(g: _Graph, m: Module, x: str, shape: Tuple[int, ...]) -> str:
    return x


def _gelu(g: _Graph, m: Module, x: str, shape: Tuple[int, ...]) -> str:
    half_x = g.node("Mul", [x, g.const("half", 0.5)], "gelu_half")
    if m.approximate == "tanh":               # ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
        cube = g.node("Mul", [g.node("Mul", [x, x], "gelu_sq"), x], "gelu_cube")
        inner = g.node("Add", [x, g.node("Mul", [cube, g.const("c", 0.044715)], "gelu")],
                       "gelu_inner")
        curve = g.node("Tanh", [g.node("Mul", [inner, g.const("k", np.sqrt(2 / np.pi))],
                                       "gelu_scaled")], "gelu_tanh")
    else:                                     # ½x(1 + erf(x/√2))
        curve = g.node("Erf", [g.node("Mul", [x, g.const("k", 1 / np.sqrt(2))], "gelu")],
                       "gelu_erf")
    return g.node("Mul", [half_x, g.node("Add", [curve, g.const("one", 1.0)], "gelu_1p")],
                  "gelu")


def _silu(g: _Graph, m: Module, x: str, shape: Tuple[int, ...]) -> str:
    return g.node("Mul", [x, g.node("Sigmoid", [x], "silu_sigmoid")], "silu")


def _softplus(g: _Graph, m: Module, x: str, shape: Tuple[int, ...]) -> str:
    bx = g.node("Mul", [x, g.const("beta", m.beta)], "softplus_bx")
    curve = g.node("Div", [g.node("Softplus", [bx], "softplus"), g.const("beta", m.beta)],
                   "softplus_curve")
    linear = g.node("Greater", [bx, g.const("threshold", m.threshold)], "softplus_linear")
    return g.node("Where", [linear, x, curve], "softplus")


def _layer_norm(g: _Graph, m: Module, x: str, shape: Tuple[int, ...]) -> str:
    normalized = tuple(m.normalized_shape)
    scale = np.ones(normalized) if m.weight is None else _array(m.weight)
    inputs = [x, g.const("ln_scale", scale)]
    if m.bias is not None:
        inputs.append(g.const("ln_bias", _array(m.bias)))
    return g.node("LayerNormalization", inputs, "layer_norm", axis=-len(normalized),
                  epsilon=float(m.eps))


def _adaptive_avg_pool(g: _Graph, m: Module, x: str, shape: Tuple[int, ...]) -> str:
    h, w = shape[-2:]
    oh, ow = nn.functional.adaptive_output_size(m.output_size, h, w)
    if (oh, ow) == (1, 1):
        return g.node("GlobalAveragePool", [x], "global_avg_pool")
    if h % oh or w % ow:
        raise ExportError(f"AdaptiveAvgPool2d: cannot export output_size {m.output_size!r} "
                          f"of a {h}x{w} input (ONNX pools in equal windows: the sides "
                          f"must divide)")
    return g.node("AveragePool", [x], "adaptive_avg_pool", kernel_shape=[h // oh, w // ow],
                  strides=[h // oh, w // ow])


#: Layer class -> how it becomes ONNX nodes. A subclass uses its nearest listed base
#: class's handler, as long as it keeps that class's forward.
HANDLERS: Dict[Type[Module], Handler] = {
    nn.Linear: _linear,
    nn.Conv2d: _conv,
    nn.ReLU: _activation("Relu"),
    nn.LeakyReLU: _activation("LeakyRelu", alpha="negative_slope"),
    nn.Tanh: _activation("Tanh"),
    nn.Sigmoid: _activation("Sigmoid"),
    nn.GELU: _gelu,
    nn.SiLU: _silu,
    nn.ELU: _activation("Elu", alpha="alpha"),
    nn.Softplus: _softplus,
    nn.LayerNorm: _layer_norm,
    nn.AdaptiveAvgPool2d: _adaptive_avg_pool,
    nn.MaxPool2d: _max_pool,
    nn.AvgPool2d: _avg_pool,
    nn.Flatten: _flatten,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.Dropout: _identity,
}


def handler_of(module: Module, where: str, handlers: Dict[Type[Module], T]) -> T:
    """The entry of `handlers` for the nearest class in `module`'s MRO that has one (a
    subclass is fine only if it keeps that class's forward); ExportError naming the
    layer otherwise."""
    for cls in type(module).__mro__:
        if cls in handlers:
            if type(module).forward is not cls.forward:
                break
            return handlers[cls]
    supported = ", ".join(sorted(cls.__name__ for cls in handlers))
    raise ExportError(f"cannot export layer {where} ({type(module).__name__}): supported "
                      f"layers are {supported} inside Sequential containers")


def _handler(module: Module, where: str) -> Handler:
    return handler_of(module, where, HANDLERS)


def leaf_layers(module: Module, where: str = "") -> List[Tuple[str, Module]]:
    """The leaf layers of a (nested) Sequential, in order, with their dotted names;
    ExportError for a layer without a handler or a Sequential with its own forward."""
    if isinstance(module, Sequential):
        if type(module).forward is not Sequential.forward:
            raise ExportError(f"cannot export {where or 'the model'} "
                              f"({type(module).__name__}): it overrides Sequential.forward")
        return [layer for name, child in module.named_children()
                for layer in leaf_layers(child, f"{where}.{name}" if where else name)]
    _handler(module, where or "the model")
    return [(where or type(module).__name__, module)]


def walk(model: Module, shape: Tuple[int, ...],
         visit: Callable[[str, Module, Tuple[int, ...]], None]) -> Tuple[int, ...]:
    """Run `model`'s leaf layers (`leaf_layers`) one by one on zeros of `shape`, in eval
    form without a graph, calling `visit(name, layer, input_shape)` before each; returns
    the output shape. The model's train/eval modes are kept."""
    layers = leaf_layers(model)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad():
            value = Tensor(np.zeros(shape, np.float32))
            for where, layer in layers:
                in_shape = tuple(value.shape)
                visit(where, layer, in_shape)
                try:
                    value = layer(value)
                except Exception as e:
                    raise ExportError(f"layer {where} ({type(layer).__name__}) fails on an "
                                      f"input of shape {in_shape}: {e}") from e
    finally:
        for m, mode in modes:  # parents first, so each module ends with its own mode
            m.train(mode)
    return tuple(value.shape)


# ------------------------------------------------------------------------ export
def _check_shape(input_shape: Sequence[int]) -> Tuple[int, ...]:
    try:
        if isinstance(input_shape, (str, bytes)):
            raise TypeError
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ExportError(f"input_shape must be a tuple of ints, got {input_shape!r}") from None
    if len(shape) < 2 or min(shape) < 1:
        raise ExportError(f"input_shape must be (batch, ...) with positive sizes, e.g. "
                          f"(1, 784) or (1, 1, 28, 28); got {input_shape!r}")
    return shape


def _normalisation(shape: Tuple[int, ...], mean: Optional[ArrayLike],
                   std: Optional[ArrayLike]) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise ExportError("give both mean and std, or neither")
    m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    for name, a in (("mean", m), ("std", s)):
        try:
            np.broadcast_shapes(a.shape, shape[1:])
        except ValueError:
            raise ExportError(f"{name} of shape {a.shape} does not broadcast to one input "
                              f"{shape[1:]}") from None
        if not np.isfinite(a).all():
            raise ExportError(f"{name} must be finite")
    if not (s > 0).all():
        raise ExportError("std must be positive")
    return m, s


def _contract(shape: Tuple[int, ...], normalised: bool, softmax: bool) -> str:
    dims = ", ".join(["N", *map(str, shape[1:])])
    pixels = ("pixels in [0, 1] (the graph standardises them with the training mean/std)"
              if normalised else "the model's input as the framework takes it "
              "(standardised the same way as in training)")
    return (f"input: float32 ({dims}), MNIST-style digits (light ink on black, centred; "
            f"see tinygrad_mnist.data.mnist_style), {pixels}. output: logits (N, 10)"
            + (" and probabilities (N, 10)" if softmax else "") + ".")


def to_onnx(model: Module, path: Union[str, os.PathLike], input_shape: Sequence[int],
            *, mean: Optional[ArrayLike] = None, std: Optional[ArrayLike] = None,
            softmax: bool = False, dynamic_batch: bool = True) -> "onnx.ModelProto":
    """Write `model` (in its eval form) to `path` as an ONNX file (opset 17) and return it.

    `input_shape` includes the batch dimension, e.g. ``(1, 784)`` or ``(1, 1, 28, 28)``;
    with `dynamic_batch` the exported batch dimension is free (``N``). `mean`/`std` (scalars
    or arrays that broadcast to one input) prepend ``(input - mean) / std``. `softmax` adds
    a ``probabilities`` output. Raises :class:`ExportError` naming any layer it cannot
    export, ImportError if `onnx` is not installed. The model's train/eval mode is kept."""
    onnx = _require_onnx()
    from onnx import TensorProto, helper
    shape = _check_shape(input_shape)
    norm = _normalisation(shape, mean, std)
    g = _Graph(onnx)
    x, out_shape = _emit(g, model, "input", shape, norm)
    g.nodes.append(helper.make_node("Identity", [x], ["logits"], name="logits"))
    batch: Union[str, int] = "N" if dynamic_batch else shape[0]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                             [batch, *out_shape[1:]])]
    if softmax:
        g.nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1,
                                        name="probabilities"))
        outputs.append(helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                                     [batch, *out_shape[1:]]))
    contract = _contract(shape, norm is not None, softmax)
    metadata = {}
    if norm is not None:
        metadata.update(mean=str(norm[0].tolist()), std=str(norm[1].tolist()))
    return _write(onnx, g, path, shape, batch, outputs, contract, metadata)


def _emit(g: _Graph, model: Module, x: str, shape: Tuple[int, ...],
          norm: Optional[Tuple[np.ndarray, np.ndarray]]) -> Tuple[str, Tuple[int, ...]]:
    """Add `model`'s nodes (after the optional standardisation) reading `x` of `shape`;
    returns the output's name and shape. The model's train/eval modes are kept."""
    if norm is not None:
        x = g.node("Sub", [x, g.const("mean", norm[0])], "centred")
        x = g.node("Div", [x, g.const("std", norm[1])], "standardised")
    names = [x]

    def visit(where: str, layer: Module, in_shape: Tuple[int, ...]) -> None:
        names.append(_handler(layer, where)(g, layer, names[-1], in_shape))
    out_shape = walk(model, shape, visit)
    return names[-1], out_shape


def _write(onnx: Any, g: _Graph, path: Union[str, os.PathLike], shape: Tuple[int, ...],
           batch: Union[str, int], outputs: List[Any], contract: str,
           metadata: Dict[str, str]) -> "onnx.ModelProto":
    """Assemble the graph reading `input`, check it and write it atomically to `path`."""
    from onnx import TensorProto, helper
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                            [batch, *shape[1:]])]
    graph = helper.make_graph(g.nodes, "tinygrad_mnist", inputs, outputs, g.initializers,
                              doc_string=contract)
    from .. import __version__
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="tinygrad_mnist",
                              producer_version=__version__, doc_string=contract)
    helper.set_model_props(proto, {"input_contract": contract,
                                   "classes": ",".join(map(str, range(10))), **metadata})
    onnx.checker.check_model(proto, full_check=True)
    atomic_write(Path(path), proto.SerializeToString())  # its directory must exist
    return proto


def export_run(path: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
               onnx_path: Union[str, os.PathLike], top_k: Optional[int] = None,
               **options: Any) -> "onnx.ModelProto":
    """Export a run directory's best model (or an `.npz` checkpoint) with its training
    mean/std folded in, so the file takes pixels in [0, 1] in the model's layout.
    Several paths, or a sweep directory (its best `top_k` runs), export an ensemble as
    one graph (`ensemble_to_onnx`). `options` (`softmax`, `dynamic_batch`) go to
    :func:`to_onnx`."""
    loaded = load_models(path, top_k)
    if isinstance(loaded, Ensemble):
        return ensemble_to_onnx(loaded, onnx_path, **options)
    input_shape = loaded.prepare(np.zeros((1, *loaded.image_shape), np.float32)).shape
    return to_onnx(loaded.model, onnx_path, input_shape, mean=loaded.stats.mean,
                   std=loaded.stats.std, **options)


def ensemble_to_onnx(ensemble: Ensemble, path: Union[str, os.PathLike], *,
                     softmax: bool = True, dynamic_batch: bool = True) -> "onnx.ModelProto":
    """Write an ensemble as one ONNX graph: each member standardises the shared input
    with its own training mean/std, runs, and ends in a softmax; the graph outputs the
    `probabilities` (N, 10), the members' mean (with `softmax`, the default), and
    `logits`, their logarithm (a softmax of which gives the same probabilities back).

    The input is float32 pixels in [0, 1]: (N, 784) when every member is an MLP, else
    (N, 1, 28, 28) (MLP members flatten it); (N, C*H*W) or (N, C, H, W) for other
    image shapes."""
    onnx = _require_onnx()
    from onnx import TensorProto, helper
    layouts = {member.config.model for member in ensemble.members}
    image = np.zeros((1, *ensemble.image_shape), np.float32)  # one image, (1, C, H, W)
    flat = all(m.prepare(image).ndim == 2 for m in ensemble.members)
    shape = (1, image[0].size) if flat else image.shape
    g = _Graph(onnx)
    member_probabilities = []
    for i, member in enumerate(ensemble.members):
        own = tuple(member.prepare(image).shape)
        x = "input"
        if own != shape:  # an MLP among CNNs flattens the images
            x = g.node("Reshape", [x, g.const("shape", [0, *own[1:]], np.int64)],
                       f"member{i}_input")
        norm = _normalisation(own, member.stats.mean, member.stats.std)
        logits, _ = _emit(g, member.model, x, own, norm)
        member_probabilities.append(g.node("Softmax", [logits], f"member{i}_probabilities",
                                           axis=-1))
    mean = g.node("Mean", member_probabilities, "mean_probabilities")
    g.nodes.append(helper.make_node("Log", [mean], ["logits"], name="logits"))
    batch: Union[str, int] = "N" if dynamic_batch else shape[0]
    classes = len(ensemble.classes)
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])]
    if softmax:
        g.nodes.append(helper.make_node("Identity", [mean], ["probabilities"],
                                        name="probabilities"))
        outputs.append(helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                                     [batch, classes]))
    dims = ", ".join(["N", *map(str, shape[1:])])
    contract = (f"input: float32 ({dims}), MNIST-style digits (light ink on black, centred; "
                f"see tinygrad_mnist.data.mnist_style), pixels in [0, 1]. An ensemble of "
                f"{len(ensemble.members)} models ({', '.join(sorted(layouts))}), each "
                f"standardising the input itself. output: logits (N, 10), the log of the "
                f"mean probabilities" + (", and probabilities (N, 10)" if softmax else "")
                + ".")
    return _write(onnx, g, path, shape, batch, outputs, contract,
                  {"ensemble_size": str(len(ensemble.members))})
