"""Every public op through every spelling: the Tensor method, `tg.fn`, `F.fn` and the
`nn` module, on bool, int64, float16, float32 and float64 inputs, give PyTorch's result
dtype (or refuse the input, where PyTorch raises) and PyTorch's values.

The expected dtypes and values are written out below from PyTorch's documentation
(its type promotion rules and each op's formula), for the input `X`, whose values exist
in all five dtypes; `test_every_spelling_agrees_with_torch` checks the same table
against PyTorch itself where it is installed, on `X` and on an input with negative
values. The table must name every public op: `test_every_public_name_is_in_the_table`
fails for a name of `tg.__all__`, of the Tensor's public attributes, of `F.__all__` or
a layer of `nn.__all__` that is neither in the table nor excluded below, with a reason.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import pytest

import tinygrad_mnist as tg
import tinygrad_mnist.nn.functional as F
from tinygrad_mnist import nn

DTYPES = ("bool", "int64", "float16", "float32", "float64")
X = [[1, 0, 1], [0, 1, 1]]
E = math.e
ERR = "error"  # PyTorch raises for an input of this dtype: so must we

# PyTorch's result dtype for each input dtype, by rule.
SAME = {d: d for d in DTYPES}                         # shape and selection ops
NUMERIC = {**SAME, "bool": ERR}                       # arithmetic PyTorch refuses on bool
FLOAT = {**SAME, "bool": "float32", "int64": "float32"}  # real-valued: the default float
FLOATING = {**SAME, "bool": ERR, "int64": ERR}        # defined for floating point only
SUMS = {**SAME, "bool": "int64"}                      # sums and products count in int64
BOOL = {d: "bool" for d in DTYPES}                    # comparisons, tests
INDEX = {**{d: "int64" for d in DTYPES}, "bool": ERR}  # positions
PYBOOL = {d: "pybool" for d in DTYPES}                # a Python bool (equal, allclose)
PYINT = {d: "pyint" for d in DTYPES}                  # a Python int (numel)


def rule(**dtypes: str) -> Dict[str, str]:
    return {d: dtypes.get(d, "") for d in DTYPES}


@dataclass
class Op:
    """One op: `call(f, x, lib)` applies the spelled function `f` (taking the input
    first) to the input `x`, with any other argument made by `lib` (tinygrad_mnist or
    torch); `layer(x, lib)` builds the nn module, which `feed(module, x, lib)` calls
    (`module(x)` by default); `spelled` gives spellings that do not take the input first
    (operators, attributes)."""
    name: str
    call: Optional[Callable[..., Any]]
    dtypes: Dict[str, str]
    values: Any                      # for the numeric inputs; `bool_values` for bool
    bool_values: Any = None
    layer: Optional[Callable[..., Any]] = None
    spelled: Dict[str, Callable[..., Any]] = field(default_factory=dict)
    feed: Callable[..., Any] = lambda module, x, L: module(x)


def unary(name, dtypes, values, bool_values=None, layer=None, **spelled):
    return Op(name, lambda f, x, L: f(x), dtypes, values, bool_values, layer, spelled)


def other(x, L):
    """The input's rows swapped: a second operand of the same dtype."""
    return x[[1, 0]]


def like(x, L, value):
    return L.full_like(x, value)


def stats(x, L, value, n=3):
    """An (n,) vector of the input's float dtype (float32 for the others)."""
    return L.full((n,), value, dtype=x.dtype if x.is_floating_point() else L.float32)


def ones_weight(x, L, *shape):
    return L.ones(*shape, dtype=x.dtype if x.is_floating_point() else L.float32)


def with_ones(layer):
    """`layer` with every parameter set to 1 (the weights of the written-out values)."""
    for p in layer.parameters():
        p.data[...] = 1
    return layer


def image(x):
    return x.reshape(1, 1, 2, 3)


def float_dtype(x, L):
    return x.dtype if x.is_floating_point() else L.float32


def labels(x, L):
    return L.tensor([0, 1])


S3 = math.sqrt(1 / 3)
SOFTMAX = [E / (2 * E + 1), 1 / (2 * E + 1)]
LN = (1 / 3 / math.sqrt(2 / 9 + 1e-5), -2 / 3 / math.sqrt(2 / 9 + 1e-5))
BN = 1 / math.sqrt(1 + 1e-5)
SIG1, GELU1 = 1 / (1 + math.exp(-1)), 0.5 * (1 + math.erf(1 / math.sqrt(2)))


