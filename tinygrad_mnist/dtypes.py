"""Data types under PyTorch's names (`tg.float32`, `tg.long`, ...): they are NumPy
dtypes, so `t.dtype == tg.float32` and `np.zeros(3, tg.long)` both work.

`as_dtype` turns any accepted spelling (a NumPy dtype or scalar type, a Python type,
a dtype name) into a `numpy.dtype`, with PyTorch's meaning of the Python types:
`float` is float64, `int` is int64, `bool` is bool.
"""
from __future__ import annotations

import builtins
from typing import Any

import numpy as np

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

finfo = np.finfo
iinfo = np.iinfo

_PYTHON_TYPES = {builtins.float: float64, builtins.int: int64, builtins.bool: bool_}


def as_dtype(dtype: Any) -> np.dtype:
    """`dtype` as a numeric `numpy.dtype`, or a one-line TypeError."""
    if isinstance(dtype, type) and dtype in _PYTHON_TYPES:
        return _PYTHON_TYPES[dtype]
    try:
        result = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"expected a dtype such as tg.float32 or tg.long, got "
                        f"{dtype!r}") from None
    if result.kind not in "fiub":
        raise TypeError(f"unsupported dtype {result}: tensors hold numbers or booleans")
    return result


def get_default_dtype() -> np.dtype:
    """The dtype of floating-point tensors made from Python numbers: float32."""
    return float32


def is_floating_point(dtype: Any) -> builtins.bool:
    return as_dtype(dtype).kind == "f"


# PyTorch's short names (defined last: they shadow the builtins in this module).
half, float, double = float16, float32, float64
short, int, long, bool = int16, int32, int64, bool_
