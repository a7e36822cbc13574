"""Predict digits with a trained model: the user's own handwriting (PNG/JPEG files or
folders, given MNIST's preprocessing), IDX image files, or a Kaggle-style CSV; and write
the predictions as a CSV or a Kaggle submission."""
from __future__ import annotations

import csv
import functools
import io
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from ..atomic import atomic_write, atomic_write_files
from ..data import (DATASETS, DIGITS, MAX_IMAGE_PIXELS, MAX_PIXELS_PER_BYTE, fashion_style,
                    load_image, mnist_style, read_idx, read_kaggle_csv, scale, side_by_side)
from ..data import DataError
from ..errors import BrokenModelError
from .inference import load_models

PathLike = Union[str, os.PathLike]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass
class Prediction:
    source: str
    top: List[Tuple[int, float]]
    error: Optional[str] = None
    names: List[str] = field(default_factory=list)  # the class names of `top`'s labels


def _inputs(paths: Sequence[PathLike], steps: Callable[[np.ndarray], np.ndarray] = mnist_style,
            originals: Optional[Dict[str, np.ndarray]] = None
            ) -> Tuple[List[Tuple[str, Any]], bool]:
    """Expand files and directories into (name, image in [0, 1] as the model takes it,
    or error); picture files go through `steps` (`picture_steps`). With `originals`,
    also keep each picture file as it was read, by name.
    The images of an IDX or CSV file are named `FILE#n`, n counting from 1. A file that
    cannot be used (unreadable, not a regular file, too large...) is one error entry."""
    items: List[Tuple[str, Any]] = []
    kaggle = False
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                items.append((str(path), ValueError("no PNG/JPEG images in this directory")))
            for f in files:
                items.append(_image_item(f, steps, originals))
        elif not _is_regular(path):
            items.append((str(path), _not_regular(path)))
        elif path.suffix.lower() == ".csv":
            kaggle = True
            try:
                digits = read_kaggle_csv(path)
            except (DataError, OSError, MemoryError) as e:
                items.append((str(path), e))
                continue
            images = digits.images.reshape(-1, 28, 28).astype(np.float32) / 255
            items += [(f"{path}#{i + 1}", img) for i, img in enumerate(images)]
        elif "idx" in path.name or path.suffix == ".gz":
            try:
                images = _idx_images(path)
            except (DataError, OSError, MemoryError) as e:
                items.append((str(path), e))
                continue
            items += [(f"{path}#{i + 1}", img) for i, img in enumerate(scale(images))]
        else:
            items.append(_image_item(path, steps, originals))
    return items, kaggle


def _idx_images(path: Path) -> np.ndarray:
    """The uint8 (N, 28, 28) images of an IDX file; DataError naming what is wrong."""
    images = read_idx(path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{path}: expected IDX images of 28x28, got shape {images.shape}")
    if images.dtype != np.uint8:
        raise DataError(f"{path}: expected IDX pixels as unsigned bytes 0..255 (type code "
                        f"0x08), got {images.dtype}; convert the file to uint8")
    return images


def _is_regular(path: Path) -> bool:
    """True for a regular file (or a link to one), False for a pipe, device or socket;
    True for a missing path too, so that reading it names the problem."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return True


def _not_regular(path: Path) -> Exception:
    return ValueError(f"skipped {path}: not a regular file (a pipe, device or socket); "
                      f"give image files")


def _image_item(path: Path, steps: Callable[[np.ndarray], np.ndarray],
                originals: Optional[Dict[str, np.ndarray]]) -> Tuple[str, Any]:
    """A picture file as the model takes it, through `steps`."""
    if not _is_regular(path):
        return str(path), _not_regular(path)
    try:
        _check_size(path)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = load_image(path, color=True)
        if originals is not None:
            originals[str(path)] = image
        return str(path), steps(image)
    except (OSError, ValueError) as e:
        return str(path), e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError):
        return str(path), ValueError(f"{path}: the image is too large to read (over the "
                                     f"limit of {MAX_IMAGE_PIXELS:,} pixels); scale it down")


def _check_size(path: Path) -> None:
    """ValueError if the picture's header declares more than MAX_IMAGE_PIXELS (checked
    before its pixels are decoded: a decompression bomb is refused, not read)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
    except Image.DecompressionBombError:
        raise ValueError(f"{path}: the image declares more pixels than Pillow's safety "
                         f"limit, over the limit of {MAX_IMAGE_PIXELS:,}; scale it "
                         f"down") from None
    except (OSError, ValueError, SyntaxError):
        return  # read again by load_image, which names the problem
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(f"{path}: the image is {width}x{height} pixels, over the limit of "
                         f"{MAX_IMAGE_PIXELS:,}; scale it down")
    size = path.stat().st_size
    if width * height > MAX_PIXELS_PER_BYTE * size + 2 ** 20:
        raise ValueError(f"{path}: the image declares {width}x{height} pixels in only "
                         f"{size:,} bytes: damaged, or a decompression bomb")


