"""The examples' computations against PyTorch itself (skipped without PyTorch, which
is never a dependency): the MNIST example's network gives the same outputs, loss and
gradients from the same weights, and the same weights after Adadelta steps under
StepLR; the polynomial fit's manual updates give the same coefficients; the losses'
class weights, ignored labels and label smoothing, the binary cross-entropies, cumsum,
prod, remainder, p-norms, the added activations, layer norm and adaptive pooling give
PyTorch's values and gradients."""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

import tinygrad_mnist as tg
import tinygrad_mnist.nn.functional as F

torch = pytest.importorskip("torch")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"port_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TorchNet(torch.nn.Module):
    """The network of examples/pytorch/mnist_cnn.py (which needs torchvision to import)."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 3, 1)
        self.conv2 = torch.nn.Conv2d(32, 64, 3, 1)
        self.fc1 = torch.nn.Linear(9216, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def forward(self, x):  # dropout off: eval mode on both sides
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        x = torch.flatten(torch.nn.functional.max_pool2d(x, 2), 1)
        x = self.fc2(torch.relu(self.fc1(x)))
        return torch.nn.functional.log_softmax(x, dim=1)


def test_the_mnist_network_matches_pytorch_through_training_steps():
    tg.manual_seed(0)
    ours = load("mnist_cnn").Net().double().eval()
    theirs = TorchNet().double().eval()
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.from_numpy(ours.state_dict()[name]))
    rng = np.random.default_rng(0)
    opt_ours = tg.optim.Adadelta(ours.parameters(), lr=1.0)
    opt_theirs = torch.optim.Adadelta(theirs.parameters(), lr=1.0)
    sched_ours = tg.optim.lr_scheduler.StepLR(opt_ours, step_size=1, gamma=0.7)
    sched_theirs = torch.optim.lr_scheduler.StepLR(opt_theirs, step_size=1, gamma=0.7)
    for step in range(3):
        x = rng.standard_normal((4, 1, 28, 28))
        y = rng.integers(0, 10, 4)
        out_ours = ours(tg.tensor(x))
        out_theirs = theirs(torch.from_numpy(x))
        np.testing.assert_allclose(out_ours.numpy(), out_theirs.detach().numpy(), rtol=1e-9,
                                   atol=1e-10)
        loss_ours = F.nll_loss(out_ours, tg.tensor(y))
        loss_theirs = torch.nn.functional.nll_loss(out_theirs, torch.from_numpy(y))
        assert math.isclose(loss_ours.item(), loss_theirs.item(), rel_tol=1e-10)
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
        loss_ours.backward()
        loss_theirs.backward()
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-7, atol=1e-12,
                                       err_msg=f"gradient of {name}, step {step}")
        opt_ours.step()
        opt_theirs.step()
        sched_ours.step()
        sched_theirs.step()
        assert sched_ours.get_last_lr() == pytest.approx(sched_theirs.get_last_lr())
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-7, atol=1e-10,
                                   err_msg=name)


def test_the_polynomial_fit_by_hand_matches_pytorch():
    x64 = np.linspace(-math.pi, math.pi, 200)
    start = [0.1, -0.3, 0.2, 0.05]
    results = []
    for framework in (tg, torch):
        x = framework.tensor(x64)
        y = framework.sin(x)
        a, b, c, d = (framework.tensor(v, dtype=framework.float64, requires_grad=True)
                      for v in start)
        for _ in range(300):
            loss = (a + b * x + c * x ** 2 + d * x ** 3 - y).pow(2).sum()
            loss.backward()
            with framework.no_grad():
                for coefficient in (a, b, c, d):
                    coefficient -= 1e-5 * coefficient.grad
                    coefficient.grad = None
        results.append([v.item() for v in (a, b, c, d)])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_weighted_ignored_and_smoothed_losses_match_pytorch(seed):
    rng = np.random.default_rng(seed)
    for _ in range(50):
        n, c = rng.integers(1, 6), rng.integers(2, 6)
        x = rng.standard_normal((n, c))
        labels = np.where(rng.random(n) < 0.3, -100, rng.integers(0, c, n))
        weight = rng.random(c) + 0.1 if rng.random() < 0.6 else None
        options = dict(reduction=str(rng.choice(["mean", "sum", "none"])),
                       label_smoothing=float(rng.choice([0.0, 0.1, 0.7])))
        probabilities = rng.random() < 0.25
        target = rng.dirichlet(np.ones(c), n) if probabilities else labels
        ours, theirs = tg.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        torch_weight = None if weight is None else torch.tensor(weight)
        a = F.cross_entropy(ours, target, weight, **options)
        b = torch.nn.functional.cross_entropy(theirs, torch.tensor(target), torch_weight,
                                              **options)
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-12)
        a.sum().backward()                               # all ignored: nan, zero gradient
        b.sum().backward()
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-9,
                                   atol=1e-12)
        if not probabilities:
            log_p = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
            reduction = options["reduction"]
            np.testing.assert_allclose(
                F.nll_loss(log_p, labels, weight, reduction=reduction).data,
                torch.nn.functional.nll_loss(torch.tensor(log_p), torch.tensor(labels),
                                             torch_weight, reduction=reduction).numpy(),
                rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_cross_entropies_match_pytorch(dtype):
    rng = np.random.default_rng(5)
    tol = 1e-7 if dtype == np.float64 else 2e-5
    for _ in range(100):
        shape = tuple(rng.integers(1, 5, rng.integers(1, 3)))
        x, t = rng.random(shape).astype(dtype), rng.random(shape).astype(dtype)
        x.flat[0] = rng.choice([0.0, 1.0, x.flat[0]])             # PyTorch's clamp at -100
        z = (rng.standard_normal(shape) * rng.choice([1, 30])).astype(dtype)
        z.flat[0] = rng.choice([0.0, z.flat[0]])
        weight = rng.random(shape[-1:]).astype(dtype) if rng.random() < 0.4 else None
        pos_weight = (3 * rng.random(shape[-1:])).astype(dtype) if rng.random() < 0.5 else None
        reduction = str(rng.choice(["mean", "sum", "none"]))
        cases = [(F.binary_cross_entropy, torch.nn.functional.binary_cross_entropy, x, {}),
                 (F.binary_cross_entropy_with_logits,
                  torch.nn.functional.binary_cross_entropy_with_logits, z,
                  {"pos_weight": pos_weight})]
        for ours_fn, theirs_fn, inputs, extra in cases:
            ours = tg.Tensor(inputs, requires_grad=True)
            theirs = torch.tensor(inputs, requires_grad=True)
            a = ours_fn(ours, t, weight, reduction=reduction, **extra)
            torch_weight = None if weight is None else torch.tensor(weight)
            b = theirs_fn(theirs, torch.tensor(t), torch_weight, reduction=reduction,
                          **{k: None if v is None else torch.tensor(v) for k, v in extra.items()})
            assert a.dtype == dtype
            np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=tol, atol=tol)
            a.sum().backward()
            b.sum().backward()
            np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("seed", range(3))
def test_cumsum_prod_remainder_and_p_norms_match_pytorch(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 4, 2))
    x[rng.random(x.shape) < 0.2] = 0.0                  # zeros: prod's and norm's edge
    y = rng.standard_normal((4, 1)) * 2 + 0.1
    cases = [(lambda m, a, b: a.cumsum(1)), (lambda m, a, b: a.cumsum(-1) * 2),
             (lambda m, a, b: a.prod(0)), (lambda m, a, b: a.prod(2, keepdim=True)),
             (lambda m, a, b: a.prod()), (lambda m, a, b: a % b),
             (lambda m, a, b: m.remainder(a, -0.7)), (lambda m, a, b: a.norm(3, dim=1)),
             (lambda m, a, b: a.norm(0.5)), (lambda m, a, b: a.norm(1.5, dim=(0, 2)))]
    for case in cases:
        ours = [tg.Tensor(v, requires_grad=True) for v in (x, y)]
        theirs = [torch.tensor(v, requires_grad=True) for v in (x, y)]
        a, b = case(tg, *ours), case(torch, *theirs)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)
        upstream = rng.standard_normal(b.shape)
        (a * tg.Tensor(upstream)).sum().backward()
        (b * torch.tensor(upstream)).sum().backward()
        for mine, torchs in zip(ours, theirs):
            expected = np.zeros_like(mine.numpy()) if torchs.grad is None else torchs.grad
            got = np.zeros_like(mine.numpy()) if mine.grad is None else mine.grad.numpy()
            np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-10, atol=1e-12)


def test_the_added_activations_norms_and_adaptive_pooling_match_pytorch():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 7, 9)) * 3
    x[0, 0, 0, :4] = [60.0, -60.0, 0.0, 1e-9]           # saturation, the kinks, tiny values
    affine = [rng.standard_normal((7, 9)) for _ in range(2)]
    cases = [lambda F, nn, t, w, b: F.gelu(t),
             lambda F, nn, t, w, b: nn.GELU(approximate="tanh")(t),
             lambda F, nn, t, w, b: nn.SiLU()(t),
             lambda F, nn, t, w, b: F.elu(t, 0.3),
             lambda F, nn, t, w, b: nn.Softplus()(t),
             lambda F, nn, t, w, b: F.softplus(-t.abs() * 20, 2.0, 5.0),
             lambda F, nn, t, w, b: F.layer_norm(t, (7, 9), w, b),
             lambda F, nn, t, w, b: F.layer_norm(t, [9], eps=1e-3),
             lambda F, nn, t, w, b: F.adaptive_avg_pool2d(t, (4, None)),
             lambda F, nn, t, w, b: F.adaptive_avg_pool2d(t[0], 5),
             lambda F, nn, t, w, b: nn.AdaptiveAvgPool2d(1)(t),
             lambda F, nn, t, w, b: (t / 10).erf() + (t.abs() * 1e-9).log1p()]
    for case in cases:
        mine = [tg.Tensor(v, requires_grad=True) for v in (x, *affine)]
        torchs = [torch.tensor(v, requires_grad=True) for v in (x, *affine)]
        a = case(F, tg.nn, *mine)
        b = case(torch.nn.functional, torch.nn, *torchs)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)
        upstream = rng.standard_normal(b.shape)
        (a * tg.Tensor(upstream)).sum().backward()
        (b * torch.tensor(upstream)).sum().backward()
        for m, t in zip(mine, torchs):
            expected = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
            got = np.zeros(t.shape) if m.grad is None else m.grad.numpy()
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_losses_of_scores_per_position_match_pytorch(seed):
    """cross_entropy and nll_loss of (N, C, d1, ..., dk) scores: labels (N, d1, ..., dk)
    or probabilities, with weights, ignored labels, smoothing and every reduction."""
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n, c = rng.integers(1, 4), rng.integers(2, 5)
        spatial = tuple(rng.integers(1, 4, rng.integers(1, 3)))
        x = rng.standard_normal((n, c) + spatial)
        labels = rng.integers(0, c, (n,) + spatial)
        labels[rng.random(labels.shape) < 0.2] = -100
        probs = np.moveaxis(rng.dirichlet(np.ones(c), (n,) + spatial), -1, 1)
        weight = rng.random(c) + 0.1 if rng.random() < 0.5 else None
        reduction = str(rng.choice(["mean", "sum", "none"]))
        smoothing = float(rng.choice([0.0, 0.1]))
        target = probs if rng.random() < 0.3 else labels
        torch_weight = None if weight is None else torch.tensor(weight)
        ours, theirs = tg.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        a = F.cross_entropy(ours, target, weight, reduction=reduction,
                            label_smoothing=smoothing)
        b = torch.nn.functional.cross_entropy(theirs, torch.tensor(target), torch_weight,
                                              reduction=reduction, label_smoothing=smoothing)
        if target is labels:
            a = a + F.nll_loss(ours.log_softmax(1), labels, weight, reduction=reduction)
            b = b + torch.nn.functional.nll_loss(theirs.log_softmax(1),
                                                 torch.tensor(labels), torch_weight,
                                                 reduction=reduction)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
        a.sum().backward()
        b.sum().backward()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-9,
                                   atol=1e-12)


def test_the_added_shape_and_selection_functions_match_pytorch():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 4))
    cases = [lambda m, t: t.repeat(2, 1, 3), lambda m, t: t.repeat(2, 1, 1, 2),
             lambda m, t: t.narrow(-1, -3, 2),
             lambda m, t: m.cat([p * (i + 1) for i, p in enumerate(t.split(3, 2))], 2),
             lambda m, t: m.cat([p * (i + 1) for i, p in enumerate(m.split(t, [1, 3], -1))],
                                2),
             lambda m, t: m.cat([p * (i + 1) for i, p in enumerate(m.chunk(t, 5, 1))], 1),
             lambda m, t: t.index_select(1, m.tensor([2, 0, 2])),
             lambda m, t: m.bmm(t, t.transpose(1, 2)), lambda m, t: m.outer(t[0, 0], t[1, 1]),
             lambda m, t: m.tril(t, -1) + m.triu(t, 1) * 2,
             lambda m, t: (t.abs() + 0.1).rsqrt() + m.exp2(t)]
    for case in cases:
        ours, theirs = tg.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        a, b = case(tg, ours), case(torch, theirs)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)
        upstream = rng.standard_normal(b.shape)
        (a * tg.Tensor(upstream)).sum().backward()
        (b * torch.tensor(upstream)).sum().backward()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12,
                                   atol=1e-12)


def test_einsum_matches_pytorch():
    rng = np.random.default_rng(12)
    a, b, c = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    batch = rng.standard_normal((2, 4, 3))
    for equation, arrays in [("ij,jk->ik", (a, b)), ("ij,jk", (a, b)), ("ij->", (a,)),
                             ("i,j->ij", (c, c)), ("bij,jk->bik", (batch, b)),
                             ("ij,k->", (a, c)), ("ij,ij->i", (a, a))]:
        ours = [tg.Tensor(x, requires_grad=True) for x in arrays]
        theirs = [torch.tensor(x, requires_grad=True) for x in arrays]
        x, y = tg.einsum(equation, *ours), torch.einsum(equation, *theirs)
        np.testing.assert_allclose(x.numpy(), y.detach().numpy(), rtol=1e-12, atol=1e-12)
        upstream = rng.standard_normal(y.shape)
        (x * tg.Tensor(upstream)).sum().backward()
        (y * torch.tensor(upstream)).sum().backward()
        for mine, torchs in zip(ours, theirs):
            np.testing.assert_allclose(mine.grad.numpy(), torchs.grad.numpy(), rtol=1e-12,
                                       atol=1e-12)


def random_graph(fw, seed, params, x, labels):
    """A random network of `fw` (tinygrad_mnist or torch) on x (N, 2, 6, 6), drawn from
    `seed`: conv (padding and stride drawn), batch norm or not, ReLU or tanh, max or
    average pooling, a matmul head, and cross-entropy with label smoothing."""
    rng = np.random.default_rng(seed)
    Fw = fw.nn.functional
    w1, b1, gamma, beta, w2 = params
    h = Fw.conv2d(x, w1, b1, stride=1, padding=int(rng.integers(0, 2)))
    if rng.integers(0, 2):
        h = Fw.batch_norm(h, None, None, gamma, beta, training=True)
    h = h.tanh() if rng.integers(0, 2) else h.relu() * h      # relu·h: a second derivative
    h = Fw.max_pool2d(h, 2) if rng.integers(0, 2) else Fw.avg_pool2d(h, 2, 1)
    h = h.reshape(h.shape[0], -1)
    logits = h @ w2[:, :h.shape[1]].T
    return Fw.cross_entropy(logits, labels, label_smoothing=float(rng.uniform(0, 0.3)))


@pytest.mark.parametrize("seed", range(8))
def test_double_backward_on_random_graphs_matches_pytorch(seed):
    """Hessian-vector products (grad of grad·v, recorded with create_graph=True) of
    random conv / batch norm / pooling / matmul / cross-entropy graphs, in float64,
    match PyTorch's double backward; so do the first gradients, and the gradient with
    respect to the input of the squared input-gradient norm (double backpropagation)."""
    rng = np.random.default_rng(100 + seed)
    arrays = [rng.standard_normal(s) * 0.5 for s in [(3, 2, 3, 3), (3,), (3,), (3,), (4, 75)]]
    arrays[2] += 1.0
    x = rng.standard_normal((2, 2, 6, 6))
    labels = rng.integers(0, 4, 2)
    vs = [rng.standard_normal(a.shape) for a in arrays]
    results = []
    for fw in (tg, torch):
        params = [fw.tensor(a, requires_grad=True) for a in arrays]
        xt = fw.tensor(x, requires_grad=True)
        loss = random_graph(fw, seed, params, xt, fw.tensor(labels))
        grads = fw.autograd.grad(loss, params + [xt], create_graph=True, allow_unused=True)
        dot = sum((g * fw.tensor(v)).sum() for g, v in zip(grads, vs) if g is not None)
        hvp = fw.autograd.grad(dot, params, retain_graph=True, allow_unused=True)
        penalty = (grads[-1] ** 2).sum()
        pen_grads = fw.autograd.grad(penalty, params + [xt], allow_unused=True)
        results.append([np.asarray(g.detach().numpy()) if g is not None else None
                        for g in list(grads) + list(hvp) + list(pen_grads)])
    for k, (mine, theirs) in enumerate(zip(*results)):
        if theirs is None:
            assert mine is None or not np.any(mine), f"result {k}: PyTorch has none"
            continue
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-11,
                                   err_msg=f"result {k} of seed {seed}")


def test_the_functional_api_matches_torch_func():
    """tg.func against torch.func on a small nonlinear function: grad, jacobian,
    hessian, jvp, vjp and the Hessian-vector product."""
    from tinygrad_mnist import func
    rng = np.random.default_rng(3)
    x, v = rng.standard_normal(4), rng.standard_normal(4)
    w = rng.standard_normal((3, 4))

    def f(fw):
        return lambda x: (fw.tensor(w) @ x).tanh().pow(2).sum() + (x * x * x).sum()

    def vec(fw):
        return lambda x: (fw.tensor(w) @ x).sin()

    tx, vx = torch.tensor(x), torch.tensor(v)
    gx, gv = tg.tensor(x), tg.tensor(v)
    pairs = [
        (func.grad(f(tg))(gx), torch.func.grad(f(torch))(tx)),
        (func.hessian(f(tg))(gx), torch.func.hessian(f(torch))(tx)),
        (func.jacobian(vec(tg))(gx), torch.func.jacrev(vec(torch))(tx)),
        (func.jvp(vec(tg), (gx,), (gv,))[1], torch.func.jvp(vec(torch), (tx,), (vx,))[1]),
        (func.vjp(vec(tg), gx)[1](tg.tensor(v[:3]))[0],
         torch.func.vjp(vec(torch), tx)[1](vx[:3])[0]),
        (func.hvp(f(tg), (gx,), (gv,))[1][0],
         torch.autograd.functional.hvp(f(torch), tx, vx)[1]),
    ]
    for k, (mine, theirs) in enumerate(pairs):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"pair {k}")
