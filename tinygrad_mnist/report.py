"""The test report of a trained model: `report.json`, `report.md` and the PNG plots of a
run directory, written at the end of training and again by `tinygrad-mnist evaluate`."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import pandas as pd

from . import __version__, metrics, plots
from .atomic import atomic_write_text
from .data import load_mnist, scale
from .inference import Trained, evaluate_arrays, load_trained

PathLike = Union[str, os.PathLike]


def write_report(run_dir: Path, trained: Trained, x_test: np.ndarray, y_test: np.ndarray,
                 training_seconds: float = 0.0, make_plots: bool = True,
                 history: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Evaluate `trained` once on the test set (`x_test` prepared as the model's input)
    and write report.json, report.md and, with `make_plots`, the plots into `run_dir`.
    The learning curves come from `history` or else the run's metrics.csv. Returns the
    report's contents."""
    test_loss, test_acc, proba = evaluate_arrays(trained.model, x_test, y_test)
    y_pred = proba.argmax(axis=1)
    cm = metrics.confusion_matrix(y_test, y_pred)
    table = metrics.classification_report(y_test, y_pred)
    report = {"test_accuracy": test_acc, "test_loss": test_loss,
              "test_images": int(len(y_test)), "best_epoch": trained.epoch,
              "val_accuracy": trained.val_acc, "training_seconds": training_seconds,
              "model": trained.config.model,
              "parameters": int(trained.model.num_parameters()),
              "config": dataclasses.asdict(trained.config), "version": __version__,
              "per_class": table.reset_index().to_dict(orient="records"),
              "confusion_matrix": cm.tolist()}
    atomic_write_text(run_dir / "report.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(run_dir / "report.md", _markdown_report(report, table, cm, trained))
    if make_plots:
        if history is None and (run_dir / "metrics.csv").exists():
            history = pd.read_csv(run_dir / "metrics.csv").to_dict(orient="records")
        if history:
            plots.learning_curves(pd.DataFrame(history), run_dir / "learning_curves.png")
        plots.confusion_matrix(cm, run_dir / "confusion_matrix.png")
        images = x_test.reshape(len(x_test), -1) * trained.stats.std + trained.stats.mean
        plots.misclassified(images, y_test, y_pred, proba.max(axis=1),
                            run_dir / "misclassified.png")
        first = next(m for m in trained.model.modules() if hasattr(m, "weight"))
        plots.first_layer_weights(first.weight.data, run_dir / "first_layer_weights.png")
    return report


def evaluate(path: PathLike, make_plots: bool = True) -> Dict[str, Any]:
    """Re-run the test report for a run directory (or a checkpoint file, whose report
    is written beside it), keeping the training time of an earlier report."""
    path = Path(path)
    trained = load_trained(path)
    out = path if path.is_dir() else path.parent
    seconds = 0.0
    if (out / "report.json").exists():
        seconds = json.loads((out / "report.json").read_text()).get("training_seconds", 0.0)
    x_test, y_test = load_test_set(trained)
    return write_report(out, trained, x_test, y_test, training_seconds=seconds,
                        make_plots=make_plots)


def load_test_set(trained: Trained) -> Tuple[np.ndarray, np.ndarray]:
    """The MNIST test images prepared as `trained`'s input (its layout, its training
    statistics), and their labels."""
    mnist = load_mnist(trained.config.data_dir)
    return trained.prepare(scale(mnist.test_images)), mnist.test_labels.astype(np.int64)


def _markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join([frame.index.name or ""] + list(map(str, frame.columns))) + " |"
    lines = [header, "|" + "---|" * (len(frame.columns) + 1)]
    for name, *row in frame.itertuples():  # by row, each column keeping its dtype
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(name)] + cells) + " |")
    return "\n".join(lines)


def _markdown_report(report: Dict[str, Any], table: pd.DataFrame, cm: np.ndarray,
                     trained: Trained) -> str:
    val = ("no saved validation accuracy" if report["val_accuracy"] is None else
           f"best validation accuracy {report['val_accuracy']:.2%}")
    cm_frame = pd.DataFrame(cm, index=pd.Index(range(10), name="true \\ predicted"),
                            columns=range(10))
    return (f"# Test report\n\n"
            f"- test accuracy: **{report['test_accuracy']:.2%}** on "
            f"{report['test_images']:,} images (loss {report['test_loss']:.4f})\n"
            f"- model: `{report['model']}`, {report['parameters']:,} parameters, "
            f"{val} at epoch {report['best_epoch']}\n"
            f"- training time: {report['training_seconds']:.1f} s\n\n"
            f"## Per class\n\n{_markdown_table(table)}\n\n"
            f"## Confusion matrix\n\n{_markdown_table(cm_frame)}\n\n"
            f"## Model\n\n```\n{trained.model!r}\n```\n")