def grid(one, zero):
    """X with its ones and zeros replaced."""
    return [[one if v else zero for v in row] for row in X]


OPS = [
    # ---------------------------------------------------------------- elementwise
    unary("abs", NUMERIC, X, op=lambda x, L: abs(x)),
    unary("neg", NUMERIC, grid(-1, 0), op=lambda x, L: -x),
    unary("exp", FLOAT, grid(E, 1)),
    unary("exp2", FLOAT, grid(2, 1)),
    unary("log", FLOAT, grid(0, -math.inf)),
    unary("log1p", FLOAT, grid(math.log(2), 0)),
    unary("sqrt", FLOAT, X),
    unary("rsqrt", FLOAT, grid(1, math.inf)),
    unary("reciprocal", FLOAT, grid(1, math.inf)),
    unary("square", SUMS, X),
    unary("sin", FLOAT, grid(math.sin(1), 0)),
    unary("cos", FLOAT, grid(math.cos(1), 1)),
    unary("erf", FLOAT, grid(math.erf(1), 0)),
    unary("erfc", FLOAT, grid(math.erfc(1), 1)),
    unary("tanh", FLOAT, grid(math.tanh(1), 0), layer=lambda x, L: L.nn.Tanh()),
    unary("sigmoid", FLOAT, grid(SIG1, 0.5), layer=lambda x, L: L.nn.Sigmoid()),
    unary("relu", NUMERIC, X, layer=lambda x, L: L.nn.ReLU()),
    Op("leaky_relu", lambda f, x, L: f(x, 0.5), FLOATING, X,
       layer=lambda x, L: L.nn.LeakyReLU(0.5)),
    unary("gelu", FLOATING, grid(GELU1, 0), layer=lambda x, L: L.nn.GELU()),
    unary("silu", FLOATING, grid(SIG1, 0), layer=lambda x, L: L.nn.SiLU()),
    unary("elu", FLOATING, X, layer=lambda x, L: L.nn.ELU()),
    unary("softplus", FLOATING, grid(math.log1p(E), math.log(2)),
          layer=lambda x, L: L.nn.Softplus()),
    unary("floor", NUMERIC, X),
    unary("ceil", NUMERIC, X),
    unary("round", NUMERIC, X),
    unary("sign", SAME, X),
    unary("logical_not", BOOL, grid(0, 1)),
    Op("clamp", lambda f, x, L: f(x, 0, 0), SUMS, grid(0, 0)),
    Op("pow", lambda f, x, L: f(x, 2), SUMS, X, spelled={"op": lambda x, L: x ** 2}),
    Op("add", lambda f, x, L: f(x, x), SAME, grid(2, 0), bool_values=X,
       spelled={"op": lambda x, L: x + x}),
    Op("sub", lambda f, x, L: f(x, other(x, L)), NUMERIC, [[1, -1, 0], [-1, 1, 0]],
       spelled={"op": lambda x, L: x - other(x, L)}),
    Op("mul", lambda f, x, L: f(x, x), SAME, X, spelled={"op": lambda x, L: x * x}),
    Op("div", lambda f, x, L: f(x, 2), FLOAT, grid(0.5, 0), spelled={"op": lambda x, L: x / 2}),
    Op("remainder", lambda f, x, L: f(x, 2), SUMS, X, spelled={"op": lambda x, L: x % 2}),
    Op("maximum", lambda f, x, L: f(x, other(x, L)), SAME, [[1, 1, 1], [1, 1, 1]]),
    Op("minimum", lambda f, x, L: f(x, other(x, L)), SAME, [[0, 0, 1], [0, 0, 1]]),
    Op("masked_fill", lambda f, x, L: f(x, L.tensor([[True, False, False], [False, False, True]]), 2),
       SAME, [[2, 0, 1], [0, 1, 2]], bool_values=X),
    Op("where", None, SAME, [[1, 1, 1], [1, 1, 1]], spelled={
        "method": lambda x, L: x.where(x > 0, other(x, L)),
        "tg": lambda x, L: L.where(x > 0, x, other(x, L))}),
    Op("eq", lambda f, x, L: f(x, other(x, L)), BOOL, [[0, 0, 1], [0, 0, 1]],
       spelled={"op": lambda x, L: x == other(x, L)}),
    Op("ne", lambda f, x, L: f(x, other(x, L)), BOOL, [[1, 1, 0], [1, 1, 0]],
       spelled={"op": lambda x, L: x != other(x, L)}),
    Op("lt", lambda f, x, L: f(x, other(x, L)), BOOL, [[0, 1, 0], [1, 0, 0]],
       spelled={"op": lambda x, L: x < other(x, L)}),
    Op("le", lambda f, x, L: f(x, other(x, L)), BOOL, [[0, 1, 1], [1, 0, 1]],
       spelled={"op": lambda x, L: x <= other(x, L)}),
    Op("gt", lambda f, x, L: f(x, other(x, L)), BOOL, [[1, 0, 0], [0, 1, 0]],
       spelled={"op": lambda x, L: x > other(x, L)}),
    Op("ge", lambda f, x, L: f(x, other(x, L)), BOOL, [[1, 0, 1], [0, 1, 1]],
       spelled={"op": lambda x, L: x >= other(x, L)}),
    Op("equal", lambda f, x, L: f(x, x), PYBOOL, True),
    Op("allclose", lambda f, x, L: f(x, x), PYBOOL, True),
    Op("isclose", lambda f, x, L: f(x, x), BOOL, grid(1, 1)),
    # ---------------------------------------------------------------- reductions
    Op("sum", lambda f, x, L: f(x, 1), SUMS, [2, 2]),
    Op("mean", lambda f, x, L: f(x, 1), FLOATING, [2 / 3, 2 / 3]),
    Op("std", lambda f, x, L: f(x, 1), FLOATING, [S3, S3]),
    Op("var", lambda f, x, L: f(x, 1), FLOATING, [1 / 3, 1 / 3]),
    unary("max", SAME, 1),
    Op("max", lambda f, x, L: f(x, 1), SAME, ([1, 1], [0, 1])),
    unary("min", SAME, 0),
    Op("min", lambda f, x, L: f(x, 1), SAME, ([0, 0], [1, 0])),
    Op("amax", lambda f, x, L: f(x, 1), SAME, [1, 1]),
    Op("amin", lambda f, x, L: f(x, 1), SAME, [0, 0]),
    Op("argmax", lambda f, x, L: f(x, 1), INDEX, [0, 1]),
    Op("argmin", lambda f, x, L: f(x, 1), INDEX, [1, 0]),
    Op("all", lambda f, x, L: f(x, 1), BOOL, [0, 0]),
    Op("any", lambda f, x, L: f(x, 1), BOOL, [1, 1]),
    unary("norm", FLOATING, 2),
    Op("cumsum", lambda f, x, L: f(x, 1), SUMS, [[1, 1, 2], [0, 1, 2]]),
    Op("prod", lambda f, x, L: f(x, 1), SUMS, [0, 0]),
    Op("logsumexp", lambda f, x, L: f(x, 1), FLOAT, [math.log(2 * E + 1)] * 2),
    Op("softmax", lambda f, x, L: f(x, 1), FLOATING,
       [[SOFTMAX[0], SOFTMAX[1], SOFTMAX[0]], [SOFTMAX[1], SOFTMAX[0], SOFTMAX[0]]],
       layer=lambda x, L: L.nn.Softmax(dim=1)),
    Op("log_softmax", lambda f, x, L: f(x, 1), FLOATING,
       [[math.log(SOFTMAX[0]), math.log(SOFTMAX[1]), math.log(SOFTMAX[0])],
        [math.log(SOFTMAX[1]), math.log(SOFTMAX[0]), math.log(SOFTMAX[0])]],
       layer=lambda x, L: L.nn.LogSoftmax(dim=1)),
    Op("sort", lambda f, x, L: f(x, 1), SAME, ([[0, 1, 1], [0, 1, 1]], [[1, 0, 2], [0, 1, 2]])),
    Op("topk", lambda f, x, L: f(x, 2), NUMERIC, ([[1, 1], [1, 1]], [[0, 2], [1, 2]])),
    # ------------------------------------------------------------------ movement
    Op("reshape", lambda f, x, L: f(x, (3, 2)), SAME, [[1, 0], [1, 0], [1, 1]]),
    Op("view", lambda f, x, L: f(x, 3, 2), SAME, [[1, 0], [1, 0], [1, 1]]),
    Op("view_as", lambda f, x, L: f(x, L.zeros(3, 2)), SAME, [[1, 0], [1, 0], [1, 1]]),
    Op("flatten", lambda f, x, L: f(x), SAME, [1, 0, 1, 0, 1, 1],
       layer=lambda x, L: L.nn.Flatten(0)),
    unary("ravel", SAME, [1, 0, 1, 0, 1, 1]),
    Op("squeeze", lambda f, x, L: f(x.reshape(1, 2, 3)), SAME, X),
    Op("unsqueeze", lambda f, x, L: f(x, 0), SAME, [X]),
    Op("transpose", lambda f, x, L: f(x, 0, 1), SAME, [[1, 0], [0, 1], [1, 1]]),
    Op("permute", lambda f, x, L: f(x, (1, 0)), SAME, [[1, 0], [0, 1], [1, 1]]),
    unary("t", SAME, [[1, 0], [0, 1], [1, 1]]),
    Op("T", None, SAME, [[1, 0], [0, 1], [1, 1]], spelled={"attribute": lambda x, L: x.T}),
    Op("gather", lambda f, x, L: f(x, 1, L.tensor([[0, 0], [1, 0]])), SAME, [[1, 1], [1, 0]]),
    Op("index_select", lambda f, x, L: f(x, 1, L.tensor([2, 0])), SAME, [[1, 1], [1, 0]]),
    Op("narrow", lambda f, x, L: f(x, 1, 1, 2), SAME, [[0, 1], [1, 1]]),
    Op("split", lambda f, x, L: f(x, 2, 1), SAME, ([[1, 0], [0, 1]], [[1], [1]])),
    Op("chunk", lambda f, x, L: f(x, 2, 1), SAME, ([[1, 0], [0, 1]], [[1], [1]])),
    Op("expand", lambda f, x, L: f(x[:1], 2, 3), SAME, [[1, 0, 1], [1, 0, 1]]),
    Op("expand_as", lambda f, x, L: f(x[:1], x), SAME, [[1, 0, 1], [1, 0, 1]]),
    Op("repeat", lambda f, x, L: f(x[:, :1], 1, 2), SAME, [[1, 1], [0, 0]]),
    unary("contiguous", SAME, X),
    unary("clone", SAME, X),
    unary("detach", SAME, X),
    Op("cat", lambda f, x, L: f([x, x[:, :1]], 1), SAME, [[1, 0, 1, 1], [0, 1, 1, 0]]),
    Op("stack", lambda f, x, L: f([x[0], x[1]]), SAME, X),
    unary("numel", PYINT, 6),
    # ------------------------------------------------------ products and triangles
    Op("matmul", lambda f, x, L: f(x, x.t()), NUMERIC, [[2, 1], [1, 2]],
       spelled={"op": lambda x, L: x @ x.t()}),
    Op("mm", lambda f, x, L: f(x, x.t()), NUMERIC, [[2, 1], [1, 2]]),
    Op("bmm", lambda f, x, L: f(x[None], x.t()[None]), NUMERIC, [[[2, 1], [1, 2]]]),
    Op("dot", lambda f, x, L: f(x[0], x[1]), NUMERIC, 1),
    Op("outer", lambda f, x, L: f(x[0], x[1]), SAME, [[0, 1, 1], [0, 0, 0], [0, 1, 1]]),
    Op("einsum", None, NUMERIC, [[2, 1], [1, 2]],
       spelled={"tg": lambda x, L: L.einsum("ij,kj->ik", x, x)}),
    unary("tril", SAME, [[1, 0, 0], [0, 1, 0]]),
    unary("triu", SAME, X),
    # -------------------------------------------------------------------- dtypes
    unary("float", {d: "float32" for d in DTYPES}, X),
    unary("double", {d: "float64" for d in DTYPES}, X),
    unary("half", {d: "float16" for d in DTYPES}, X),
    unary("long", {d: "int64" for d in DTYPES}, X),
    unary("int", {d: "int32" for d in DTYPES}, X),
    unary("short", {d: "int16" for d in DTYPES}, X),
    unary("byte", {d: "uint8" for d in DTYPES}, X),
    unary("bool", BOOL, X),
    Op("to", lambda f, x, L: f(x, L.float64), {d: "float64" for d in DTYPES}, X),
    Op("type", lambda f, x, L: f(x, L.float64), {d: "float64" for d in DTYPES}, X),
    Op("type_as", lambda f, x, L: f(x, L.zeros(1, dtype=L.int32)),
       {d: "int32" for d in DTYPES}, X),
    # ------------------------------------------------------------------ in place
    Op("add_", lambda f, x, L: f(x.clone(), 1), {**SAME, "bool": ERR}, grid(2, 1)),
    Op("sub_", lambda f, x, L: f(x.clone(), other(x, L)), NUMERIC, [[1, -1, 0], [-1, 1, 0]]),
    Op("mul_", lambda f, x, L: f(x.clone(), x), SAME, X),
    Op("div_", lambda f, x, L: f(x.clone(), 2), FLOATING, grid(0.5, 0)),
    Op("clamp_", lambda f, x, L: f(x.clone(), 0, 0), NUMERIC, grid(0, 0)),
    Op("fill_", lambda f, x, L: f(x.clone(), 1), SAME, grid(1, 1)),
    Op("zero_", lambda f, x, L: f(x.clone()), SAME, grid(0, 0)),
    Op("copy_", lambda f, x, L: f(x.clone(), other(x, L)), SAME, [[0, 1, 1], [1, 0, 1]]),
    # ------------------------------------------------------------- nn functions
    Op("linear", lambda f, x, L: f(x, ones_weight(x, L, 2, 3)), FLOATING, [[2, 2], [2, 2]],
       layer=lambda x, L: with_ones(L.nn.Linear(3, 2, bias=False, dtype=float_dtype(x, L)))),
    Op("batch_norm", lambda f, x, L: f(x, stats(x, L, 0), stats(x, L, 1)), FLOATING,
       grid(BN, 0), layer=lambda x, L: L.nn.BatchNorm1d(3, dtype=float_dtype(x, L)).eval()),
    Op("batch_norm", lambda f, x, L: f(image(x), stats(x, L, 0, 1), stats(x, L, 1, 1)),
       FLOATING, [[grid(BN, 0)]],
       layer=lambda x, L: L.nn.BatchNorm2d(1, dtype=float_dtype(x, L)).eval(),
       feed=lambda m, x, L: m(image(x))),
    Op("layer_norm", lambda f, x, L: f(x, (3,)), FLOATING,
       [[LN[0], LN[1], LN[0]], [LN[1], LN[0], LN[0]]],
       layer=lambda x, L: L.nn.LayerNorm(3, dtype=float_dtype(x, L))),
    Op("conv2d", lambda f, x, L: f(image(x), ones_weight(x, L, 1, 1, 2, 2)), FLOATING,
       [[[[2, 3]]]], layer=lambda x, L: with_ones(
           L.nn.Conv2d(1, 1, 2, bias=False, dtype=float_dtype(x, L))),
       feed=lambda m, x, L: m(image(x))),
    Op("max_pool2d", lambda f, x, L: f(image(x), 2, 1), NUMERIC, [[[[1, 1]]]],
       layer=lambda x, L: L.nn.MaxPool2d(2, 1),
       feed=lambda m, x, L: m(image(x))),
    Op("avg_pool2d", lambda f, x, L: f(image(x), (1, 2), 1), {**FLOAT, "bool": ERR},  # DEVIATIONS
       [[[[0.5, 0.5], [0.5, 1]]]], layer=lambda x, L: L.nn.AvgPool2d((1, 2), 1),
       feed=lambda m, x, L: m(image(x))),
    Op("adaptive_avg_pool2d", lambda f, x, L: f(image(x), 1), FLOATING, [[[[2 / 3]]]],
       layer=lambda x, L: L.nn.AdaptiveAvgPool2d(1),
       feed=lambda m, x, L: m(image(x))),
    Op("dropout", lambda f, x, L: f(x, 1.0), SAME, grid(0, 0),    # x·0: any dtype
       layer=lambda x, L: L.nn.Dropout(1.0)),
    Op("dropout", lambda f, x, L: f(x, 0.5), FLOATING, None,      # random: dtypes only
       layer=lambda x, L: L.nn.Dropout(0.5)),
    Op("dropout", lambda f, x, L: f(x, 0.5, False), SAME, X,      # eval: the input
       layer=lambda x, L: L.nn.Dropout(0.5).eval()),
    Op("dropout2d", lambda f, x, L: f(image(x), 1.0), SAME, [[grid(0, 0)]],
       layer=lambda x, L: L.nn.Dropout2d(1.0),
       feed=lambda m, x, L: m(image(x))),
    Op("one_hot", lambda f, x, L: f(x), rule(bool=ERR, int64="int64", float16=ERR,
                                               float32=ERR, float64=ERR),
       [[[0, 1], [1, 0], [0, 1]], [[1, 0], [0, 1], [0, 1]]]),
    # -------------------------------------------------------------------- losses
    Op("cross_entropy", lambda f, x, L: f(x, labels(x, L)), FLOATING, math.log(2 * E + 1) - 1,
       layer=lambda x, L: L.nn.CrossEntropyLoss(),
       feed=lambda m, x, L: m(x, labels(x, L))),
    Op("nll_loss", lambda f, x, L: f(x, labels(x, L)), FLOATING, -1,
       layer=lambda x, L: L.nn.NLLLoss(),
       feed=lambda m, x, L: m(x, labels(x, L))),
    Op("mse_loss", lambda f, x, L: f(x, other(x, L)), FLOATING, 2 / 3,
       layer=lambda x, L: L.nn.MSELoss(),
       feed=lambda m, x, L: m(x, other(x, L))),
    Op("l1_loss", lambda f, x, L: f(x, other(x, L)), FLOATING, 2 / 3,
       layer=lambda x, L: L.nn.L1Loss(),
       feed=lambda m, x, L: m(x, other(x, L))),
    Op("binary_cross_entropy", lambda f, x, L: f(x, like(x, L, 0.5)), FLOATING, 50,
       layer=lambda x, L: L.nn.BCELoss(),
       feed=lambda m, x, L: m(x, like(x, L, 0.5))),
    Op("binary_cross_entropy_with_logits", lambda f, x, L: f(x, like(x, L, 0.5)), FLOATING,
       (4 * (0.5 + math.log1p(math.exp(-1))) + 2 * math.log(2)) / 6,
       layer=lambda x, L: L.nn.BCEWithLogitsLoss(),
       feed=lambda m, x, L: m(x, like(x, L, 0.5))),
]

