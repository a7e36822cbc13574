"""Every optimizer and option against a plain float64 transcription of PyTorch's
documented algorithm, step by step, on fixed parameters and gradients."""
import tracemalloc

import numpy as np
import pytest

from tinygrad_mnist import _kernels, nn, optim

STEPS = 12
SHAPES = [(3, 4), (5,)]


def fixed_problem(seed=0):
    """Initial parameters, and per step one gradient per parameter (varied scales)."""
    rng = np.random.default_rng(seed)
    thetas = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) * (0.05 + step % 4) for s in SHAPES]
             for step in range(STEPS)]
    return thetas, grads


# ------------------------------------------------ references: the documented formulas
def ref_sgd(theta, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
            nesterov=False):
    b = None
    for t, g in enumerate(grads, start=1):
        if weight_decay != 0:
            g = g + weight_decay * theta
        if momentum != 0:
            b = g if t == 1 else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        theta = theta - lr * g
        yield theta


def ref_rmsprop(theta, grads, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0,
                momentum=0.0, centered=False):
    v = g_ave = b = 0.0
    for g in grads:
        if weight_decay != 0:
            g = g + weight_decay * theta
        v = alpha * v + (1 - alpha) * g ** 2
        v_tilde = v
        if centered:
            g_ave = g_ave * alpha + (1 - alpha) * g
            v_tilde = v_tilde - g_ave ** 2
        if momentum > 0:
            b = momentum * b + g / (np.sqrt(v_tilde) + eps)
            theta = theta - lr * b
        else:
            theta = theta - lr * g / (np.sqrt(v_tilde) + eps)
        yield theta


def ref_adam(theta, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
             amsgrad=False, decoupled=False):
    beta1, beta2 = betas
    m = v = v_max = 0.0
    for t, g in enumerate(grads, start=1):
        if decoupled:
            theta = theta - lr * weight_decay * theta
        elif weight_decay != 0:
            g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        m_hat = m / (1 - beta1 ** t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - beta2 ** t)
        else:
            v_hat = v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        yield theta


def ref_adamw(theta, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
              amsgrad=False):
    return ref_adam(theta, grads, lr, betas, eps, weight_decay, amsgrad, decoupled=True)


def ref_adagrad(theta, grads, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                initial_accumulator_value=0.0, eps=1e-10):
    state_sum = initial_accumulator_value
    for t, g in enumerate(grads, start=1):
        lr_t = lr / (1 + (t - 1) * lr_decay)
        if weight_decay != 0:
            g = g + weight_decay * theta
        state_sum = state_sum + g ** 2
        theta = theta - lr_t * g / (np.sqrt(state_sum) + eps)
        yield theta


CASES = [
    (optim.SGD, ref_sgd, dict(lr=0.1)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9, dampening=0.4)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.8, nesterov=True)),
    (optim.SGD, ref_sgd, dict(lr=0.1, weight_decay=0.3)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.7, dampening=0.5, weight_decay=0.1)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.2)),
    (optim.RMSprop, ref_rmsprop, dict()),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.02, alpha=0.9, eps=1e-3)),
    (optim.RMSprop, ref_rmsprop, dict(momentum=0.8)),
    (optim.RMSprop, ref_rmsprop, dict(centered=True)),
    (optim.RMSprop, ref_rmsprop, dict(centered=True, momentum=0.5, weight_decay=0.1)),
    (optim.RMSprop, ref_rmsprop, dict(weight_decay=0.2)),
    (optim.Adam, ref_adam, dict()),
    (optim.Adam, ref_adam, dict(lr=0.05, betas=(0.8, 0.9), eps=1e-4)),
    (optim.Adam, ref_adam, dict(lr=0.01, weight_decay=0.1)),
    (optim.Adam, ref_adam, dict(lr=0.01, amsgrad=True)),
    (optim.Adam, ref_adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1, betas=(0.5, 0.6))),
    (optim.AdamW, ref_adamw, dict()),
    (optim.AdamW, ref_adamw, dict(lr=0.05, weight_decay=0.3)),
    (optim.AdamW, ref_adamw, dict(lr=0.05, weight_decay=0.3, amsgrad=True, betas=(0.5, 0.6))),
    (optim.AdamW, ref_adamw, dict(lr=0.01, weight_decay=0.0)),
    (optim.Adagrad, ref_adagrad, dict()),
    (optim.Adagrad, ref_adagrad, dict(lr=0.1, lr_decay=0.2)),
    (optim.Adagrad, ref_adagrad, dict(lr=0.1, weight_decay=0.1)),
    (optim.Adagrad, ref_adagrad, dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-3)),
]
IDS = [f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
       for cls, _, kw in CASES]


