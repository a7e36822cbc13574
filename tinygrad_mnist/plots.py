"""Pictures of a training run, each from a DataFrame or arrays.

Every function returns a matplotlib `Figure` (shown inline in a notebook) and, when
`path` is given, also saves it (atomically) as a PNG, or in the format its suffix names.
No pyplot state is touched, so these work in scripts, servers and notebooks alike.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .atomic import atomic_write

PathLike = Union[str, Path]


def _finish(fig: Figure, path: Optional[PathLike]) -> Figure:
    fig.tight_layout()
    if path is not None:
        # As savefig(path) does: the format from the suffix, else PNG with ".png" added.
        path = os.fspath(path)
        fmt = os.path.splitext(path)[1][1:]
        if not fmt:
            fmt = fig.canvas.get_default_filetype()
            path = path.rstrip(".") + "." + fmt
        atomic_write(path, lambda f: fig.savefig(f, format=fmt.lower(), dpi=100))
    return fig


def learning_curves(metrics: pd.DataFrame, path: Optional[PathLike] = None) -> Figure:
    """Loss and accuracy per epoch, training against validation.

    `metrics` has an `epoch` column and `train_loss`, `val_loss`, `train_acc`,
    `val_acc` (as in a run's metrics.csv)."""
    fig = Figure(figsize=(9, 3.6))
    for ax, what in zip(fig.subplots(1, 2), ("loss", "acc")):
        for split, style in (("train", "-o"), ("val", "-s")):
            column = f"{split}_{what}"
            if column in metrics:
                ax.plot(metrics["epoch"], metrics[column], style, ms=3,
                        label="training" if split == "train" else "validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy loss" if what == "loss" else "accuracy")
        ax.set_title("Loss" if what == "loss" else "Accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    return _finish(fig, path)


def confusion_matrix(cm: np.ndarray, path: Optional[PathLike] = None,
                     title: str = "Test confusion matrix") -> Figure:
    """Heatmap of a confusion matrix (rows: true class, columns: predicted class)."""
    cm = np.asarray(cm)
    fig = Figure(figsize=(5.6, 5))
    ax = fig.subplots()
    # Log-scaled colours so the few mistakes stay visible beside the diagonal.
    image = ax.imshow(np.log1p(cm), cmap="Blues")
    n = cm.shape[0]
    threshold = np.log1p(cm).max() / 2
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if np.log1p(cm[i, j]) > threshold else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="log(1 + count)")
    return _finish(fig, path)


def misclassified(images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                  confidence: np.ndarray, path: Optional[PathLike] = None,
                  max_images: int = 36) -> Figure:
    """A grid of wrongly classified digits, most confident mistakes first, each
    titled with its true label, the prediction and the prediction's probability."""
    images = np.asarray(images).reshape(len(images), 28, 28)
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))
    wrong = wrong[np.argsort(-np.asarray(confidence)[wrong], kind="stable")][:max_images]
    cols = 6
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig = Figure(figsize=(cols * 1.5, rows * 1.7))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, wrong):
        ax.imshow(images[i], cmap="gray_r")
        ax.set_title(f"true {y_true[i]} → {y_pred[i]}\n{confidence[i]:.0%}", fontsize=8)
    if not len(wrong):
        axes[0].set_title("no mistakes")
    fig.suptitle("Misclassified test digits (most confident first)")
    return _finish(fig, path)


def first_layer_weights(weight: np.ndarray, path: Optional[PathLike] = None,
                        max_units: int = 64) -> Figure:
    """The first layer's weights as 28×28 images, one per unit (or filter).

    `weight` is (units, 784) for a Linear layer or (filters, 1, k, k) for a Conv2d."""
    weight = np.asarray(weight)
    units = weight[:max_units]
    side = int(round(np.sqrt(units[0].size)))
    units = units.reshape(len(units), side, side)
    cols = int(np.ceil(np.sqrt(len(units))))
    rows = int(np.ceil(len(units) / cols))
    fig = Figure(figsize=(cols * 1.1, rows * 1.1 + 0.4))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, unit in zip(axes, units):
        limit = np.abs(unit).max() or 1.0
        ax.imshow(unit, cmap="seismic", vmin=-limit, vmax=limit)
    fig.suptitle("First-layer weights (red positive, blue negative)")
    return _finish(fig, path)