def _resized(image: np.ndarray, shape: Tuple[int, int, int]) -> np.ndarray:
    c, h, w = shape
    im = Image.fromarray(image).convert("L" if c == 1 else "RGB").resize((w, h), Image.LANCZOS)
    a = np.asarray(im, np.float32) / 255
    return a if c == 1 else a.transpose(2, 0, 1)


def picture_steps(trained: Any) -> Callable[[np.ndarray], np.ndarray]:
    """How a picture file becomes the input of `trained` (a model or an ensemble): for a
    1×28×28 model, Fashion-MNIST's steps (`fashion_style`) if it was trained on a
    registered dataset of photographed objects, else MNIST's for handwriting
    (`mnist_style`: MNIST, KMNIST, any other 28x28 data); for other shapes, a plain
    resize to the model's (C, H, W)."""
    shape = _shape(trained)
    if tuple(shape) != (1, 28, 28):
        return functools.partial(_resized, shape=shape)
    model = trained.members[0] if hasattr(trained, "members") else trained
    info = DATASETS.get(str(getattr(getattr(model, "config", None), "dataset", "")))
    return fashion_style if info is not None and info.photos == "objects" else mnist_style


def _classes(trained: Any) -> Tuple[str, ...]:
    """The class names of a trained model or of an ensemble (its members')."""
    return tuple(getattr(trained, "classes", DIGITS))


def _shape(trained: Any) -> Tuple[int, int, int]:
    return tuple(getattr(trained, "image_shape", (1, 28, 28)))  # type: ignore[return-value]


def write_show(show: PathLike, results: Sequence["Prediction"], items: Sequence[Tuple[str, Any]],
               originals: Dict[str, np.ndarray]) -> None:
    """For each input that was predicted, `show/NNNN_name.png`: the input as read beside
    the image the model saw (its top prediction below)."""
    out = Path(show)
    out.mkdir(parents=True, exist_ok=True)
    for n, (result, (name, seen)) in enumerate(zip(results, items)):
        if result.error or not result.top:
            continue
        seen = np.asarray(seen)
        picture = seen if seen.ndim == 2 else seen.transpose(1, 2, 0)
        original = originals.get(name, np.rint(np.clip(picture, 0, 1) * 255).astype(np.uint8))
        label = result.names[0] if result.names else str(result.top[0][0])
        caption = f"{Path(name).name}: {label} ({result.top[0][1]:.1%})"
        figure = side_by_side(original, seen if seen.ndim == 2 else picture, caption)
        stem = Path(name.split("#")[0]).stem + (f"_{name.split('#')[1]}" if "#" in name else "")
        atomic_write(out / f"{n:04d}_{stem}.png", lambda f: figure.save(f, format="PNG"))


