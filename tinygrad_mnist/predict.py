"""Predict digits with a trained model: the user's own handwriting (PNG/JPEG files or
folders, given MNIST's preprocessing), IDX image files, or a Kaggle-style CSV; and write
the predictions as a CSV or a Kaggle submission."""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from .atomic import atomic_write_text
from .data import load_image, mnist_style, read_idx, read_kaggle_csv, scale
from .inference import load_trained

PathLike = Union[str, os.PathLike]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass
class Prediction:
    source: str
    top: List[Tuple[int, float]]
    error: Optional[str] = None


def _inputs(paths: Sequence[PathLike]) -> Tuple[List[Tuple[str, Any]], bool]:
    """Expand files and directories into (name, 28×28 image in [0, 1] or error)."""
    items: List[Tuple[str, Any]] = []
    kaggle = False
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                items.append((str(path), ValueError("no PNG/JPEG images in this directory")))
            for f in files:
                items.append(_image_item(f))
        elif path.suffix.lower() == ".csv":
            digits = read_kaggle_csv(path)
            kaggle = True
            images = digits.images.reshape(-1, 28, 28).astype(np.float32) / 255
            items += [(f"{path}#{i + 1}", img) for i, img in enumerate(images)]
        elif "idx" in path.name or path.suffix == ".gz":
            images = read_idx(path)
            if images.ndim != 3 or images.shape[1:] != (28, 28):
                raise ValueError(f"{path}: expected IDX images of 28x28, got {images.shape}")
            items += [(f"{path}#{i}", img) for i, img in enumerate(scale(images))]
        else:
            items.append(_image_item(path))
    return items, kaggle


def _image_item(path: Path) -> Tuple[str, Any]:
    try:
        return str(path), mnist_style(load_image(path))
    except (OSError, ValueError) as e:
        return str(path), e


def predict(model_path: PathLike, inputs: Sequence[PathLike],
            top: int = 3) -> Tuple[List[Prediction], bool]:
    """Top-`top` labels with probabilities for each input image.

    Inputs are PNG/JPEG files or directories of them (the user's own handwriting:
    MNIST-style preprocessing), IDX image files, or a Kaggle-style CSV. A file that
    cannot be read gets an error entry and the others still run. Returns the
    predictions and whether the input was a Kaggle CSV."""
    trained = load_trained(model_path)
    items, kaggle = _inputs(inputs)
    good = [i for i, (_, v) in enumerate(items) if not isinstance(v, Exception)]
    results = [Prediction(name, [], f"{value}") if isinstance(value, Exception)
               else Prediction(name, []) for name, value in items]
    if good:
        images = np.stack([items[i][1] for i in good])
        proba = trained.predict_proba(images)
        order = np.argsort(-proba, axis=1, kind="stable")[:, :top]
        for row, i in enumerate(good):
            results[i].top = [(int(k), float(proba[row, k])) for k in order[row]]
    return results, kaggle


def write_predictions_csv(results: Sequence[Prediction], path: PathLike, top: int) -> None:
    """One row per input: its source, `top` (label, probability) pairs and its error."""
    header = ["source"] + [column for i in range(1, top + 1)
                           for column in (f"label_{i}", f"prob_{i}")] + ["error"]
    rows = [[r.source] + [v for k, p in r.top for v in (k, f"{p:.6f}")]
            + [""] * (2 * (top - len(r.top))) + [r.error or ""] for r in results]
    _write_csv(path, header, rows)


def write_kaggle_submission(results: Sequence[Prediction], path: PathLike) -> None:
    """A Kaggle digit-recognizer submission: ImageId (from 1) and the top label."""
    _write_csv(path, ["ImageId", "Label"],
               [[i, r.top[0][0]] for i, r in enumerate(results, start=1)])


def _write_csv(path: PathLike, header: List[str], rows: List[List[Any]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())
