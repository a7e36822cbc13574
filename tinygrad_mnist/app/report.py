"""The test report of a trained model: `report.json`, `report.md` and the PNG plots of a
run directory, written at the end of training and again by `tinygrad-mnist evaluate`;
and the report of an ensemble (`evaluate_ensemble`), comparing each member with the
ensemble."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from .. import __version__
from . import metrics, plots
from ..atomic import atomic_write_text, staged_directory
from ..data import scale
from .inference import (SWEEP_CSV, Ensemble, Trained, average_proba, evaluate_arrays,
                        load_trained, resolve_runs)

PathLike = Union[str, os.PathLike]


def write_report(run_dir: Path, trained: Trained, x_test: np.ndarray, y_test: np.ndarray,
                 training_seconds: float = 0.0, make_plots: bool = True,
                 history: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Evaluate `trained` once on the test set (`x_test` prepared as the model's input)
    and write report.json, report.md and, with `make_plots`, the plots into `run_dir`,
    all of them or (on any error) none. The learning curves come from `history` or else
    the run's metrics.csv. Returns the report's contents."""
    with staged_directory(run_dir) as staging:
        return _write_report(run_dir, staging, trained, x_test, y_test, training_seconds,
                             make_plots, history)


def _write_report(run_dir: Path, out: Path, trained: Trained, x_test: np.ndarray,
                  y_test: np.ndarray, training_seconds: float, make_plots: bool,
                  history: Optional[List[Dict[str, Any]]]) -> Dict[str, Any]:
    test_loss, test_acc, proba = evaluate_arrays(trained.model, x_test, y_test)
    y_pred = proba.argmax(axis=1)
    classes = list(trained.classes)
    cm = metrics.confusion_matrix(y_test, y_pred, len(classes))
    table = metrics.classification_report(y_test, y_pred, len(classes))
    table.index = pd.Index([*classes, *table.index[len(classes):]], name=table.index.name)
    report = {"test_accuracy": test_acc, "test_loss": test_loss,
              "test_images": int(len(y_test)), "best_epoch": trained.epoch,
              "val_accuracy": trained.val_acc, "training_seconds": training_seconds,
              "model": trained.config.model,
              "parameters": int(trained.model.num_parameters()),
              "config": dataclasses.asdict(trained.config), "version": __version__,
              "per_class": table.reset_index().to_dict(orient="records"),
              "confusion_matrix": cm.tolist()}
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out / "report.md", _markdown_report(report, table, cm, trained))
    if make_plots:
        if history is None and (run_dir / "metrics.csv").exists():
            history = pd.read_csv(run_dir / "metrics.csv").to_dict(orient="records")
        if history:
            plots.learning_curves(pd.DataFrame(history), out / "learning_curves.png")
        plots.confusion_matrix(cm, out / "confusion_matrix.png", classes=classes)
        images = x_test.reshape(len(x_test), *trained.image_shape) * trained.stats.std \
            + trained.stats.mean
        plots.misclassified(images, y_test, y_pred, proba.max(axis=1),
                            out / "misclassified.png", classes=classes)
        first = next(m for m in trained.model.modules() if hasattr(m, "weight"))
        plots.first_layer_weights(first.weight.data, out / "first_layer_weights.png",
                                  image_shape=trained.image_shape)
    return report