# Other names of an op in the table: checked as the op itself.
ALIASES = {"clip": "clamp", "multiply": "mul", "divide": "div", "true_divide": "div",
           "subtract": "sub", "greater": "gt", "less": "lt", "not_equal": "ne",
           "reshape_as": "view_as", "concat": "cat", "concatenate": "cat"}

# Public names that are not ops on a tensor's values, each with the reason.
EXCLUDED = {
    **dict.fromkeys(["tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full",
                     "full_like", "zeros_like", "ones_like", "eye", "arange", "linspace",
                     "rand", "rand_like", "randn", "randn_like", "randint", "randperm",
                     "uniform", "new_full", "new_zeros", "new_ones"],
                    "creates a tensor from a shape or data: no input tensor to spell it on "
                    "(tests/test_tensor.py, test_pytorch_idioms.py)"),
    **dict.fromkeys(["bool", "float", "double", "half", "int", "long", "short", "uint8",
                     "int8", "int16", "int32", "int64", "float16", "float32", "float64",
                     "finfo", "iinfo", "get_default_dtype"],
                    "a dtype or dtype information (the Tensor methods of these names are "
                    "in the table)"),
    **dict.fromkeys(["device", "cuda", "backends", "accelerator", "cpu", "is_cuda"],
                    "devices: only the CPU exists (tests/test_tensor_api.py)"),
    **dict.fromkeys(["Tensor", "Function", "Size", "Generator", "CheckpointError",
                     "GradcheckError", "nn", "optim", "utils", "autograd", "func"],
                    "a class or a package"),
    **dict.fromkeys(["no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled",
                     "inference_mode", "gradcheck", "backward", "requires_grad",
                     "requires_grad_", "retain_grad", "retains_grad", "grad", "grad_fn",
                     "is_leaf", "from_op"], "autograd state (tests/test_tensor.py)"),
    **dict.fromkeys(["gradgradcheck", "register_hook"],
                    "derivatives of derivatives and hooks (tests/test_higher_order.py)"),
    **dict.fromkeys(["manual_seed", "initial_seed", "get_rng_state", "set_rng_state",
                     "uniform_", "normal_"], "random draws (tests/test_nn_init.py)"),
    **dict.fromkeys(["save", "load"], "checkpoints (tests/test_serialization.py)"),
    **dict.fromkeys(["is_tensor", "size", "dim", "ndim", "ndimension", "nelement", "shape",
                     "dtype", "data", "element_size", "itemsize", "nbytes",
                     "is_floating_point", "item", "tolist", "numpy"],
                    "reads the shape, dtype or values out: not an op"),
}
LAYERS_EXCLUDED = {"Module", "Parameter", "StateDictError", "IncompatibleKeys",
                   "RemovableHandle", "Sequential", "ModuleList", "Identity",
                   "functional", "init", "utils"}


