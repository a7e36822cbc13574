"""The Optimizer base: param groups, validation, zero_grad, closures, state_dict."""
import numpy as np
import pytest

import tinygrad_mnist as tg
from tinygrad_mnist import nn, optim

ALL = [lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
       lambda p: optim.RMSprop(p, momentum=0.5, centered=True),
       lambda p: optim.Adam(p, amsgrad=True),
       lambda p: optim.AdamW(p),
       lambda p: optim.Adagrad(p, lr_decay=0.1)]
NAMES = ["SGD", "RMSprop", "Adam", "AdamW", "Adagrad"]


def params(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [nn.Parameter(rng.standard_normal(s).astype(np.float32)) for s in shapes]


def give_grads(ps, seed):
    rng = np.random.default_rng(seed)
    for p in ps:
        p.grad = rng.standard_normal(p.shape).astype(np.float32)


def test_param_groups_take_defaults_and_overrides():
    a, b = params((2,), (3,))
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["params"] == [b] and opt.param_groups[1]["momentum"] == 0.9
    assert opt.param_groups[0]["momentum"] == 0.0
    c, = params((1,))
    opt.add_param_group({"params": [c], "weight_decay": 0.01})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="more than one param group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="twice"):
        optim.SGD([a, a], lr=0.1)


def test_params_must_be_trainable_leaf_tensors():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(nn.Parameter(np.zeros(1)), lr=0.1)
    with pytest.raises(TypeError, match="only optimize Tensors"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="does not require grad"):
        optim.SGD([tg.Tensor([1.0])], lr=0.1)
    p = nn.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="not a leaf"):
        optim.SGD([p * 2], lr=0.1)


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=-0.1), "invalid learning rate -0.1"),
    (lambda p: optim.SGD(p, lr=float("nan")), "learning rate"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "momentum"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov momentum requires"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "zero dampening"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), r"beta1 1.0: must be in \[0.0, 1.0\)"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "beta2"),
    (lambda p: optim.Adam(p, betas=(0.9,)), "pair"),
    (lambda p: optim.AdamW(p, eps=-1e-8), "eps"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), "alpha"),
    (lambda p: optim.RMSprop(p, momentum=-1), "momentum"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), "lr_decay"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "initial_accumulator_value"),
    (lambda p: optim.SGD(p, lr="fast"), "must be a number"),
])
def test_invalid_hyperparameters_are_named(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make(params((2,)))


def test_group_hyperparameters_are_validated_too():
    a, b = params((2,), (2,))
    opt = optim.SGD([a], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        opt.add_param_group({"params": [b], "lr": -1.0})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("make", ALL, ids=NAMES)
def test_zero_grad_and_closure(make):
    ps = params((2, 2), (3,))
    opt = make(ps)
    give_grads(ps, 1)
    opt.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in ps)
    opt.zero_grad()
    assert all(p.grad is None for p in ps)

    def closure():
        opt.zero_grad()
        loss = sum(((p * p).sum() for p in ps), tg.Tensor(0.0))
        loss.backward()
        return loss

    before = [p.data.copy() for p in ps]
    with tg.no_grad():  # the closure re-enables grad itself
        loss = opt.step(closure)
    assert isinstance(loss, tg.Tensor)
    assert all(not np.array_equal(p.data, b) for p, b in zip(ps, before))
    assert opt.step() is None


@pytest.mark.parametrize("make", ALL, ids=NAMES)
def test_state_dict_uses_indices_and_copies(make):
    ps = params((2, 2), (3,))
    opt = make(ps)
    give_grads(ps, 2)
    opt.step()
    state = opt.state_dict()
    assert set(state) == {"state", "param_groups"}
    assert state["param_groups"][0]["params"] == [0, 1]
    assert set(state["state"]) == {0, 1}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            assert isinstance(value, (int, float, np.ndarray)), (key, type(value))
            if isinstance(value, np.ndarray):
                assert value.shape == ps[index].shape
                value[...] = 99.0  # a copy: the optimizer is unaffected
    for entry in opt.state.values():
        assert all(not np.any(v == 99.0) for v in entry.values() if isinstance(v, np.ndarray))


@pytest.mark.parametrize("make", ALL, ids=NAMES)
def test_load_state_dict_continues_identically(make):
    ps = params((2, 2), (3,))
    opt = make(ps)
    for seed in range(3):
        give_grads(ps, seed)
        opt.step()
    saved_state, saved_params = opt.state_dict(), [p.data.copy() for p in ps]
    give_grads(ps, 10)
    opt.step()
    expected = [p.data.copy() for p in ps]

    fresh = params((2, 2), (3,), seed=5)
    for p, value in zip(fresh, saved_params):
        p.data[...] = value
    other = make(fresh)
    other.load_state_dict(saved_state)
    give_grads(fresh, 10)
    other.step()
    for p, e in zip(fresh, expected):
        np.testing.assert_array_equal(p.data, e)


def test_load_state_dict_restores_hyperparameters_and_tuples():
    ps = params((2,))
    opt = optim.Adam(ps, lr=0.1, betas=(0.8, 0.9))
    state = opt.state_dict()
    state["param_groups"][0]["betas"] = [0.7, 0.95]  # as a list, e.g. after JSON
    state["param_groups"][0]["lr"] = 0.2
    other = optim.Adam(params((2,)), lr=0.5)
    other.load_state_dict(state)
    assert other.param_groups[0]["betas"] == (0.7, 0.95)
    assert other.param_groups[0]["lr"] == 0.2


@pytest.mark.parametrize("damage, message", [
    (lambda s: s["param_groups"].append(dict(s["param_groups"][0])), "2 param groups"),
    (lambda s: s["param_groups"][0]["params"].pop(), "parameters here"),
    (lambda s: s["state"][0].update(exp_avg=np.zeros(7)), "has shape"),
    (lambda s: s["state"].update({5: {}}), "unknown parameter index 5"),
    (lambda s: s["param_groups"][0].pop("eps"), r"lacks hyperparameter\(s\) \['eps'\]"),
    (lambda s: s["param_groups"][0].update(lr=-3.0), "learning rate"),
    (lambda s: s.pop("state"), "exactly 'state' and 'param_groups'"),
])
def test_load_state_dict_rejects_damage_without_changes(damage, message):
    ps = params((2, 2), (3,))
    opt = optim.Adam(ps, lr=0.1)
    give_grads(ps, 0)
    opt.step()
    state = opt.state_dict()
    damage(state)
    before = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(state)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for i in before["state"]:
        for key, value in before["state"][i].items():
            np.testing.assert_array_equal(after["state"][i][key], value)


def test_repr_lists_groups():
    text = repr(optim.SGD(params((1,)), lr=0.1, momentum=0.9))
    assert text.startswith("SGD (\nParameter Group 0\n    dampening: 0.0\n")
    assert "    lr: 0.1\n    momentum: 0.9\n" in text and text.endswith(")")


def test_optimizers_work_on_a_model():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = optim.SGD(model.parameters(), lr=0.1)
    x = tg.Tensor(np.ones((5, 3), np.float32))
    loss = nn.CrossEntropyLoss()(model(x), np.array([0, 1, 0, 1, 0]))
    loss.backward()
    before = model[0].weight.data.copy()
    opt.step()
    np.testing.assert_allclose(model[0].weight.data, before - 0.1 * model[0].weight.grad,
                               rtol=1e-6)
