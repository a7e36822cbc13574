"""Weight initialisation, in place, reproducible from a `numpy.random.Generator`.

Every function fills a Tensor (or an ndarray) in place and returns it, under
PyTorch's names. Without `generator=`, samples come from the package's default
generator (`tinygrad_mnist.random`), which `manual_seed(seed)` (or `tg.manual_seed`)
resets, so `manual_seed(0); model = Net()` is reproducible (like `torch.manual_seed`).
Samples are drawn in float64 and cast to the tensor's dtype, so one seed gives the
same values for every dtype.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple, TypeVar

import numpy as np

from .. import random
from ..tensor import Tensor

T = TypeVar("T", Tensor, np.ndarray)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator (used by inits, `Linear`, dropout, `tg.randn`,
    shuffling) in place, as `numpy.random.default_rng(seed)` would seed it; returns it."""
    return random.manual_seed(seed)


def default_generator() -> np.random.Generator:
    """The generator used when no `generator=` is given."""
    return random.default_generator


def get_rng_state() -> Dict[str, Any]:
    """The default generator's state (a plain nested dict; storable with `save`)."""
    return random.get_rng_state()


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore a state from `get_rng_state()`."""
    random.set_rng_state(state)


def _rng(generator: Optional[np.random.Generator]) -> np.random.Generator:
    return random.generator_or_default(generator)


def _fill(tensor: T, values: Any) -> T:
    data = tensor.data if isinstance(tensor, Tensor) else tensor
    np.copyto(data, values, casting="unsafe")
    return tensor


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table): 1 for linear and
    sigmoid, 5/3 for tanh, √2 for relu, √(2/(1+slope²)) for leaky_relu (slope
    `param`, default 0.01), 3/4 for selu."""
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor: Any) -> Tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel), PyTorch's layout."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, "
                         f"got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor: Any, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _std(gain: float, fan: int) -> float:
    return gain / math.sqrt(fan) if fan else 0.0  # fan 0: an empty tensor, nothing to fill


def zeros_(tensor: T) -> T:
    return _fill(tensor, 0)


def ones_(tensor: T) -> T:
    return _fill(tensor, 1)


def constant_(tensor: T, value: float) -> T:
    return _fill(tensor, value)


def uniform_(tensor: T, a: float = 0.0, b: float = 1.0,
             generator: Optional[np.random.Generator] = None) -> T:
    """Fill with U(a, b)."""
    if not a <= b:
        raise ValueError(f"uniform_: need a <= b, got a={a}, b={b}")
    return _fill(tensor, _rng(generator).uniform(a, b, tensor.shape))


def normal_(tensor: T, mean: float = 0.0, std: float = 1.0,
            generator: Optional[np.random.Generator] = None) -> T:
    """Fill with N(mean, std²)."""
    if not std >= 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    return _fill(tensor, _rng(generator).normal(mean, std, tensor.shape))


def xavier_uniform_(tensor: T, gain: float = 1.0,
                    generator: Optional[np.random.Generator] = None) -> T:
    """Glorot: U(-a, a) with a = gain·√(6/(fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * _std(gain * math.sqrt(2.0), fan_in + fan_out)
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: T, gain: float = 1.0,
                   generator: Optional[np.random.Generator] = None) -> T:
    """Glorot: N(0, std²) with std = gain·√(2/(fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = _std(gain * math.sqrt(2.0), fan_in + fan_out)
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor: T, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: Optional[np.random.Generator] = None) -> T:
    """He: U(-b, b) with b = gain·√(3/fan), gain = `calculate_gain(nonlinearity, a)`
    and fan the `mode` ("fan_in" keeps the forward variance, "fan_out" the backward)."""
    std = _std(calculate_gain(nonlinearity, a), _fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: T, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: Optional[np.random.Generator] = None) -> T:
    """He: N(0, std²) with std = gain/√fan (see `kaiming_uniform_`)."""
    std = _std(calculate_gain(nonlinearity, a), _fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def trunc_normal_(tensor: T, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator: Optional[np.random.Generator] = None) -> T:
    """Fill with N(mean, std²) restricted to [a, b]: samples outside are drawn again."""
    if not std > 0 or not a < b:
        raise ValueError(f"trunc_normal_: need std > 0 and a < b, got std={std}, a={a}, "
                         f"b={b}")
    rng = _rng(generator)
    values = rng.normal(mean, std, tensor.shape)
    outside = (values < a) | (values > b)
    while outside.any():
        values[outside] = rng.normal(mean, std, int(outside.sum()))
        outside = (values < a) | (values > b)
    return _fill(tensor, values)


def orthogonal_(tensor: T, gain: float = 1.0,
                generator: Optional[np.random.Generator] = None) -> T:
    """Fill with a (semi-)orthogonal matrix times `gain`: the Q of the QR decomposition
    of a normal matrix (signs fixed by R's diagonal), for the (rows, Π other dims) view
    of `tensor`, as PyTorch does."""
    if len(tensor.shape) < 2:
        raise ValueError(f"orthogonal_: needs at least 2 dimensions, got shape "
                         f"{tuple(tensor.shape)}")
    rows = tensor.shape[0]
    cols = int(np.prod(tensor.shape[1:]))
    flat = _rng(generator).normal(0.0, 1.0, (rows, cols))
    q, r = np.linalg.qr(flat.T if rows < cols else flat)
    q = q * np.sign(np.diag(r))
    q = q.T if rows < cols else q
    return _fill(tensor, gain * q.reshape(tensor.shape))


def eye_(tensor: T) -> T:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal)."""
    if len(tensor.shape) != 2:
        raise ValueError(f"eye_: needs a 2-D tensor, got shape {tuple(tensor.shape)}")
    return _fill(tensor, np.eye(*tensor.shape))


def lecun_normal_(tensor: T, generator: Optional[np.random.Generator] = None) -> T:
    """LeCun: N(0, 1/fan_in) (plain normal, not truncated)."""
    std = _std(1.0, _fan(tensor, "fan_in"))
    return normal_(tensor, 0.0, std, generator)


def default_(weight: T, bias: Optional[T] = None,
             generator: Optional[np.random.Generator] = None) -> T:
    """PyTorch's default initialisation of Linear and Conv2d: the weight from
    kaiming_uniform_(a=√5), which is U(-1/√fan_in, 1/√fan_in), and the bias from the
    same range."""
    kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if bias is not None:
        fan_in, _ = calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
        uniform_(bias, -bound, bound, generator)
    return weight
