"""Reader and writer for the IDX format of the MNIST files (raw or gzip-compressed).

Layout: two zero bytes, a type code, the number of dimensions ``d``; then ``d`` big-endian
uint32 sizes; then the values in C order, big-endian.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np

from ..atomic import atomic_write
from .errors import IDXError
from .files import read_uncompressed

#: IDX type code -> big-endian NumPy dtype.
IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}


def parse_idx(data: bytes, source: Union[str, os.PathLike] = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array in native byte order; errors name ``source``."""
    if len(data) < 4:
        raise IDXError(f"{source}: too short for an IDX header ({len(data)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in IDX_DTYPES:
        raise IDXError(f"{source}: bad magic number 0x{data[:4].hex()} "
                       f"(expected 0x0000, a type code in {sorted(IDX_DTYPES)}, ndim)")
    if ndim == 0:
        raise IDXError(f"{source}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{source}: truncated header: {ndim} dimensions need {header} bytes, "
                       f"file has {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[code]
    if math.prod(n for n in shape if n) * dtype.itemsize >= 2 ** 63:
        raise IDXError(f"{source}: impossible shape {_shape_text(shape)}: larger than any "
                       f"array (a damaged header?)")
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    actual = len(data) - header
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise IDXError(f"{source}: {problem}: shape {_shape_text(shape)} of {dtype.name} "
                       f"needs {_count_text(expected)} data bytes, found {actual:,}")
    # astype copies: the result is writable, native-endian and does not pin ``data``.
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(
        dtype.newbyteorder("="))


def _shape_text(shape: tuple) -> str:
    """A shape as text, its first sizes only when it has many dimensions."""
    if len(shape) <= 6:
        return str(tuple(shape))
    return f"({', '.join(map(str, shape[:4]))}, ... {len(shape)} dimensions)"


def _count_text(count: int) -> str:
    """A count as text; an astronomical one (from a damaged header) as its magnitude."""
    return f"{count:,}" if count < 10 ** 18 else f"about 10^{len(str(count)) - 1}"


def read_idx(path: os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw (detected from its content)."""
    return parse_idx(read_uncompressed(path), path)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode ``array`` (uint8, int8, int16, int32, float32 or float64) as IDX bytes."""
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise IDXError(f"cannot encode dtype {array.dtype} as IDX; "
                       f"supported: {[d.name for d in IDX_DTYPES.values()]}")
    if array.ndim == 0:
        raise IDXError("cannot encode a 0-dimensional array as IDX")
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def dump_idx(array: np.ndarray, f: BinaryIO, compress: bool = True) -> None:
    """Write ``array`` as IDX into the open binary file ``f``, gzip-compressed if ``compress``."""
    _write(f, encode_idx(array), compress)


def write_idx(path: os.PathLike, array: np.ndarray, compress: Optional[bool] = None) -> Path:
    """Write ``array`` as an IDX file atomically (creating its directory); gzip-compressed
    if ``compress`` is true (default: when ``path`` ends in ``.gz``). Returns the path."""
    path = Path(path)
    data = encode_idx(array)  # fails on an unsupported dtype before anything is created
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda f: _write(f, data, path.suffix == ".gz" if compress is None
                                               else compress))


def _write(f: BinaryIO, data: bytes, compress: bool) -> None:
    # level 6: much faster than gzip's default 9 on the MNIST images, barely larger
    if compress:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, compresslevel=6) as gz:
            gz.write(data)
    else:
        f.write(data)
