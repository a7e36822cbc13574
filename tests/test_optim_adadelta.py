"""Adadelta against an independent float64 transcription of PyTorch's documented
algorithm, and the schedulers added for PyTorch tutorials (LambdaLR,
MultiplicativeLR, LinearLR) against their closed forms."""
import math

import numpy as np
import pytest

from tinygrad_mnist import nn, optim
from tinygrad_mnist.optim import lr_scheduler

STEPS = 6


def reference_adadelta(theta, grads, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    """PyTorch's documented Adadelta, one parameter, in float64: yields θ after each step."""
    theta = np.array(theta, np.float64)
    v = np.zeros_like(theta)
    u = np.zeros_like(theta)
    for g in grads:
        g = np.array(g, np.float64)
        if weight_decay:
            g = g + weight_decay * theta
        v = rho * v + (1 - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        theta = theta - lr * delta
        yield theta


OPTIONS = [dict(), dict(lr=0.5), dict(rho=0.5, eps=1e-3), dict(weight_decay=0.1),
           dict(lr=2.0, rho=0.95, eps=1e-4, weight_decay=0.05)]


def problem(seed=0, shape=(3, 4)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), [rng.standard_normal(shape) for _ in range(STEPS)]


@pytest.mark.parametrize("kwargs", OPTIONS, ids=str)
def test_adadelta_follows_the_documented_algorithm_every_step(kwargs):
    theta, grads = problem()
    p = nn.Parameter(theta.copy())
    opt = optim.Adadelta([p], **kwargs)
    for g, expected in zip(grads, reference_adadelta(theta, grads, **kwargs)):
        p.grad = g.copy()
        opt.step()
        np.testing.assert_allclose(p.data, expected, rtol=1e-10, atol=1e-12)
    state = opt.state[p]
    assert state["step"] == STEPS and set(state) == {"step", "square_avg", "acc_delta"}


def test_adadelta_keeps_float32_and_leaves_the_gradient_alone():
    theta, grads = problem(1)
    p = nn.Parameter(theta.astype(np.float32))
    data = p.data
    opt = optim.Adadelta([p], weight_decay=0.1)
    for g in grads:
        p.grad = g.astype(np.float32)
        given = p.grad.numpy().copy()
        opt.step()
        np.testing.assert_array_equal(p.grad.numpy(), given)
    assert p.data is data and p.dtype == np.float32
    expected = list(reference_adadelta(theta, grads, weight_decay=0.1))[-1]
    np.testing.assert_allclose(p.data, expected, rtol=1e-4, atol=1e-6)


def test_a_large_parameter_updated_in_pieces_gives_the_same_numbers():
    theta, grads = problem(2, (601, 250))
    whole, pieces = nn.Parameter(theta[:2].copy()), nn.Parameter(theta.copy())
    opt_whole, opt_pieces = optim.Adadelta([whole], rho=0.8), optim.Adadelta([pieces], rho=0.8)
    for g in grads[:2]:
        whole.grad, pieces.grad = g[:2].copy(), g.copy()
        opt_whole.step()
        opt_pieces.step()
    np.testing.assert_array_equal(pieces.data[:2], whole.data)


def test_adadelta_state_dict_round_trip_and_checks():
    theta, grads = problem(3)
    a, b = nn.Parameter(theta.copy()), nn.Parameter(theta.copy())
    opt_a, opt_b = optim.Adadelta([a]), optim.Adadelta([b])
    for p, opt in ((a, opt_a), (b, opt_b)):
        p.grad = grads[0].copy()
        opt.step()
    opt_b.load_state_dict(opt_a.state_dict())
    for p, opt in ((a, opt_a), (b, opt_b)):
        p.grad = grads[1].copy()
        opt.step()
    np.testing.assert_array_equal(a.data, b.data)
    for bad in (dict(rho=1.5), dict(eps=-1.0), dict(lr=-0.1), dict(weight_decay=-1)):
        with pytest.raises(ValueError, match="Adadelta"):
            optim.Adadelta([nn.Parameter(np.ones(2))], **bad)


def schedule(make, steps):
    opt = optim.SGD([nn.Parameter(np.ones(1))], lr=2.0)
    scheduler = make(opt)
    lrs = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        opt.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    return lrs, scheduler


def test_lambda_lr_is_the_base_rate_times_the_function():
    lrs, scheduler = schedule(lambda o: lr_scheduler.LambdaLR(o, lambda e: 1 / (e + 1)), 4)
    assert lrs == pytest.approx([2.0 / (e + 1) for e in range(5)])
    state = scheduler.state_dict()
    assert "lr_lambdas" not in state and state["last_epoch"] == 4
    fresh = lr_scheduler.LambdaLR(optim.SGD([nn.Parameter(np.ones(1))], lr=2.0),
                                  lambda e: 1 / (e + 1))
    fresh.load_state_dict(state)
    assert fresh.last_epoch == 4 and fresh.lr_lambdas[0](1) == 0.5


def test_multiplicative_lr_compounds():
    lrs, _ = schedule(lambda o: lr_scheduler.MultiplicativeLR(o, lambda e: 0.5), 3)
    assert lrs == pytest.approx([2.0, 1.0, 0.5, 0.25])


def test_linear_lr_warms_up_then_stays():
    lrs, _ = schedule(lambda o: lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=3), 5)
    assert lrs == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])


def test_lambda_lr_wants_one_function_per_group():
    opt = optim.SGD([{"params": [nn.Parameter(np.ones(1))]},
                     {"params": [nn.Parameter(np.ones(1))]}], lr=1.0)
    lr_scheduler.LambdaLR(opt, [lambda e: 1.0, lambda e: 0.5])
    with pytest.raises(ValueError, match="list of 2 functions"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1.0])
    assert math.isclose(opt.param_groups[1]["lr"], 0.5)
