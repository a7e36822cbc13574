"""Derivatives of derivatives: `backward(create_graph=True)`, `tg.autograd.grad`,
`Tensor.register_hook` and the functional API `tg.func`, against results derived by
hand (the hypothesis suite in test_gradients.py checks every Function's second
derivatives against finite differences; test_torch_comparison.py compares with
PyTorch's double backward)."""
import numpy as np
import pytest

import tinygrad_mnist as tg
from tinygrad_mnist import Function, func


def f64(values, requires_grad=True):
    return tg.tensor(values, dtype=tg.float64, requires_grad=requires_grad)


def test_the_second_derivative_of_a_cube_is_six_x():
    x = f64([-1.0, 0.5, 2.0])
    (g,) = tg.autograd.grad((x ** 3).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    assert g.requires_grad and g.grad_fn is not None
    (h,) = tg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy())
    assert not h.requires_grad


def test_third_derivatives_come_from_the_same_backwards():
    x = f64([0.3, -1.2])
    (g,) = tg.autograd.grad(x.sin().sum(), x, create_graph=True)
    (h,) = tg.autograd.grad(g.sum(), x, create_graph=True)
    (t,) = tg.autograd.grad(h.sum(), x)
    np.testing.assert_allclose(t.numpy(), -np.cos(x.numpy()))


def test_backward_with_create_graph_accumulates_a_differentiable_grad():
    x = f64([1.0, 2.0])
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])
    (x * x).sum().backward(create_graph=True)            # accumulates: 3x² + 2x
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 16.0])
    (d,) = tg.autograd.grad(x.grad.sum(), x)              # d/dx (3x² + 2x) = 6x + 2
    np.testing.assert_allclose(d.numpy(), [8.0, 14.0])


def test_retain_graph_defaults_to_create_graph():
    x = f64([1.0, 2.0])
    y = (x.exp() * x).sum()
    tg.autograd.grad(y, x, create_graph=True)
    tg.autograd.grad(y, x)                                 # the graph was kept
    with pytest.raises(RuntimeError, match="already freed"):
        tg.autograd.grad(y, x)


def test_grad_leaves_every_grad_untouched_and_sums_grad_outputs():
    x, w = f64([1.0, 2.0]), f64([3.0, 4.0])
    y = x * w
    gx, gw = tg.autograd.grad(y, (x, w), grad_outputs=np.array([1.0, 10.0]))
    np.testing.assert_allclose(gx.numpy(), [3.0, 40.0])
    np.testing.assert_allclose(gw.numpy(), [1.0, 20.0])
    assert x.grad is None and w.grad is None


def test_grad_of_an_intermediate_tensor():
    x = f64([1.0, 2.0])
    h = x * 3.0
    (gh,) = tg.autograd.grad((h * h).sum(), h)
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())


def test_grad_errors_say_what_is_wrong_in_one_line():
    x, unused = f64([1.0, 2.0]), f64([1.0])
    with pytest.raises(RuntimeError, match="not have been used in the graph.*allow_unused"):
        tg.autograd.grad((x * x).sum(), (x, unused))
    assert tg.autograd.grad((x * x).sum(), (x, unused), allow_unused=True)[1] is None
    with pytest.raises(RuntimeError, match="only for a scalar output.*grad_outputs"):
        tg.autograd.grad(x * x, x)
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.autograd.grad((x * x).sum(), f64([1.0], requires_grad=False))
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        tg.autograd.grad(y, x)


def test_a_hook_may_replace_the_gradient_and_its_handle_removes_it():
    x = f64([1.0, 2.0])
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 2)
    (x * x + x).sum().backward()             # x used twice: the hook sees the sum once
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [3.0, 5.0])
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 10.0])
    handle.remove()
    x.grad = None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_a_hook_on_an_intermediate_tensor_changes_what_flows_below_it():
    x = f64([1.0, 2.0])
    h = x * 3.0
    h.register_hook(lambda g: g * 0)
    (h * h + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])
    with pytest.raises(RuntimeError, match="does not require gradient"):
        f64([1.0], requires_grad=False).register_hook(lambda g: g)


def test_hooks_run_in_a_recorded_backward_on_recorded_gradients():
    x = f64([1.0, 2.0])
    handle = x.register_hook(lambda g: g * x)             # the hook's own op is recorded
    (g,) = tg.autograd.grad((x * x).sum(), x, create_graph=True)   # 2x · x
    np.testing.assert_allclose(g.numpy(), [2.0, 8.0])
    (h,) = tg.autograd.grad(g.sum(), x, retain_graph=True)   # the hook again: 4x · x
    np.testing.assert_allclose(h.numpy(), [4.0, 16.0])
    handle.remove()
    (h,) = tg.autograd.grad(g.sum(), x)                   # d/dx 2x² = 4x
    np.testing.assert_allclose(h.numpy(), [4.0, 8.0])


def test_a_numpy_function_in_a_recorded_backward_raises_instead_of_dropping_the_graph(
        function_registry):
    class ExpByNumPy(Function):
        def forward(self, x):
            self.save_for_backward(x)
            return np.exp(x)

        def backward(self, g):
            return g * np.exp(self.saved[0])             # np.exp of a Tensor: no graph

    x = f64([0.5])
    with pytest.raises(TypeError, match="recorded backward would drop the graph"):
        tg.autograd.grad(ExpByNumPy.apply(x).sum(), x, create_graph=True)
    (g,) = tg.autograd.grad(ExpByNumPy.apply(x).sum(), x)        # first order: fine
    np.testing.assert_allclose(g.numpy(), np.exp([0.5]))


