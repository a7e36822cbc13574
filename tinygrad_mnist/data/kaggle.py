"""Kaggle "digit-recognizer" CSV files: ``label,pixel0..pixel783`` (``train.csv``) or
``pixel0..pixel783`` (``test.csv``), one row per image."""
from __future__ import annotations

import os
from typing import List, NamedTuple, Optional, Union

import numpy as np

from .errors import CSVError

PIXEL_COLUMNS = [f"pixel{i}" for i in range(784)]


class KaggleDigits(NamedTuple):
    """Images ``uint8 (N, 28, 28)``; labels ``uint8 (N,)``, or None for ``test.csv``."""
    images: np.ndarray
    labels: Optional[np.ndarray]


def read_kaggle_csv(path: Union[str, os.PathLike], labelled: Optional[bool] = None) -> KaggleDigits:
    """Read and validate a digit-recognizer CSV. ``labelled`` requires (True) or forbids
    (False) the ``label`` column; None accepts either. Raises :class:`CSVError` naming the
    file and the offending column, row or value."""
    import pandas as pd  # here, not at the top: importing pandas takes ~0.3 s

    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise CSVError(f"{path}: cannot read CSV: {' '.join(str(e).split())}") from e
    has_label = "label" in df.columns
    expected = (["label"] if has_label else []) + PIXEL_COLUMNS
    if list(df.columns) != expected:
        missing = [c for c in expected if c not in df.columns]
        unexpected = [c for c in df.columns if c not in expected]
        detail = (f"missing {_few(missing)}" if missing else "") + \
                 (f"{'; ' if missing else ''}unexpected {_few(unexpected)}" if unexpected else "")
        raise CSVError(f"{path}: expected columns [label,] pixel0..pixel783 in that order; "
                       f"{detail or 'columns are out of order'}")
    if labelled is not None and labelled != has_label:
        raise CSVError(f"{path}: {'missing the' if labelled else 'unexpected'} 'label' column")
    if df.empty:
        raise CSVError(f"{path}: no rows")
    bad = [(c, dtype) for c, dtype in df.dtypes.items()  # not df[c]: 785 slow lookups
           if not pd.api.types.is_integer_dtype(dtype)]
    if bad:  # (an integer column has no missing values: look for them only here)
        missing_values = df.isna().to_numpy()
        if missing_values.any():
            row, col = np.argwhere(missing_values)[0]
            raise CSVError(f"{path}: missing value in column {df.columns[col]}, data row "
                           f"{row + 1}")
        raise CSVError(f"{path}: columns must hold integers; {_few([c for c, _ in bad])} "
                       f"{'has' if len(bad) == 1 else 'have'} dtype {bad[0][1]}")
    values = df.to_numpy()
    pixels = values[:, 1:] if has_label else values
    _check_range(path, pixels, 255, PIXEL_COLUMNS, "pixel")
    labels = None
    if has_label:
        _check_range(path, values[:, :1], 9, ["label"], "label")
        labels = values[:, 0].astype(np.uint8)
    return KaggleDigits(pixels.astype(np.uint8).reshape(-1, 28, 28), labels)


def _check_range(path: Union[str, os.PathLike], values: np.ndarray, high: int,
                 columns: List[str], what: str) -> None:
    outside = (values < 0) | (values > high)
    if outside.any():
        row, col = np.argwhere(outside)[0]
        raise CSVError(f"{path}: {what} value {values[row, col]} outside 0..{high} in column "
                       f"{columns[col]}, data row {row + 1}")


def _few(names: List[str]) -> str:
    """The first names, shown as written unless they hold a line break or another
    character that does not print (then quoted, with escapes: one line)."""
    shown = ", ".join(str(n) if str(n).isprintable() else repr(str(n)) for n in names[:5])
    return shown + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