def report_dir(path: PathLike) -> Path:
    """Where `evaluate(path)` writes: the run directory itself for a run directory or its
    best.npz; for any other checkpoint (say RUN/last.npz) the folder `<name>-report`
    beside it, so that the run's own report is never replaced by another model's."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.name == "best.npz":
        return path.parent
    return path.parent / f"{path.stem}-report"


def evaluate(path: PathLike, make_plots: bool = True) -> Dict[str, Any]:
    """Re-run the test report for a run directory, or a checkpoint file (into
    `report_dir(path)`), keeping the training time of an earlier report."""
    path = Path(path)
    trained = load_trained(path)
    out = report_dir(path)
    seconds = 0.0
    try:
        seconds = float(json.loads((out / "report.json").read_text())["training_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no earlier report, or an unreadable one: it is replaced
    out.mkdir(exist_ok=True)
    x_test, y_test = load_test_set(trained)
    return write_report(out, trained, x_test, y_test, training_seconds=seconds,
                        make_plots=make_plots)


def load_test_set(trained: Trained) -> Tuple[np.ndarray, np.ndarray]:
    """The test images of `trained`'s data (MNIST, unless its configuration names other
    data) prepared as its input (its layout, its training statistics), and their labels."""
    data = trained.config.load_images()
    return trained.prepare(scale(data.test_images)), data.test_labels.astype(np.int64)


def _markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join([frame.index.name or ""] + list(map(str, frame.columns))) + " |"
    lines = [header, "|" + "---|" * (len(frame.columns) + 1)]
    for name, *row in frame.itertuples():  # by row, each column keeping its dtype
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(name)] + cells) + " |")
    return "\n".join(lines)


def _training_step(config: Any) -> str:
    """How the run trained: its training step (compiled or eager) and BLAS threads."""
    step = ("compiled training step (tinygrad_mnist.jit)" if getattr(config, "jit", True)
            else "eager training step (--no-jit)")
    count = getattr(config, "threads", None)
    return step + ("" if count is None else f", {count} BLAS thread{'s' * (count != 1)}")


def _markdown_report(report: Dict[str, Any], table: pd.DataFrame, cm: np.ndarray,
                     trained: Trained) -> str:
    val = ("no saved validation accuracy" if report["val_accuracy"] is None else
           f"best validation accuracy {report['val_accuracy']:.2%}")
    names = list(trained.classes)
    cm_frame = pd.DataFrame(cm, index=pd.Index(names, name="true \\ predicted"),
                            columns=names)
    return (f"# Test report\n\n"
            f"- test accuracy: **{report['test_accuracy']:.2%}** on "
            f"{report['test_images']:,} images (loss {report['test_loss']:.4f})\n"
            f"- model: `{report['model']}`, {report['parameters']:,} parameters, "
            f"{val} at epoch {report['best_epoch']}\n"
            f"- training time: {report['training_seconds']:.1f} s "
            f"({_training_step(trained.config)})\n\n"
            f"## Per class\n\n{_markdown_table(table)}\n\n"
            f"## Confusion matrix\n\n{_markdown_table(cm_frame)}\n\n"
            f"## Model\n\n```\n{trained.model!r}\n```\n")


# --------------------------------------------------------------------- ensembles
def default_ensemble_dir(paths: Sequence[PathLike]) -> Path:
    """Where an ensemble's report goes unless told: `ensemble/` in the sweep directory
    (given one sweep), else beside the first run."""
    first = Path(paths[0])
    if first.is_dir() and (first / SWEEP_CSV).exists():
        return first / "ensemble"
    return first.parent / "ensemble"


def evaluate_ensemble(paths: Union[PathLike, Sequence[PathLike]],
                      out: Optional[PathLike] = None, top_k: Optional[int] = None,
                      make_plots: bool = True) -> Dict[str, Any]:
    """Evaluate an ensemble (several runs, or a sweep's best `top_k`) once on the test
    set and write report.json and report.md (each member against the ensemble, then the
    ensemble's per-class table and confusion matrix) and, with `make_plots`, its
    confusion matrix and misclassified digits into `out` (default:
    `default_ensemble_dir`). Returns the report's contents."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    runs = resolve_runs(paths, top_k)
    ensemble = Ensemble([load_trained(run) for run in runs])
    out = Path(out) if out is not None else default_ensemble_dir(paths)
    out.mkdir(parents=True, exist_ok=True)
    data = ensemble.members[0].config.load_images()  # the members' data (checked the same)
    images, y_test = scale(data.test_images), data.test_labels.astype(np.int64)
    members, probas = [], []
    for run, member in zip(runs, ensemble.members):
        loss, acc, proba = evaluate_arrays(member.model, member.prepare(images), y_test)
        probas.append(proba)
        members.append({"run": str(run), "model": member.config.model,
                        "seed": member.config.seed,
                        "parameters": int(member.model.num_parameters()),
                        "val_accuracy": member.val_acc, "best_epoch": member.epoch,
                        "test_accuracy": acc, "test_loss": loss,
                        "training_seconds": _training_seconds(member)})
    proba = average_proba(probas)
    y_pred = proba.argmax(axis=1)
    picked = proba[np.arange(len(y_test)), y_test].astype(np.float64)
    loss = float(np.mean(-np.log(np.maximum(picked, np.finfo(np.float32).tiny))))
    cm = metrics.confusion_matrix(y_test, y_pred)
    table = metrics.classification_report(y_test, y_pred)
    seconds = [m["training_seconds"] for m in members]
    report = {"ensemble": True, "members": members, "size": len(members),
              "test_accuracy": metrics.accuracy(y_test, y_pred), "test_loss": loss,
              "test_images": int(len(y_test)),
              "training_seconds": None if None in seconds else float(sum(seconds)),
              "version": __version__,
              "per_class": table.reset_index().to_dict(orient="records"),
              "confusion_matrix": cm.tolist()}
    with staged_directory(out) as staging:  # every file of the report, or none
        atomic_write_text(staging / "report.json", json.dumps(report, indent=2) + "\n")
        atomic_write_text(staging / "report.md", _markdown_ensemble(report, table, cm))
        if make_plots:
            plots.confusion_matrix(cm, staging / "confusion_matrix.png",
                                   title=f"Test confusion matrix, ensemble of {len(members)}")
            plots.misclassified(images, y_test, y_pred, proba.max(axis=1),
                                staging / "misclassified.png")
    return report


def _training_seconds(member: Trained) -> Optional[float]:
    report = member.checkpoint.parent / "report.json"
    if not report.exists():
        return None
    return json.loads(report.read_text()).get("training_seconds")


def _markdown_ensemble(report: Dict[str, Any], table: pd.DataFrame, cm: np.ndarray) -> str:
    def percent(value: Optional[float]) -> str:
        return "–" if value is None else f"{value:.2%}"

    rows = [f"| {i + 1} | `{m['run']}` | {m['model']} | {m['seed']} | "
            f"{percent(m['val_accuracy'])} | {percent(m['test_accuracy'])} | "
            f"{m['test_loss']:.4f} |" for i, m in enumerate(report["members"])]
    mean = float(np.mean([m["test_accuracy"] for m in report["members"]]))
    cm_frame = pd.DataFrame(cm, index=pd.Index(range(10), name="true \\ predicted"),
                            columns=range(10))
    seconds = report["training_seconds"]
    return (f"# Ensemble test report\n\n"
            f"- test accuracy: **{report['test_accuracy']:.2%}** on "
            f"{report['test_images']:,} images (loss {report['test_loss']:.4f}), "
            f"the mean of {report['size']} models' probabilities\n"
            f"- members: mean test accuracy {mean:.2%}, best "
            f"{max(m['test_accuracy'] for m in report['members']):.2%}\n"
            + (f"- training time: {seconds:.1f} s (the members' sum)\n"
               if seconds is not None else "")
            + "\n## Members and ensemble\n\n"
            "| # | run | model | seed | validation accuracy | test accuracy | test loss |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
            f"| | **ensemble** | | | | **{report['test_accuracy']:.2%}** | "
            f"**{report['test_loss']:.4f}** |\n\n"
            f"## Per class (ensemble)\n\n{_markdown_table(table)}\n\n"
            f"## Confusion matrix (ensemble)\n\n{_markdown_table(cm_frame)}\n")
