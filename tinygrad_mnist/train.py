"""Train and evaluate: the library behind `scripts/train_mnist.py` and the
`tinygrad-mnist` command. Data flows one way: data → model → loss → backward →
optimizer; this module only wires those pieces together and writes the run directory.

A run directory holds `config.json`, `metrics.csv`, `best.npz` and `last.npz`,
`report.md`/`report.json` and PNG plots.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import pandas as pd

from . import __version__, metrics, models, nn, optim, plots
from .autograd import no_grad
from .data import (DataLoader, Stats, apply_standardization, load_mnist, prepare, to_layout,
                   train_val_split)
from .serialization import load, save
from .tensor import from_numpy

PathLike = Union[str, os.PathLike]

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")


@dataclass
class TrainConfig:
    """Every option of a training run (the keys of `--config FILE.json`)."""
    model: str = "mlp"
    hidden: Optional[List[int]] = None  # None: the model's default (models.DEFAULTS)
    epochs: int = 12
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    schedule: str = "cosine"
    weight_decay: float = 0.0
    l1: float = 0.0
    dropout: float = 0.2
    label_smoothing: float = 0.0
    init: str = "he"
    val_size: int = 5000
    seed: int = 0
    data_dir: Optional[str] = None
    out: Optional[str] = None
    limit: Optional[int] = None
    augment: Optional[bool] = None  # None: the model's default (models.DEFAULTS)
    plots: bool = True
    quiet: bool = False

    def validate(self) -> "TrainConfig":
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)
        need(self.model in models.MODELS,
             f"--model must be one of {sorted(models.MODELS)}, got {self.model!r}")
        for key, value in models.DEFAULTS.get(self.model, {}).items():
            if getattr(self, key) is None:
                setattr(self, key, copy.deepcopy(value))
        need(self.optimizer in OPTIMIZERS,
             f"--optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        need(self.schedule in SCHEDULES,
             f"--schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        need(self.init in models.INITS,
             f"--init must be one of {sorted(models.INITS)}, got {self.init!r}")
        need(self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}")
        need(self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}")
        need(self.lr > 0 and math.isfinite(self.lr), f"--lr must be positive, got {self.lr}")
        need(self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}")
        need(self.l1 >= 0, f"--l1 must be >= 0, got {self.l1}")
        need(0 <= self.dropout < 1, f"--dropout must be in [0, 1), got {self.dropout}")
        need(0 <= self.label_smoothing < 1,
             f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        need(self.val_size >= 1, f"--val-size must be at least 1, got {self.val_size}")
        need(self.limit is None or self.limit > self.val_size,
             f"--limit ({self.limit}) must exceed --val-size ({self.val_size})")
        return self

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}; "
                             f"known keys: {', '.join(sorted(known))}")
        return cls(**values).validate()


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


# --------------------------------------------------------------------------- data
@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    stats: Stats


def load_data(config: TrainConfig) -> Data:
    """MNIST split into train/validation (seeded), standardised with training-split
    statistics, in the layout the model expects."""
    mnist = load_mnist(config.data_dir)
    x, y = mnist.train_images, mnist.train_labels.astype(np.int64)
    if config.limit is not None:
        x, y = x[:config.limit], y[:config.limit]
    split = train_val_split(x, y, config.val_size, seed=config.seed, stratify=True)
    layout = models.LAYOUTS[config.model]
    x_train, stats = prepare(split.x_train, layout=layout, standardize=True)
    x_val, _ = prepare(split.x_val, layout=layout, standardize=stats)
    x_test, _ = prepare(mnist.test_images, layout=layout, standardize=stats)
    return Data(x_train, split.y_train, x_val, split.y_val, x_test,
                mnist.test_labels.astype(np.int64), stats)


# ------------------------------------------------------------ model and optimizer
def build_model(config: TrainConfig) -> nn.Module:
    generator = np.random.default_rng(config.seed)
    model = models.MODELS[config.model](hidden=config.hidden, dropout=config.dropout,
                                        generator=generator)
    return models.initialize(model, config.init, generator)


def build_optimizer(config: TrainConfig, params: Iterable[nn.Parameter]) -> optim.Optimizer:
    lr, wd = config.lr, config.weight_decay
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=lr, weight_decay=wd)
    if config.optimizer in ("momentum", "nesterov"):
        return optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd,
                         nesterov=config.optimizer == "nesterov")
    if config.optimizer == "rmsprop":
        return optim.RMSprop(params, lr=lr, weight_decay=wd)
    if config.optimizer == "adam":
        return optim.Adam(params, lr=lr, weight_decay=wd)
    return optim.AdamW(params, lr=lr, weight_decay=wd)


def build_scheduler(config: TrainConfig, optimizer: optim.Optimizer,
                    steps_per_epoch: int) -> Optional[Any]:
    """A learning-rate schedule stepped once per batch (None for `none`)."""
    total = config.epochs * steps_per_epoch
    sched = optim.lr_scheduler
    if config.schedule == "step":  # divide by 10 after each third of training
        return sched.StepLR(optimizer, step_size=max(1, total // 3), gamma=0.1)
    if config.schedule == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=total)
    if config.schedule == "onecycle":
        return sched.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    return None


# ------------------------------------------------------------------ epoch loops
def predict_proba(model: nn.Module, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities (N, 10) in eval mode, without recording a graph."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            chunks = [model(from_numpy(x[i:i + batch_size])).softmax(axis=1).data
                      for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(chunks) if chunks else np.zeros((0, 10), np.float32)


def evaluate_arrays(model: nn.Module, x: np.ndarray, y: np.ndarray,
                    batch_size: int = 1000) -> Tuple[float, float, np.ndarray]:
    """(mean cross-entropy, accuracy, probabilities) of `model` on (x, y)."""
    proba = predict_proba(model, x, batch_size)
    picked = proba[np.arange(len(y)), y].astype(np.float64)
    loss = float(-np.mean(np.log(np.maximum(picked, 1e-30))))
    return loss, metrics.accuracy(y, proba.argmax(axis=1)), proba


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: optim.Optimizer,
                scheduler: Optional[Any], config: TrainConfig,
                progress: Any = None) -> Tuple[float, float]:
    """One pass over `loader`; returns (mean training loss, training accuracy)."""
    model.train()
    params = list(model.parameters())
    total_loss = correct = seen = 0
    for step, (xb, yb) in enumerate(loader):
        logits = model(from_numpy(xb))
        loss = nn.functional.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
        if config.l1:
            loss = loss + config.l1 * nn.utils.l1_penalty(params)
        value = float(loss.data)
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"the training loss became {value} at batch {step + 1}; lower the learning "
                f"rate (--lr, now {config.lr:g}) or use a gentler schedule")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += value * len(yb)
        correct += int((logits.data.argmax(axis=1) == yb).sum())
        seen += len(yb)
        if progress is not None:
            progress.update(1)
            if step % 20 == 0:
                progress.set_postfix(loss=f"{total_loss / seen:.4f}", refresh=False)
    return total_loss / max(seen, 1), correct / max(seen, 1)


# ------------------------------------------------------------- the run directory
def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _new_run_dir(out: Optional[str]) -> Path:
    if out:
        path = Path(out)
    else:
        path = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{suffix}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _checkpoint(model, optimizer, scheduler, loader, epoch, history, best, config, stats,
                seconds) -> Dict[str, Any]:
    return {"format": "tinygrad_mnist.run", "version": __version__, "epoch": epoch,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else {},
            "loader": loader.state_dict(), "rng": nn.init.get_rng_state(),
            "history": history, "best": best, "config": dataclasses.asdict(config),
            "stats": list(stats), "seconds": seconds}


class _Printer:
    def __init__(self, quiet: bool):
        self.quiet = quiet

    def __call__(self, *args: Any) -> None:
        if not self.quiet:
            print(*args, flush=True)


RESUME_OPTIONS = ("epochs", "quiet", "plots")


def train(config: Optional[TrainConfig] = None, resume: Optional[PathLike] = None,
          **overrides: Any) -> Path:
    """Train a model, keep the best (by validation accuracy) and the last checkpoint,
    evaluate the best one once on the test set, and write the report and plots.

    With `resume`, continue the run in that directory from its last completed epoch,
    with its saved configuration (`overrides` may change only epochs, quiet and
    plots) and the same model, optimizer, scheduler, data order and RNG state, so the
    result is bitwise the same as an uninterrupted run. Returns the run directory."""
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "last.npz").exists():
            raise FileNotFoundError(f"cannot resume: {run_dir / 'last.npz'} does not exist")
        fixed = sorted(set(overrides) - set(RESUME_OPTIONS))
        if fixed:
            raise ValueError(f"a resumed run keeps its saved options; only "
                             f"{', '.join(RESUME_OPTIONS)} may change, not {', '.join(fixed)}")
        state = load(run_dir / "last.npz")
        config = TrainConfig.from_dict({**state["config"], **overrides})
    else:
        config = dataclasses.replace(config or TrainConfig(), **overrides).validate()
        run_dir = _new_run_dir(config.out)
        state = None
    say = _Printer(config.quiet)

    nn.init.manual_seed(config.seed)
    data = load_data(config)
    model = build_model(config)
    loader = DataLoader(data.x_train, data.y_train, config.batch_size, shuffle=True,
                        seed=config.seed, augment_shift=2 if config.augment else 0)
    optimizer = build_optimizer(config, model.parameters())
    scheduler = build_scheduler(config, optimizer, len(loader))
    history: List[Dict[str, float]] = []
    best = {"val_acc": -1.0, "epoch": 0}
    seconds = 0.0
    start_epoch = 1
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        loader.load_state_dict(state["loader"])
        nn.init.set_rng_state(state["rng"])
        history, best, seconds = list(state["history"]), dict(state["best"]), state["seconds"]
        start_epoch = int(state["epoch"]) + 1
        say(f"Resuming {run_dir} after epoch {state['epoch']}")
    else:
        (run_dir / "config.json").write_text(json.dumps(
            {**dataclasses.asdict(config), "version": __version__}, indent=2) + "\n")
        say(f"Training {config.model} ({model.num_parameters():,} parameters) on "
            f"{len(data.y_train):,} images, validating on {len(data.y_val):,}; "
            f"run directory: {run_dir}")

    def checkpoint(epoch: int) -> Dict[str, Any]:
        return _checkpoint(model, optimizer, scheduler, loader, epoch, history, best,
                           config, data.stats, seconds)

    if state is None:
        save(checkpoint(0), run_dir / "last.npz")
    epoch = start_epoch - 1
    try:
        for epoch in range(start_epoch, config.epochs + 1):
            began = time.perf_counter()
            progress = _progress(len(loader), f"epoch {epoch}/{config.epochs}", config.quiet)
            try:
                train_loss, train_acc = train_epoch(model, loader, optimizer, scheduler,
                                                    config, progress)
            finally:
                if progress is not None:
                    progress.close()
            val_loss, val_acc, _ = evaluate_arrays(model, data.x_val, data.y_val)
            took = time.perf_counter() - began
            seconds += took
            row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                   "val_loss": val_loss, "val_acc": val_acc,
                   "lr": optimizer.param_groups[0]["lr"], "seconds": took,
                   "images_per_sec": len(data.y_train) / took}
            history.append(row)
            say(f"epoch {epoch:>3}/{config.epochs}  train loss {train_loss:.4f} "
                f"acc {train_acc:.2%}  val loss {val_loss:.4f} acc {val_acc:.2%}  "
                f"lr {row['lr']:.2e}  {took:.1f}s  {row['images_per_sec']:,.0f} img/s")
            if val_acc > best["val_acc"]:
                best = {"val_acc": val_acc, "epoch": epoch}
                save({"format": "tinygrad_mnist.model", "model": model.state_dict(),
                      "config": dataclasses.asdict(config), "stats": list(data.stats),
                      "epoch": epoch, "val_acc": val_acc}, run_dir / "best.npz")
            save(checkpoint(epoch), run_dir / "last.npz")
            _atomic_write_text(run_dir / "metrics.csv",
                               pd.DataFrame(history).to_csv(index=False))
    except KeyboardInterrupt:
        print(f"\nInterrupted during epoch {epoch}. The last completed epoch is saved in "
              f"{run_dir / 'last.npz'}.\nResume with:  python scripts/train_mnist.py "
              f"--resume {run_dir}", file=sys.stderr, flush=True)
        raise
    except TrainingDiverged as e:
        raise TrainingDiverged(f"{e}. The last good checkpoint is {run_dir / 'last.npz'}.") \
            from None

    report = write_report(run_dir, data=data, training_seconds=seconds,
                          make_plots=config.plots, history=history)
    say(f"Test accuracy {report['test_accuracy']:.2%} (loss {report['test_loss']:.4f}) "
        f"with the epoch-{report['best_epoch']} model; {seconds:.0f}s of training.\n"
        f"Outputs: {run_dir}/ (report.md, metrics.csv, best.npz, plots)")
    return run_dir


def _progress(total: int, desc: str, quiet: bool) -> Any:
    if quiet:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)


# ---------------------------------------------------------------- trained models
@dataclass
class Trained:
    """A model restored from a checkpoint, with what it needs to preprocess input."""
    model: nn.Module
    config: TrainConfig
    stats: Stats
    checkpoint: Path
    epoch: int
    val_acc: Optional[float]  # validation accuracy saved with the model, if any

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Float images in [0, 1], (N, 28, 28) → the model's normalised input."""
        x = apply_standardization(np.asarray(images, np.float32), self.stats)
        return to_layout(x, models.LAYOUTS[self.config.model])

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) floats in [0, 1] → (N, 10) class probabilities."""
        return predict_proba(self.model, self.prepare(images))


def load_trained(path: PathLike) -> Trained:
    """Load a run directory's best model (or a given `.npz` checkpoint) for use."""
    path = Path(path)
    checkpoint = path / "best.npz" if path.is_dir() else path
    if not checkpoint.exists():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}; give a run directory "
                                f"with best.npz or a checkpoint file")
    state = load(checkpoint)
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"{checkpoint} is not a tinygrad_mnist model checkpoint")
    config = TrainConfig.from_dict(dict(state["config"]))
    model = build_model(config)
    model.load_state_dict(state["model"])
    model.eval()
    val_acc = state.get("val_acc")
    return Trained(model, config, Stats(*state["stats"]), checkpoint, int(state["epoch"]),
                   None if val_acc is None else float(val_acc))


