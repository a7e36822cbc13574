"""Data that is not in the registry, given as a folder or a file: four IDX files, an image
folder with one sub-folder per class (torchvision's ImageFolder convention), or a labelled
Kaggle digit-recognizer CSV.

:func:`load_folder` tells which it is:

* a ``.csv`` file, or a folder holding ``train.csv``: the Kaggle CSV;
* a folder holding files named like ``*train-images*``, ``*train-labels*``,
  ``*t10k-images*`` (or ``*test-images*``) and ``*t10k-labels*`` (or ``*test-labels*``):
  IDX files. If they are a registered dataset's (every pin matches) they load as that
  dataset, with its class names; if some match and some do not, that is a
  :class:`ChecksumError` naming the dataset expected; otherwise they load unchecked, which
  is said once per folder;
* a folder of sub-folders of images: ``train/`` and ``test/`` each with one sub-folder per
  class, or just the class sub-folders.

Without a test split of its own (a CSV, or class folders without ``train/``/``test/``),
a stratified seventh (seed 0, the same whatever the training seed) is held out as the
test set, as MNIST holds out 10,000 of 70,000.
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import registry
from .registry import ImageData
from .errors import ChecksumError, DataError, OptionError
from .files import GZIP_MAGIC, read_uncompressed, sha256_hex
from .kaggle import read_kaggle_csv
from .preprocess import train_val_split
from .sources import idx_arrays, load_dataset

PathLike = Union[str, os.PathLike]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm",
                  ".ppm")
#: Pixels an image file may declare per byte of it, beyond a first megapixel: more than
#: any picture holds (deflate, for one, packs at most 1,032 bytes into one), so a few
#: bytes declaring millions of pixels are refused before Pillow allocates them.
MAX_PIXELS_PER_BYTE = 10_000
#: Fraction held out as the test set when the data has no test split of its own.
TEST_FRACTION = 1 / 7
_IDX_PATTERNS = {"train_images": ("train-images",), "train_labels": ("train-labels",),
                 "test_images": ("t10k-images", "test-images"),
                 "test_labels": ("t10k-labels", "test-labels")}
_LANCZOS = getattr(Image, "Resampling", Image).LANCZOS
_noted: Set[Path] = set()


def load_folder(path: PathLike, *, image_size: Optional[int] = None,
                channels: Optional[int] = None, quiet: bool = False) -> ImageData:
    """Load the data in ``path`` (see the module docstring). ``image_size`` resizes every
    image of an image folder to ``image_size`` x ``image_size`` (needed when their sizes
    differ); ``channels`` (1 or 3) forces greyscale or colour, else colour only when some
    image has colour."""
    path = Path(path).expanduser()
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if path.is_file() and path.suffix.lower() == ".csv":
        return _kaggle(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no data at {path}: expected a folder (IDX files or one "
                                f"sub-folder of images per class) or a Kaggle .csv file")
    if (path / "train.csv").is_file():
        return _kaggle(path / "train.csv")
    idx = find_idx_files(path)
    if idx:
        return _idx_folder(path, idx, quiet)
    return load_image_folder(path, image_size=image_size, channels=channels)


def load_images(dataset: Optional[str] = None, data_dir: Optional[os.PathLike] = None, *,
                image_size: Optional[int] = None, channels: Optional[int] = None,
                quiet: bool = False) -> ImageData:
    """The registered `dataset` (from `data_dir` if given), MNIST when neither is given,
    else whatever `data_dir` holds (IDX files, an image folder, a Kaggle CSV; see
    `load_folder`). `image_size` and `channels` are for image folders only: given for
    anything else they raise OptionError."""
    folder_options = [name for name, value in (("image_size", image_size),
                                               ("channels", channels)) if value is not None]

    def refuse_folder_options(what: str) -> None:
        if folder_options:
            flags = " and ".join("--" + name.replace("_", "-") for name in folder_options)
            raise OptionError(f"{flags} {'are' if len(folder_options) > 1 else 'is'} for "
                              f"image folders (--data-dir with one sub-folder of images per "
                              f"class), not {what}", folder_options[0])

    if dataset is not None or data_dir is None:
        refuse_folder_options(f"the registered dataset {dataset or 'mnist'}")
        return load_dataset(dataset or "mnist", data_dir, quiet=quiet)
    data = load_folder(data_dir, image_size=image_size, channels=channels, quiet=quiet)
    if data.name != "image-folder":
        kind = {"idx": "IDX files", "kaggle-csv": "a Kaggle CSV"}.get(data.name,
                                                                     f"{data.name}'s files")
        refuse_folder_options(f"{kind} ({data.source})")
    return data


# ------------------------------------------------------------------------- IDX files
def find_idx_files(directory: Path) -> Dict[str, Path]:
    """The four IDX files of ``directory`` by role (``.gz`` preferred over raw), or ``{}``
    when it has none; raises DataError if only some roles are there or one is ambiguous."""
    files = [p for p in sorted(directory.iterdir()) if p.is_file() and "ubyte" in p.name]
    found: Dict[str, Path] = {}
    for role, patterns in _IDX_PATTERNS.items():
        matches = [p for p in files if any(pat in p.name for pat in patterns)]
        stems = {p.name[:-3] if p.name.endswith(".gz") else p.name for p in matches}
        if len(stems) > 1:
            raise DataError(f"{directory}: more than one file for {role.replace('_', ' ')}: "
                            f"{', '.join(p.name for p in matches)}")
        if matches:
            found[role] = next((p for p in matches if p.name.endswith(".gz")), matches[0])
    if found and len(found) < 4:
        missing = [r.replace("_", " ") for r in _IDX_PATTERNS if r not in found]
        raise DataError(f"{directory}: IDX files for {', '.join(missing)} are missing "
                        f"(names like train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                        f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, .gz or raw)")
    return found


def _idx_folder(directory: Path, paths: Dict[str, Path], quiet: bool) -> ImageData:
    contents: Dict[str, Tuple[Path, bytes]] = {}
    owners: Dict[str, Optional[Tuple[registry.DatasetInfo, object]]] = {}
    for role, p in paths.items():
        packed = p.read_bytes()
        raw = read_uncompressed(p)
        contents[role] = (p, raw)
        owners[role] = registry.identify(sha256_hex(raw),
                                         sha256_hex(packed) if packed[:2] == GZIP_MAGIC else None)
    known = {role: o for role, o in owners.items() if o is not None}
    if known:
        info = next(iter(known.values()))[0]
        for role, p in paths.items():
            match = owners[role]
            if match is None or match[0].name != info.name or match[1].role != role:
                raise ChecksumError(
                    f"{p}: not {info.title}'s {role.replace('_', ' ')} file (its SHA-256 "
                    f"matches no pin of {info.title}), while the other files in {directory} "
                    f"are {info.title}'s ({info.title} expected). The file is left as it is: "
                    f"replace it with {info.title}'s own (python -m tinygrad_mnist.data "
                    f"download --dataset {info.name} --dir DIR fetches them).")
        arrays = idx_arrays(contents)
        return ImageData(arrays["train_images"], arrays["train_labels"], arrays["test_images"],
                         arrays["test_labels"], info.classes, info.name, directory)
    if not quiet and directory not in _noted:
        _noted.add(directory)
        print(f"tinygrad_mnist: {directory} holds IDX files of no registered dataset; "
              f"loading them without checking their digests", file=sys.stderr)
    arrays = idx_arrays(contents)
    top = int(max(arrays["train_labels"].max(initial=0), arrays["test_labels"].max(initial=0)))
    return ImageData(arrays["train_images"], arrays["train_labels"], arrays["test_images"],
                     arrays["test_labels"], tuple(str(k) for k in range(top + 1)), "idx",
                     directory)


# ------------------------------------------------------------------------ Kaggle CSV
def _kaggle(path: Path) -> ImageData:
    digits = read_kaggle_csv(path, labelled=True)
    train_x, train_y, test_x, test_y = _hold_out_test(digits.images, digits.labels)
    return ImageData(train_x, train_y, test_x, test_y, registry.DIGITS, "kaggle-csv", path)


def _hold_out_test(x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, ...]:
    n_test = max(1, round(len(y) * TEST_FRACTION))
    if n_test >= len(y):
        raise DataError(f"only {len(y)} labelled images: too few to hold out a test set")
    split = train_val_split(x, y, n_test, seed=0, stratify=True)
    return split.x_train, split.y_train, split.x_val, split.y_val


# ----------------------------------------------------------------------- image folder
def _class_dirs(directory: Path) -> List[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(directory: Path) -> List[Path]:
    return sorted(p for p in directory.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_image_folder(directory: PathLike, *, image_size: Optional[int] = None,
                      channels: Optional[int] = None) -> ImageData:
    """An image folder: ``train/`` and ``test/`` with one sub-folder per class, or only the
    class sub-folders (a stratified seventh is then the test set). Class names are the
    sub-folder names, sorted; images are greyscale ``(N, H, W)`` or colour ``(N, 3, H, W)``
    ``uint8``, read with their EXIF orientation applied."""
    directory = Path(directory)
    if image_size is not None and not 1 <= image_size <= 1024:
        raise ValueError(f"image_size must be in 1..1024, got {image_size}")
    train_dir, test_dir = directory / "train", directory / "test"
    split_given = train_dir.is_dir() and test_dir.is_dir()
    root = train_dir if split_given else directory
    classes = tuple(p.name for p in _class_dirs(root))
    if not classes:
        raise DataError(f"{directory}: no class sub-folders (expected one folder of images "
                        f"per class, optionally inside train/ and test/)")
    sets = [("train", root)] + ([("test", test_dir)] if split_given else [])
    files: Dict[str, List[Tuple[Path, int]]] = {}
    for split, base in sets:
        unknown = [p.name for p in _class_dirs(base) if p.name not in classes]
        if unknown:
            raise DataError(f"{base}: class folder(s) {', '.join(unknown)} are not among the "
                            f"training classes {', '.join(classes)}")
        files[split] = [(f, k) for k, name in enumerate(classes) if (base / name).is_dir()
                        for f in _images_in(base / name)]
        if not files[split]:
            raise DataError(f"{base}: no images ({', '.join(IMAGE_SUFFIXES)}) in the class "
                            f"folders")
    images = {split: [_read(f) for f, _ in items] for split, items in files.items()}
    every = [im for ims in images.values() for im in ims]
    if channels is None:
        channels = 3 if any(_has_colour(im) for im in every) else 1
    if image_size is None:
        sizes = {im.size for im in every}
        if len(sizes) > 1:
            (w1, h1), (w2, h2) = sorted(sizes)[:2]
            raise DataError(f"{directory}: the images have {len(sizes)} different sizes (e.g. "
                            f"{w1}x{h1} and {w2}x{h2}); give --image-size N (image_size=N) to "
                            f"resize them all to N x N")
    arrays = {split: np.stack([_to_array(im, channels, image_size) for im in ims])
              for split, ims in images.items()}
    labels = {split: np.array([k for _, k in items], dtype=np.int64)
              for split, items in files.items()}
    if split_given:
        return ImageData(arrays["train"], labels["train"], arrays["test"], labels["test"],
                         classes, "image-folder", directory)
    train_x, train_y, test_x, test_y = _hold_out_test(arrays["train"], labels["train"])
    return ImageData(train_x, train_y, test_x, test_y, classes, "image-folder", directory)


def _read(path: Path) -> Image.Image:
    """The image in `path`, turned as its EXIF says; DataError if it cannot be read or
    declares more pixels than Pillow's bomb limit (Image.MAX_IMAGE_PIXELS)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > MAX_PIXELS_PER_BYTE * path.stat().st_size + 2 ** 20:
                    raise DataError(f"cannot read image {path}: it declares {width}x{height} "
                                    f"pixels in only {path.stat().st_size:,} bytes: damaged, "
                                    f"or a decompression bomb")
                im.load()
                return ImageOps.exif_transpose(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"cannot read image {path}: it declares more pixels than the "
                        f"limit of {Image.MAX_IMAGE_PIXELS:,}; scale it down") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"cannot read image {path}: {e}") from e


def _has_colour(im: Image.Image) -> bool:
    if im.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return False
    rgb = np.asarray(im.convert("RGB"), dtype=np.int16)
    return bool((rgb.max(axis=2) != rgb.min(axis=2)).any())


def _to_array(im: Image.Image, channels: int, size: Optional[int]) -> np.ndarray:
    im = im.convert("L" if channels == 1 else "RGB")
    if size is not None and im.size != (size, size):
        im = im.resize((size, size), _LANCZOS)
    a = np.asarray(im, dtype=np.uint8)
    return a if channels == 1 else np.ascontiguousarray(a.transpose(2, 0, 1))
