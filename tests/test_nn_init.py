"""nn.init: gains, fans, the distributions' scales, in-place filling, reproducibility."""
import math

import numpy as np
import pytest

import tinygrad_mnist as tg
from tinygrad_mnist import nn
from tinygrad_mnist.nn import init


def weight(shape=(200, 300), dtype=np.float32):
    return nn.Parameter(np.zeros(shape, dtype=dtype))


def test_calculate_gain_table():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


def test_fans_follow_pytorch_layout():
    assert init.calculate_fan_in_and_fan_out(np.zeros((30, 20))) == (20, 30)
    assert init.calculate_fan_in_and_fan_out(np.zeros((8, 3, 5, 5))) == (75, 200)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.calculate_fan_in_and_fan_out(np.zeros(5))


@pytest.mark.parametrize("fill, std", [
    (lambda w, g: init.xavier_uniform_(w, generator=g), math.sqrt(2 / 500)),
    (lambda w, g: init.xavier_normal_(w, gain=2.0, generator=g), 2 * math.sqrt(2 / 500)),
    (lambda w, g: init.kaiming_uniform_(w, nonlinearity="relu", generator=g),
     math.sqrt(2 / 300)),
    (lambda w, g: init.kaiming_normal_(w, nonlinearity="relu", generator=g), math.sqrt(2 / 300)),
    (lambda w, g: init.kaiming_normal_(w, mode="fan_out", nonlinearity="tanh", generator=g),
     5 / 3 / math.sqrt(200)),
    (lambda w, g: init.kaiming_uniform_(w, a=math.sqrt(5), generator=g), 1 / math.sqrt(900)),
    (lambda w, g: init.lecun_normal_(w, generator=g), 1 / math.sqrt(300)),
    (lambda w, g: init.normal_(w, 0.0, 0.05, generator=g), 0.05),
    (lambda w, g: init.uniform_(w, -0.3, 0.3, generator=g), 0.3 / math.sqrt(3)),
])
def test_initialisers_have_the_documented_scale(fill, std):
    w = weight()
    assert fill(w, np.random.default_rng(0)) is w
    assert w.dtype == np.float32
    assert abs(w.data.mean()) < 0.02 * std * 10
    assert w.data.std() == pytest.approx(std, rel=0.02)  # 60000 samples


def test_uniform_initialisers_respect_their_bounds():
    w = weight()
    init.xavier_uniform_(w, generator=np.random.default_rng(1))
    bound = math.sqrt(6 / 500)
    assert np.abs(w.data).max() <= bound
    init.kaiming_uniform_(w, generator=np.random.default_rng(1))  # leaky_relu, a=0: √2 gain
    assert np.abs(w.data).max() <= math.sqrt(6 / 300) + 1e-7


def test_constant_fills_and_arrays_are_accepted():
    w = weight((3, 4))
    init.ones_(w)
    assert np.all(w.data == 1)
    init.zeros_(w)
    assert np.all(w.data == 0)
    init.constant_(w, 0.25)
    assert np.all(w.data == 0.25)
    array = np.zeros((3, 4))
    assert init.normal_(array, generator=np.random.default_rng(0)) is array
    assert np.any(array != 0)


def test_reproducible_from_generator_and_manual_seed_for_every_dtype():
    a, b = weight((5, 6), np.float64), weight((5, 6), np.float32)
    init.kaiming_normal_(a, generator=np.random.default_rng(42))
    init.kaiming_normal_(b, generator=np.random.default_rng(42))
    np.testing.assert_array_equal(a.data.astype(np.float32), b.data)
    init.manual_seed(7)
    init.xavier_uniform_(a)
    state = init.get_rng_state()
    first = a.data.copy()
    init.xavier_uniform_(a)
    init.set_rng_state(state)
    second = weight((5, 6), np.float64)
    init.xavier_uniform_(second)
    np.testing.assert_array_equal(second.data, a.data)
    init.manual_seed(7)
    init.xavier_uniform_(a)
    np.testing.assert_array_equal(a.data, first)
    generator = init.default_generator()
    assert init.manual_seed(3) is generator  # reseeded in place: references stay valid
    np.testing.assert_array_equal(generator.random(3), np.random.default_rng(3).random(3))


def test_argument_errors():
    w = weight((2, 2))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_uniform_(w, mode="fan_avg")
    with pytest.raises(ValueError, match="a <= b"):
        init.uniform_(w, 1.0, 0.0)
    with pytest.raises(ValueError, match="std"):
        init.normal_(w, 0.0, -1.0)
    empty = weight((0, 3))
    assert init.xavier_normal_(empty) is empty and init.kaiming_uniform_(empty) is empty
    assert nn.Linear(0, 2).weight.shape == (2, 0)


def test_no_graph_is_recorded():
    w = weight((3, 3))
    init.normal_(w, generator=np.random.default_rng(0))
    assert w.is_leaf and w.grad is None
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad, np.full((3, 3), 2, np.float32))
    assert isinstance(w, tg.Tensor)