def write_report(run_dir: Path, data: Optional[Data] = None, training_seconds: float = 0.0,
                 make_plots: bool = True, history: Optional[List[Dict]] = None,
                 trained: Optional[Trained] = None) -> Dict[str, Any]:
    """Evaluate the best checkpoint once on the test set; write report.md/.json and plots."""
    trained = trained or load_trained(run_dir)
    if data is None:
        data = load_data(trained.config)
    test_loss, test_acc, proba = evaluate_arrays(trained.model, data.x_test, data.y_test)
    y_pred = proba.argmax(axis=1)
    cm = metrics.confusion_matrix(data.y_test, y_pred)
    table = metrics.classification_report(data.y_test, y_pred)
    report = {"test_accuracy": test_acc, "test_loss": test_loss,
              "test_images": int(len(data.y_test)), "best_epoch": trained.epoch,
              "val_accuracy": trained.val_acc, "training_seconds": training_seconds,
              "model": trained.config.model,
              "parameters": int(trained.model.num_parameters()),
              "config": dataclasses.asdict(trained.config), "version": __version__,
              "per_class": table.reset_index().to_dict(orient="records"),
              "confusion_matrix": cm.tolist()}
    _atomic_write_text(run_dir / "report.json", json.dumps(report, indent=2) + "\n")
    _atomic_write_text(run_dir / "report.md", _markdown_report(report, table, cm, trained))
    if make_plots:
        if history is None and (run_dir / "metrics.csv").exists():
            history = pd.read_csv(run_dir / "metrics.csv").to_dict(orient="records")
        if history:
            plots.learning_curves(pd.DataFrame(history), run_dir / "learning_curves.png")
        plots.confusion_matrix(cm, run_dir / "confusion_matrix.png")
        images = data.x_test.reshape(len(data.x_test), -1) * data.stats.std + data.stats.mean
        plots.misclassified(images, data.y_test, y_pred, proba.max(axis=1),
                            run_dir / "misclassified.png")
        first = next(m for m in trained.model.modules() if hasattr(m, "weight"))
        plots.first_layer_weights(first.weight.data, run_dir / "first_layer_weights.png")
    return report


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


def evaluate(path: PathLike, make_plots: bool = True) -> Dict[str, Any]:
    """Re-run the test report for a run directory (or a checkpoint file, whose report
    is written beside it)."""
    path = Path(path)
    trained = load_trained(path)
    out = path if path.is_dir() else path.parent
    seconds = 0.0
    if (out / "report.json").exists():
        seconds = json.loads((out / "report.json").read_text()).get("training_seconds", 0.0)
    return write_report(out, training_seconds=seconds, make_plots=make_plots, trained=trained)