# ------------------------------------------------------------------------ running
def spellings(op: Op, L: Any) -> Dict[str, Callable[[Any], Any]]:
    """Each spelling of `op` that library `L` (tinygrad_mnist or torch) has, as a
    function of the input tensor."""
    out: Dict[str, Callable[[Any], Any]] = {}
    name = op.name
    if op.call is not None:
        ours = L is tg                     # our public names are listed; torch's are not
        if hasattr(L.Tensor, name):
            out["method"] = lambda x: op.call(lambda t, *a, **k: getattr(t, name)(*a, **k), x, L)
        if callable(getattr(L, name, None)) and (name in tg.__all__ if ours else True) \
                and not isinstance(getattr(L, name), type):  # (not the dtypes tg.float, ...)
            out["tg"] = lambda x: op.call(getattr(L, name), x, L)
        if name in F.__all__ if ours else hasattr(L.nn.functional, name):
            out["F"] = lambda x: op.call(getattr(L.nn.functional, name), x, L)
    if op.layer is not None:
        out["nn"] = lambda x: op.feed(op.layer(x, L), x, L)
    for spelling, fn in op.spelled.items():
        out[spelling] = lambda x, fn=fn: fn(x, L)
    return out


def run(fn: Callable[[Any], Any], x: Any) -> Tuple[str, Any]:
    """(result dtype, values as float64 arrays), or (ERR, the exception)."""
    try:
        out = fn(x)
    except Exception as e:  # noqa: BLE001  (which exception: checked by the caller)
        return ERR, e
    if isinstance(out, bool):
        return "pybool", np.float64(out)
    if isinstance(out, int):
        return "pyint", np.float64(out)
    if isinstance(out, tuple):  # (values, indices), split, chunk: the first one's dtype
        parts = [run(lambda _, t=t: t, None) for t in out]
        return parts[0][0], [v for _, v in parts]
    data = out.detach().numpy() if hasattr(out, "detach") else out.numpy()
    return str(out.dtype).replace("torch.", ""), np.asarray(data, np.float64)


