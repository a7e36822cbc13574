"""nn.utils: gradient clipping and the L1 penalty."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_mnist as tg
from tinygrad_mnist import gradcheck, nn
from strategies import arrays


def params_with_grads(*grads):
    params = []
    for g in grads:
        p = nn.Parameter(np.zeros_like(np.asarray(g, dtype=np.float32)))
        p.grad = np.array(g, dtype=np.float32)
        params.append(p)
    return params


def test_clip_grad_norm_scales_to_max_norm_and_returns_total():
    params = params_with_grads([3.0, 0.0], [[4.0]])
    total = nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert total == pytest.approx(5.0)
    joint = np.concatenate([p.grad.ravel() for p in params])
    assert np.linalg.norm(joint) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(joint, [0.6, 0.0, 0.8], rtol=1e-5)
    assert all(p.grad.dtype == np.float32 for p in params)


def test_clip_grad_norm_leaves_small_gradients_alone():
    params = params_with_grads([0.3, 0.4])
    assert nn.utils.clip_grad_norm_(params, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(params[0].grad, np.array([0.3, 0.4], np.float32))


def test_clip_grad_norm_other_norms_and_missing_grads():
    params = params_with_grads([3.0, -4.0], [1.0])
    params.append(nn.Parameter(np.zeros(2, np.float32)))  # no grad: skipped
    assert nn.utils.clip_grad_norm_(params, 100.0, norm_type=math.inf) == 4.0
    assert nn.utils.clip_grad_norm_(params, 100.0, norm_type=1) == pytest.approx(8.0)
    assert nn.utils.clip_grad_norm_(params[0], 4.0, norm_type="inf") == 4.0
    assert nn.utils.clip_grad_norm_([nn.Parameter(np.zeros(1))], 1.0) == 0.0
    with pytest.raises(ValueError, match="norm_type"):
        nn.utils.clip_grad_norm_(params, 1.0, norm_type=0)
    bad = params_with_grads([np.nan])
    with pytest.raises(RuntimeError, match="nan"):
        nn.utils.clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)


@given(st.integers(1, 6).flatmap(lambda n: arrays((n,), -10.0, 10.0)),
       st.floats(0.01, 20.0))
def test_clipped_norm_never_exceeds_max_norm(g, max_norm):
    params = params_with_grads(g)
    before = np.linalg.norm(g)
    total = nn.utils.clip_grad_norm_(params, max_norm)
    assert total == pytest.approx(before, rel=1e-5, abs=1e-6)
    assert np.linalg.norm(params[0].grad) <= max_norm * (1 + 1e-5)


def test_clip_grad_value():
    params = params_with_grads([-3.0, 0.5, 2.0])
    nn.utils.clip_grad_value_(params, 1.0)
    np.testing.assert_array_equal(params[0].grad, [-1.0, 0.5, 1.0])


def test_l1_penalty_value_and_gradient():
    model = nn.Sequential(nn.Linear(3, 2, generator=np.random.default_rng(0)))
    penalty = nn.utils.l1_penalty(model.parameters())
    expected = sum(np.abs(p.data).sum() for p in model.parameters())
    assert penalty.item() == pytest.approx(expected, rel=1e-6)
    assert penalty.requires_grad and penalty.dtype == np.float32
    (0.5 * penalty).backward()
    for p in model.parameters():
        np.testing.assert_array_equal(p.grad, 0.5 * np.sign(p.data))
    assert nn.utils.l1_penalty([]).item() == 0.0


def test_l1_penalty_gradcheck_away_from_zero():
    a = np.array([[0.5, -1.5], [2.0, -0.25]])
    b = np.array([-0.75, 1.0])
    assert gradcheck(lambda x, y: nn.utils.l1_penalty([x, y]), a, b)
    assert isinstance(nn.utils.l1_penalty(tg.Tensor(b, requires_grad=True)), tg.Tensor)
