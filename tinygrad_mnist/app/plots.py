"""Pictures of a training run, each from a DataFrame or arrays.

Every function returns a matplotlib `Figure` (shown inline in a notebook) and, when
`path` is given, also saves it (atomically) as a PNG, or in the format its suffix names.
No pyplot state is touched, so these work in scripts, servers and notebooks alike.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import colors
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ..atomic import atomic_write

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
                     title: str = "Test confusion matrix",
                     classes: Optional[Sequence[str]] = None) -> Figure:
    """Heatmap of a confusion matrix (rows: true class, columns: predicted class),
    its axes labelled with the `classes` names (default: the class numbers)."""
    cm = np.asarray(cm)
    n = cm.shape[0]
    side = max(5.0, 0.3 * n + 2)
    fig = Figure(figsize=(side + 0.6, side))
    ax = fig.subplots()
    # Log-scaled colours so the few mistakes stay visible beside the diagonal.
    image = ax.imshow(np.log1p(cm), cmap="Blues")
    threshold = np.log1p(cm).max() / 2
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    fontsize=7 if n <= 20 else 4,
                    color="white" if np.log1p(cm[i, j]) > threshold else "black")
    labels = [str(c) for c in classes] if classes is not None else [str(k) for k in range(n)]
    ax.set_xticks(range(n), labels, rotation=90 if max(map(len, labels)) > 2 else 0,
                  fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="log(1 + count)")
    return _finish(fig, path)


def misclassified(images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                  confidence: np.ndarray, path: Optional[PathLike] = None,
                  max_images: int = 36, classes: Optional[Sequence[str]] = None) -> Figure:
    """A grid of wrongly classified images, most confident mistakes first, each titled
    with its true class, the prediction and the prediction's probability. `images` are
    (N, H, W), (N, C, H, W) or flat 28x28 (N, 784); `classes` names the labels."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images.reshape(len(images), 28, 28)
    if images.ndim == 4:   # (N, C, H, W): one channel as grey, three as colour
        images = images[:, 0] if images.shape[1] == 1 else np.clip(
            images.transpose(0, 2, 3, 1), 0, 1)
    name = (lambda k: str(classes[k])) if classes is not None else str
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))
    wrong = wrong[np.argsort(-np.asarray(confidence)[wrong], kind="stable")][:max_images]
    cols = 6
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig = Figure(figsize=(cols * 1.5, rows * 1.7))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, wrong):
        ax.imshow(images[i], cmap="gray_r" if images.ndim == 3 else None)
        ax.set_title(f"true {name(y_true[i])} → {name(y_pred[i])}\n{confidence[i]:.0%}",
                     fontsize=8)
    if not len(wrong):
        axes[0].set_title("no mistakes")
    fig.suptitle("Misclassified test images (most confident first)")
    return _finish(fig, path)


def first_layer_weights(weight: np.ndarray, path: Optional[PathLike] = None,
                        max_units: int = 64,
                        image_shape: Optional[Sequence[int]] = None) -> Figure:
    """The first layer's weights as images, one per unit (or filter).

    `weight` is (units, C·H·W) for a Linear layer on images of `image_shape` (C, H, W)
    (default 1×28×28) or (filters, C, k, k) for a Conv2d; several channels are shown
    side by side."""
    weight = np.asarray(weight)
    units = weight[:max_units]
    if units.ndim == 2:
        c, h, w = tuple(image_shape) if image_shape is not None else (1, 28, 28)
        units = units.reshape(len(units), c, h, w)
    # channels side by side: (units, C, h, w) -> (units, h, C*w)
    units = units.transpose(0, 2, 1, 3).reshape(len(units), units.shape[2], -1)
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


# --------------------------------------------------------------------- sweeps
def _axis_values(column: pd.Series) -> "tuple[np.ndarray, list, bool]":
    """(positions, tick labels or [], log scale): numbers stay numbers (on a log scale
    when positive and spanning a factor of 10 or more); anything else, such as hidden
    sizes "512 256", becomes evenly spaced categories in order of first appearance."""
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all():
        values = numeric.to_numpy(float)
        log = bool((values > 0).all() and values.max() >= 10 * values.min())
        return values, [], log
    categories = list(dict.fromkeys(column.astype(str)))
    return column.astype(str).map(categories.index).to_numpy(float), categories, False


def sweep_metric(trials: pd.DataFrame, options: "list[str]", metric: str,
                 path: Optional[PathLike] = None, title: str = "Sweep") -> Figure:
    """One panel per swept option: each trial's `metric` against the option's value,
    and the mean over the trials at each value.

    `trials` has one row per finished trial, with a column per option and `metric`
    (as in a sweep's sweep.csv)."""
    fig = Figure(figsize=(3.6 * max(1, len(options)), 3.4))
    axes = np.atleast_1d(fig.subplots(1, max(1, len(options))))
    y = trials[metric].astype(float).to_numpy()
    for ax, option in zip(axes, options):
        x, labels, log = _axis_values(trials[option])
        ax.plot(x, y, "o", alpha=0.5, ms=4, label="trials")
        means = pd.Series(y).groupby(x).mean()
        ax.plot(means.index, means.to_numpy(), "-", lw=1.5, label="mean")
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        distinct = np.unique(x)
        if not labels and len(distinct) <= 8:  # a grid's values themselves
            ax.set_xticks(distinct, [f"{v:g}" for v in distinct])
        if labels:
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
        ax.set_xlabel(option)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return _finish(fig, path)


def parallel_coordinates(trials: pd.DataFrame, options: "list[str]", metric: str,
                         path: Optional[PathLike] = None, title: str = "Sweep") -> Figure:
    """Parallel coordinates: one vertical axis per swept option and one for `metric`,
    each trial a line across them coloured by its `metric` (the best drawn on top).
    Each axis is scaled to its own range (log for numbers spanning a factor of 10)."""
    columns = [*options, metric]
    scaled, ticks = [], []
    for column in columns:
        x, labels, log = _axis_values(trials[column])
        if log:
            x = np.log10(x)
        low, high = (x.min(), x.max()) if len(x) else (0.0, 1.0)
        span = high - low or 1.0
        scaled.append((x - low) / span)
        if labels:
            ticks.append([((i - low) / span, text) for i, text in enumerate(labels)])
        else:
            distinct = np.unique(x)  # a grid's values themselves, else low, middle, high
            raw = distinct if len(distinct) <= 8 else np.linspace(low, high, 3)
            ticks.append([((v - low) / span, f"{10 ** v:.3g}" if log else f"{v:.4g}")
                          for v in raw])
    lines = np.stack(scaled, axis=1) if scaled else np.zeros((0, 0))
    colour = trials[metric].astype(float).to_numpy()
    order = np.argsort(colour, kind="stable")
    fig = Figure(figsize=(2.2 * len(columns) + 1.5, 4))
    ax = fig.subplots()
    norm = colors.Normalize(colour.min(), max(colour.max(), colour.min() + 1e-9))
    cmap = matplotlib.colormaps["viridis"]
    for i in order:
        ax.plot(range(len(columns)), lines[i], "-o", ms=3, lw=1.2, alpha=0.8,
                color=cmap(norm(colour[i])))
    for k, column_ticks in enumerate(ticks):
        ax.axvline(k, color="black", lw=0.8)
        for position, text in column_ticks:
            ax.text(k + 0.03, position, text, fontsize=7, va="center")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(columns) - 0.5)
    ax.set_ylim(-0.05, 1.05)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=metric)
    ax.set_title(title)
    return _finish(fig, path)
