"""Everyday PyTorch idioms, run with `torch` bound to tinygrad_mnist.

Each row is PyTorch code (an expression, or statements ending in one) and the result
PyTorch documents for it, written as a literal. When PyTorch is installed every row
also runs under torch itself and must give the same literal (or, for a deliberate
difference listed in docs/pytorch.md, the literal given as `pytorch=`).
"""
import ast
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

import tinygrad_mnist as tg
import tinygrad_mnist.utils.data as tg_data

try:
    import torch
    import torch.utils.data as torch_data
except ImportError:  # PyTorch is never a dependency: its comparison is skipped
    torch = torch_data = None


class T(NamedTuple):
    """A tensor result: its values (as `tolist()` gives them) and dtype name."""
    values: Any
    dtype: str = "float32"


class Raises(NamedTuple):
    error: type


class Idiom(NamedTuple):
    code: str
    expected: Any
    pytorch: Any = None  # PyTorch's own result, where it deliberately differs


SAME = None
SETUP = """
a = torch.tensor([[1., 5., 2.], [4., 3., 6.]])
v = torch.tensor([3., -1., 2.])
i = torch.tensor([0, 2, 1])
b = torch.tensor([True, False, True])
ds = TensorDataset(torch.arange(10).float(), torch.arange(10))
"""
E, LOG2 = math.e, math.log(2)