def predict(model_path: Union[PathLike, Sequence[PathLike]], inputs: Sequence[PathLike],
            top: int = 3, top_k: Optional[int] = None,
            show: Optional[PathLike] = None) -> Tuple[List[Prediction], bool]:
    """Top-`top` labels with probabilities for each input image.

    `model_path` is a run directory or checkpoint; several of them, or a sweep
    directory (its best `top_k` runs), predict as an ensemble (the mean of the models'
    probabilities). Inputs are PNG/JPEG files or directories of them (the user's own
    handwriting: MNIST-style preprocessing), IDX image files, or a Kaggle-style CSV. A
    file that cannot be read gets an error entry and the others still run. Returns the
    predictions and whether the input was a Kaggle CSV. With `show`, that folder gets a
    picture per input of what the model saw (`write_show`)."""
    trained = load_models(model_path, top_k)
    originals: Optional[Dict[str, np.ndarray]] = {} if show is not None else None
    items, kaggle = _inputs(inputs, picture_steps(trained), originals)
    classes = _classes(trained)
    good = [i for i, (_, v) in enumerate(items) if not isinstance(v, Exception)]
    results = [Prediction(name, [], f"{value}") if isinstance(value, Exception)
               else Prediction(name, []) for name, value in items]
    if good:
        images = np.stack([items[i][1] for i in good])
        with np.errstate(all="ignore"):  # a broken model's NaNs are reported below
            proba = trained.predict_proba(images)
        finite = np.isfinite(proba).all(axis=1)
        if not finite.any():
            raise BrokenModelError(f"the model {_model_name(model_path)} gives NaN or "
                                   f"infinite outputs for every input: it is broken; "
                                   f"retrain it or use another checkpoint")
        order = np.argsort(-proba, axis=1, kind="stable")[:, :top]
        for row, i in enumerate(good):
            if not finite[row]:
                results[i].error = ("the model's output is NaN or infinite for this input "
                                    "(a broken model?)")
                continue
            results[i].top = [(int(k), float(proba[row, k])) for k in order[row]]
            results[i].names = [classes[k] if k < len(classes) else str(k) for k in order[row]]
    if show is not None:
        write_show(show, results, items, originals or {})
    return results, kaggle


def _model_name(model_path: Union[PathLike, Sequence[PathLike]]) -> str:
    if isinstance(model_path, (str, os.PathLike)):
        return str(model_path)
    return ",".join(map(str, model_path))


def predictions_csv(results: Sequence[Prediction], top: int) -> str:
    """One row per input: its source, `top` (label, probability) pairs and its error."""
    header = ["source"] + [column for i in range(1, top + 1)
                           for column in (f"label_{i}", f"prob_{i}")] + ["error"]
    rows = [[r.source] + [v for k, p in r.top for v in (k, f"{p:.6f}")]
            + [""] * (2 * (top - len(r.top))) + [r.error or ""] for r in results]
    return _csv_text(header, rows)


def kaggle_submission(results: Sequence[Prediction]) -> str:
    """A Kaggle digit-recognizer submission: ImageId (from 1) and the top label. Every
    input must have a prediction (DataError naming the first that has not)."""
    failed = next((r for r in results if r.error or not r.top), None)
    if failed is not None:
        raise DataError(f"no Kaggle submission written: {failed.source} has no prediction "
                        f"({failed.error}); every row needs one")
    return _csv_text(["ImageId", "Label"],
                     [[i, r.top[0][0]] for i, r in enumerate(results, start=1)])


def write_predictions_csv(results: Sequence[Prediction], path: PathLike, top: int) -> None:
    """`predictions_csv` written atomically to `path`."""
    atomic_write_files({path: predictions_csv(results, top).encode("utf-8")})


def write_kaggle_submission(results: Sequence[Prediction], path: PathLike) -> None:
    """`kaggle_submission` written atomically to `path`."""
    atomic_write_files({path: kaggle_submission(results).encode("utf-8")})


def _csv_text(header: List[str], rows: List[List[Any]]) -> str:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue()
