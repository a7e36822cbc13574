"""tinygrad_mnist: a small, readable reverse-mode autodiff framework on NumPy.

Its names follow PyTorch's, so `import tinygrad_mnist as torch` runs much PyTorch code
as it is (docs/pytorch.md lists the supported surface and the differences).
"""
__version__ = "0.1.0"

from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .creation import (arange, empty, eye, full, full_like, linspace, ones, ones_like, rand,
                       rand_like, randint, randn, randn_like, randperm, zeros, zeros_like)
from .device import accelerator, backends, cuda, device
from .dtypes import (bool, double, finfo, float, float16, float32, float64, get_default_dtype,
                     half, iinfo, int, int8, int16, int32, int64, long, short, uint8)
from .functions import *  # noqa: F401,F403  (tg.exp, tg.sum, tg.max, ...: see functions.py)
from .functions import __all__ as _functions
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .random import Generator, get_rng_state, initial_seed, manual_seed, set_rng_state
from .serialization import CheckpointError, load, save
from .tensor import Tensor, as_tensor, cat, concatenate, from_numpy, stack, tensor, uniform
from .mixin.base import Size

concat = cat

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "gradcheck",
           "GradcheckError", "tensor", "as_tensor", "from_numpy", "zeros", "ones", "randn",
           "uniform", "concatenate", "cat", "concat", "stack", "cross_entropy", "conv2d",
           "max_pool2d", "avg_pool2d", "save", "load", "CheckpointError", "nn", "optim",
           "utils", "arange", "empty", "eye", "full", "full_like", "linspace", "ones_like",
           "rand", "rand_like", "randint", "randn_like", "randperm", "zeros_like", "device",
           "cuda", "backends", "accelerator", "bool", "double", "finfo", "float", "float16",
           "float32", "float64", "get_default_dtype", "half", "iinfo", "int", "int8", "int16",
           "int32", "int64", "long", "short", "uint8", "Generator", "manual_seed",
           "initial_seed", "get_rng_state", "set_rng_state", "Size"] + list(_functions)
__all__ += ["gradgradcheck", "autograd", "func"]   # derivatives of derivatives

from . import func, nn, optim, utils  # noqa: E402  (they build on the names above)
from .nn.functional import (avg_pool2d, conv2d, cross_entropy,  # noqa: E402  (as F's)
                            max_pool2d)


def __getattr__(name: str):
    """`tg.jit` (the compiled training step) is imported when first used, so that
    `import tinygrad_mnist` loads the framework only."""
    if name == "jit":
        import importlib
        return importlib.import_module(".jit", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
