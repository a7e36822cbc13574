"""Tensor methods as functions, as PyTorch spells them: `tg.exp(t)` is `t.exp()`,
`tg.sum(t, dim=1)` is `t.sum(dim=1)`, `tg.max(t, 1)` is `t.max(1)`. Each takes a Tensor,
a NumPy array or a number, and has the method's gradient. Also grad-mode helpers
(`set_grad_enabled`, `inference_mode`) and `is_tensor`.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .autograd import enable_grad, no_grad
from .tensor import ArrayLike, Tensor, as_tensor, einsum  # noqa: F401  (tg.einsum)


def _t(x: ArrayLike) -> Tensor:
    return as_tensor(x)


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return _t(input).numel()


# --------------------------------------------------------------------- elementwise
def abs(input: ArrayLike) -> Tensor:
    return _t(input).abs()


def exp(input: ArrayLike) -> Tensor:
    return _t(input).exp()


def log(input: ArrayLike) -> Tensor:
    return _t(input).log()


def sqrt(input: ArrayLike) -> Tensor:
    return _t(input).sqrt()


def sin(input: ArrayLike) -> Tensor:
    return _t(input).sin()


def cos(input: ArrayLike) -> Tensor:
    return _t(input).cos()


def tanh(input: ArrayLike) -> Tensor:
    return _t(input).tanh()


def sigmoid(input: ArrayLike) -> Tensor:
    return _t(input).sigmoid()


def relu(input: ArrayLike) -> Tensor:
    return _t(input).relu()


def square(input: ArrayLike) -> Tensor:
    return _t(input).square()


def neg(input: ArrayLike) -> Tensor:
    return -_t(input)


def pow(input: ArrayLike, exponent: Any) -> Tensor:
    return _t(input) ** exponent


def clamp(input: ArrayLike, min: Any = None, max: Any = None) -> Tensor:
    return _t(input).clamp(min, max)


clip = clamp


def round(input: ArrayLike) -> Tensor:
    return _t(input).round()


def floor(input: ArrayLike) -> Tensor:
    return _t(input).floor()


def ceil(input: ArrayLike) -> Tensor:
    return _t(input).ceil()


def rsqrt(input: ArrayLike) -> Tensor:
    return _t(input).rsqrt()


def exp2(input: ArrayLike) -> Tensor:
    return _t(input).exp2()


def erf(input: ArrayLike) -> Tensor:
    return _t(input).erf()


def log1p(input: ArrayLike) -> Tensor:
    return _t(input).log1p()


def sign(input: ArrayLike) -> Tensor:
    return _t(input).sign()


def softmax(input: ArrayLike, dim: int) -> Tensor:
    return _t(input).softmax(dim)


def log_softmax(input: ArrayLike, dim: int) -> Tensor:
    return _t(input).log_softmax(dim)


# ---------------------------------------------------------------------- two inputs
def add(input: ArrayLike, other: Any, *, alpha: float = 1) -> Tensor:
    return _t(input).add(other, alpha=alpha)


def sub(input: ArrayLike, other: Any, *, alpha: float = 1) -> Tensor:
    return _t(input).sub(other, alpha=alpha)


def mul(input: ArrayLike, other: Any) -> Tensor:
    return _t(input) * other


def div(input: ArrayLike, other: Any, *, rounding_mode: Any = None) -> Tensor:
    return _t(input).div(other, rounding_mode=rounding_mode)


def matmul(input: ArrayLike, other: Any) -> Tensor:
    return _t(input) @ other


mm = matmul


def maximum(input: ArrayLike, other: Any) -> Tensor:
    return _t(input).maximum(other)


def minimum(input: ArrayLike, other: Any) -> Tensor:
    return _t(input).minimum(other)


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """`input` where `condition` holds, else `other` (either may be a number)."""
    if not isinstance(input, Tensor) and isinstance(other, Tensor):
        return other.masked_fill(condition, input)     # other's dtype, as for x.where(...)
    return _t(input).where(condition, other)


def eq(input: ArrayLike, other: Any) -> Tensor:
    return _t(input) == other


def ne(input: ArrayLike, other: Any) -> Tensor:
    return _t(input) != other


def lt(input: ArrayLike, other: Any) -> Tensor:
    return _t(input) < other


def le(input: ArrayLike, other: Any) -> Tensor:
    return _t(input) <= other


def gt(input: ArrayLike, other: Any) -> Tensor:
    return _t(input) > other


def ge(input: ArrayLike, other: Any) -> Tensor:
    return _t(input) >= other


def equal(input: ArrayLike, other: Any) -> bool:
    return _t(input).equal(other)


def allclose(input: ArrayLike, other: Any, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    return _t(input).allclose(other, rtol, atol)


def isclose(input: ArrayLike, other: Any, rtol: float = 1e-5, atol: float = 1e-8) -> Tensor:
    return _t(input).isclose(other, rtol, atol)


# ---------------------------------------------------------------------- reductions
def sum(input: ArrayLike, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _t(input).sum(dim, keepdim)


def mean(input: ArrayLike, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _t(input).mean(dim, keepdim)


def std(input: ArrayLike, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
        correction: Any = None) -> Tensor:
    return _t(input).std(dim, unbiased, keepdim, correction=correction)


def var(input: ArrayLike, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
        correction: Any = None) -> Tensor:
    return _t(input).var(dim, unbiased, keepdim, correction=correction)


def max(input: ArrayLike, dim: Any = None, keepdim: bool = False) -> Any:
    return _t(input).max(dim, keepdim)


def min(input: ArrayLike, dim: Any = None, keepdim: bool = False) -> Any:
    return _t(input).min(dim, keepdim)


def amax(input: ArrayLike, dim: Any = (), keepdim: bool = False) -> Tensor:
    return _t(input).amax(dim, keepdim)


def amin(input: ArrayLike, dim: Any = (), keepdim: bool = False) -> Tensor:
    return _t(input).amin(dim, keepdim)


def argmax(input: ArrayLike, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _t(input).argmax(dim, keepdim)


def argmin(input: ArrayLike, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _t(input).argmin(dim, keepdim)


def all(input: ArrayLike, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _t(input).all(dim, keepdim)


def any(input: ArrayLike, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _t(input).any(dim, keepdim)


def norm(input: ArrayLike, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Tensor:
    return _t(input).norm(p, dim, keepdim)


def cumsum(input: ArrayLike, dim: int) -> Tensor:
    return _t(input).cumsum(dim)


def prod(input: ArrayLike, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
    return _t(input).prod(dim, keepdim)


def remainder(input: ArrayLike, other: Any) -> Tensor:
    return _t(input) % other


def logsumexp(input: ArrayLike, dim: Any, keepdim: bool = False) -> Tensor:
    return _t(input).logsumexp(dim, keepdim)


def sort(input: ArrayLike, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    return _t(input).sort(dim, descending, stable)


def topk(input: ArrayLike, k: int, dim: int = -1, largest: bool = True,
         sorted: bool = True) -> Any:
    return _t(input).topk(k, dim, largest, sorted)


# --------------------------------------------------------------------------- shape
def reshape(input: ArrayLike, shape: Any) -> Tensor:
    return _t(input).reshape(shape)


def flatten(input: ArrayLike, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return _t(input).flatten(start_dim, end_dim)


def squeeze(input: ArrayLike, dim: Any = None) -> Tensor:
    return _t(input).squeeze(dim)


def unsqueeze(input: ArrayLike, dim: int) -> Tensor:
    return _t(input).unsqueeze(dim)


def transpose(input: ArrayLike, dim0: int, dim1: int) -> Tensor:
    return _t(input).transpose(dim0, dim1)


def permute(input: ArrayLike, dims: Any) -> Tensor:
    return _t(input).permute(dims)


def t(input: ArrayLike) -> Tensor:
    return _t(input).t()


def gather(input: ArrayLike, dim: int, index: Any) -> Tensor:
    return _t(input).gather(dim, index)


def index_select(input: ArrayLike, dim: int, index: Any) -> Tensor:
    return _t(input).index_select(dim, index)


def narrow(input: ArrayLike, dim: int, start: int, length: int) -> Tensor:
    return _t(input).narrow(dim, start, length)


def split(tensor: ArrayLike, split_size_or_sections: Any, dim: int = 0) -> Any:
    return _t(tensor).split(split_size_or_sections, dim)


def chunk(input: ArrayLike, chunks: int, dim: int = 0) -> Any:
    return _t(input).chunk(chunks, dim)


def bmm(input: ArrayLike, mat2: ArrayLike) -> Tensor:
    """Batched matrix products of (B, N, M) and (B, M, P) tensors."""
    a, b = _t(input), _t(mat2)
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ValueError(f"bmm: expected (B, N, M) and (B, M, P), got {a.shape} and "
                         f"{b.shape}")
    return a @ b


def outer(input: ArrayLike, vec2: ArrayLike) -> Tensor:
    """out[i, j] = input[i]·vec2[j] of two 1-D tensors."""
    a, b = _t(input), _t(vec2)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"outer: expected two 1-D tensors, got {a.shape} and {b.shape}")
    return a.reshape(-1, 1) * b.reshape(1, -1)


def tril(input: ArrayLike, diagonal: int = 0) -> Tensor:
    """The lower triangle (j <= i + diagonal) of the last two dimensions, zeros above."""
    x = _t(input)
    return x.masked_fill(~np.tril(np.ones(x.shape[-2:], bool), diagonal), 0)


def triu(input: ArrayLike, diagonal: int = 0) -> Tensor:
    """The upper triangle (j >= i + diagonal) of the last two dimensions, zeros below."""
    x = _t(input)
    return x.masked_fill(~np.triu(np.ones(x.shape[-2:], bool), diagonal), 0)


# ------------------------------------------------------------------------ grad mode
class set_grad_enabled:
    """Record graphs (True) or not (False): from now on when called, or for a block
    when used as `with set_grad_enabled(mode):` (the previous mode comes back after)."""

    def __init__(self, mode: bool):
        self._mode = enable_grad() if mode else no_grad()
        self._mode.__enter__()  # takes effect at once, as in PyTorch

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        self._mode.__exit__(*exc)


def inference_mode(mode: bool = True) -> Any:
    """`no_grad()` (this engine has no separate inference mode)."""
    return no_grad() if mode else enable_grad()


__all__ = [name for name in list(globals()) if not name.startswith("_") and name not in (
    "annotations", "Any", "Optional", "np", "ArrayLike", "Tensor", "as_tensor", "enable_grad",
    "no_grad")]