REFUSALS = (TypeError, ValueError, RuntimeError, ZeroDivisionError)
TOLERANCE = {"float16": 2e-3, "float32": 2e-6, "float64": 1e-12}  # relative, by result dtype


def assert_values(got: Any, expected: Any, dtype: str, where: str) -> None:
    if isinstance(got, list):
        assert len(got) == len(expected), where
        for g, e in zip(got, expected):
            assert_values(g, e, dtype, where)
        return
    rtol = TOLERANCE.get(dtype, 0.0)
    np.testing.assert_allclose(got, np.asarray(expected, np.float64), rtol=rtol,
                               atol=rtol * 1e-3, err_msg=where)


def ours(dtype: str) -> Any:
    return tg.tensor(X, dtype=getattr(tg, dtype))


ROWS = [(op, name) for op in OPS for name in spellings(op, tg)]


@pytest.mark.parametrize("op, spelling", ROWS, ids=[f"{o.name}-{s}" for o, s in ROWS])
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_spelling_gives_pytorchs_dtype_and_values(op, spelling, dtype):
    expected = op.dtypes[dtype]
    got_dtype, got = run(spellings(op, tg)[spelling], ours(dtype))
    assert got_dtype == expected, (
        f"{op.name} ({spelling}) of {dtype}: {got_dtype} ({got!r}), PyTorch gives {expected}")
    if expected == ERR:  # a refusal, in one line: not a crash that happens to raise
        assert isinstance(got, REFUSALS) and "\n" not in str(got), repr(got)
    elif op.values is not None:
        values = op.bool_values if dtype == "bool" and op.bool_values is not None else \
            op.values
        assert_values(got, values, got_dtype, f"{op.name} ({spelling}) of {dtype}")


