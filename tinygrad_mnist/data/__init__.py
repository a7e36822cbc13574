"""Datasets: the registry of MNIST-format datasets (MNIST, Fashion-MNIST, KMNIST), locating,
verifying and downloading their files, other data given as a folder (IDX files, image
folders, Kaggle CSV), IDX and Kaggle CSV readers, preprocessing (photos of handwriting
included), augmentation and a vectorised ``DataLoader``.

>>> from tinygrad_mnist.data import load_dataset, prepare, DataLoader
>>> fashion = load_dataset("fashion-mnist")                     # doctest: +SKIP
>>> x, stats = prepare(fashion.train_images, standardize=True)  # doctest: +SKIP
"""
from .augment import KINDS as AUGMENTATIONS
from .augment import PRESETS as DISTORTIONS
from .augment import Distortion, distort
from .registry import DATASETS, DIGITS, DatasetInfo, ImageData, get_dataset
from .download import HTTP_MIRRORS, HttpMirror, Mirror, fetch_files
from .errors import (ChecksumError, CSVError, DataError, DownloadError, IDXError,
                     OptionError, UnsafePickleError)
from .files import ENV_VAR, MNIST_FILES, FileSpec
from .folders import (MAX_PIXELS_PER_BYTE, find_idx_files, load_folder, load_image_folder,
                      load_images)
from .idx import encode_idx, parse_idx, read_idx, write_idx
from .kaggle import KaggleDigits, read_kaggle_csv
from .loader import DataLoader, shift_images
from .objects import fashion_style
from .photos import MAX_IMAGE_PIXELS, fit_to_mnist_box, side_by_side
from .preprocess import (Split, Stats, apply_standardization, class_counts,
                         fit_standardization, image_shape_of, load_image, mnist_style, one_hot,
                         prepare, scale, to_layout, train_val_split)
from .pypi_mirror import PackageIndexMirror, restricted_loads
from .sources import (MNIST, LocalMirror, data_dir, default_cache_dir, default_mirrors,
                      ensure_dataset, ensure_mnist, load_dataset, load_mnist)

__all__ = [
    "load_dataset", "load_images", "load_folder", "load_image_folder", "find_idx_files", "ensure_dataset",
    "DATASETS", "DatasetInfo", "ImageData", "get_dataset", "DIGITS", "LocalMirror",
    "load_mnist", "ensure_mnist", "MNIST", "data_dir", "default_cache_dir", "default_mirrors",
    "ENV_VAR", "MNIST_FILES", "FileSpec", "HTTP_MIRRORS", "HttpMirror", "Mirror", "fetch_files",
    "PackageIndexMirror", "restricted_loads",
    "read_idx", "parse_idx", "write_idx", "encode_idx", "read_kaggle_csv", "KaggleDigits",
    "scale", "fit_standardization", "apply_standardization", "Stats", "to_layout", "prepare",
    "image_shape_of", "one_hot", "train_val_split", "Split", "class_counts", "mnist_style",
    "fashion_style",
    "fit_to_mnist_box", "MAX_IMAGE_PIXELS", "MAX_PIXELS_PER_BYTE",
    "load_image", "side_by_side", "DataLoader", "shift_images", "Distortion", "distort",
    "AUGMENTATIONS",
    "DISTORTIONS",
    "DataError", "OptionError", "IDXError", "ChecksumError", "CSVError", "DownloadError", "UnsafePickleError",
]