IDIOMS = [
    # ---------------------------------------------------------------- dtypes
    Idiom("torch.tensor([0, 2]).dtype", "int64"),
    Idiom("torch.tensor([0.5, 1]).dtype", "float32"),
    Idiom("torch.tensor([True, False]).dtype", "bool"),
    Idiom("torch.tensor(3).item()", 3),
    Idiom("torch.tensor(2.5).item()", 2.5),
    Idiom("torch.tensor([[1, 2], [3, 4]]).shape", (2, 2)),
    Idiom("torch.tensor([1, 2], dtype=torch.float32)", T([1.0, 2.0])),
    Idiom("torch.tensor(np.array([1.0, 2.0])).dtype", "float64"),
    Idiom("torch.from_numpy(np.arange(3)).dtype", "int64"),
    Idiom("torch.as_tensor([1, 2]).dtype", "int64"),
    Idiom("torch.float32 == torch.float", True),
    Idiom("torch.long == torch.int64", True),
    Idiom("torch.double == torch.float64", True),
    Idiom("torch.get_default_dtype()", "float32"),
    Idiom("torch.tensor([1, 2]).float().dtype", "float32"),
    Idiom("a.double().dtype", "float64"),
    Idiom("torch.tensor([1.7, -1.7]).long()", T([1, -1], "int64")),
    Idiom("a.int().dtype", "int32"),
    Idiom("torch.tensor([0, 3]).bool()", T([False, True], "bool")),
    Idiom("a.to(torch.float64).dtype", "float64"),
    Idiom("i.to(torch.float32)", T([0.0, 2.0, 1.0])),
    Idiom("a.type_as(i).dtype", "int64"),
    Idiom("a.is_floating_point(), i.is_floating_point()", (True, False)),
    Idiom("torch.is_tensor(a)", True),
    Idiom("a.numpy().dtype", "float32"),
    Idiom("a.tolist()", [[1.0, 5.0, 2.0], [4.0, 3.0, 6.0]]),
    Idiom("float(torch.tensor(2.5)), int(torch.tensor(3))", (2.5, 3)),
    Idiom("f'{torch.tensor(0.5):.2f}'", "0.50"),
    # -------------------------------------------------------------- creation
    Idiom("torch.zeros(2, 3).shape", (2, 3)),
    Idiom("torch.zeros((2, 3)).dtype", "float32"),
    Idiom("torch.ones(2, dtype=torch.long)", T([1, 1], "int64")),
    Idiom("torch.zeros_like(a).shape", (2, 3)),
    Idiom("torch.ones_like(i)", T([1, 1, 1], "int64")),
    Idiom("torch.full((2,), 7.0)", T([7.0, 7.0])),
    Idiom("torch.full((2,), 7)", T([7, 7], "int64")),
    Idiom("torch.arange(5)", T([0, 1, 2, 3, 4], "int64")),
    Idiom("torch.arange(1, 4)", T([1, 2, 3], "int64")),
    Idiom("torch.arange(0, 1, 0.25)", T([0.0, 0.25, 0.5, 0.75])),
    Idiom("torch.linspace(0, 1, 5)", T([0.0, 0.25, 0.5, 0.75, 1.0])),
    Idiom("torch.eye(2)", T([[1.0, 0.0], [0.0, 1.0]])),
    Idiom("torch.empty(2, 3).shape", (2, 3)),
    Idiom("torch.rand(2, 3).shape, torch.rand(2, 3).dtype", ((2, 3), "float32")),
    Idiom("x = torch.rand(1000)\n((x >= 0) & (x < 1)).all().item()", True),
    Idiom("torch.randn(4, 5).dtype", "float32"),
    Idiom("torch.randn((), requires_grad=True).shape", ()),
    Idiom("torch.randint(0, 10, (5,)).dtype", "int64"),
    Idiom("torch.randint(10, (3,)).shape", (3,)),
    Idiom("((torch.randint(3, 5, (100,)) >= 3) & (torch.randint(3, 5, (100,)) < 5)).all().item()",
          True),
    Idiom("sorted(torch.randperm(5).tolist())", [0, 1, 2, 3, 4]),
    Idiom("torch.manual_seed(0)\nx = torch.rand(3)\ntorch.manual_seed(0)\n"
          "torch.equal(x, torch.rand(3))",
          True),
    Idiom("g = torch.Generator().manual_seed(42)\ntorch.rand(2, generator=g).shape", (2,)),
    # ------------------------------------------------------------ information
    Idiom("a.size()", (2, 3)),
    Idiom("a.size(1), a.size(-1), a.shape[0]", (3, 3, 2)),
    Idiom("a.size() == (2, 3)", True),
    Idiom("a.dim(), a.ndim, a.numel(), len(a)", (2, 2, 6, 2)),
    Idiom("a.element_size(), i.element_size(), a.nbytes", (4, 8, 24)),
    Idiom("str(a.device), a.device.type", ("cpu", "cpu")),
    Idiom("2 in i, 5 in i", (True, False)),
    Idiom("[row.tolist() for row in a]", [[1.0, 5.0, 2.0], [4.0, 3.0, 6.0]]),
    # ------------------------------------------------------------ comparison
    Idiom("a == 5", T([[False, True, False], [False, False, False]], "bool")),
    Idiom("a > 2", T([[False, True, False], [True, True, True]], "bool")),
    Idiom("v != -1", T([True, False, True], "bool")),
    Idiom("v <= 2", T([False, True, True], "bool")),
    Idiom("v >= 2", T([True, False, True], "bool")),
    Idiom("v < 0", T([False, True, False], "bool")),
    Idiom("a.eq(5).any().item()", True),
    Idiom("a.gt(3).sum().item()", 3),
    Idiom("a.lt(3), a.le(3)[0], a.ge(6)[1], a.ne(5)[0]",
          (T([[True, False, True], [False, False, False]], "bool"),
           T([True, False, True], "bool"), T([False, False, True], "bool"),
           T([True, False, True], "bool"))),
    Idiom("(a > 2).sum()", T(4, "int64")),
    Idiom("(a > 2).float().mean().item()", 4 / 6),
    Idiom("torch.tensor([1, 2]) == torch.tensor([1, 3])", T([True, False], "bool")),
    Idiom("a == None", False),
    Idiom("torch.equal(a, a.clone()), torch.equal(a, a + 1)", (True, False)),
    Idiom("torch.allclose(a, a + 1e-9)", True),
    Idiom("(a == a).all().item()", True),
    Idiom("(v > 0) & (v < 3)", T([False, False, True], "bool")),
    Idiom("~b", T([False, True, False], "bool")),
    Idiom("(b | ~b).all().item()", True),
    Idiom("pred = a.argmax(dim=1, keepdim=True)\ny = torch.tensor([1, 0])\n"
          "pred.eq(y.view_as(pred)).sum().item()", 1),
    Idiom("(a.argmax(1) == torch.tensor([1, 2])).float().mean()", T(1.0)),
    # ------------------------------------------------------------- reductions
    Idiom("a.sum()", T(21.0)),
    Idiom("a.sum(dim=1)", T([8.0, 13.0])),
    Idiom("a.sum(0)", T([5.0, 8.0, 8.0])),
    Idiom("a.sum(1, keepdim=True).shape", (2, 1)),
    Idiom("torch.sum(a), torch.sum(a, dim=0)", (T(21.0), T([5.0, 8.0, 8.0]))),
    Idiom("i.sum().dtype, b.sum()", ("int64", T(2, "int64"))),
    Idiom("a.mean()", T(3.5)),
    Idiom("a.mean(dim=0)", T([2.5, 4.0, 4.0])),
    Idiom("torch.mean(a, dim=1)", T([8 / 3, 13 / 3])),
    Idiom("a.max()", T(6.0)),
    Idiom("a.max(dim=1).values", T([5.0, 6.0])),
    Idiom("a.max(dim=1).indices", T([1, 2], "int64")),
    Idiom("values, indices = a.max(1)\nindices", T([1, 2], "int64")),
    Idiom("a.max(1, keepdim=True)[1]", T([[1], [2]], "int64")),
    Idiom("a.min(dim=0)", (T([1.0, 3.0, 2.0]), T([0, 1, 0], "int64"))),
    Idiom("a.min()", T(1.0)),
    Idiom("torch.max(a, 1)[0]", T([5.0, 6.0])),
    Idiom("torch.max(a, torch.full_like(a, 3.0))", T([[3.0, 5.0, 3.0], [4.0, 3.0, 6.0]])),
    Idiom("torch.maximum(v, torch.zeros(3))", T([3.0, 0.0, 2.0])),
    Idiom("a.argmax()", T(5, "int64")),
    Idiom("a.argmax(dim=1)", T([1, 2], "int64")),
    Idiom("a.argmax(1, keepdim=True)", T([[1], [2]], "int64")),
    Idiom("a.argmin(dim=0)", T([0, 1, 0], "int64")),
    Idiom("torch.argmax(a, dim=1)", T([1, 2], "int64")),
    Idiom("a.amax(dim=0)", T([4.0, 5.0, 6.0])),
    Idiom("a.std()", T(math.sqrt(3.5))),
    Idiom("a.std(dim=1)", T([math.sqrt(13 / 3), math.sqrt(7 / 3)])),
    Idiom("a.var(unbiased=False)", T(35 / 12)),
    Idiom("a.var(dim=0, correction=0)", T([2.25, 1.0, 4.0])),
    Idiom("a.norm()", T(math.sqrt(91))),
    Idiom("(a > 0).all(), (a > 5).any(), (a > 5).any(dim=1)",
          (T(True, "bool"), T(True, "bool"), T([False, True], "bool"))),
    # ------------------------------------------------------------ elementwise
    Idiom("v.abs()", T([3.0, 1.0, 2.0])),
    Idiom("torch.abs(v), abs(v)", (T([3.0, 1.0, 2.0]), T([3.0, 1.0, 2.0]))),
    Idiom("torch.exp(torch.tensor([0.0, 1.0]))", T([1.0, E])),
    Idiom("torch.log(torch.tensor([1.0, math.e]))", T([0.0, 1.0])),
    Idiom("torch.sqrt(torch.tensor([4.0, 9.0]))", T([2.0, 3.0])),
    Idiom("torch.sin(torch.tensor([0.0, math.pi / 2]))", T([0.0, 1.0])),
    Idiom("torch.cos(torch.tensor([0.0]))", T([1.0])),
    Idiom("torch.exp(torch.tensor([0, 1])).dtype", "float32"),
    Idiom("v.pow(2), v ** 2", (T([9.0, 1.0, 4.0]), T([9.0, 1.0, 4.0]))),
    Idiom("torch.pow(v, 3)", T([27.0, -1.0, 8.0])),
    Idiom("2 ** torch.tensor([1.0, 2.0])", T([2.0, 4.0])),
    Idiom("torch.tensor([2.0, 3.0]).unsqueeze(-1).pow(torch.tensor([1, 2]))",
          T([[2.0, 4.0], [3.0, 9.0]])),
    Idiom("v.clamp(min=0)", T([3.0, 0.0, 2.0])),
    Idiom("v.clamp(-1, 1)", T([1.0, -1.0, 1.0])),
    Idiom("torch.clamp(v, max=2)", T([2.0, -1.0, 2.0])),
    Idiom("v.sign()", T([1.0, -1.0, 1.0])),
    Idiom("torch.tensor([1.4, 2.6]).round()", T([1.0, 3.0])),
    Idiom("v.relu(), torch.relu(v)", (T([3.0, 0.0, 2.0]), T([3.0, 0.0, 2.0]))),
    Idiom("torch.sigmoid(torch.tensor([0.0])), torch.tanh(torch.tensor([0.0]))",
          (T([0.5]), T([0.0]))),
    Idiom("v.neg(), -v", (T([-3.0, 1.0, -2.0]), T([-3.0, 1.0, -2.0]))),
    Idiom("v.add(1), v.add(v, alpha=2)", (T([4.0, 0.0, 3.0]), T([9.0, -3.0, 6.0]))),
    Idiom("v.sub(1), v.mul(2), v.div(2)",
          (T([2.0, -2.0, 1.0]), T([6.0, -2.0, 4.0]), T([1.5, -0.5, 1.0]))),
    Idiom("torch.tensor([1, 2, 3]) * 0.5", T([0.5, 1.0, 1.5])),
    Idiom("torch.tensor([1, 2, 3]) / 2", T([0.5, 1.0, 1.5])),
    Idiom("torch.tensor([1, 2, 3]) // 2", T([0, 1, 1], "int64")),
    Idiom("torch.tensor([5, 7]) % 3", T([2, 1], "int64")),
    Idiom("torch.tensor([1, 2, 3]) + 1", T([2, 3, 4], "int64")),
    Idiom("torch.tensor([True, False]) + 1", T([2, 1], "int64")),
    Idiom("(torch.tensor([1, 2]) + torch.tensor([0.5, 0.5])).dtype", "float32"),
    Idiom("torch.tensor([0, 255], dtype=torch.uint8) / 255.0", T([0.0, 1.0])),
    Idiom("a @ torch.ones(3)", T([8.0, 13.0])),
    Idiom("torch.matmul(a, a.t()).shape, torch.mm(a, a.T).shape", ((2, 2), (2, 2))),
    Idiom("(torch.ones(2, 3) @ torch.ones(3, 4)).shape", (2, 4)),
    Idiom("torch.softmax(torch.tensor([1.0, 1.0]), dim=0)", T([0.5, 0.5])),
    Idiom("F.softmax(torch.zeros(2, 2), dim=1)", T([[0.5, 0.5], [0.5, 0.5]])),
    Idiom("F.log_softmax(torch.zeros(1, 2), dim=1)", T([[-LOG2, -LOG2]])),
    Idiom("torch.log_softmax(torch.zeros(2), dim=0)", T([-LOG2, -LOG2])),
    # ------------------------------------------------------------------ shape
    Idiom("a.view(-1).shape, a.view(3, 2).shape, a.view(-1, 6).shape", ((6,), (3, 2), (1, 6))),
    Idiom("a.reshape(3, -1).shape", (3, 2)),
    Idiom("a.flatten()", T([1.0, 5.0, 2.0, 4.0, 3.0, 6.0])),
    Idiom("torch.flatten(torch.zeros(2, 3, 4), 1).shape", (2, 12)),
    Idiom("torch.zeros(2, 3, 4).flatten(0, 1).shape", (6, 4)),
    Idiom("a.unsqueeze(0).shape, a.unsqueeze(-1).shape", ((1, 2, 3), (2, 3, 1))),
    Idiom("torch.unsqueeze(v, 1).shape", (3, 1)),
    Idiom("torch.zeros(1, 3, 1).squeeze().shape", (3,)),
    Idiom("torch.zeros(1, 3, 1).squeeze(0).shape", (3, 1)),
    Idiom("torch.zeros(2, 3).squeeze(0).shape", (2, 3)),
    Idiom("a.t().shape, a.T.shape, a.transpose(0, 1).shape", ((3, 2), (3, 2), (3, 2))),
    Idiom("torch.zeros(2, 3, 4).permute(2, 0, 1).shape", (4, 2, 3)),
    Idiom("a.view_as(torch.zeros(3, 2)).shape", (3, 2)),
    Idiom("torch.tensor([[1], [2]]).expand(2, 3)", T([[1, 1, 1], [2, 2, 2]], "int64")),
    Idiom("torch.tensor([1, 2]).expand(2, -1)", T([[1, 2], [1, 2]], "int64")),
    Idiom("a.contiguous().shape", (2, 3)),
    Idiom("torch.cat([a, a]).shape, torch.cat([a, a], dim=1).shape", ((4, 3), (2, 6))),
    Idiom("torch.stack([v, v]).shape, torch.stack([v, v], dim=1).shape", ((2, 3), (3, 2))),
    Idiom("a[0], a[:, 1], a[1, 2]", (T([1.0, 5.0, 2.0]), T([5.0, 3.0]), T(6.0))),
    Idiom("a[a > 4]", T([5.0, 6.0])),
    Idiom("a[torch.tensor([1, 0])][0]", T([4.0, 3.0, 6.0])),
    Idiom("a.gather(1, torch.tensor([[0], [2]]))", T([[1.0], [6.0]])),
    # ------------------------------------------------------------- in place
    Idiom("x = torch.zeros(3)\nx += 1\nx", T([1.0, 1.0, 1.0])),
    Idiom("x = torch.ones(3)\ny = x\ny += 1\nx", T([2.0, 2.0, 2.0])),
    Idiom("x = torch.ones(2)\nx.add_(2)\nx.mul_(3)\nx.sub_(1)\nx.div_(2)", T([4.0, 4.0])),
    Idiom("x = torch.ones(2)\nx *= 3\nx /= 2\nx -= 1\nx", T([0.5, 0.5])),
    Idiom("x = torch.ones(2)\nx.zero_()", T([0.0, 0.0])),
    Idiom("x = torch.ones(2)\nx.fill_(5)\nx", T([5.0, 5.0])),
    Idiom("x = torch.zeros(2)\nx.copy_(torch.tensor([1.0, 2.0]))\nx", T([1.0, 2.0])),
    Idiom("x = torch.tensor([-2.0, 0.5, 3.0])\nx.clamp_(-1, 1)", T([-1.0, 0.5, 1.0])),
    Idiom("x = torch.zeros(3)\nx[0] = 5\nx", T([5.0, 0.0, 0.0])),
    Idiom("x = torch.tensor([-1.0, 2.0])\nx[x < 0] = 0\nx", T([0.0, 2.0])),
    Idiom("w = torch.ones(2, requires_grad=True)\nwith torch.no_grad():\n    w.add_(1)\n"
          "    w.mul_(2)\n    w.copy_(w * 3)\nw.tolist()", [12.0, 12.0]),
    Idiom("x = torch.tensor([1, 2])\nx += 1.5", Raises(RuntimeError)),
    Idiom("w = torch.ones(3, requires_grad=True)\nw += 1", Raises(RuntimeError)),
    Idiom("w = torch.ones(3, requires_grad=True)\nw.zero_()", Raises(RuntimeError)),
    Idiom("w = torch.ones(2, requires_grad=True)\nwith torch.no_grad():\n    w -= 0.5\n"
          "w.requires_grad, w.tolist()", (True, [0.5, 0.5])),
    # -------------------------------------------------------------- autograd
    Idiom("x = torch.tensor(2.0, requires_grad=True)\n(x ** 3).backward()\nx.grad", T(12.0)),
    Idiom("x = torch.tensor([1.0, 2.0], requires_grad=True)\n(x * x).sum().backward()\n"
          "torch.is_tensor(x.grad), x.grad is x.grad", (True, True)),
    Idiom("x = torch.tensor([1.0, 2.0], requires_grad=True)\n(x * x).sum().backward()\n"
          "x.grad.zero_()\nx.grad", T([0.0, 0.0])),
    Idiom("x = torch.tensor([1.0, 2.0], requires_grad=True)\n(x * x).sum().backward()\n"
          "(x * x).sum().backward()\nx.grad", T([4.0, 8.0])),
    Idiom("x = torch.tensor([1.0, 2.0], requires_grad=True)\n(3 * x).sum().backward()\n"
          "with torch.no_grad():\n    x -= 0.1 * x.grad\nx", T([0.7, 1.7])),
    Idiom("x = torch.ones(2, requires_grad=True)\ny = x * 2\n"
          "y.requires_grad, y.is_leaf, x.is_leaf", (True, False, True)),
    Idiom("x = torch.ones(2, requires_grad=True)\n(x * 2).grad_fn is not None, x.grad_fn is None",
          (True, True)),
    Idiom("x = torch.ones(2, requires_grad=True)\n"
          "x.detach().requires_grad, x.clone().requires_grad",
          (False, True)),
    Idiom("x = torch.ones(2, requires_grad=True)\nwith torch.no_grad():\n    y = x * 2\n"
          "y.requires_grad", False),
    Idiom("x = torch.ones(2, requires_grad=True)\nf = torch.no_grad()(lambda t: t * 2)\n"
          "f(x).requires_grad, torch.is_grad_enabled()", (False, True)),
    Idiom("x = torch.ones(2, requires_grad=True)\nwith torch.set_grad_enabled(False):\n"
          "    y = x * 2\ny.requires_grad, torch.is_grad_enabled()", (False, True)),
    Idiom("x = torch.zeros(2)\nx.requires_grad_() is x, x.requires_grad", (True, True)),
    Idiom("@torch.no_grad()\ndef f(t):\n    return t * 2\n"
          "f(torch.ones(1, requires_grad=True)).requires_grad", False),
    Idiom("@torch.no_grad\ndef f(t):\n    return t * 2\n"
          "f(torch.ones(1, requires_grad=True)).requires_grad", False),
    Idiom("with torch.inference_mode():\n    y = torch.ones(1, requires_grad=True) * 2\n"
          "y.requires_grad", False),
    Idiom("x = torch.ones(2, requires_grad=True)\n(x * 2).backward()", Raises(RuntimeError)),
    Idiom("x = torch.ones(2, requires_grad=True)\nloss = (x * x).sum()\nloss.backward()\n"
          "loss.backward()", Raises(RuntimeError)),
    Idiom("x = torch.ones(2, requires_grad=True)\nloss = (x * x).sum()\n"
          "loss.backward(retain_graph=True)\nloss.backward()\nx.grad", T([4.0, 4.0])),
    Idiom("x = torch.tensor([1.0, -1.0], requires_grad=True)\nx.abs().sum().backward()\nx.grad",
          T([1.0, -1.0])),
    Idiom("x = torch.tensor([[1.0, 3.0], [4.0, 2.0]], requires_grad=True)\n"
          "x.max(dim=1).values.sum().backward()\nx.grad", T([[0.0, 1.0], [1.0, 0.0]])),
    Idiom("x = torch.tensor([0.0, 1.0], requires_grad=True)\nx.sin().sum().backward()\nx.grad",
          T([1.0, math.cos(1.0)])),
    Idiom("x = torch.tensor([1.0, 2.0], requires_grad=True)\n"
          "x.unsqueeze(0).expand(3, 2).sum().backward()\nx.grad", T([3.0, 3.0])),
    Idiom("x = torch.tensor([1.0, 2.0], requires_grad=True)\n"
          "x.double().sum().backward()\nx.grad.dtype", "float32"),
    Idiom("x = torch.ones(2, requires_grad=True)\ny = x * 2\ny += 1\n(y * y).sum().backward()\n"
          "x.grad", Raises(RuntimeError), pytorch=T([12.0, 12.0])),
    Idiom("isinstance(torch.ones(2).data, np.ndarray)", True, pytorch=False),
    Idiom("nn.Linear(3, 2)(np.ones((4, 3), np.float32)).shape", (4, 2),
          pytorch=Raises(TypeError)),
    # --------------------------------------------------------------------- nn
    Idiom("nn.Linear(3, 2).weight.shape", (2, 3)),
    Idiom("nn.Linear(3, 2)(torch.ones(4, 3)).shape", (4, 2)),
    Idiom("len(list(nn.Linear(3, 2).parameters()))", 2),
    Idiom("[n for n, _ in nn.Linear(3, 2).named_parameters()]", ["weight", "bias"]),
    Idiom("type(nn.Sequential(nn.Linear(2, 2), nn.ReLU())[0]).__name__", "Linear"),
    Idiom("nn.Identity()(v)", T([3.0, -1.0, 2.0])),
    Idiom("nn.Softmax(dim=1)(torch.zeros(1, 4))", T([[0.25, 0.25, 0.25, 0.25]])),
    Idiom("nn.LogSoftmax(dim=1)(torch.zeros(1, 2))", T([[-LOG2, -LOG2]])),
    Idiom("nn.ReLU(inplace=True)(torch.tensor([3.0, -1.0]))", T([3.0, 0.0])),
    Idiom("nn.Dropout(0.5).eval()(v)", T([3.0, -1.0, 2.0])),
    Idiom("nn.Dropout(1.0)(torch.ones(3))", T([0.0, 0.0, 0.0])),
    Idiom("nn.Dropout2d(0.5).eval()(torch.ones(1, 2, 2, 2)).sum()", T(8.0)),
    Idiom("y = nn.Dropout2d(0.5)(torch.ones(4, 8, 3, 3))\n"
          "((y == 0).all(dim=(2, 3)) | (y == 2).all(dim=(2, 3))).all().item()", True),
    Idiom("nn.Flatten()(torch.zeros(2, 3, 4)).shape", (2, 12)),
    Idiom("nn.Conv2d(1, 4, 3)(torch.zeros(2, 1, 8, 8)).shape", (2, 4, 6, 6)),
    Idiom("nn.Conv2d(1, 4, 3, padding=1)(torch.zeros(2, 1, 8, 8)).shape", (2, 4, 8, 8)),
    Idiom("nn.Conv2d(1, 4, 3, 2)(torch.zeros(1, 1, 9, 9)).shape", (1, 4, 4, 4)),
    Idiom("nn.Conv2d(1, 4, (3, 5), padding='same')(torch.zeros(1, 1, 7, 6)).shape",
          (1, 4, 7, 6)),
    Idiom("nn.Conv2d(1, 4, 3, 1, 'valid', 1, 1, False).bias", None),
    Idiom("nn.Linear(4, 2, True, 'cpu', torch.float64).weight.dtype", "float64"),
    Idiom("nn.BatchNorm1d(3, 1e-5, 0.1, True, True, 'cpu').num_features", 3),
    Idiom("F.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3), padding='same')",
          T([[[[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]]])),
    Idiom("nn.MaxPool2d(2)(torch.zeros(1, 1, 4, 4)).shape", (1, 1, 2, 2)),
    Idiom("F.max_pool2d(torch.arange(16.0).view(1, 1, 4, 4), 2)",
          T([[[[5.0, 7.0], [13.0, 15.0]]]])),
    Idiom("F.avg_pool2d(torch.arange(16.0).view(1, 1, 4, 4), 2)",
          T([[[[2.5, 4.5], [10.5, 12.5]]]])),
    Idiom("F.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 2, 2))",
          T([[[[4.0, 4.0], [4.0, 4.0]]]])),
    Idiom("F.relu(torch.tensor([-1.0, 1.0]))", T([0.0, 1.0])),
    Idiom("F.nll_loss(torch.log(torch.tensor([[0.5, 0.5]])), torch.tensor([0]))", T(LOG2)),
    Idiom("F.nll_loss(torch.zeros(2, 3), torch.tensor([0, 1]), reduction='sum')", T(0.0)),
    Idiom("F.cross_entropy(torch.zeros(2, 4), torch.tensor([0, 3]))", T(math.log(4))),
    Idiom("nn.CrossEntropyLoss()(torch.zeros(1, 2), torch.tensor([1]))", T(LOG2)),
    Idiom("F.mse_loss(torch.ones(2), torch.zeros(2))", T(1.0)),
    Idiom("F.l1_loss(torch.tensor([1.0, -3.0]), torch.zeros(2))", T(2.0)),
    Idiom("F.binary_cross_entropy(torch.tensor([0.5]), torch.tensor([1.0]))", T(LOG2)),
    Idiom("F.binary_cross_entropy_with_logits(torch.zeros(2), torch.tensor([0.0, 1.0]))",
          T(LOG2)),
    Idiom("nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0]), reduction='sum')"
          "(torch.zeros(1), torch.ones(1))", T(3 * LOG2)),
    Idiom("F.cross_entropy(torch.zeros(2, 2), torch.tensor([0, -100]))", T(LOG2)),
    Idiom("F.cross_entropy(torch.zeros(2, 2), torch.tensor([0, 1]), torch.tensor([1.0, 3.0]), "
          "reduction='sum')", T(4 * LOG2)),
    Idiom("torch.logsumexp(torch.zeros(2, 4), 1)", T([math.log(4)] * 2)),
    Idiom("torch.tensor([[0.1, 0.5, 0.4]]).topk(2, 1, True, True).indices",
          T([[1, 2]], "int64")),
    Idiom("torch.sort(torch.tensor([3.0, 1.0, 2.0]), descending=True).values",
          T([3.0, 2.0, 1.0])),
    Idiom("torch.tensor([2, 2, 1]).sort().indices", T([2, 0, 1], "int64")),
    Idiom("torch.where(torch.tensor([True, False]), torch.tensor([1.0, 2.0]), 0.0)",
          T([1.0, 0.0])),
    Idiom("torch.where(torch.tensor([True, False]), 5.0, torch.tensor([1.0, 2.0]))",
          T([5.0, 2.0])),
    Idiom("torch.tensor([1.0, 2.0]).masked_fill(torch.tensor([True, False]), -1.0)",
          T([-1.0, 2.0])),
    Idiom("torch.maximum(torch.tensor([-float('inf'), 1.0]), torch.tensor([1.0, -float('inf')]))",
          T([1.0, 1.0])),
    Idiom("torch.zeros(3).logsumexp(0, keepdim=True)", T([math.log(3)])),
    Idiom("nn.MSELoss(reduction='sum')(torch.ones(2), torch.zeros(2))", T(2.0)),
    Idiom("F.one_hot(torch.tensor([0, 2]), 3)", T([[1, 0, 0], [0, 0, 1]], "int64")),
    Idiom("F.dropout(v, training=False)", T([3.0, -1.0, 2.0])),
    Idiom("m = nn.Dropout()\nm.eval()\nm.training", False),
    Idiom("len(list(nn.Sequential(nn.Linear(2, 2), nn.ReLU()).children()))", 2),
    Idiom("[n for n, _ in nn.Sequential(nn.Linear(2, 2)).named_modules()]", ["", "0"]),
    Idiom("seen = []\nnn.Sequential(nn.Linear(2, 2), nn.ReLU()).apply(seen.append)\nlen(seen)",
          3),
    Idiom("m = nn.Linear(2, 1)\nm(torch.ones(1, 2)).sum().backward()\nm.zero_grad()\n"
          "m.weight.grad is None", True),
    Idiom("m = nn.Linear(2, 1)\nm(torch.ones(1, 2)).sum().backward()\n"
          "m.zero_grad(set_to_none=False)\nm.weight.grad", T([[0.0, 0.0]])),
    Idiom("m = nn.Linear(2, 1)\nm.to('cpu') is m, m.to(torch.device('cpu')) is m", (True, True)),
    Idiom("m = nn.Linear(2, 1)\nm.double()\nm.weight.dtype", "float64"),
    Idiom("len(list(nn.Sequential(nn.Linear(2, 2)).parameters(recurse=False)))", 0),
    Idiom("nn.Parameter(torch.ones(2)).requires_grad", True),
    Idiom("isinstance(nn.Parameter(torch.ones(2)), torch.Tensor)", True),
    Idiom("list(nn.Linear(2, 2).state_dict())", ["weight", "bias"]),
    Idiom("m1, m2 = nn.Linear(2, 2), nn.Linear(2, 2)\nm2.load_state_dict(m1.state_dict())\n"
          "torch.equal(m1.weight, m2.weight)", True),
    Idiom("nn.init.constant_(torch.empty(2), 3.0)", T([3.0, 3.0])),
    Idiom("nn.init.zeros_(torch.empty(2)), nn.init.ones_(torch.empty(2))",
          (T([0.0, 0.0]), T([1.0, 1.0]))),
    Idiom("nn.init.eye_(torch.empty(2, 2))", T([[1.0, 0.0], [0.0, 1.0]])),
    Idiom("nn.init.xavier_uniform_(torch.empty(3, 4)).shape", (3, 4)),
    Idiom("nn.init.kaiming_normal_(torch.empty(3, 4), nonlinearity='relu').shape", (3, 4)),
    Idiom("(nn.init.trunc_normal_(torch.empty(1000), std=1.0, a=-2.0, b=2.0).abs() <= 2)"
          ".all().item()", True),
    Idiom("w = nn.init.orthogonal_(torch.empty(3, 3))\n"
          "torch.allclose(w @ w.t(), torch.eye(3), atol=1e-5)", True),
    Idiom("round(nn.init.calculate_gain('relu'), 4)", 1.4142),
    Idiom("m = nn.Linear(2, 1)\nm(torch.ones(1, 2)).sum().backward()\n"
          "float(nn.utils.clip_grad_norm_(m.parameters(), 1.0)) > 1", True),
    # ------------------------------------------------------------------ optim
    Idiom("w = nn.Parameter(torch.tensor([1.0]))\nopt = torch.optim.SGD([w], lr=0.1)\n"
          "(w * 2).sum().backward()\nopt.step()\nw.item()", 0.8),
    Idiom("w = nn.Parameter(torch.tensor([1.0]))\nopt = torch.optim.SGD([w], lr=0.1)\n"
          "(w * 2).sum().backward()\nopt.zero_grad()\nw.grad is None", True),
    Idiom("w = nn.Parameter(torch.tensor([1.0]))\nopt = torch.optim.Adam([w], lr=0.1)\n"
          "(w * 2).sum().backward()\nopt.step()\nw.item()", 0.9),
    Idiom("w = nn.Parameter(torch.tensor([1.0]))\nopt = torch.optim.Adadelta([w])\n"
          "(w * 2).sum().backward()\nopt.step()\nw.item()",
          1 - math.sqrt(1e-6) / math.sqrt(0.4 + 1e-6) * 2),
    Idiom("opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.5)\n"
          "opt.param_groups[0]['lr']", 0.5),
    Idiom("opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)\n"
          "s = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)\n"
          "opt.step()\ns.step()\nopt.step()\ns.step()\ns.get_last_lr()", [0.25]),
    Idiom("opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)\n"
          "s = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)\nopt.step()\ns.step()\n"
          "s.get_last_lr()", [0.9]),
    Idiom("opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)\n"
          "s = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.5 ** e)\nopt.step()\ns.step()\n"
          "opt.step()\ns.step()\ns.get_last_lr()", [0.25]),
    Idiom("opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)\n"
          "s = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 2], gamma=0.1)\n"
          "opt.step()\ns.step()\nopt.step()\ns.step()\ns.get_last_lr()", [0.01]),
    Idiom("opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)\n"
          "s = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2)\nopt.step()\ns.step()\n"
          "s.get_last_lr()", [0.5]),
    Idiom("opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)\n"
          "s = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)\ns.step(1.0)\n"
          "s.step(1.0)\nopt.param_groups[0]['lr']", 0.1),
    Idiom("opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0, momentum=0.9)\n"
          "s = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)\n"
          "s.get_last_lr()", [0.04]),
    Idiom("opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)\n"
          "s = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)\n"
          "opt.step()\ns.step()\ns.get_last_lr()", [0.75]),
    # ------------------------------------------------------------------- data
    Idiom("len(ds), ds[3]", (10, (T(3.0), T(3, "int64")))),
    Idiom("len(DataLoader(ds, batch_size=4))", 3),
    Idiom("[len(x) for x, y in DataLoader(ds, batch_size=4)]", [4, 4, 2]),
    Idiom("[len(x) for x, y in DataLoader(ds, batch_size=4, drop_last=True)]", [4, 4]),
    Idiom("next(iter(DataLoader(ds, batch_size=3)))[1]", T([0, 1, 2], "int64")),
    Idiom("sorted(torch.cat([y for _, y in DataLoader(ds, batch_size=3, shuffle=True)]).tolist())",
          list(range(10))),
    Idiom("next(iter(DataLoader([(1, 2.0), (3, 4.0)], batch_size=2)))",
          [T([1, 3], "int64"), T([2.0, 4.0], "float64")]),
    Idiom("next(iter(DataLoader([{'x': 1}, {'x': 2}], batch_size=2)))['x']", T([1, 2], "int64")),
    Idiom("next(iter(DataLoader([np.zeros(2), np.ones(2)], batch_size=2)))",
          T([[0.0, 0.0], [1.0, 1.0]], "float64")),
    Idiom("[len(s) for s in random_split(range(10), [7, 3])]", [7, 3]),
    Idiom("[len(s) for s in random_split(range(10), [0.5, 0.5])]", [5, 5]),
    Idiom("Subset(ds, [1, 2])[1]", (T(2.0), T(2, "int64"))),
    Idiom("next(iter(DataLoader(ds, batch_size=None)))", [T(0.0), T(0, "int64")]),
    Idiom("len(DataLoader(ds, batch_size=5, num_workers=0, pin_memory=True))", 2),
    Idiom("g = torch.Generator().manual_seed(0)\n"
          "sorted(sum((s.indices for s in random_split(range(6), [3, 3], generator=g)), []))",
          [0, 1, 2, 3, 4, 5]),
    # ---------------------------------------------------- devices, save/load
    Idiom("torch.device('cpu').type, str(torch.device('cpu'))", ("cpu", "cpu")),
    Idiom("torch.ones(2).to(torch.device('cpu')).device.type", "cpu"),
    Idiom("x = torch.ones(2)\nx.to('cpu') is x, x.cpu() is x", (True, True)),
    Idiom("torch.cuda.is_available()", False),
    Idiom("torch.zeros(2, device='cpu').device.type", "cpu"),
    Idiom("torch.arange(3, device=torch.device('cpu'))", T([0, 1, 2], "int64")),
    Idiom("torch.ones(2, 2, device='cpu', dtype=torch.float64).dtype", "float64"),
    Idiom("torch.randn(3, device='cpu').shape, torch.full((2,), 1.5, device='cpu').sum().item()",
          ((3,), 3.0)),
    Idiom("torch.tensor([1.0, 2.0], device='cpu').tolist()", [1.0, 2.0]),
    Idiom("torch.save({'w': torch.ones(2)}, path)\ntorch.load(path, weights_only=True)['w']",
          T([1.0, 1.0])),
    Idiom("m = nn.Linear(2, 2)\ntorch.save(m.state_dict(), path)\nm2 = nn.Linear(2, 2)\n"
          "m2.load_state_dict(torch.load(path, map_location='cpu', weights_only=True))\n"
          "torch.equal(m.weight, m2.weight)", True),
]


def namespace(framework: Any, data: Any, tmp_path: Any) -> dict:
    ns = {"torch": framework, "nn": framework.nn, "F": framework.nn.functional, "np": np,
          "math": math, "path": str(tmp_path / "saved.pt")}
    for name in ("TensorDataset", "DataLoader", "Subset", "random_split"):
        ns[name] = getattr(data, name)
    exec(SETUP, ns)
    return ns


def run(code: str, ns: dict) -> Any:
    """Run the statements of `code`, then evaluate and return its last expression."""
    body = ast.parse(code).body
    *statements, last = body
    if not isinstance(last, ast.Expr):
        statements, last = body, None
    exec(compile(ast.Module(statements, []), "<idiom>", "exec"), ns)
    return None if last is None else eval(compile(ast.Expression(last.value), "<idiom>",
                                                  "eval"), ns)


def plain(x: Any) -> Any:
    """A result as literals: tensors as T(values, dtype name), dtypes and devices as
    names, shapes as tuples, named (values, indices) pairs as tuples."""
    if isinstance(x, tg.Tensor) or (torch is not None and isinstance(x, torch.Tensor)):
        return T(x.tolist(), dtype_name(x.dtype))
    if isinstance(x, np.dtype) or (torch is not None and isinstance(x, torch.dtype)):
        return dtype_name(x)
    if isinstance(x, tg.device) or (torch is not None and isinstance(x, torch.device)):
        return str(x)
    if hasattr(x, "values") and hasattr(x, "indices") and not isinstance(x, dict):
        return (plain(x.values), plain(x.indices))
    if isinstance(x, tuple):
        return tuple(plain(e) for e in x)
    if isinstance(x, list):
        return [plain(e) for e in x]
    if isinstance(x, (np.generic,)):
        return x.item()
    return x


def dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "") if not isinstance(dtype, np.dtype) else dtype.name