def test_every_op_has_the_spellings_it_should():
    """A name of F that is also a Tensor method or tg function is spelled there too, and
    the four spellings of the drift that issue 27 found are all in the table."""
    names = {op.name: set(spellings(op, tg)) for op in OPS}
    assert names["sigmoid"] == {"method", "tg", "F", "nn"}
    assert names["tanh"] == {"method", "tg", "F", "nn"}
    assert names["relu"] == {"method", "tg", "F", "nn"}
    assert {"method", "tg", "F", "nn"} <= names["softmax"]


def public_names():
    tensor = {n for n in dir(tg.Tensor) if not n.startswith("_")}
    return set(tg.__all__) | tensor | set(F.__all__)


def test_every_public_name_is_in_the_table():
    covered = {op.name for op in OPS} | set(ALIASES) | set(EXCLUDED)
    missing = sorted(public_names() - covered)
    assert missing == [], f"public names neither in the table nor excluded: {missing}"
    spelled = {type(op.layer(ours("float32"), tg)) for op in OPS if op.layer}
    layers = sorted(n for n in nn.__all__ if n not in LAYERS_EXCLUDED
                    and getattr(nn, n) not in spelled)
    assert layers == [], f"nn layers missing from the table: {layers}"
    stale = sorted(set(EXCLUDED) - public_names())
    assert stale == [], f"excluded names that are not public (remove them): {stale}"


