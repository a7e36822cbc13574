"""MNIST data: locating, verifying and downloading the files, IDX and Kaggle CSV readers,
preprocessing and a vectorised ``DataLoader``.

>>> from tinygrad_mnist.data import load_mnist, prepare, DataLoader
>>> mnist = load_mnist()                                   # doctest: +SKIP
>>> x, stats = prepare(mnist.train_images, standardize=True)   # doctest: +SKIP
"""
from .download import HTTP_MIRRORS, HttpMirror, Mirror, fetch_files
from .errors import (ChecksumError, CSVError, DataError, DownloadError, IDXError,
                     UnsafePickleError)
from .files import ENV_VAR, MNIST_FILES, FileSpec
from .idx import encode_idx, parse_idx, read_idx, write_idx
from .kaggle import KaggleDigits, read_kaggle_csv
from .loader import DataLoader, shift_images
from .preprocess import (Split, Stats, apply_standardization, class_counts,
                         fit_standardization, load_image, mnist_style, one_hot, prepare, scale,
                         to_layout, train_val_split)
from .pypi_mirror import PackageIndexMirror, restricted_loads
from .sources import MNIST, data_dir, default_cache_dir, default_mirrors, ensure_mnist, load_mnist

__all__ = [
    "load_mnist", "ensure_mnist", "MNIST", "data_dir", "default_cache_dir", "default_mirrors",
    "ENV_VAR", "MNIST_FILES", "FileSpec", "HTTP_MIRRORS", "HttpMirror", "Mirror", "fetch_files",
    "PackageIndexMirror", "restricted_loads",
    "read_idx", "parse_idx", "write_idx", "encode_idx", "read_kaggle_csv", "KaggleDigits",
    "scale", "fit_standardization", "apply_standardization", "Stats", "to_layout", "prepare",
    "one_hot", "train_val_split", "Split", "class_counts", "mnist_style", "load_image",
    "DataLoader", "shift_images",
    "DataError", "IDXError", "ChecksumError", "CSVError", "DownloadError", "UnsafePickleError",
]
