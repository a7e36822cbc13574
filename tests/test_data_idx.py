"""IDX reader/writer: round trips and a clear error for every kind of damage."""
import gzip
import os
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from data_helpers import isolated_env  # noqa: F401 - autouse fixture
from tinygrad_mnist.data import IDXError, encode_idx, parse_idx, read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@given(hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=1, max_dims=4, min_side=0,
                                                             max_side=5)))
def test_encode_parse_round_trip(array):
    back = parse_idx(encode_idx(array))
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_header_is_big_endian_idx():
    data = encode_idx(np.zeros((2, 3), dtype=np.int16))
    assert data[:4] == b"\x00\x00\x0b\x02"
    assert struct.unpack(">II", data[4:12]) == (2, 3) and len(data) == 12 + 2 * 3 * 2


@pytest.mark.parametrize("compress", [True, False])
def test_write_then_read_file(tmp_path, compress):
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    path = write_idx(tmp_path / ("a.gz" if compress else "a"), array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    np.testing.assert_array_equal(read_idx(path), array)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_unsupported_dtype_creates_nothing(tmp_path):
    with pytest.raises(IDXError, match="cannot encode dtype int64"):
        write_idx(tmp_path / "x.gz", np.zeros(3, dtype=np.int64))
    assert list(tmp_path.iterdir()) == []


GOOD = encode_idx(np.arange(10, dtype=np.uint8).reshape(2, 5))


@pytest.mark.parametrize("data, message", [
    (GOOD[:-1], r"truncated: shape \(2, 5\) of uint8 needs 10 data bytes, found 9"),
    (GOOD + b"\x00", "has trailing bytes"),
    (b"\x08\x03" + GOOD[2:], "bad magic number 0x08030802"),
    (GOOD[:2] + b"\x07" + GOOD[3:], "bad magic number"),
    (GOOD[:5], r"truncated header: 2 dimensions need 12 bytes"),
    (b"\x00\x00", "too short for an IDX header"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
])
@pytest.mark.parametrize("compress", [False, True])
def test_damaged_files_raise_naming_the_file(tmp_path, data, message, compress):
    path = tmp_path / ("bad.gz" if compress else "bad")
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(IDXError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(GOOD * 100)[:-20])
    with pytest.raises(IDXError, match=f"{path}: corrupt or truncated gzip"):
        read_idx(path)


def test_written_files_are_world_readable(tmp_path):
    umask = os.umask(0o022)  # the usual umask: new files are rw-r--r--
    try:
        path = write_idx(tmp_path / "a.gz", np.zeros(3, np.uint8))
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_gzip_bomb_is_refused_before_it_fills_memory(tmp_path):
    from tinygrad_mnist.data.files import read_uncompressed
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\0" * 10_000_000))  # about 10 kB
    assert len(read_uncompressed(path)) == 10_000_000   # within the default limit
    with pytest.raises(IDXError, match="expands to more than 1,000,000 bytes"):
        read_uncompressed(path, limit=1_000_000)