def run(cls, kwargs, thetas, grads, dtype):
    params = [nn.Parameter(t.astype(dtype)) for t in thetas]
    opt = cls(params, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.astype(dtype)
        opt.step()
        yield [p.data.copy() for p in params], params, opt


@pytest.mark.parametrize("cls, reference, kwargs", CASES, ids=IDS)
def test_matches_documented_algorithm_every_step(cls, reference, kwargs):
    thetas, grads = fixed_problem()
    expected = [list(reference(theta, [g[i] for g in grads], **kwargs))
                for i, theta in enumerate(thetas)]
    for step, (values, _, _) in enumerate(run(cls, kwargs, thetas, grads, np.float64)):
        for i, value in enumerate(values):
            np.testing.assert_allclose(value, expected[i][step], rtol=1e-6, atol=1e-6,
                                       err_msg=f"parameter {i} after step {step + 1}")
    assert step + 1 == STEPS


@pytest.mark.parametrize("cls, reference, kwargs", CASES, ids=IDS)
def test_float32_stays_float32_in_place_and_leaves_grads_alone(cls, reference, kwargs):
    thetas, grads = fixed_problem(1)
    params = [nn.Parameter(t.astype(np.float32)) for t in thetas]
    arrays = [p.data for p in params]
    opt = cls(params, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.astype(np.float32)
        given = [p.grad.clone() for p in params]
        opt.step()
        for p, g, array in zip(params, given, arrays):
            assert p.data is array and p.data.dtype == np.float32
            np.testing.assert_array_equal(p.grad, g)  # weight decay did not touch it
    for state in opt.state.values():
        for value in state.values():
            assert not isinstance(value, np.ndarray) or value.dtype == np.float32
    expected = [list(reference(theta, [g[i] for g in grads], **kwargs))[-1]
                for i, theta in enumerate(thetas)]
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.data, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls, reference, kwargs", CASES, ids=IDS)
def test_a_step_allocates_no_parameter_sized_temporaries(cls, reference, kwargs):
    n = 250_000  # 1 MB of float32
    p = nn.Parameter(np.ones(n, np.float32))
    p.grad = np.full(n, 0.5, np.float32)
    opt = cls([p], **kwargs)
    opt.step()
    opt.step()  # state and scratch buffers exist now
    tracemalloc.start()
    try:
        opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * 4 // 10, f"a step allocated {peak} bytes for a {n * 4}-byte parameter"


def test_parameters_without_grad_are_skipped():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.ones(2)
    opt.step()
    assert np.all(b.data == 1) and b not in opt.state
    assert opt.state[a]["step"] == 1


@pytest.mark.parametrize("cls, reference, kwargs", CASES, ids=IDS)
def test_every_parameter_is_updated_whole_in_one_call(cls, reference, kwargs):
    # Large parameters were once cut into flat pieces (`_kernels.flat_pieces`), which
    # showed no gain on the current machine (benchmarks/README.md): each parameter is now
    # one `update` call, the scratch as large as the largest parameter. The numbers are
    # bitwise those of the pieces (test_bitwise_the_optimizers_before_the_update_refactor).
    rng = np.random.default_rng(2)
    shapes = [(601, 250), (600, 250), (7,)]
    thetas = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    thetas[1] = np.asfortranarray(thetas[1])
    params = [nn.Parameter(t.copy(order="K")) for t in thetas]
    opt = cls(params, **kwargs)
    sizes = []

    def counting_update(hp, piece, g_buf, tmp):
        assert piece[0] is not None and g_buf.shape == tmp.shape == piece[0].shape
        sizes.append(piece[0].size)
        cls.update(opt, hp, piece, g_buf, tmp)
    opt.update = counting_update
    for step in range(2):
        for p, s in zip(params, shapes):
            p.grad = (rng.standard_normal(s) * 0.1).astype(np.float32)
        opt.step()
    assert sizes == [601 * 250, 600 * 250, 7] * 2
    assert max(len(b) for b in opt._pools[np.dtype(np.float32)]) == 601 * 250


def test_a_gradient_of_the_wrong_shape_is_named():
    p = nn.Parameter(np.ones((2, 3), np.float32))
    p.grad = np.ones((1, 3), np.float32)
    with pytest.raises(ValueError, match=r"shape \(2, 3\) has a gradient of shape \(1, 3\)"):
        optim.SGD([p], lr=0.1).step()


# ------------------------------------- bitwise the optimizers before the update refactor
def option_grid():
    """(class name, kwargs): every option of every optimizer, alone and combined."""
    for momentum in (0.0, 0.9):
        for dampening in (0.0, 0.3):
            for nesterov in (False, True):
                for weight_decay in (0.0, 0.1):
                    if not nesterov or (momentum and not dampening):
                        yield "SGD", dict(lr=0.05, momentum=momentum, dampening=dampening,
                                          nesterov=nesterov, weight_decay=weight_decay)
    for name in ("Adam", "AdamW"):
        for amsgrad in (False, True):
            for weight_decay in (0.0, 0.1):
                for betas in ((0.9, 0.999), (0.5, 0.6)):
                    yield name, dict(lr=0.01, betas=betas, weight_decay=weight_decay,
                                     amsgrad=amsgrad)
    for centered in (False, True):
        for momentum in (0.0, 0.5):
            for weight_decay in (0.0, 0.1):
                yield "RMSprop", dict(centered=centered, momentum=momentum,
                                      weight_decay=weight_decay)
    yield "RMSprop", dict(lr=0.02, alpha=0.9, eps=1e-3, centered=True, momentum=0.3)
    for lr_decay in (0.0, 0.2):
        for weight_decay in (0.0, 0.1):
            for initial in (0.0, 0.5):
                yield "Adagrad", dict(lr=0.1, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial, eps=1e-3)


GRID = list(option_grid())
# a second option switched on or off mid-run (state arrays then appear late, or rest)
TOGGLED = {"SGD": lambda g: {} if g["nesterov"] else {"momentum": 0.5 - g["momentum"] / 2},
           "Adam": lambda g: {"amsgrad": not g["amsgrad"]},
           "AdamW": lambda g: {"amsgrad": not g["amsgrad"]},
           "RMSprop": lambda g: {"centered": not g["centered"], "momentum": 0.3},
           "Adagrad": lambda g: {"lr_decay": 0.1}}


@pytest.mark.parametrize("name, kwargs", GRID,
                         ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
                              for n, kw in GRID])
def test_bitwise_the_optimizers_before_the_update_refactor(name, kwargs):
    """Parameters and state after 6 steps equal, bit for bit, those of the optimizers as
    they were before `update` (tests/optim_reference.py): parameters above BLOCKED_ABOVE
    (in pieces; one Fortran-ordered, so whole) and below, float32 and float64, two
    param groups, hyperparameters changed mid-run, steps without a gradient, replaced
    data."""
    import optim_reference
    assert min(400 * 401, 300 * 500) > _kernels.BLOCKED_ABOVE > 64 * 3
    rng = np.random.default_rng(3)
    shapes = [(400, 401), (300, 500), (37,), (64, 3)]
    dtypes = [np.float32, np.float32, np.float32, np.float64]
    thetas = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    thetas[1] = np.asfortranarray(thetas[1])
    grads = [[(rng.standard_normal(s) * (0.05 + step % 3)).astype(d)
              for s, d in zip(shapes, dtypes)] for step in range(6)]
    for g in grads[0] + grads[1]:
        g.ravel()[::5] = 0.0  # exact zeros, and negative ones
        g.ravel()[1::7] = -0.0

    def train(module):
        params = [nn.Parameter(t.copy(order="K")) for t in thetas]
        groups = [{"params": params[:3]}, {"params": params[3:], "lr": 0.003}]
        opt = getattr(module, name)(groups, **kwargs)
        for step, step_grads in enumerate(grads):
            for i, (p, g) in enumerate(zip(params, step_grads)):
                p.grad = None if (step + i) % 4 == 3 else g
            if step == 3:
                opt.param_groups[0].update(TOGGLED[name](opt.param_groups[0]))
                opt.param_groups[1]["lr"] *= 0.5
                params[2].data = params[2].data.copy()
            opt.step()
        return params, opt

    new, new_opt = train(optim)
    old, old_opt = train(optim_reference)
    for i, (a, b) in enumerate(zip(new, old)):
        assert a.data.dtype == b.data.dtype and a.data.tobytes() == b.data.tobytes(), i
        new_state, old_state = new_opt.state[a], old_opt.state[b]
        assert list(new_state) == list(old_state), i
        for key, value in old_state.items():
            if isinstance(value, np.ndarray):
                assert new_state[key].dtype == value.dtype, (i, key)
                assert new_state[key].tobytes() == value.tobytes(), (i, key)
            else:
                assert type(new_state[key]) is type(value) and new_state[key] == value
    assert new_opt.state_dict()["param_groups"] == old_opt.state_dict()["param_groups"]
