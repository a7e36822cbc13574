"""Learning-rate schedulers against PyTorch's formulas, written out; state round trips."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinygrad_mnist import nn, optim
from tinygrad_mnist.optim import lr_scheduler as S


def sgd(lr=0.1, momentum=0.0, groups=1):
    ps = [nn.Parameter(np.zeros(2, np.float32)) for _ in range(groups)]
    return optim.SGD([{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(ps)],
                     lr=lr, momentum=momentum)


def lrs(scheduler, steps):
    """The learning rates of group 0 at steps 0..steps-1."""
    out = []
    for _ in range(steps):
        out.append(scheduler.get_last_lr()[0])
        assert scheduler.optimizer.param_groups[0]["lr"] == out[-1]
        scheduler.optimizer.step()
        scheduler.step()
    return out


def test_step_lr():
    got = lrs(S.StepLR(sgd(0.1), step_size=3, gamma=0.5), 10)
    np.testing.assert_allclose(got, [0.1 * 0.5 ** (t // 3) for t in range(10)], rtol=1e-12)


def test_multi_step_lr_with_repeated_milestone():
    got = lrs(S.MultiStepLR(sgd(1.0), milestones=[4, 2, 4], gamma=0.1), 7)
    np.testing.assert_allclose(got, [1, 1, 0.1, 0.1, 1e-3, 1e-3, 1e-3], rtol=1e-12)


def test_exponential_lr_and_groups_scale_separately():
    scheduler = S.ExponentialLR(sgd(0.2, groups=2), gamma=0.9)
    for t in range(6):
        np.testing.assert_allclose(scheduler.get_last_lr(), [0.2 * 0.9 ** t, 0.4 * 0.9 ** t],
                                   rtol=1e-12)
        scheduler.step()


def test_cosine_annealing_closed_form_and_restart():
    got = lrs(S.CosineAnnealingLR(sgd(0.1), T_max=10, eta_min=0.001), 21)
    expected = [0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(21)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[10] == pytest.approx(0.001) and got[20] == pytest.approx(0.1)


def one_cycle_reference(t, total, max_lr, pct=0.3, div=25.0, final_div=1e4):
    """PyTorch's two-phase cosine schedule, as (lr, momentum) at step t."""
    initial, peak = max_lr / div, max_lr
    low = initial / final_div
    up_end = pct * total - 1

    def cos(start, end, frac):
        return end + (start - end) / 2 * (math.cos(math.pi * frac) + 1)
    if t <= up_end:
        frac = t / up_end
        return cos(initial, peak, frac), cos(0.95, 0.85, frac)
    frac = (t - up_end) / (total - 1 - up_end)
    return cos(peak, low, frac), cos(0.85, 0.95, frac)


def test_one_cycle_lr_and_sgd_momentum():
    opt = sgd(momentum=0.9)
    scheduler = S.OneCycleLR(opt, max_lr=1.0, total_steps=20)
    for t in range(20):
        lr, momentum = one_cycle_reference(t, 20, 1.0)
        assert scheduler.get_last_lr()[0] == pytest.approx(lr, rel=1e-12)
        assert opt.param_groups[0]["momentum"] == pytest.approx(momentum, rel=1e-12)
        if t == 19:
            assert lr == pytest.approx(1.0 / 25 / 1e4)  # the minimum, at the last step
        opt.step()
        scheduler.step()
    with pytest.raises(ValueError, match="tried to step 21 times"):
        scheduler.step()


def test_one_cycle_cycles_adam_beta1_and_keeps_beta2():
    p = nn.Parameter(np.zeros(1))
    opt = optim.Adam([p], betas=(0.9, 0.99))
    scheduler = S.OneCycleLR(opt, max_lr=0.01, epochs=2, steps_per_epoch=5)
    assert scheduler.total_steps == 10
    for t in range(10):
        _, momentum = one_cycle_reference(t, 10, 0.01)
        beta1, beta2 = opt.param_groups[0]["betas"]
        assert beta1 == pytest.approx(momentum) and beta2 == 0.99
        scheduler.step()


def test_one_cycle_three_phase_linear():
    opt = sgd()
    scheduler = S.OneCycleLR(opt, max_lr=1.0, total_steps=21, pct_start=0.25,
                             anneal_strategy="linear", three_phase=True, cycle_momentum=False)
    got = lrs(scheduler, 21)
    up, down = 0.25 * 21 - 1, 2 * 0.25 * 21 - 2
    for t, lr in enumerate(got):
        if t <= up:
            expected = 0.04 + (1.0 - 0.04) * t / up
        elif t <= down:
            expected = 1.0 + (0.04 - 1.0) * (t - up) / (down - up)
        else:
            expected = 0.04 + (0.04e-4 - 0.04) * (t - down) / (20 - down)
        assert lr == pytest.approx(expected, rel=1e-12)
    assert opt.param_groups[0]["momentum"] == 0.0  # not cycled


