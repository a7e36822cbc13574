"""Dataset files: their SHA-256 pins (the four MNIST files' among them), and verifying and
installing them."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, List, Optional, Sequence

from ..atomic import atomic_write
from .errors import ChecksumError, IDXError

GZIP_MAGIC = b"\x1f\x8b"
#: Environment variable naming a directory that holds the four files.
ENV_VAR = "TINYGRAD_MNIST_DATA"


@dataclass(frozen=True)
class FileSpec:
    """One dataset file: its role (``train_images``, ``train_labels``, ``test_images``,
    ``test_labels``), its name without ``.gz``, and the SHA-256 of its *uncompressed*
    content. A dataset whose publisher gives only the digest of the ``.gz`` file as
    distributed pins that instead (``sha256=None``, ``gz_sha256``): such a file is accepted
    only as that exact ``.gz``."""
    role: str
    name: str
    sha256: Optional[str]
    gz_sha256: Optional[str] = None


#: The canonical MNIST files. Tests monkeypatch this table to pin small fake files.
MNIST_FILES: Sequence[FileSpec] = (
    FileSpec("train_images", "train-images-idx3-ubyte",
             "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    FileSpec("train_labels", "train-labels-idx1-ubyte",
             "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    FileSpec("test_images", "t10k-images-idx3-ubyte",
             "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    FileSpec("test_labels", "t10k-labels-idx1-ubyte",
             "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
)


#: A gzip file may expand to this many times its size (MNIST's expand about 5 times),
#: or to MIN_GUNZIP_LIMIT bytes, whichever is more: a few kilobytes of "gzip bomb"
#: must not become gigabytes in memory.
MAX_GUNZIP_RATIO = 200
MIN_GUNZIP_LIMIT = 256 * 2 ** 20


def read_uncompressed(path: os.PathLike, limit: Optional[int] = None) -> bytes:
    """Return the content of ``path``, gunzipped if it starts with the gzip magic. The
    uncompressed content may be at most `limit` bytes (default: MAX_GUNZIP_RATIO times
    the file's size, at least MIN_GUNZIP_LIMIT); IDXError beyond."""
    path = Path(path)
    data = path.read_bytes()
    if data[:2] != GZIP_MAGIC:
        return data
    if limit is None:
        limit = max(MIN_GUNZIP_LIMIT, MAX_GUNZIP_RATIO * len(data))
    chunks: List[bytes] = []
    size = 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            # in pieces: read(limit) would allocate `limit` bytes whatever the content
            while chunk := f.read(2 ** 20):
                size += len(chunk)
                if size > limit:
                    raise IDXError(f"{path}: the gzip data expands to more than {limit:,} "
                                   f"bytes ({len(data):,} compressed): damaged, or a gzip "
                                   f"bomb")
                chunks.append(chunk)
    except (EOFError, OSError, zlib.error) as e:
        raise IDXError(f"{path}: corrupt or truncated gzip data ({e})") from e
    return b"".join(chunks)


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def check_pin(data: bytes, spec: FileSpec, path: os.PathLike) -> bytes:
    """Return ``data`` if its SHA-256 matches ``spec``'s pin, else raise :class:`ChecksumError`."""
    digest = sha256_hex(data)
    if digest != spec.sha256:
        raise ChecksumError(f"{path}: SHA-256 of the uncompressed content is {digest}, "
                            f"expected {spec.sha256} for {spec.name}")
    return data


def verified_bytes(path: os.PathLike, spec: FileSpec) -> bytes:
    """Read ``path`` (gzip or raw) and check it against ``spec``'s pin; returns the raw content."""
    if spec.sha256 is None and spec.gz_sha256 is not None:
        packed = Path(path).read_bytes()
        digest = sha256_hex(packed)
        if digest != spec.gz_sha256:
            what = ("the file" if packed[:2] == GZIP_MAGIC else
                    "the file (not gzip: this dataset is pinned as the published .gz file, "
                    "so keep the .gz as downloaded)")
            raise ChecksumError(f"{path}: SHA-256 of {what} is {digest}, expected "
                                f"{spec.gz_sha256} for {spec.name}.gz")
        return read_uncompressed(path)
    return check_pin(read_uncompressed(path), spec, path)


def find_file(directory: os.PathLike, spec: FileSpec) -> Optional[Path]:
    """Path of ``spec``'s file in ``directory`` (``name.gz`` preferred, then raw ``name``), or None."""
    for candidate in (Path(directory) / f"{spec.name}.gz", Path(directory) / spec.name):
        if candidate.is_file():
            return candidate
    return None


def install_verified(directory: os.PathLike, spec: FileSpec,
                     write: Callable[[BinaryIO], None]) -> Path:
    """Atomically write ``directory/name.gz`` with ``write`` (creating ``directory``); it
    lands only if it matches its pin."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    return atomic_write(Path(directory) / f"{spec.name}.gz", write,
                        check=lambda tmp: verified_bytes(tmp, spec))