def test_gradgradcheck_catches_a_wrong_second_derivative(function_registry):
    class SquareWithAConstantSlope(Function):     # right first derivative, as numbers,
        def forward(self, x):                     # but 2x taken as a constant: its
            self.save_for_backward(x)             # second derivative is lost
            return x * x

        def backward(self, g):
            return g * (2 * tg.autograd.value(self.saved[0]))

    square = SquareWithAConstantSlope.apply
    assert tg.gradcheck(lambda t: square(t), np.array([1.0, 2.0]))
    with pytest.raises(AssertionError, match="analytic .* numeric"):
        tg.gradgradcheck(lambda t: square(t), np.array([1.0, 2.0]))
    assert tg.gradgradcheck(lambda t: t * t * t, np.array([1.0, -2.0]))


# ---------------------------------------------------------------- functional API
def test_func_grad_argnums_and_has_aux():
    def f(x, y):
        return (x * x * y).sum(), "aux"
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    gx, aux = func.grad(f, has_aux=True)(x, y)
    np.testing.assert_allclose(gx.numpy(), 2 * x * y)
    assert aux == "aux"
    (gx, gy), (value, aux) = func.grad_and_value(f, argnums=(0, 1), has_aux=True)(x, y)
    np.testing.assert_allclose(gy.numpy(), x * x)
    assert value.item() == pytest.approx(3.0 + 16.0)
    with pytest.raises(RuntimeError, match="one-element Tensor"):
        func.grad(lambda x: x * 2)(x)


def test_func_grad_nests():
    d2 = func.grad(lambda x: func.grad(lambda x: (x ** 4).sum())(x).sum())
    np.testing.assert_allclose(d2(np.array([1.0, -2.0])).numpy(), [12.0, 48.0])


def test_func_vjp_jvp_and_jacobian_of_a_linear_map_give_the_matrix():
    a = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
    lin = lambda x: tg.tensor(a) @ x                     # noqa: E731
    x = np.array([0.5, 1.0, -1.0])
    np.testing.assert_allclose(func.jacobian(lin)(x).numpy(), a)
    out, tangent = func.jvp(lin, (x,), (np.array([1.0, 0.0, 2.0]),))
    np.testing.assert_allclose(out.numpy(), a @ x)
    np.testing.assert_allclose(tangent.numpy(), a @ [1.0, 0.0, 2.0])
    out, vjp_fn = func.vjp(lin, x)
    np.testing.assert_allclose(vjp_fn(np.array([1.0, 2.0]))[0].numpy(), a.T @ [1.0, 2.0])


def test_hessian_and_hvp_of_a_quadratic_form():
    a = np.array([[2.0, 1.0], [0.0, 3.0]])
    quad = lambda x: x @ (tg.tensor(a) @ x)               # noqa: E731   xᵀAx: H = A + Aᵀ
    x, v = np.array([1.0, -1.0]), np.array([0.5, 2.0])
    np.testing.assert_allclose(func.hessian(quad)(x).numpy(), a + a.T)
    value, (hv,) = func.hvp(quad, (x,), (v,))
    np.testing.assert_allclose(hv.numpy(), (a + a.T) @ v)
    assert value.item() == pytest.approx(x @ a @ x)


def test_the_hvp_of_the_mlp_loss_matches_the_explicit_hessian():
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((5, 4)), np.array([0, 2, 1, 2, 0])
    w = rng.standard_normal(12) * 0.5

    def loss(flat):
        return tg.cross_entropy(tg.tensor(x) @ flat.reshape(4, 3).tanh(), labels)
    v = rng.standard_normal(12)
    h = func.hessian(loss)(w).numpy()
    np.testing.assert_allclose(h, h.T, atol=1e-12)
    np.testing.assert_allclose(func.hvp(loss, (w,), (v,))[1][0].numpy(), h @ v, atol=1e-12)


def test_draw_graph_shows_a_recorded_backward():
    graphviz = pytest.importorskip("graphviz")  # noqa: F841
    from tinygrad_mnist import viz
    x = f64([1.0, 2.0])
    (g,) = tg.autograd.grad((x.sin() * x).sum(), x, create_graph=True)
    source = viz.draw_graph(g).source
    assert "Cos" in source and "Sin" in source            # the backward's own ops


def test_two_inputs_on_one_array_are_refused_rather_than_guessed():
    x = f64([1.0, 2.0])
    twin = x.detach().requires_grad_()                    # another tensor, the same array
    with pytest.raises(RuntimeError, match="different tensors on one array.*clone"):
        tg.autograd.grad((x * twin).sum(), (x, twin), create_graph=True)
    gx, gt = tg.autograd.grad((x * twin.clone()).sum(), (x, twin), create_graph=True)
    np.testing.assert_allclose(gx.numpy(), [1.0, 2.0])
    assert tg.autograd.grad((gx * gt).sum(), x)[0] is not None
