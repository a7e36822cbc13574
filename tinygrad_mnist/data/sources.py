"""Locating, verifying and loading the files of a registered dataset (see :mod:`.registry`).

The data directory is ``root`` if given, else the dataset's environment variable
(``$TINYGRAD_MNIST_DATA`` for MNIST), else the user cache
``$XDG_CACHE_HOME/tinygrad_mnist/<name>`` (default ``~/.cache/tinygrad_mnist/<name>``). Each
file may be ``name.gz`` or raw ``name`` and must match its pin. A file failing its pin is
never used: in the cache it is deleted and fetched again; in a user-given directory
(``root`` or the environment variable) it is an error that names the dataset expected (and
the dataset the file belongs to, if it is another registered one), and the file is left
alone. Missing files are downloaded into the data directory when ``download`` is true (see
:mod:`.download`): a system package's folder first, then the HTTP mirrors.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import registry
from . import download as _download
from .registry import DatasetInfo, ImageData, get_dataset
from .errors import ChecksumError, DataError, IDXError
from .files import (FileSpec, find_file, install_verified, read_uncompressed, sha256_hex,
                    verified_bytes)
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


def default_cache_dir(dataset: str = "mnist") -> Path:
    """``$XDG_CACHE_HOME/tinygrad_mnist/<dataset>``, defaulting to ``~/.cache/...``."""
    return get_dataset(dataset).cache_dir()


def data_dir(root: Optional[os.PathLike] = None, dataset: str = "mnist") -> Tuple[Path, bool]:
    """The data directory of ``dataset`` and whether the user gave it (``root`` or the
    dataset's environment variable)."""
    info = get_dataset(dataset)
    if root is not None:
        return Path(root).expanduser(), True
    if os.environ.get(info.env_var):
        return Path(os.environ[info.env_var]).expanduser(), True
    return info.cache_dir(), False


class LocalMirror:
    """A folder on this machine holding a dataset's files, such as the one a system
    package installs; files are copied into the data directory only if they match their
    pins (so a stale or foreign folder is harmless)."""

    def __init__(self, directory: os.PathLike) -> None:
        self.directory = Path(directory)
        self.description = f"{self.directory} (local folder)"

    def fetch(self, specs: Sequence[FileSpec], directory: Path, *, quiet: bool) -> List[str]:
        problems = []
        for spec in specs:
            source = find_file(self.directory, spec)
            if source is None:
                problems.append(f"{spec.name}: not in {self.directory}")
                continue
            try:
                install_verified(directory, spec, lambda f: f.write(source.read_bytes()))
            except DataError as e:
                problems.append(f"{spec.name}: {e}")
        return problems


def default_mirrors(dataset: str = "mnist") -> List[_download.Mirror]:
    """Where missing files of ``dataset`` come from, in order: its local folders that
    exist, its HTTP mirrors, then (MNIST) the package index."""
    info = get_dataset(dataset)
    mirrors: List[_download.Mirror] = [LocalMirror(d) for d in info.local_dirs if Path(d).is_dir()]
    mirrors += [_download.HttpMirror(url) for url in info.mirrors]
    if info.package_index:
        mirrors.append(PackageIndexMirror())
    return mirrors


def _mismatch_advice(path: Path, info: DatasetInfo) -> str:
    """What to do about a file in a user-given folder that fails its pin for ``info``."""
    try:
        data = path.read_bytes()
        raw = read_uncompressed(path)
    except (OSError, IDXError):
        match = None
    else:
        match = registry.identify(sha256_hex(raw), sha256_hex(data))
    if match is not None and match[0].name != info.name:
        other, spec = match
        return (f"It is {other.title}'s {spec.name}, not {info.title}'s: to train on "
                f"{other.title}, use --dataset {other.name} (load_dataset({other.name!r}) in "
                f"Python).")
    return (f"{path} is in a directory you chose, so it is left as it is. If the folder "
            f"holds other data on purpose, give it without --dataset to load its IDX files "
            f"unchecked (load_folder in Python); otherwise put {info.title}'s files there "
            f"(python -m tinygrad_mnist.data download --dataset {info.name} --dir DIR).")


def _read_verified(directory: Path, specs: Sequence[FileSpec], user_given: bool,
                   info: DatasetInfo, quiet: bool = False) -> Dict[str, Tuple[Path, bytes]]:
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
                raise type(e)(f"{e} ({info.title} expected)\n"
                              f"{_mismatch_advice(path, info)}") from e
            if not quiet:
                print(f"tinygrad_mnist: {e}; fetching it again", file=sys.stderr)
            path.unlink()
    return found


def _gather(info: DatasetInfo, root: Optional[os.PathLike], download: bool,
            mirrors: Optional[Sequence], quiet: bool) -> Tuple[Path, Dict[str, Tuple[Path, bytes]]]:
    directory, user_given = data_dir(root, info.name)
    specs = list(info.files)
    found = _read_verified(directory, specs, user_given, info, quiet)
    missing = [s for s in specs if s.role not in found]
    if missing:
        if not download:
            where = f"{directory}" + (f" (from {info.env_var})" if root is None and user_given
                                      else "")
            raise DataError(f"{where} lacks {', '.join(s.name for s in missing)} "
                            f"(as .gz or raw) and download=False")
        _download.fetch_files(missing, directory,
                              default_mirrors(info.name) if mirrors is None else mirrors,
                              quiet=quiet, title=info.title, env_var=info.env_var)
        found.update(_read_verified(directory, missing, True, info))
    return directory, found


def ensure_dataset(name: str, root: Optional[os.PathLike] = None, download: bool = True, *,
                   mirrors: Optional[Sequence[_download.Mirror]] = None,
                   quiet: bool = False) -> Path:
    """Make sure the data directory of dataset ``name`` holds its four verified files
    (downloading them if needed and allowed) and return the directory."""
    return _gather(get_dataset(name), root, download, mirrors, quiet)[0]


def ensure_mnist(root: Optional[os.PathLike] = None, download: bool = True, *,
                 mirrors: Optional[Sequence[_download.Mirror]] = None,
                 quiet: bool = False) -> Path:
    """:func:`ensure_dataset` for MNIST."""
    return ensure_dataset("mnist", root, download, mirrors=mirrors, quiet=quiet)


def idx_arrays(found: Dict[str, Tuple[os.PathLike, bytes]]) -> Dict[str, np.ndarray]:
    """Parse and check the four IDX files (role -> (path, content)): ``uint8`` images
    ``(N, H, W)`` or ``(N, C, H, W)``, ``uint8`` labels ``(N,)``, as many of each."""
    arrays = {role: parse_idx(data, path) for role, (path, data) in found.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        img_name, lbl_name = found[f"{split}_images"][0], found[f"{split}_labels"][0]
        if images.ndim not in (3, 4) or images.dtype != np.uint8:
            raise IDXError(f"{img_name}: expected uint8 images of shape (N, H, W) or "
                           f"(N, C, H, W), got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise IDXError(f"{lbl_name}: expected uint8 labels of shape (N,), got "
                           f"{labels.dtype} {labels.shape}")
        if len(images) != len(labels):
            raise IDXError(f"image/label count mismatch: {img_name} has {len(images)} images "
                           f"but {lbl_name} has {len(labels)} labels")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise IDXError(f"{found['test_images'][0]}: test images of shape "
                       f"{arrays['test_images'].shape[1:]} but training images of shape "
                       f"{arrays['train_images'].shape[1:]}")
    return arrays


def load_dataset(name: str, root: Optional[os.PathLike] = None, download: bool = True, *,
                 mirrors: Optional[Sequence[_download.Mirror]] = None,
                 quiet: bool = False) -> ImageData:
    """Load the registered dataset ``name`` (``mnist``, ``fashion-mnist``, ``kmnist``; see
    :mod:`.registry`): training and test images and labels and the class names. Where the
    files come from is in the module docstring; ``mirrors`` overrides
    :func:`default_mirrors`."""
    info = get_dataset(name)
    directory, found = _gather(info, root, download, mirrors, quiet)
    arrays = idx_arrays(found)
    for role in ("train_labels", "test_labels"):
        labels = arrays[role]
        if labels.size and labels.max() >= len(info.classes):
            raise IDXError(f"{found[role][0]}: label {labels.max()} is outside "
                           f"0..{len(info.classes) - 1} ({info.title} has "
                           f"{len(info.classes)} classes)")
    return ImageData(arrays["train_images"], arrays["train_labels"], arrays["test_images"],
                     arrays["test_labels"], info.classes, info.name, directory)


def load_mnist(root: Optional[os.PathLike] = None, download: bool = True, *,
               mirrors: Optional[Sequence[_download.Mirror]] = None,
               quiet: bool = False) -> MNIST:
    """Load the 60,000 training and 10,000 test images and labels of MNIST (see the module
    docstring for where the files come from). ``mirrors`` overrides :func:`default_mirrors`."""
    data = load_dataset("mnist", root, download, mirrors=mirrors, quiet=quiet)
    for role in ("train_images", "test_images"):
        images = getattr(data, role)
        if images.shape[1:] != (28, 28):
            spec = next(s for s in get_dataset("mnist").files if s.role == role)
            raise IDXError(f"{find_file(data.source, spec)}: expected uint8 images of shape "
                           f"(N, 28, 28), got {images.dtype} {images.shape}")
    return MNIST(data.train_images, data.train_labels, data.test_images, data.test_labels,
                 data.source)