@pytest.mark.parametrize("alias, name", sorted(ALIASES.items()))
@pytest.mark.parametrize("dtype", DTYPES)
def test_aliases_are_the_same_op(alias, name, dtype):
    op = next(o for o in OPS if o.name == name)
    aliased = Op(alias, op.call, op.dtypes, op.values, op.bool_values)
    assert spellings(aliased, tg), f"{alias} is spelled nowhere"
    for spelling, fn in spellings(aliased, tg).items():
        assert run(fn, ours(dtype))[0] == op.dtypes[dtype], (alias, spelling)


# -------------------------------------------------------------- against PyTorch
B = [[-2, 0, 3], [1, -1, 2]]


@pytest.mark.parametrize("op", OPS, ids=[o.name for o in OPS])
def test_every_spelling_agrees_with_torch(op):
    torch = pytest.importorskip("torch")
    theirs = spellings(op, torch)
    assert theirs, f"{op.name}: PyTorch has none of its spellings"
    # Each spelling against PyTorch's own spelling of it; a spelling PyTorch lacks against
    # its functional form, else its method, ... (torch.batch_norm and torch.dropout are
    # internal functions with other signatures: compared only where we have them too).
    preferred = [theirs[s] for s in ("F", "method", "tg", "nn") if s in theirs]
    for data, dtypes in ((X, DTYPES), (B, DTYPES[1:])):
        for dtype in dtypes:
            if (op.name, dtype) in DEVIATIONS:
                continue
            for spelling, fn in spellings(op, tg).items():
                reference = theirs.get(spelling, (preferred or list(theirs.values()))[0])
                expected_dtype, expected = run(reference,
                                               torch.tensor(data, dtype=getattr(torch, dtype)))
                if dtype in ("float16", "float32") and expected_dtype == dtype:
                    # the values in float64: PyTorch's own float32 kernels are not all
                    # correctly rounded (its gelu(-2) is 4e-6 off; ours, 1e-7)
                    expected = run(reference, torch.tensor(data, dtype=torch.float64))[1]
                got_dtype, got = run(fn, tg.tensor(data, dtype=getattr(tg, dtype)))
                where = f"{op.name} ({spelling}) of {dtype} {data}"
                assert got_dtype == expected_dtype, (
                    f"{where}: {got_dtype} ({got!r}), PyTorch: {expected_dtype} ({expected!r})")
                if expected_dtype != ERR and op.values is not None:
                    assert_values(got, expected, got_dtype, where)


# Where this package differs from PyTorch on purpose (docs/pytorch.md).
DEVIATIONS = {
    ("avg_pool2d", "int64"): "the exact average in float32, where PyTorch truncates to int64",
}
