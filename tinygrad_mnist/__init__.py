"""tinygrad_mnist: a small, readable reverse-mode autodiff framework on NumPy."""
__version__ = "0.1.0"

from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .conv import avg_pool2d, conv2d, max_pool2d
from .gradcheck import GradcheckError, gradcheck
from .serialization import CheckpointError, load, save
from .tensor import (Tensor, as_tensor, cat, concatenate, from_numpy, ones, randn, stack,
                     tensor, uniform, zeros)

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "gradcheck",
           "GradcheckError", "tensor", "as_tensor", "from_numpy", "zeros", "ones", "randn",
           "uniform", "concatenate", "cat", "stack", "cross_entropy", "conv2d", "max_pool2d",
           "avg_pool2d", "save", "load", "CheckpointError", "nn", "optim"]

from . import nn, optim  # noqa: E402  (they build on the names above)
from .nn.functional import cross_entropy  # noqa: E402  (tg.cross_entropy, as F.cross_entropy)