def same(got: Any, expected: Any) -> bool:
    if isinstance(expected, T):
        return (isinstance(got, T) and got.dtype == expected.dtype
                and np.shape(got.values) == np.shape(expected.values)
                and np.allclose(got.values, expected.values, rtol=1e-5, atol=1e-6))
    if isinstance(expected, (tuple, list)):
        return (type(got) is type(expected) and len(got) == len(expected)
                and all(same(g, e) for g, e in zip(got, expected)))
    if isinstance(expected, float):
        return isinstance(got, (int, float)) and math.isclose(got, expected, rel_tol=1e-5,
                                                              abs_tol=1e-6)
    return type(got) is type(expected) and got == expected


def check(code: str, expected: Any, ns: dict) -> None:
    if isinstance(expected, Raises):
        with pytest.raises(expected.error):
            run(code, ns)
        return
    got = plain(run(code, ns))
    assert same(got, expected), f"{code!r} gave {got!r}, expected {expected!r}"


IDS = [f"{k:03d}-" + idiom.code.split("\n")[-1][:40] for k, idiom in enumerate(IDIOMS)]


def test_there_are_at_least_150_idioms():
    assert len(IDIOMS) >= 150


@pytest.mark.parametrize("idiom", IDIOMS, ids=IDS)
def test_idiom_gives_pytorchs_result(idiom: Idiom, tmp_path):
    tg.manual_seed(0)
    check(idiom.code, idiom.expected, namespace(tg, tg_data, tmp_path))


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (optional comparison)")
@pytest.mark.parametrize("idiom", IDIOMS, ids=IDS)
def test_idiom_matches_torch_itself(idiom: Idiom, tmp_path):
    torch.manual_seed(0)
    expected = idiom.expected if idiom.pytorch is SAME else idiom.pytorch
    check(idiom.code, expected, namespace(torch, torch_data, tmp_path))


def test_every_row_where_pytorch_differs_is_in_the_docs():
    """docs/pytorch.md quotes the code of every row with a `pytorch=` result (its lines
    joined by "; ")."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "pytorch.md").read_text()
    differing = [idiom.code for idiom in IDIOMS if idiom.pytorch is not SAME]
    assert differing
    for code in differing:
        assert "; ".join(code.split("\n")) in doc, code