def test_one_cycle_argument_errors():
    with pytest.raises(ValueError, match="neither momentum nor betas"):
        S.OneCycleLR(optim.Adagrad([nn.Parameter(np.zeros(1))]), max_lr=0.1, total_steps=5)
    S.OneCycleLR(optim.Adagrad([nn.Parameter(np.zeros(1))]), max_lr=0.1, total_steps=5,
                 cycle_momentum=False)
    with pytest.raises(ValueError, match="total_steps, or epochs and steps_per_epoch"):
        S.OneCycleLR(sgd(), max_lr=0.1)
    with pytest.raises(ValueError, match="total_steps must be a positive integer"):
        S.OneCycleLR(sgd(), max_lr=0.1, total_steps=0)
    with pytest.raises(ValueError, match="pct_start"):
        S.OneCycleLR(sgd(), max_lr=0.1, total_steps=5, pct_start=1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        S.OneCycleLR(sgd(), max_lr=0.1, total_steps=5, anneal_strategy="step")
    with pytest.raises(ValueError, match="expected 2 values for max_lr"):
        S.OneCycleLR(sgd(groups=2), max_lr=[0.1], total_steps=5)


def test_reduce_lr_on_plateau_patience_cooldown_and_min_lr():
    opt = sgd(1.0)
    scheduler = S.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    metrics = [5, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]
    got = []
    for m in metrics:
        scheduler.step(m)
        got.append(scheduler.get_last_lr()[0])
    # bad epochs 1, 2, 3 > patience -> halve; one cooldown step; then 3 more bad ones ...
    assert got == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.2]


@pytest.mark.parametrize("mode, threshold_mode, better, worse", [
    ("min", "rel", 0.98, 0.9995), ("min", "abs", 0.98, 0.995),
    ("max", "rel", 1.02, 1.0005), ("max", "abs", 1.02, 1.005)])
def test_reduce_lr_on_plateau_improvement_rules(mode, threshold_mode, better, worse):
    scheduler = S.ReduceLROnPlateau(sgd(), mode=mode, threshold=0.01 if threshold_mode ==
                                    "abs" else 1e-3, threshold_mode=threshold_mode)
    scheduler.step(1.0)
    assert scheduler.best == 1.0
    scheduler.step(worse)
    assert scheduler.num_bad_epochs == 1 and scheduler.best == 1.0
    scheduler.step(better)
    assert scheduler.num_bad_epochs == 0 and scheduler.best == better


def test_reduce_lr_on_plateau_errors():
    with pytest.raises(ValueError, match="factor must be < 1.0"):
        S.ReduceLROnPlateau(sgd(), factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        S.ReduceLROnPlateau(sgd(), mode="up")
    with pytest.raises(ValueError, match="threshold_mode"):
        S.ReduceLROnPlateau(sgd(), threshold_mode="pct")


MAKERS = {
    "StepLR": lambda o: S.StepLR(o, step_size=2, gamma=0.5),
    "MultiStepLR": lambda o: S.MultiStepLR(o, milestones=[1, 3]),
    "ExponentialLR": lambda o: S.ExponentialLR(o, gamma=0.8),
    "CosineAnnealingLR": lambda o: S.CosineAnnealingLR(o, T_max=4),
    "OneCycleLR": lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=12),
    "ReduceLROnPlateau": lambda o: S.ReduceLROnPlateau(o, patience=0, cooldown=1),
}


def advance(scheduler, steps, start=0):
    for t in range(start, start + steps):
        scheduler.optimizer.step()
        if isinstance(scheduler, S.ReduceLROnPlateau):
            scheduler.step(1.0 + t % 2)
        else:
            scheduler.step()


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_state_dict_round_trip_continues_identically(name):
    opt = sgd(momentum=0.9)
    scheduler = MAKERS[name](opt)
    advance(scheduler, 4)
    state, opt_state = scheduler.state_dict(), opt.state_dict()
    advance(scheduler, 5, start=4)
    expected = scheduler.get_last_lr(), opt.param_groups[0]["momentum"]

    opt2 = sgd(momentum=0.9)
    scheduler2 = MAKERS[name](opt2)
    opt2.load_state_dict(opt_state)
    scheduler2.load_state_dict(state)
    advance(scheduler2, 5, start=4)
    assert (scheduler2.get_last_lr(), opt2.param_groups[0]["momentum"]) == expected
    assert "optimizer" not in state


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_load_state_dict_rejects_another_schedulers_state(name):
    scheduler = MAKERS[name](sgd(momentum=0.9))
    other = "StepLR" if name != "StepLR" else "ExponentialLR"
    foreign = MAKERS[other](sgd(momentum=0.9)).state_dict()
    before = scheduler.state_dict()
    with pytest.raises(ValueError, match="does not fit"):
        scheduler.load_state_dict(foreign)
    assert scheduler.state_dict() == before


def test_resuming_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(sgd(), step_size=1, last_epoch=3)


@given(st.integers(1, 50), st.floats(0.1, 0.9), st.integers(1, 5))
def test_step_lr_matches_closed_form(steps, gamma, step_size):
    scheduler = S.StepLR(sgd(0.3), step_size=step_size, gamma=gamma)
    advance(scheduler, steps)
    assert scheduler.get_last_lr()[0] == pytest.approx(0.3 * gamma ** (steps // step_size),
                                                       rel=1e-9)
