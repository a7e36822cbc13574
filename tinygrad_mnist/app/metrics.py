"""Classification metrics on label arrays: accuracy, confusion matrix, per-class report."""
from __future__ import annotations

import numpy as np
import pandas as pd


def _labels(y_true: np.ndarray, y_pred: np.ndarray) -> tuple:
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"metrics: y_true has {y_true.size} labels but y_pred has "
                         f"{y_pred.size}")
    return y_true.astype(np.int64), y_pred.astype(np.int64)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of predictions equal to the true label."""
    y_true, y_pred = _labels(y_true, y_pred)
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray,
                     num_classes: int = 10) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    y_true, y_pred = _labels(y_true, y_pred)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} has labels outside "
                             f"[0, {num_classes})")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes ** 2)
    return flat.reshape(num_classes, num_classes)


def classification_report(y_true: np.ndarray, y_pred: np.ndarray,
                          num_classes: int = 10) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support, then macro and weighted averages."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0,
                      2 * precision * recall / (precision + recall), 0.0)
    report = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1,
                           "support": support}, index=[str(c) for c in range(num_classes)])
    weights = support / max(support.sum(), 1)
    report.loc["macro avg"] = [precision.mean(), recall.mean(), f1.mean(), support.sum()]
    report.loc["weighted avg"] = [precision @ weights, recall @ weights, f1 @ weights,
                                  support.sum()]
    report["support"] = report["support"].astype(np.int64)
    report.index.name = "class"
    return report
